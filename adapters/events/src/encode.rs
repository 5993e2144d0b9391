//! Domain events to their protobuf messages.

use chrono::{DateTime, Utc};
use gatehouse_application::ports::events::{EventEncoder, OutboxMessage};
use gatehouse_domain::{Event, EventEnvelope};
use prost::Message;

use crate::pb;

/// Encodes each event as its `gatehouse.events.v1` message; the event type
/// (the routing key) is [`Event::event_type`].
#[derive(Clone, Copy, Debug, Default)]
pub struct ProtoEventEncoder;

impl ProtoEventEncoder {
    #[must_use]
    pub const fn new() -> Self {
        Self
    }
}

impl EventEncoder for ProtoEventEncoder {
    fn encode(&self, envelope: &EventEnvelope) -> OutboxMessage {
        let event_id = envelope.id.to_string();
        let occurred_at = Some(timestamp(envelope.occurred_at));
        let user_id = envelope.event.user_id().to_string();
        let payload = match &envelope.event {
            Event::VerificationRequested { email, token, code, link, expires_at, .. } => pb::VerificationRequested {
                event_id,
                occurred_at,
                user_id,
                email: email.as_str().to_owned(),
                token: token.expose().clone(),
                code: code.expose().clone(),
                link: link.expose().clone(),
                expires_at: Some(timestamp(*expires_at)),
            }
            .encode_to_vec(),
            Event::PasswordResetRequested { email, token, code, link, expires_at, .. } => pb::PasswordResetRequested {
                event_id,
                occurred_at,
                user_id,
                email: email.as_str().to_owned(),
                token: token.expose().clone(),
                code: code.expose().clone(),
                link: link.expose().clone(),
                expires_at: Some(timestamp(*expires_at)),
            }
            .encode_to_vec(),
            Event::PasswordChanged { email, .. } => {
                pb::PasswordChanged { event_id, occurred_at, user_id, email: email.as_str().to_owned() }.encode_to_vec()
            }
            Event::EmailChanged { email, new_email, .. } => pb::EmailChanged {
                event_id,
                occurred_at,
                user_id,
                email: email.as_str().to_owned(),
                new_email: new_email.as_str().to_owned(),
            }
            .encode_to_vec(),
        };
        OutboxMessage {
            id: envelope.id,
            event_type: envelope.event.event_type().to_owned(),
            payload,
            occurred_at: envelope.occurred_at,
        }
    }
}

fn timestamp(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp::from(std::time::SystemTime::from(at))
}
