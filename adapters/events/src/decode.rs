//! Published messages back to their protobuf messages: for tests, consumers
//! written in Rust, and the log publisher.

use prost::Message;

use crate::pb;

/// The routing keys this crate can decode, one per message of
/// `gatehouse.events.v1`. They equal the domain's `Event::event_type`.
const VERIFICATION_REQUESTED: &str = "email.verification_requested";
const PASSWORD_RESET_REQUESTED: &str = "email.password_reset_requested";
const PASSWORD_CHANGED: &str = "email.password_changed";
const EMAIL_CHANGED: &str = "email.changed";

/// A decoded event: its `gatehouse.events.v1` message. `Debug` redacts the
/// link tokens, codes and links.
#[derive(Clone, Debug, PartialEq)]
pub enum DecodedEvent {
    VerificationRequested(pb::VerificationRequested),
    PasswordResetRequested(pb::PasswordResetRequested),
    PasswordChanged(pb::PasswordChanged),
    EmailChanged(pb::EmailChanged),
}

impl DecodedEvent {
    /// The event type (routing key) the message was published under.
    #[must_use]
    pub const fn event_type(&self) -> &'static str {
        match self {
            Self::VerificationRequested(_) => VERIFICATION_REQUESTED,
            Self::PasswordResetRequested(_) => PASSWORD_RESET_REQUESTED,
            Self::PasswordChanged(_) => PASSWORD_CHANGED,
            Self::EmailChanged(_) => EMAIL_CHANGED,
        }
    }

    /// The event id (UUID text), the consumers' de-duplication key.
    #[must_use]
    pub fn event_id(&self) -> &str {
        match self {
            Self::VerificationRequested(m) => &m.event_id,
            Self::PasswordResetRequested(m) => &m.event_id,
            Self::PasswordChanged(m) => &m.event_id,
            Self::EmailChanged(m) => &m.event_id,
        }
    }

    /// The address the notice goes to (for `email.changed`, the old one).
    #[must_use]
    pub fn recipient(&self) -> &str {
        match self {
            Self::VerificationRequested(m) => &m.email,
            Self::PasswordResetRequested(m) => &m.email,
            Self::PasswordChanged(m) => &m.email,
            Self::EmailChanged(m) => &m.email,
        }
    }
}

/// Why a payload could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// No message of `gatehouse.events.v1` is published under this type.
    #[error("unknown event type `{0}`")]
    UnknownType(String),
    /// The payload is not a valid message of the type it claims.
    #[error("malformed `{event_type}` payload: {source}")]
    Malformed {
        event_type: &'static str,
        #[source]
        source: prost::DecodeError,
    },
}

/// Decodes the payload of a message published under `event_type`.
///
/// # Errors
/// [`DecodeError::UnknownType`] for a type this crate does not know,
/// [`DecodeError::Malformed`] for a payload that is not its message.
pub fn decode(event_type: &str, payload: &[u8]) -> Result<DecodedEvent, DecodeError> {
    fn parse<M: Message + Default>(event_type: &'static str, payload: &[u8]) -> Result<M, DecodeError> {
        M::decode(payload).map_err(|source| DecodeError::Malformed { event_type, source })
    }
    match event_type {
        VERIFICATION_REQUESTED => parse(VERIFICATION_REQUESTED, payload).map(DecodedEvent::VerificationRequested),
        PASSWORD_RESET_REQUESTED => parse(PASSWORD_RESET_REQUESTED, payload).map(DecodedEvent::PasswordResetRequested),
        PASSWORD_CHANGED => parse(PASSWORD_CHANGED, payload).map(DecodedEvent::PasswordChanged),
        EMAIL_CHANGED => parse(EMAIL_CHANGED, payload).map(DecodedEvent::EmailChanged),
        other => Err(DecodeError::UnknownType(other.to_owned())),
    }
}

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;
