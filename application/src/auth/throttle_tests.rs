//! Login throttling through the use case, over the fake limiter with the
//! default limits (five free tries per account and address, a ceiling of
//! 100 per account, 100 per address).

use super::*;
use crate::throttle::RateLimits;

const RIGHT: &str = "correct horse";

fn retry_after(result: Result<TokenPair, AppError>) -> u64 {
    match result {
        Err(AppError::RateLimited { retry_after_secs }) => retry_after_secs,
        other => panic!("expected RateLimited, got {other:?}"),
    }
}

fn wrong(h: &Harness, email: &str, ip: &str, n: usize) {
    for attempt in 0..n {
        let result = h.login_from(email, "wrong password", ip);
        assert!(matches!(result, Err(AppError::InvalidCredentials)), "attempt {}: {result:?}", attempt + 1);
    }
}

/// OWASP ASVS 5.0 V6.3.1, NIST SP 800-63B-4 §3.2.2: after a few free tries
/// from one address, guesses are refused with a wait, and a refused attempt
/// costs no argon2 work whatever the password.
#[test]
fn guesses_from_one_address_are_throttled_without_hashing() {
    let h = Harness::new();
    h.sign_up("ann@example.com", RIGHT).unwrap();
    wrong(&h, "ann@example.com", "192.0.2.7", 5);
    let hashed = h.hasher.verifications.load(Ordering::Relaxed);
    let wait = retry_after(h.login_from("ann@example.com", "wrong password", "192.0.2.7"));
    assert!((1..=60).contains(&wait), "retry after {wait}s");
    retry_after(h.login_from("ann@example.com", RIGHT, "192.0.2.7"));
    assert_eq!(h.hasher.verifications.load(Ordering::Relaxed), hashed, "a refused attempt ran the hasher");
}

/// OWASP ASVS 5.0 V6.3.8: an address with no account is throttled after
/// the same number of tries, with the same answer and wait.
#[test]
fn an_unknown_address_is_throttled_exactly_like_a_known_one() {
    let h = Harness::new();
    h.sign_up("ann@example.com", RIGHT).unwrap();
    wrong(&h, "ann@example.com", "192.0.2.7", 5);
    wrong(&h, "nobody@example.com", "192.0.2.8", 5);
    let known = retry_after(h.login_from("ann@example.com", "wrong password", "192.0.2.7"));
    let unknown = retry_after(h.login_from("nobody@example.com", "wrong password", "192.0.2.8"));
    assert_eq!(known, unknown);
}

/// The throttle must not become a lockout: the owner, from another
/// address, still logs in while a guesser is throttled (NIST SP 800-63B-4
/// §3.2.2 asks that an attacker cannot deny the subscriber).
#[test]
fn another_address_still_logs_in_while_one_is_throttled() {
    let h = Harness::new();
    h.sign_up("ann@example.com", RIGHT).unwrap();
    wrong(&h, "ann@example.com", "192.0.2.66", 5);
    retry_after(h.login_from("ann@example.com", "wrong password", "192.0.2.66"));
    h.login_from("ann@example.com", RIGHT, "198.51.100.4").expect("the owner's address is not throttled");
}

/// The wait grows with the failures: the tiers of the (account, address)
/// limit each allow a slower rate.
#[test]
fn the_wait_grows_and_after_it_the_right_password_works_and_clears_the_pair() {
    let h = Harness::new();
    h.sign_up("ann@example.com", RIGHT).unwrap();
    wrong(&h, "ann@example.com", "192.0.2.7", 5);
    let first = retry_after(h.login_from("ann@example.com", "wrong password", "192.0.2.7"));
    h.clock.advance(TimeDelta::seconds(i64::try_from(first).unwrap()));
    // The first tier returns one attempt per 12 s; keep failing until a
    // later tier, with its longer interval, decides the wait.
    let mut waits = vec![first];
    for _ in 0..15 {
        match h.login_from("ann@example.com", "wrong password", "192.0.2.7") {
            Err(AppError::InvalidCredentials) => {}
            other => {
                let wait = retry_after(other);
                waits.push(wait);
                h.clock.advance(TimeDelta::seconds(i64::try_from(wait).unwrap()));
            }
        }
    }
    assert!(waits.last() > waits.first(), "waits did not grow: {waits:?}");
    let wait = retry_after(h.login_from("ann@example.com", RIGHT, "192.0.2.7"));
    h.clock.advance(TimeDelta::seconds(i64::try_from(wait).unwrap()));
    h.login_from("ann@example.com", RIGHT, "192.0.2.7").expect("the right password after the wait");
    // The success cleared the pair: five free tries again.
    wrong(&h, "ann@example.com", "192.0.2.7", 5);
}

