//! The password-hashing pool seen from outside: logins beyond its threads
//! and queue are refused at once with `RESOURCE_EXHAUSTED` and `RetryInfo`
//! instead of waiting without bound (OWASP ASVS 5.0 V15.2.2), the refusal
//! is not counted as a failed guess, and the pool keeps working afterwards.

use std::time::Duration;

use tonic::Code;
use tonic_types::StatusExt as _;

use crate::harness::{Mode, PASSWORD, TestApp, code_and_reason};

/// Concurrent logins against one hashing thread and no queue.
const LOGINS: usize = 16;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asvs_15_2_2_logins_past_the_hashing_queue_are_refused_with_retry_info() {
    let app = TestApp::spawn_with(Mode::Embedded, |c| {
        c.password_hash_concurrency = 1;
        c.password_hash_queue = 0;
    })
    .await;
    app.verified_user("busy@example.com").await;

    let logins = (0..LOGINS).map(|_| {
        let app = app.auth.clone();
        tokio::spawn(async move {
            let mut auth = app;
            let req = gatehouse_grpc::pb::LoginRequest {
                email: "busy@example.com".into(),
                password: PASSWORD.into(),
                ..Default::default()
            };
            auth.login(req).await
        })
    });
    let (mut signed_in, mut busy) = (0, 0);
    for login in logins.collect::<Vec<_>>() {
        match login.await.unwrap() {
            Ok(_) => signed_in += 1,
            Err(status) => {
                assert_eq!(code_and_reason(&status), (Code::ResourceExhausted, "SERVER_BUSY".to_owned()), "{status:?}");
                let retry = status.get_error_details().retry_info().cloned().expect("RetryInfo");
                assert_eq!(retry.retry_delay, Some(Duration::from_secs(1)));
                busy += 1;
            }
        }
    }
    assert!(signed_in >= 1, "the thread hashed");
    assert!(busy >= 1, "{LOGINS} logins at once, one thread, no queue: some were refused");

    // Refusals were no failed guesses (five failures would throttle the
    // pair) and the pool still answers, one login after another.
    for _ in 0..6 {
        app.login("busy@example.com", PASSWORD).await.unwrap();
    }
    let wrong = app.login_outcome("busy@example.com", "not the password at all").await.unwrap_err();
    assert_eq!(code_and_reason(&wrong), (Code::Unauthenticated, "INVALID_CREDENTIALS".to_owned()));
}
