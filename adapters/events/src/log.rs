//! The publisher of the embedded mode: events go to the server's log.

use async_trait::async_trait;
use gatehouse_application::ports::events::{EventPublisher, OutboxMessage, PublishError};

use crate::decode::{DecodedEvent, decode};

/// **DEVELOPMENT / EMBEDDED MODE ONLY: THIS PUBLISHER LOGS SECRETS.**
///
/// With no broker configured, the relay hands each event to this publisher,
/// which writes one `INFO` line per event with its type, id and recipient
/// **and, on purpose, the link, the link token and the short code** (also
/// the second-factor codes of `email.mfa_code` and `sms.mfa_code`), so a
/// developer running `make run` can complete a verification, a password
/// reset or a second-factor login without a mailer or an SMS gateway. Anyone who can read that log can take over the
/// accounts it mentions: never use this publisher where the log leaves the
/// developer's machine. Production publishes to RabbitMQ instead.
///
/// A payload it cannot decode (an event type added later) is logged without
/// its contents and still counts as delivered: retrying would not help.
#[derive(Clone, Copy, Debug, Default)]
pub struct LogPublisher;

impl LogPublisher {
    #[must_use]
    pub const fn new() -> Self {
        Self
    }
}

#[async_trait]
impl EventPublisher for LogPublisher {
    async fn publish(&self, message: &OutboxMessage) -> Result<(), PublishError> {
        let event_type = message.event_type.as_str();
        let event_id = message.id;
        match decode(event_type, &message.payload) {
            Ok(DecodedEvent::VerificationRequested(m)) => {
                log_with_secrets(event_type, event_id, &m.user_id, &m.email, &m.link, &m.token, &m.code);
            }
            Ok(DecodedEvent::PasswordResetRequested(m)) => {
                log_with_secrets(event_type, event_id, &m.user_id, &m.email, &m.link, &m.token, &m.code);
            }
            Ok(DecodedEvent::PasswordChanged(m)) => {
                tracing::info!(event_type, %event_id, user_id = %m.user_id, recipient = %m.email, "event (embedded mode, not sent)");
            }
            Ok(DecodedEvent::EmailChanged(m)) => {
                tracing::info!(
                    event_type,
                    %event_id,
                    user_id = %m.user_id,
                    recipient = %m.email,
                    new_email = %m.new_email,
                    "event (embedded mode, not sent)"
                );
            }
            Ok(DecodedEvent::EmailMfaCode(m)) => log_code(event_type, event_id, &m.user_id, &m.email, &m.code),
            Ok(DecodedEvent::SmsMfaCode(m)) => log_code(event_type, event_id, &m.user_id, &m.phone, &m.code),
            Ok(DecodedEvent::MfaFactorAdded(m)) => {
                log_factor_change(event_type, event_id, &m.user_id, &m.email, &m.factor_id, &m.factor_type);
            }
            Ok(DecodedEvent::MfaFactorRemoved(m)) => {
                log_factor_change(event_type, event_id, &m.user_id, &m.email, &m.factor_id, &m.factor_type);
            }
            Ok(DecodedEvent::BackupCodeUsed(m)) => {
                tracing::info!(
                    event_type,
                    %event_id,
                    user_id = %m.user_id,
                    recipient = %m.email,
                    remaining = m.remaining,
                    "event (embedded mode, not sent)"
                );
            }
            Ok(DecodedEvent::BackupCodesRegenerated(m)) => {
                tracing::info!(event_type, %event_id, user_id = %m.user_id, recipient = %m.email, "event (embedded mode, not sent)");
            }
            Ok(DecodedEvent::LoginNotice(m)) => {
                tracing::info!(
                    event_type,
                    %event_id,
                    user_id = %m.user_id,
                    recipient = %m.email,
                    ip = %m.ip,
                    device = %m.device,
                    "event (embedded mode, not sent)"
                );
            }
            Ok(DecodedEvent::LoginThrottled(m)) => {
                tracing::info!(event_type, %event_id, user_id = %m.user_id, recipient = %m.email, ip = %m.ip, "event (embedded mode, not sent)");
            }
            Ok(DecodedEvent::SignupAttempted(m)) => {
                tracing::info!(event_type, %event_id, user_id = %m.user_id, recipient = %m.email, ip = %m.ip, "event (embedded mode, not sent)");
            }
            Ok(DecodedEvent::OrganizationInvitation(m)) => {
                tracing::info!(
                    event_type,
                    %event_id,
                    user_id = %m.user_id,
                    recipient = %m.email,
                    organization_id = %m.organization_id,
                    role = %m.role,
                    link = %m.link,
                    token = %m.token,
                    "event (embedded mode, not sent; dev only: shows the link and token)"
                );
            }
            Ok(DecodedEvent::Audit(m)) => {
                let mut details: Vec<_> = m.details.iter().map(|(k, v)| format!("{k}={v}")).collect();
                details.sort_unstable();
                let details = details.join(",");
                tracing::info!(
                    event_type,
                    %event_id,
                    kind = %m.kind,
                    outcome = %m.outcome,
                    actor_id = %m.actor_id,
                    subject_id = %m.subject_id,
                    organization_id = %m.organization_id,
                    client_ip = %m.client_ip,
                    user_agent = %m.user_agent,
                    details = %details,
                    "event (embedded mode, not sent)"
                );
            }
            Err(error) => {
                tracing::warn!(event_type, %event_id, payload_len = message.payload.len(), %error, "event (embedded mode, not sent; payload not decoded)");
            }
        }
        Ok(())
    }
}

