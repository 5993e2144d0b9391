//! Events: building outbox messages, and relaying the outbox to the broker.

mod relay;
mod sealed;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use gatehouse_domain::{AuditOutcome, AuditRecord, ClientInfo, Event, EventEnvelope, OrganizationId, UserId};

pub use relay::{RelayOutbox, RelayReport, RelaySettings};
pub use sealed::{OpeningPublisher, SealingEncoder, unframe};

use crate::error::AppError;
use crate::ids::new_uuid_v7;
use crate::ports::audit::AuditLog;
use crate::ports::events::{EventEncoder, OutboxMessage};
use crate::ports::random::RandomSource;

/// Wraps events in envelopes (id, time) and encodes them for the outbox, and
/// writes audit facts: with a state change (as outbox messages carrying
/// their audit row) or on their own.
#[derive(Clone, Debug)]
pub struct EventFactory {
    encoder: Arc<dyn EventEncoder>,
    rng: Arc<dyn RandomSource>,
    audit_log: Arc<dyn AuditLog>,
}

/// An audit fact being described: `Audit::of("login.failed").subject(u)…`.
#[derive(Debug, Clone)]
pub struct Audit {
    kind: &'static str,
    actor: Option<UserId>,
    subject: Option<UserId>,
    organization: Option<OrganizationId>,
    client: ClientInfo,
    outcome: AuditOutcome,
    details: Vec<(String, String)>,
}

impl Audit {
    /// A successful `kind` by and about nobody yet.
    #[must_use]
    pub fn of(kind: &'static str) -> Self {
        Self {
            kind,
            actor: None,
            subject: None,
            organization: None,
            client: ClientInfo::default(),
            outcome: AuditOutcome::Success,
            details: Vec::new(),
        }
    }

    /// A fact a user did to their own account.
    #[must_use]
    pub fn by(kind: &'static str, user: UserId) -> Self {
        Self::of(kind).actor(user).subject(user)
    }

    #[must_use]
    pub const fn actor(mut self, user: UserId) -> Self {
        self.actor = Some(user);
        self
    }

    #[must_use]
    pub const fn subject(mut self, user: UserId) -> Self {
        self.subject = Some(user);
        self
    }

    /// The organization the fact concerns.
    #[must_use]
    pub const fn organization(mut self, organization: OrganizationId) -> Self {
        self.organization = Some(organization);
        self
    }

    #[must_use]
    pub fn client(mut self, client: &ClientInfo) -> Self {
        self.client = client.clone();
        self
    }

    #[must_use]
    pub const fn failure(mut self) -> Self {
        self.outcome = AuditOutcome::Failure;
        self
    }

    #[must_use]
    pub fn detail(mut self, key: &str, value: impl ToString) -> Self {
        self.details.push((key.to_owned(), value.to_string()));
        self
    }
}

impl EventFactory {
    #[must_use]
    pub fn new(encoder: Arc<dyn EventEncoder>, rng: Arc<dyn RandomSource>, audit_log: Arc<dyn AuditLog>) -> Self {
        Self { encoder, rng, audit_log }
    }

    /// The outbox message for `event`, which happened at `now`.
    #[must_use]
    pub fn message(&self, now: DateTime<Utc>, event: Event) -> OutboxMessage {
        let envelope = EventEnvelope { id: new_uuid_v7(now, self.rng.as_ref()), occurred_at: now, event };
        self.encoder.encode(&envelope)
    }

    fn record_of(&self, now: DateTime<Utc>, audit: Audit) -> AuditRecord {
        AuditRecord {
            id: new_uuid_v7(now, self.rng.as_ref()),
            kind: audit.kind.to_owned(),
            occurred_at: now,
            actor: audit.actor,
            subject: audit.subject,
            organization: audit.organization.map(|o| o.to_string()),
            client: audit.client,
            outcome: audit.outcome,
            details: audit.details,
        }
    }

    /// An audit fact that goes with a state change: pass it with the
    /// change's outbox messages, and its row is written in the same
    /// transaction (and published on the audit stream).
    #[must_use]
    pub fn audit(&self, now: DateTime<Utc>, audit: Audit) -> OutboxMessage {
        let record = self.record_of(now, audit);
        let envelope = EventEnvelope { id: record.id, occurred_at: now, event: Event::Audit(record.clone()) };
        let mut message = self.encoder.encode(&envelope);
        message.audit = Some(record);
        message
    }

    /// An audit fact with no state change to go with (a failed login).
    ///
    /// # Errors
    /// Storage failures.
    pub async fn record(&self, now: DateTime<Utc>, audit: Audit) -> Result<(), AppError> {
        Ok(self.audit_log.record(&[self.audit(now, audit)]).await?)
    }
}
