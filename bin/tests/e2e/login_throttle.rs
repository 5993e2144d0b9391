//! Login throttling end to end: guessing from one address is refused with a
//! wait after a few tries, an unknown address is treated the same, the owner
//! can still log in from elsewhere, the right password works after the wait,
//! and parallel guessers on two replicas sharing Redis cannot exceed the
//! count. OWASP ASVS 5.0 V6.3.1 (brute force and credential stuffing),
//! V6.3.8 (no account enumeration), NIST SP 800-63B-4 §3.2.2 (rate limiting).

use std::time::Duration;

use gatehouse::config::Config;
use gatehouse_grpc::pb;
use tonic::Code;
use tonic_types::StatusExt as _;

use crate::harness::{Mode, TestApp, code_and_reason};

crate::in_both_modes!(
    thirty_guesses_are_throttled_alike_for_a_known_and_an_unknown_address,
    after_the_wait_the_right_password_works,
    parallel_guessers_cannot_exceed_the_count,
);

const PASSWORD: &str = "correct horse battery";

/// Client addresses come from `x-forwarded-for`, believed from localhost.
fn behind_a_proxy(c: &mut Config) {
    c.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
}

async fn login_from(app: &TestApp, email: &str, password: &str, ip: &str) -> Result<(), tonic::Status> {
    let mut req =
        tonic::Request::new(pb::LoginRequest { email: email.into(), password: password.into(), ..Default::default() });
    req.metadata_mut().insert("x-forwarded-for", ip.parse().unwrap());
    app.auth.clone().login(req).await.map(|_| ())
}

fn throttled(status: &tonic::Status) -> Option<Duration> {
    (code_and_reason(status) == (Code::ResourceExhausted, "RATE_LIMITED".to_owned()))
        .then(|| status.get_error_details().retry_info().and_then(|r| r.retry_delay).expect("RetryInfo"))
}

/// The answers to 30 wrong passwords in a row, as (code, reason).
async fn thirty_wrong(app: &TestApp, email: &str, ip: &str) -> Vec<(Code, String)> {
    let mut answers = Vec::new();
    for _ in 0..30 {
        answers.push(code_and_reason(&login_from(app, email, "wrong password", ip).await.unwrap_err()));
    }
    answers
}

async fn thirty_guesses_are_throttled_alike_for_a_known_and_an_unknown_address(mode: Mode) {
    let app = TestApp::spawn_with(mode, behind_a_proxy).await;
    app.verified_user("ann@example.com").await;
    let known = thirty_wrong(&app, "ann@example.com", "198.51.100.1").await;
    let unknown = thirty_wrong(&app, "nobody@example.com", "198.51.100.2").await;
    assert_eq!(known, unknown, "the same answers for an address with and without an account");
    let wrong = (Code::Unauthenticated, "INVALID_CREDENTIALS".to_owned());
    assert_eq!(known.iter().filter(|a| **a == wrong).count(), 5, "five free tries: {known:?}");
    assert!(known[5..].iter().all(|a| *a == (Code::ResourceExhausted, "RATE_LIMITED".to_owned())), "{known:?}");

    // A throttled attempt carries the wait, and refuses even the right password.
    let status = login_from(&app, "ann@example.com", PASSWORD, "198.51.100.1").await.unwrap_err();
    let wait = throttled(&status).expect("throttled");
    assert!((1..=3600).contains(&wait.as_secs()), "retry after {wait:?}");
    // The owner, from another address, is not locked out.
    login_from(&app, "ann@example.com", PASSWORD, "203.0.113.5").await.unwrap();
}

async fn after_the_wait_the_right_password_works(mode: Mode) {
    let app = TestApp::spawn_with(mode, |c| {
        behind_a_proxy(c);
        // Long enough that three wrong logins on a loaded machine all fall
        // inside it, short enough to wait out.
        c.login_limit_pair =
            vec![gatehouse_application::ports::rate_limit::Limit::new(3, chrono::TimeDelta::seconds(6)).unwrap()];
    })
    .await;
    app.verified_user("bea@example.com").await;
    for _ in 0..3 {
        login_from(&app, "bea@example.com", "wrong password", "198.51.100.9").await.unwrap_err();
    }
    let status = login_from(&app, "bea@example.com", PASSWORD, "198.51.100.9").await.unwrap_err();
    let wait = throttled(&status).expect("throttled after three failures");
    assert!(wait <= Duration::from_secs(2), "one attempt returns every two seconds: {wait:?}");
    tokio::time::sleep(wait + Duration::from_millis(100)).await;
    login_from(&app, "bea@example.com", PASSWORD, "198.51.100.9").await.unwrap();
}

/// Eight guessers at once, spread over two replicas where there are
/// replicas (production: they share Redis): no more guesses are checked
/// than the limit allows, the count is one atomic decision per attempt.
async fn parallel_guessers_cannot_exceed_the_count(mode: Mode) {
    let app = TestApp::spawn_with(mode, |c| {
        behind_a_proxy(c);
        c.login_limit_pair =
            vec![gatehouse_application::ports::rate_limit::Limit::new(10, chrono::TimeDelta::hours(1)).unwrap()];
    })
    .await;
    app.verified_user("cal@example.com").await;
    let replica = if mode == Mode::Production { Some(app.replica().await) } else { None };
    let clients: Vec<_> = [Some(&app), replica.as_ref()].into_iter().flatten().map(|a| a.auth.clone()).collect();
    let guessers: Vec<_> = (0..8)
        .map(|n| {
            let mut client = clients[n % clients.len()].clone();
            tokio::spawn(async move {
                let mut answers = Vec::new();
                for _ in 0..5 {
                    let mut req = tonic::Request::new(pb::LoginRequest {
                        email: "cal@example.com".into(),
                        password: "wrong password".into(),
                        ..Default::default()
                    });
                    req.metadata_mut().insert("x-forwarded-for", "198.51.100.77".parse().unwrap());
                    answers.push(code_and_reason(&client.login(req).await.unwrap_err()));
                }
                answers
            })
        })
        .collect();
    let mut checked = 0;
    for guesser in guessers {
        for answer in guesser.await.unwrap() {
            match answer {
                (Code::Unauthenticated, reason) if reason == "INVALID_CREDENTIALS" => checked += 1,
                (Code::ResourceExhausted, reason) if reason == "RATE_LIMITED" => {}
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    assert_eq!(checked, 10, "exactly the limit of 40 parallel guesses was checked");
}