/// NIST SP 800-63B-4 §3.2.2: no more than 100 consecutive failures per
/// account, from however many addresses; the owner is told once.
#[test]
fn the_account_ceiling_holds_across_addresses_and_tells_the_owner_once() {
    let h = Harness::new();
    h.sign_up("ann@example.com", RIGHT).unwrap();
    let ceiling = RateLimits::default().login_account.max() as usize;
    for n in 0..ceiling / 4 {
        wrong(&h, "ann@example.com", &format!("10.0.{}.{}", n / 200, n % 200), 4);
    }
    for fresh in ["203.0.113.1", "203.0.113.2"] {
        retry_after(h.login_from("ann@example.com", "wrong password", fresh));
        retry_after(h.login_from("ann@example.com", RIGHT, fresh));
    }
    let notices: Vec<_> = h.store.outbox().into_iter().filter(|m| m.event_type == "email.login_throttled").collect();
    assert_eq!(notices.len(), 1, "one notice per throttling");
    // Another account is not affected.
    h.sign_up("bob@example.com", RIGHT).unwrap();
    h.login_from("bob@example.com", RIGHT, "203.0.113.1").unwrap();
}

/// Only failures use the limits up: many logins of one account from one
/// address (a shared office address) never throttle it.
#[test]
fn successful_logins_do_not_count() {
    let h = Harness::new();
    for n in 0..30 {
        h.sign_up_from(&format!("user{n}@example.com"), RIGHT, &format!("198.51.100.{n}")).unwrap();
    }
    for round in 0..5 {
        for n in 0..30 {
            let email = format!("user{n}@example.com");
            h.login_from(&email, RIGHT, "192.0.2.1").unwrap_or_else(|e| panic!("round {round}, {email}: {e:?}"));
        }
    }
}

/// Validation fails closed, and so does throttling: with the limiter
/// unreachable, logins answer `UNAVAILABLE` rather than going unlimited.
#[test]
fn logins_fail_closed_when_the_limiter_is_down() {
    let h = Harness::new();
    h.sign_up("ann@example.com", RIGHT).unwrap();
    h.limiter.set_down(true);
    let result = h.login("ann@example.com", RIGHT);
    assert!(matches!(result, Err(AppError::Unavailable(_))), "{result:?}");
    h.limiter.set_down(false);
    h.login("ann@example.com", RIGHT).unwrap();
}

/// OWASP ASVS 5.0 V15.2.2: a login refused because every hashing thread
/// is busy checked no password, so it is no guess: however many there are,
/// they throttle nobody, while the failures before them still count.
#[test]
fn logins_refused_for_a_busy_hasher_count_toward_no_limit() {
    let h = Harness::new();
    h.sign_up("ann@example.com", RIGHT).unwrap();
    wrong(&h, "ann@example.com", "192.0.2.7", 4);
    h.hasher.busy.store(true, Ordering::Relaxed);
    for _ in 0..20 {
        assert!(matches!(h.login_from("ann@example.com", RIGHT, "192.0.2.7"), Err(AppError::Busy)));
    }
    h.hasher.busy.store(false, Ordering::Relaxed);
    // The fifth free try is still there, and the sixth is refused.
    wrong(&h, "ann@example.com", "192.0.2.7", 1);
    retry_after(h.login_from("ann@example.com", "wrong password", "192.0.2.7"));
}
