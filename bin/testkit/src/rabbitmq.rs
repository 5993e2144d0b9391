//! A RabbitMQ exchange of a test's own on the test broker, and a consumer
//! bound to it. Tests are isolated by exchange, not by vhost: the broker's
//! management API, which creating vhosts needs, may not be running.

use std::net::SocketAddr;
use std::time::Duration;

use lapin::message::Delivery;
use lapin::options::{
    BasicConsumeOptions, ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};
use tokio_stream::StreamExt;

/// The variable naming the test broker.
pub const URL_VAR: &str = "GATEHOUSE_TEST_AMQP_URL";
const DEFAULT_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// How long a consumer waits for a message that should arrive.
const ARRIVAL_BOUND: Duration = Duration::from_secs(15);

/// The test broker's URL: [`URL_VAR`] or the local broker.
#[must_use]
pub fn url() -> String {
    crate::env_or(URL_VAR, DEFAULT_URL)
}

/// The test broker's `host:port`, without credentials, for messages.
#[must_use]
pub fn shown_url() -> String {
    match url().parse::<lapin::uri::AMQPUri>() {
        Ok(uri) => format!("{}:{}", uri.authority.host, uri.authority.port),
        Err(_) => format!("an unparsable {URL_VAR}"),
    }
}

/// The test broker's `host:port`: what a [`FaultProxy`](crate::FaultProxy)
/// forwards to.
#[must_use]
pub fn upstream() -> String {
    let uri = parsed();
    format!("{}:{}", uri.authority.host, uri.authority.port)
}

/// The test broker's URL with its address replaced by `via` (a proxy's),
/// keeping credentials and vhost.
#[must_use]
pub fn url_via(via: SocketAddr) -> String {
    let uri = parsed();
    let user = &uri.authority.userinfo;
    format!("amqp://{}:{}@{via}/{}", encode(&user.username), encode(&user.password), encode(&uri.vhost))
}

fn parsed() -> lapin::uri::AMQPUri {
    url().parse().unwrap_or_else(|e| panic!("{URL_VAR} is not an AMQP URL: {e}"))
}

/// Percent-encodes everything but unreserved URL characters.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Connects to the test broker or fails the test saying how to start it.
pub async fn connect() -> Connection {
    let url = url();
    let connecting = Connection::connect(&url, ConnectionProperties::default());
    match tokio::time::timeout(Duration::from_secs(5), connecting).await {
        Ok(Ok(connection)) => connection,
        Ok(Err(e)) => panic!("RabbitMQ at {} is unreachable ({e}); start it with `make services`", shown_url()),
        Err(_) => panic!("RabbitMQ at {} did not answer within 5 s; start it with `make services`", shown_url()),
    }
}

/// An exchange name no other test uses; the exchange (which the code under
/// test declares) is deleted when the guard drops, passed or failed, and
/// with it every binding to it.
#[derive(Debug)]
pub struct TestExchange(String);

impl TestExchange {
    /// A name `<label>-<uuid>`; nothing is declared yet.
    #[must_use]
    pub fn new(label: &str) -> Self {
        Self(format!("{label}-{}", uuid::Uuid::now_v7().simple()))
    }

    #[must_use]
    pub fn name(&self) -> &str {
        &self.0
    }
}

impl Drop for TestExchange {
    fn drop(&mut self) {
        let exchange = self.0.clone();
        crate::block_on_own_thread(&format!("test exchange {exchange}"), move || async move {
            let connection =
                Connection::connect(&url(), ConnectionProperties::default()).await.map_err(|e| e.to_string())?;
            let channel = connection.create_channel().await.map_err(|e| e.to_string())?;
            channel
                .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
                .await
                .map_err(|e| e.to_string())?;
            connection.close(200, "OK".into()).await.map_err(|e| e.to_string())
        });
    }
}

/// An exclusive, auto-delete, server-named queue bound to an exchange, and a
/// consumer on it: what a mailer or another subscriber sees.
#[derive(Debug)]
pub struct TestConsumer {
    _connection: Connection,
    _channel: Channel,
    consumer: lapin::Consumer,
}

impl TestConsumer {
    /// Binds to every routing key of `exchange`.
    pub async fn bind(exchange: &str) -> Self {
        Self::bind_keys(exchange, &["#"]).await
    }

    /// Declares `exchange` exactly as the publisher does (a durable topic
    /// exchange; the broker refuses a redeclaration that differs) and binds
    /// a fresh queue to it with each of `keys`.
    pub async fn bind_keys(exchange: &str, keys: &[&str]) -> Self {
        let connection = connect().await;
        let channel = connection.create_channel().await.unwrap();
        let durable = ExchangeDeclareOptions { durable: true, ..ExchangeDeclareOptions::default() };
        channel.exchange_declare(exchange.into(), ExchangeKind::Topic, durable, FieldTable::default()).await.unwrap();
        let exclusive = QueueDeclareOptions { exclusive: true, auto_delete: true, ..QueueDeclareOptions::default() };
        let queue = channel.queue_declare("".into(), exclusive, FieldTable::default()).await.unwrap();
        for key in keys {
            let (name, options) = (queue.name().clone(), QueueBindOptions::default());
            channel.queue_bind(name, exchange.into(), (*key).into(), options, FieldTable::default()).await.unwrap();
        }
        let no_ack = BasicConsumeOptions { no_ack: true, ..BasicConsumeOptions::default() };
        let consumer =
            channel.basic_consume(queue.name().clone(), "".into(), no_ack, FieldTable::default()).await.unwrap();
        Self { _connection: connection, _channel: channel, consumer }
    }

    /// The next message, whatever it is, or a failed test if none arrives
    /// soon. For a test whose publisher sends nothing else; one that waits
    /// for a particular event among others uses [`next_matching`](Self::next_matching).
    pub async fn next(&mut self) -> Delivery {
        match tokio::time::timeout(ARRIVAL_BOUND, self.consumer.next()).await {
            Ok(Some(Ok(delivery))) => delivery,
            Ok(Some(Err(e))) => panic!("consuming failed: {e}"),
            Ok(None) => panic!("the consumer was cancelled"),
            Err(_) => panic!("no message arrived within {ARRIVAL_BOUND:?}"),
        }
    }

    /// The first message `wanted` accepts, skipping the others (events of
    /// the same flow may arrive in any order), or a failed test naming
    /// `what` and the routing keys skipped if none arrives soon.
    pub async fn next_matching(&mut self, what: &str, mut wanted: impl FnMut(&Delivery) -> bool) -> Delivery {
        let deadline = tokio::time::Instant::now() + ARRIVAL_BOUND;
        let mut skipped = Vec::new();
        loop {
            match tokio::time::timeout_at(deadline, self.consumer.next()).await {
                Ok(Some(Ok(delivery))) if wanted(&delivery) => return delivery,
                Ok(Some(Ok(delivery))) => skipped.push(delivery.routing_key.to_string()),
                Ok(Some(Err(e))) => panic!("consuming failed while waiting for {what}: {e}"),
                Ok(None) => panic!("the consumer was cancelled while waiting for {what}"),
                Err(_) => panic!("{what} did not arrive within {ARRIVAL_BOUND:?}; arrived instead: {skipped:?}"),
            }
        }
    }

    /// Fails the test if a message arrives within `wait`.
    pub async fn assert_nothing_within(&mut self, wait: Duration) {
        if let Ok(Some(delivery)) = tokio::time::timeout(wait, self.consumer.next()).await {
            panic!(
                "unexpected message: {:?}",
                delivery.map(|d| (d.routing_key.to_string(), d.properties.message_id().clone()))
            );
        }
    }
}