/// The one line for an event that carries a link token and a code.
fn log_with_secrets(
    event_type: &str,
    event_id: uuid::Uuid,
    user_id: &str,
    recipient: &str,
    link: &str,
    token: &str,
    code: &str,
) {
    tracing::info!(
        event_type,
        %event_id,
        user_id,
        recipient,
        link,
        token,
        code,
        "event (embedded mode, not sent; dev only: shows the link, token and code)"
    );
}

/// The one line for a second-factor code (email or SMS).
fn log_code(event_type: &str, event_id: uuid::Uuid, user_id: &str, recipient: &str, code: &str) {
    tracing::info!(
        event_type,
        %event_id,
        user_id,
        recipient,
        code,
        "event (embedded mode, not sent; dev only: shows the code)"
    );
}

/// The one line for a factor added or removed.
fn log_factor_change(
    event_type: &str,
    event_id: uuid::Uuid,
    user_id: &str,
    recipient: &str,
    factor_id: &str,
    factor_type: &str,
) {
    tracing::info!(event_type, %event_id, user_id, recipient, factor_id, factor_type, "event (embedded mode, not sent)");
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::{Arc, Mutex};

    use chrono::DateTime;
    use gatehouse_application::ports::events::EventEncoder;
    use gatehouse_domain::{
        AuditOutcome, AuditRecord, ClientInfo, EmailAddress, Event, EventEnvelope, FactorKind, Secret, UserId,
    };
    use uuid::Uuid;

    use super::*;
    use crate::ProtoEventEncoder;

    /// Collects what the log publisher writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Publishes `messages` to a [`LogPublisher`] and returns the log lines.
    async fn log_of(messages: &[OutboxMessage]) -> Vec<String> {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt().with_ansi(false).with_writer(move || writer.clone()).finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        for message in messages {
            LogPublisher.publish(message).await.unwrap();
        }
        let bytes = captured.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap().lines().map(str::to_owned).collect()
    }

    fn encode(event: Event) -> OutboxMessage {
        ProtoEventEncoder.encode(&EventEnvelope { id: Uuid::now_v7(), occurred_at: DateTime::UNIX_EPOCH, event })
    }

    #[tokio::test]
    async fn one_line_per_event_shows_the_link_token_and_code_for_the_developer() {
        let user_id = UserId::from_uuid(Uuid::now_v7());
        let email = EmailAddress::parse("ann@example.com").unwrap();
        let verification = encode(Event::VerificationRequested {
            user_id,
            email: email.clone(),
            token: Secret::new("tok-abc".into()),
            code: Secret::new("123456".into()),
            link: Secret::new("https://gatehouse.test/verify?token=tok-abc".into()),
            expires_at: DateTime::UNIX_EPOCH,
        });
        let changed = encode(Event::EmailChanged {
            user_id,
            email: email.clone(),
            new_email: EmailAddress::parse("ann@new.example.com").unwrap(),
        });

        let lines = log_of(&[verification.clone(), changed.clone()]).await;

        assert_eq!(lines.len(), 2, "{lines:#?}");
        let line = &lines[0];
        for expected in [
            "email.verification_requested",
            &verification.id.to_string(),
            "ann@example.com",
            "https://gatehouse.test/verify?token=tok-abc",
            "tok-abc",
            "123456",
        ] {
            assert!(line.contains(expected), "{expected} missing from {line}");
        }
        assert!(lines[1].contains("email.changed") && lines[1].contains("ann@new.example.com"), "{}", lines[1]);
    }

    #[tokio::test]
    async fn mfa_codes_show_their_recipient_and_code_for_the_developer() {
        let user_id = UserId::from_uuid(Uuid::now_v7());
        let code = |kind, destination: &str, code: &str| {
            encode(Event::MfaCode {
                user_id,
                kind,
                destination: destination.into(),
                code: Secret::new(code.into()),
                expires_at: DateTime::UNIX_EPOCH,
            })
        };
        let lines = log_of(&[
            code(FactorKind::Email, "ann@example.com", "246810"),
            code(FactorKind::Sms, "+447700900123", "135791"),
        ])
        .await;

        assert_eq!(lines.len(), 2, "{lines:#?}");
        for (line, expected) in lines
            .iter()
            .zip([["email.mfa_code", "ann@example.com", "246810"], ["sms.mfa_code", "+447700900123", "135791"]])
        {
            for e in expected {
                assert!(line.contains(e), "{e} missing from {line}");
            }
        }
    }

    #[tokio::test]
    async fn every_event_and_an_unknown_one_count_as_delivered() {
        let user_id = UserId::from_uuid(Uuid::now_v7());
        let email = EmailAddress::parse("ann@example.com").unwrap();
        let unknown = OutboxMessage {
            id: Uuid::now_v7(),
            event_type: "audit.something_new".into(),
            payload: vec![1, 2, 3],
            occurred_at: DateTime::UNIX_EPOCH,
            audit: None,
        };
        let messages = [
            encode(Event::PasswordResetRequested {
                user_id,
                email: email.clone(),
                token: Secret::new("t".into()),
                code: Secret::new("1".into()),
                link: Secret::new("l".into()),
                expires_at: DateTime::UNIX_EPOCH,
            }),
            encode(Event::PasswordChanged { user_id, email: email.clone() }),
            encode(Event::MfaFactorAdded {
                user_id,
                email: Some(email.clone()),
                factor_id: Uuid::now_v7(),
                kind: FactorKind::Totp,
            }),
            encode(Event::MfaFactorRemoved { user_id, email: None, factor_id: Uuid::now_v7(), kind: FactorKind::Sms }),
            encode(Event::BackupCodeUsed { user_id, email: Some(email.clone()), remaining: 7 }),
            encode(Event::BackupCodesRegenerated { user_id, email: Some(email.clone()) }),
            encode(Event::LoginNotice {
                user_id,
                email,
                ip: Some("203.0.113.7".into()),
                device: "Firefox on Linux".into(),
                at: DateTime::UNIX_EPOCH,
            }),
            encode(Event::Audit(AuditRecord {
                id: Uuid::now_v7(),
                kind: "login.failed".into(),
                occurred_at: DateTime::UNIX_EPOCH,
                actor: None,
                subject: Some(user_id),
                organization: None,
                client: ClientInfo::new(Some("curl/8.5"), Some("198.51.100.4".into())),
                outcome: AuditOutcome::Failure,
                details: vec![("reason".into(), "wrong_password".into())],
            })),
            unknown,
        ];
        let lines = log_of(&messages).await;
        assert_eq!(lines.len(), messages.len(), "{lines:#?}");
        for (line, message) in lines.iter().zip(&messages) {
            assert!(line.contains(&message.event_type), "{} missing from {line}", message.event_type);
        }
        assert!(lines[2].contains("totp"), "{}", lines[2]);
        assert!(lines[4].contains("remaining=7"), "{}", lines[4]);
        assert!(lines[6].contains("203.0.113.7") && lines[6].contains("Firefox on Linux"), "{}", lines[6]);
        for expected in ["audit.login.failed", "failure", "198.51.100.4", "curl/8.5", "reason=wrong_password"] {
            assert!(lines[7].contains(expected), "{expected} missing from {}", lines[7]);
        }
        let last = lines.last().unwrap();
        assert!(last.contains("audit.something_new") && last.contains("WARN"), "{last}");
    }
}
