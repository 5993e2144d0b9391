//! What the RabbitMQ tests share: the broker's URL, a run per test with its
//! own exchange (deleted at the end, passed or failed), a consumer bound to
//! it, and events to publish.
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
use lapin::message::Delivery;
use lapin::options::{
    BasicConsumeOptions, ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ConnectionProperties, Consumer, ExchangeKind};
use tokio_stream::StreamExt;
use uuid::Uuid;

/// The timeout given to publishers under test.
pub const TIMEOUT: Duration = Duration::from_millis(800);

/// How long a failing call may take: the timeout plus scheduling slack.
pub const FAIL_WITHIN: Duration = Duration::from_millis(1500);

/// Bounds a whole test, so a hang fails it instead of stalling the run.
const TEST_BOUND: Duration = Duration::from_secs(20);

/// How long a consumer waits for a message that should arrive.
const ARRIVAL_BOUND: Duration = Duration::from_secs(5);

pub fn amqp_url() -> String {
    std::env::var("GATEHOUSE_TEST_AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

/// The test broker's URL without its password, for failure messages.
pub fn shown_url() -> String {
    let url = amqp_url();
    match url.parse::<lapin::uri::AMQPUri>() {
        Ok(uri) => format!("{}:{}", uri.authority.host, uri.authority.port),
        Err(_) => "an unparsable GATEHOUSE_TEST_AMQP_URL".to_owned(),
    }
}

/// Connects to the test broker or fails the test saying how to start it.
pub async fn connect() -> Connection {
    let url = amqp_url();
    let connecting = Connection::connect(&url, ConnectionProperties::default());
    match tokio::time::timeout(Duration::from_secs(5), connecting).await {
        Ok(Ok(connection)) => connection,
        Ok(Err(e)) => panic!("RabbitMQ at {} is unreachable ({e}); start it with `make services`", shown_url()),
        Err(_) => panic!("RabbitMQ at {} did not answer within 5 s; start it with `make services`", shown_url()),
    }
}

/// Runs `body` with a fresh exchange name (`gh-test-<uuid v7>`) and deletes
/// that exchange afterwards, whether `body` passed, failed or hung.
pub async fn with_exchange<F, Fut>(body: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let exchange = format!("gh-test-{}", Uuid::now_v7());
    let mut task = tokio::spawn(body(exchange.clone()));
    let outcome = tokio::time::timeout(TEST_BOUND, &mut task).await;
    task.abort();
    delete_exchange(&exchange).await;
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Ok(Err(e)) => panic!("test task failed: {e}"),
        Err(_) => panic!("test did not finish within {TEST_BOUND:?}"),
    }
}

async fn delete_exchange(exchange: &str) {
    let cleanup = async {
        let connection = Connection::connect(&amqp_url(), ConnectionProperties::default()).await?;
        let channel = connection.create_channel().await?;
        channel.exchange_delete(exchange.into(), ExchangeDeleteOptions::default()).await?;
        connection.close(200, "OK".into()).await
    };
    match tokio::time::timeout(Duration::from_secs(5), cleanup).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => eprintln!("could not delete test exchange {exchange}: {e}"),
        Err(_) => eprintln!("could not delete test exchange {exchange}: timed out"),
    }
}

/// An exclusive, auto-delete, server-named queue bound to the test exchange
/// with `#` (every routing key), and a consumer on it.
pub struct TestConsumer {
    _connection: Connection,
    _channel: Channel,
    consumer: Consumer,
}

impl TestConsumer {
    /// Declares `exchange` exactly as the publisher does (a durable topic
    /// exchange; the broker refuses a redeclaration that differs) and binds
    /// a fresh queue to it.
    pub async fn bind(exchange: &str) -> Self {
        let connection = connect().await;
        let channel = connection.create_channel().await.unwrap();
        channel
            .exchange_declare(
                exchange.into(),
                ExchangeKind::Topic,
                ExchangeDeclareOptions { durable: true, ..ExchangeDeclareOptions::default() },
                FieldTable::default(),
            )
            .await
            .unwrap();
        let queue = channel
            .queue_declare(
                "".into(),
                QueueDeclareOptions { exclusive: true, auto_delete: true, ..QueueDeclareOptions::default() },
                FieldTable::default(),
            )
            .await
            .unwrap();
        channel
            .queue_bind(
                queue.name().clone(),
                exchange.into(),
                "#".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        let consumer = channel
            .basic_consume(
                queue.name().clone(),
                "".into(),
                BasicConsumeOptions { no_ack: true, ..BasicConsumeOptions::default() },
                FieldTable::default(),
            )
            .await
            .unwrap();
        Self { _connection: connection, _channel: channel, consumer }
    }

    /// The next message, or a failed test if none arrives soon.
    pub async fn next(&mut self) -> Delivery {
        match tokio::time::timeout(ARRIVAL_BOUND, self.consumer.next()).await {
            Ok(Some(Ok(delivery))) => delivery,
            Ok(Some(Err(e))) => panic!("consuming failed: {e}"),
            Ok(None) => panic!("the consumer was cancelled"),
            Err(_) => panic!("no message arrived within {ARRIVAL_BOUND:?}"),
        }
    }

    /// Fails the test if a message arrives within `wait`.
    pub async fn assert_nothing_within(&mut self, wait: Duration) {
        if let Ok(Some(delivery)) = tokio::time::timeout(wait, self.consumer.next()).await {
            panic!("unexpected message: {:?}", delivery.map(|d| d.routing_key));
        }
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
