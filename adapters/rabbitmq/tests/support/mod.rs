//! What the RabbitMQ tests share beyond the testkit: a run per test with
//! its own exchange (deleted at the end, passed or failed), and events to
//! publish.
//!
//! The broker is the real RabbitMQ at `GATEHOUSE_TEST_AMQP_URL` (default
//! `amqp://guest:guest@127.0.0.1:5672/%2f`, started by `make services`). A
//! test that cannot reach it fails, naming the URL; it never skips.

#![allow(dead_code)]

use std::time::Duration;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use gatehouse_application::ports::events::{EventEncoder, OutboxMessage};
use gatehouse_domain::{EmailAddress, Event, EventEnvelope, Secret, UserId};
use gatehouse_events::ProtoEventEncoder;
pub use gatehouse_testkit::rabbitmq::TestConsumer;
use gatehouse_testkit::rabbitmq::TestExchange;
use uuid::Uuid;

/// The timeout given to publishers under test.
pub const TIMEOUT: Duration = Duration::from_millis(800);

/// How long a failing call may take: several times the timeout, so a loaded
/// machine's scheduling delays cannot fail the test, yet far below what a
/// call without the timeout waits for (forever, on a silent broker).
pub const FAIL_WITHIN: Duration = Duration::from_secs(4);

/// Bounds a whole test, so a hang fails it instead of stalling the run.
const TEST_BOUND: Duration = Duration::from_secs(60);

/// Runs `body` with a fresh exchange name (`gh-test-<uuid v7>`); the
/// exchange is deleted afterwards, whether `body` passed, failed or hung.
pub async fn with_exchange<F, Fut>(body: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()>,
{
    let exchange = TestExchange::new("gh-test");
    if tokio::time::timeout(TEST_BOUND, body(exchange.name().to_owned())).await.is_err() {
        panic!("test did not finish within {TEST_BOUND:?}");
    }
}

/// A fixed instant with sub-second precision.
pub fn occurred_at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 14, 15, 9, 26).unwrap() + TimeDelta::milliseconds(535)
}

/// A verification request with every field set, and its encoded message.
pub fn verification_requested() -> (EventEnvelope, OutboxMessage) {
    encode(Event::VerificationRequested {
        user_id: UserId::from_uuid(Uuid::now_v7()),
        email: EmailAddress::parse("ann@example.com").unwrap(),
        token: Secret::new("link-token-abc".to_owned()),
        code: Secret::new("123456".to_owned()),
        link: Secret::new("https://gatehouse.test/verify?token=link-token-abc".to_owned()),
        expires_at: occurred_at() + TimeDelta::days(5),
    })
}

/// One event of each type.
pub fn one_of_each() -> Vec<(EventEnvelope, OutboxMessage)> {
    let user_id = UserId::from_uuid(Uuid::now_v7());
    let email = EmailAddress::parse("bob@example.com").unwrap();
    let new_email = EmailAddress::parse("bob@new.example.com").unwrap();
    vec![
        verification_requested(),
        encode(Event::PasswordResetRequested {
            user_id,
            email: email.clone(),
            token: Secret::new("reset-token".to_owned()),
            code: Secret::new("654321".to_owned()),
            link: Secret::new("https://gatehouse.test/reset?token=reset-token".to_owned()),
            expires_at: occurred_at() + TimeDelta::hours(2),
        }),
        encode(Event::PasswordChanged { user_id, email: email.clone() }),
        encode(Event::EmailChanged { user_id, email, new_email }),
    ]
}

pub fn encode(event: Event) -> (EventEnvelope, OutboxMessage) {
    let envelope = EventEnvelope { id: Uuid::now_v7(), occurred_at: occurred_at(), event };
    let message = ProtoEventEncoder::new().encode(&envelope);
    (envelope, message)
}
