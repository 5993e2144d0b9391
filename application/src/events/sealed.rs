//! Sealing outbox payloads at rest. Events carry secrets a mailer must
//! deliver (link tokens, codes); the outbox row keeps them until the relay
//! has published them and the retention has passed. The row must not be a
//! second, readable copy of those secrets (OWASP ASVS 5.0 V11.2 / V14.2:
//! sensitive data protected at rest), so the encoder's output is sealed with
//! the AEAD box before it is stored, and opened by the relay just before
//! publishing.

use std::sync::Arc;

use async_trait::async_trait;
use gatehouse_domain::{EventEnvelope, SealedSecret};

use crate::ports::events::{EventEncoder, EventPublisher, OutboxMessage, PublishError};
use crate::ports::mfa::SecretBox;

/// Longest key id a sealed payload may name.
const MAX_KEY_ID: usize = 255;

/// Encodes with `inner`, then seals the payload: `[key id length][key id][sealed data]`.
#[derive(Clone, Debug)]
pub struct SealingEncoder {
    inner: Arc<dyn EventEncoder>,
    secrets: Arc<dyn SecretBox>,
}

impl SealingEncoder {
    #[must_use]
    pub fn new(inner: Arc<dyn EventEncoder>, secrets: Arc<dyn SecretBox>) -> Self {
        Self { inner, secrets }
    }
}

impl EventEncoder for SealingEncoder {
    fn encode(&self, envelope: &EventEnvelope) -> OutboxMessage {
        let mut message = self.inner.encode(envelope);
        match self.secrets.seal(&message.payload) {
            Ok(sealed) if sealed.key_id.len() <= MAX_KEY_ID => {
                let mut payload = Vec::with_capacity(1 + sealed.key_id.len() + sealed.data.len());
                payload.push(u8::try_from(sealed.key_id.len()).unwrap_or(u8::MAX));
                payload.extend_from_slice(sealed.key_id.as_bytes());
                payload.extend_from_slice(&sealed.data);
                message.payload = payload;
            }
            // Never store the plain payload: an empty one fails to open and
            // the relay logs it, which is better than a readable secret.
            _ => {
                tracing::error!(event_type = %message.event_type, "could not seal an event payload");
                message.payload.clear();
            }
        }
        message
    }
}

/// Opens sealed payloads, then hands the message to `inner`.
#[derive(Clone, Debug)]
pub struct OpeningPublisher {
    inner: Arc<dyn EventPublisher>,
    secrets: Arc<dyn SecretBox>,
}

impl OpeningPublisher {
    #[must_use]
    pub fn new(inner: Arc<dyn EventPublisher>, secrets: Arc<dyn SecretBox>) -> Self {
        Self { inner, secrets }
    }
}

/// Splits a sealed payload into the sealed secret it holds.
#[must_use]
pub fn unframe(payload: &[u8]) -> Option<SealedSecret> {
    let (&len, rest) = payload.split_first()?;
    let len = usize::from(len);
    let key_id = std::str::from_utf8(rest.get(..len)?).ok()?.to_owned();
    Some(SealedSecret { key_id, data: rest.get(len..)?.to_vec() })
}

#[async_trait]
impl EventPublisher for OpeningPublisher {
    async fn publish(&self, message: &OutboxMessage) -> Result<(), PublishError> {
        let sealed =
            unframe(&message.payload).ok_or_else(|| PublishError::Failed("outbox payload is not sealed".into()))?;
        let payload = self.secrets.open(&sealed).map_err(|e| PublishError::Failed(Box::new(e)))?;
        self.inner.publish(&OutboxMessage { payload, ..message.clone() }).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Mutex;

    use chrono::DateTime;
    use futures_executor::block_on;
    use gatehouse_domain::{EmailAddress, Event, Secret};

    use super::*;
    use crate::testing::{FakeSecretBox, user_id};

    #[derive(Debug)]
    struct Plain;
    impl EventEncoder for Plain {
        fn encode(&self, e: &EventEnvelope) -> OutboxMessage {
            let Event::PasswordResetRequested { token, .. } = &e.event else { unreachable!() };
            OutboxMessage {
                id: e.id,
                event_type: "t".into(),
                payload: token.expose().as_bytes().to_vec(),
                occurred_at: e.occurred_at,
                audit: None,
            }
        }
    }

    #[derive(Debug, Default)]
    struct Sink(Mutex<Vec<Vec<u8>>>);
    #[async_trait]
    impl EventPublisher for Sink {
        async fn publish(&self, m: &OutboxMessage) -> Result<(), PublishError> {
            self.0.lock().unwrap().push(m.payload.clone());
            Ok(())
        }
    }

    #[test]
    fn stored_payloads_hide_secrets_and_the_relay_publishes_them_intact() {
        let envelope = EventEnvelope {
            id: uuid::Uuid::nil(),
            occurred_at: DateTime::UNIX_EPOCH,
            event: Event::PasswordResetRequested {
                user_id: user_id(1),
                email: EmailAddress::parse("a@example.com").unwrap(),
                token: Secret::new("ghp_the-secret-token".into()),
                code: Secret::new("123456".into()),
                link: Secret::new("https://x/reset".into()),
                expires_at: DateTime::UNIX_EPOCH,
            },
        };
        let secrets: Arc<dyn SecretBox> = Arc::new(FakeSecretBox);
        let stored = SealingEncoder::new(Arc::new(Plain), secrets.clone()).encode(&envelope);
        assert!(!stored.payload.windows(6).any(|w| w == b"secret"), "the stored payload must not show the token");
        let sink = Arc::new(Sink::default());
        block_on(OpeningPublisher::new(sink.clone(), secrets).publish(&stored)).unwrap();
        assert_eq!(sink.0.lock().unwrap()[0], b"ghp_the-secret-token".to_vec());
    }

    #[test]
    fn an_unsealed_payload_is_not_published() {
        let sink = Arc::new(Sink::default());
        let plain = OutboxMessage {
            id: uuid::Uuid::nil(),
            event_type: "t".into(),
            payload: vec![],
            occurred_at: DateTime::UNIX_EPOCH,
            audit: None,
        };
        assert!(block_on(OpeningPublisher::new(sink.clone(), Arc::new(FakeSecretBox)).publish(&plain)).is_err());
        assert!(sink.0.lock().unwrap().is_empty());
    }
}
