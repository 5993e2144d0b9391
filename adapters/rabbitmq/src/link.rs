//! One live connection and its confirming channel, and the AMQP message an
//! outbox message becomes.

use chrono::SecondsFormat;
use gatehouse_application::ports::events::{OutboxMessage, PublishError};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ExchangeKind};

/// The AMQP `content-type` of every event (the payload is protobuf).
pub(crate) const CONTENT_TYPE: &str = "application/x-protobuf";

/// The AMQP `app-id` and the CloudEvents `source`.
const SOURCE: &str = "gatehouse";

/// Persistent delivery: the broker writes the message to disk.
const PERSISTENT: u8 = 2;

/// A connection with a channel in confirm mode on which the exchange is declared.
pub(crate) struct Link {
    connection: Connection,
    channel: Channel,
}

impl Link {
    /// Connects, opens a channel, enables publisher confirms and declares
    /// `exchange` as a durable topic exchange. `where_` names the broker
    /// (without credentials) in errors.
    pub(crate) async fn open(url: &str, exchange: &str, where_: &str) -> Result<Self, PublishError> {
        let fail = |step: &str, e: lapin::Error| broker_error(where_, step.to_owned(), Some(e));
        let exchange = short(exchange, "exchange name")?;
        let properties = ConnectionProperties::default().with_connection_name(SOURCE.into());
        let connection = Connection::connect(url, properties).await.map_err(|e| fail("connect", e))?;
        let channel = connection.create_channel().await.map_err(|e| fail("open channel", e))?;
        channel.confirm_select(ConfirmSelectOptions::default()).await.map_err(|e| fail("enable confirms", e))?;
        channel
            .exchange_declare(
                exchange,
                ExchangeKind::Topic,
                ExchangeDeclareOptions { durable: true, ..ExchangeDeclareOptions::default() },
                FieldTable::default(),
            )
            .await
            .map_err(|e| fail("declare exchange", e))?;
        Ok(Self { connection, channel })
    }

    /// Whether the broker has not closed the connection or the channel yet
    /// (as far as this side knows).
    pub(crate) fn is_open(&self) -> bool {
        self.connection.status().connected() && self.channel.status().connected()
    }

    /// Publishes one message and waits for the broker's confirm.
    ///
    /// The publish is `mandatory`: a message that no queue is bound for is
    /// handed back (`basic.return`, which the broker sends before its ack)
    /// instead of being dropped, and lapin delivers it with the ack. Such a
    /// message is [`PublishError::Unroutable`], so the outbox keeps it until
    /// a consumer is bound; the broker's confirm alone would have it marked
    /// sent and lost.
    pub(crate) async fn publish(
        &self,
        exchange: &str,
        message: &OutboxMessage,
        where_: &str,
    ) -> Result<(), PublishError> {
        let fail = |e: lapin::Error| broker_error(where_, format!("publish {}", message.id), Some(e));
        let confirm = self
            .channel
            .basic_publish(
                short(exchange, "exchange name")?,
                short(&message.event_type, "event type")?,
                BasicPublishOptions { mandatory: true, immediate: false },
                &message.payload,
                properties(message)?,
            )
            .await
            .map_err(fail)?;
        match confirm.await.map_err(fail)? {
            Confirmation::Ack(None) => Ok(()),
            Confirmation::Ack(Some(returned)) | Confirmation::Nack(Some(returned)) => {
                tracing::debug!(
                    event_id = %message.id,
                    reply_code = returned.reply_code,
                    reply_text = returned.reply_text.as_str(),
                    "the broker returned an unroutable event"
                );
                Err(PublishError::Unroutable { routing_key: message.event_type.clone() })
            }
            Confirmation::Nack(None) => {
                Err(broker_error(where_, format!("the broker refused (nacked) {}", message.id), None))
            }
            Confirmation::NotRequested => {
                Err(broker_error(where_, format!("no publisher confirm for {}", message.id), None))
            }
        }
    }
}

/// The AMQP properties of an event: persistent, its id, type and time, and
/// the CloudEvents attributes in the AMQP binding's header names.
fn properties(message: &OutboxMessage) -> Result<BasicProperties, PublishError> {
    let id = message.id.to_string();
    let mut headers = FieldTable::default();
    for (name, value) in [
        ("cloudEvents:specversion", "1.0".to_owned()),
        ("cloudEvents:id", id.clone()),
        ("cloudEvents:source", SOURCE.to_owned()),
        ("cloudEvents:type", message.event_type.clone()),
        ("cloudEvents:time", message.occurred_at.to_rfc3339_opts(SecondsFormat::Millis, true)),
    ] {
        headers.insert(name.into(), AMQPValue::LongString(LongString::from(value)));
    }
    Ok(BasicProperties::default()
        .with_delivery_mode(PERSISTENT)
        .with_message_id(short(&id, "event id")?)
        .with_content_type(CONTENT_TYPE.into())
        .with_type(short(&message.event_type, "event type")?)
        .with_timestamp(u64::try_from(message.occurred_at.timestamp()).unwrap_or(0))
        .with_app_id(SOURCE.into())
        .with_headers(headers))
}

/// An AMQP short string (at most 255 bytes), refused rather than panicking
/// when longer.
fn short(value: &str, what: &str) -> Result<ShortString, PublishError> {
    ShortString::try_new(value)
        .map_err(|e| PublishError::Failed(format!("{what} `{value}` is not an AMQP short string: {e}").into()))
}

/// A step against the broker that failed, with lapin's error (if any) as its source.
#[derive(Debug, thiserror::Error)]
#[error("RabbitMQ at {at}: {step}")]
pub(crate) struct BrokerError {
    at: String,
    step: String,
    #[source]
    source: Option<lapin::Error>,
}

/// The port's error for a failed broker step.
pub(crate) fn broker_error(at: &str, step: String, source: Option<lapin::Error>) -> PublishError {
    PublishError::Failed(Box::new(BrokerError { at: at.to_owned(), step, source }))
}
