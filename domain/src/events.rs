//! Events: facts other systems (the mailer, the audit stream) must learn
//! about. Use cases write them to the outbox in the same transaction as the
//! change they describe; a relay publishes them. Their wire format is defined
//! in `proto/gatehouse/events/v1/`.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::email::EmailAddress;
use crate::ids::UserId;
use crate::secret::Secret;

/// One event with its envelope.
#[derive(Clone, Debug)]
pub struct EventEnvelope {
    /// Unique per event; consumers de-duplicate by it (also the AMQP message id).
    pub id: Uuid,
    pub occurred_at: DateTime<Utc>,
    pub event: Event,
}

/// What happened. Secrets a mailer must deliver (link tokens, codes) are
/// wrapped so that formatting an event never prints them.
#[derive(Clone, Debug)]
pub enum Event {
    /// Please verify this address: email the link and the code.
    VerificationRequested {
        user_id: UserId,
        email: EmailAddress,
        token: Secret<String>,
        code: Secret<String>,
        link: Secret<String>,
        expires_at: DateTime<Utc>,
    },
    /// Someone asked to reset the password: email the link and the code.
    PasswordResetRequested {
        user_id: UserId,
        email: EmailAddress,
        token: Secret<String>,
        code: Secret<String>,
        link: Secret<String>,
        expires_at: DateTime<Utc>,
    },
    /// The password was changed or reset: tell the owner.
    PasswordChanged { user_id: UserId, email: EmailAddress },
    /// The primary address changed: tell the old one.
    EmailChanged { user_id: UserId, email: EmailAddress, new_email: EmailAddress },
}

impl Event {
    /// The event type: the AMQP routing key and `type` property.
    #[must_use]
    pub const fn event_type(&self) -> &'static str {
        match self {
            Self::VerificationRequested { .. } => "email.verification_requested",
            Self::PasswordResetRequested { .. } => "email.password_reset_requested",
            Self::PasswordChanged { .. } => "email.password_changed",
            Self::EmailChanged { .. } => "email.changed",
        }
    }

    /// The user the event is about.
    #[must_use]
    pub const fn user_id(&self) -> UserId {
        match self {
            Self::VerificationRequested { user_id, .. }
            | Self::PasswordResetRequested { user_id, .. }
            | Self::PasswordChanged { user_id, .. }
            | Self::EmailChanged { user_id, .. } => *user_id,
        }
    }
}
