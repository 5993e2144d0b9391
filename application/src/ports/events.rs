//! Events on their way out: encoding, the transactional outbox, publishing.
//!
//! A use case encodes its events and hands them to the repository method
//! that performs the state change, which writes them to the outbox in the
//! same transaction. The relay ([`crate::events::RelayOutbox`]) then claims
//! outbox rows and publishes them; only a confirmed publish marks a row sent.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use gatehouse_domain::{AuditRecord, EventEnvelope};
use uuid::Uuid;

use crate::ports::BoxError;
use crate::ports::store::StoreError;

/// An event as stored in the outbox and published: the exact message body.
#[derive(Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    /// The event id: AMQP `message-id`, the consumers' de-duplication key.
    pub id: Uuid,
    /// The event type (`email.verification_requested`): the routing key.
    pub event_type: String,
    /// The encoded event (protobuf, `proto/gatehouse/events/v1`).
    pub payload: Vec<u8>,
    pub occurred_at: DateTime<Utc>,
    /// When the event is an audit fact: the row to write to the audit
    /// table, in the same transaction as the outbox row.
    pub audit: Option<AuditRecord>,
}

impl std::fmt::Debug for OutboxMessage {
    /// Payloads may carry link tokens and codes: never print them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxMessage")
            .field("id", &self.id)
            .field("event_type", &self.event_type)
            .field("payload_len", &self.payload.len())
            .finish_non_exhaustive()
    }
}

/// Encodes events into their wire format.
pub trait EventEncoder: std::fmt::Debug + Send + Sync {
    fn encode(&self, envelope: &EventEnvelope) -> OutboxMessage;
}

/// Publishing failed; the relay retries later.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The destination could not be reached, or refused the message: likely
    /// down for every message, so the relay backs off the rest of its batch.
    #[error("publish failed")]
    Failed(#[source] BoxError),
    /// The broker took the message but had no queue to route it to (nobody
    /// is bound for its routing key): only this message waits and is retried,
    /// so one unbound key cannot hold back the others.
    #[error("no queue is bound for routing key `{routing_key}`")]
    Unroutable { routing_key: String },
}

/// Delivers one message to its destination (RabbitMQ, or the log in the
/// embedded mode). `Ok` means the destination confirmed it and, for a
/// broker, routed it to at least one queue.
#[async_trait]
pub trait EventPublisher: std::fmt::Debug + Send + Sync {
    async fn publish(&self, message: &OutboxMessage) -> Result<(), PublishError>;
}

/// An outbox row claimed by a relay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimedMessage {
    pub message: OutboxMessage,
    /// Failed publish attempts so far.
    pub attempts: u32,
}

/// The outbox table, as the relay sees it.
#[async_trait]
pub trait OutboxStore: std::fmt::Debug + Send + Sync {
    /// Claims up to `limit` unsent messages that are due at `now`, oldest
    /// first, and hides them from other relays until `lease_until`. Two
    /// relays never claim the same row while its lease runs (PostgreSQL:
    /// `FOR UPDATE SKIP LOCKED`).
    async fn claim(
        &self,
        limit: u32,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<ClaimedMessage>, StoreError>;

    /// Marks these messages sent; they are never claimed again.
    async fn mark_sent(&self, ids: &[Uuid], now: DateTime<Utc>) -> Result<(), StoreError>;

    /// Records a failed attempt and makes the message due again at `next_attempt_at`.
    async fn retry_later(&self, id: Uuid, attempts: u32, next_attempt_at: DateTime<Utc>) -> Result<(), StoreError>;

    /// Makes these unsent messages that are not due yet due at `now` (the
    /// broker is back: their backoff no longer serves a purpose); returns how
    /// many. A row another relay has claimed meanwhile may then be claimed
    /// twice, which at-least-once delivery allows.
    async fn retry_now(&self, ids: &[Uuid], now: DateTime<Utc>) -> Result<u64, StoreError>;

    /// Deletes messages sent before `sent_before`; returns how many.
    async fn prune_sent(&self, sent_before: DateTime<Utc>) -> Result<u64, StoreError>;
}
