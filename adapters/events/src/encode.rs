//! Domain events to their protobuf messages.

use chrono::{DateTime, Utc};
use gatehouse_application::ports::events::{EventEncoder, OutboxMessage};
use gatehouse_domain::{AuditRecord, EmailAddress, Event, EventEnvelope, FactorKind};
use prost::Message;

use crate::pb;

/// Encodes each event as its `gatehouse.events.v1` message; the event type
/// (the routing key) is [`Event::event_type`], except for an audit fact
/// ([`Event::Audit`]): an `AuditEvent` under `audit.<kind>`, whose message
/// also carries the record for the audit table.
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
        if let Event::Audit(record) = &envelope.event {
            return OutboxMessage {
                id: envelope.id,
                event_type: format!("audit.{}", record.kind),
                payload: audit_event(envelope, record).encode_to_vec(),
                occurred_at: envelope.occurred_at,
                audit: Some(record.clone()),
            };
        }
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
            Event::MfaCode { kind, destination, code, expires_at, .. } => {
                let (email, phone) = match kind {
                    FactorKind::Sms => (String::new(), destination.clone()),
                    FactorKind::Email | FactorKind::Totp => (destination.clone(), String::new()),
                };
                pb::MfaCode {
                    event_id,
                    occurred_at,
                    user_id,
                    email,
                    phone,
                    code: code.expose().clone(),
                    expires_at: Some(timestamp(*expires_at)),
                }
                .encode_to_vec()
            }
            Event::MfaFactorAdded { email, factor_id, kind, .. } => pb::MfaFactorAdded {
                event_id,
                occurred_at,
                user_id,
                email: address(email.as_ref()),
                factor_id: factor_id.to_string(),
                factor_type: kind.as_str().to_owned(),
            }
            .encode_to_vec(),
            Event::MfaFactorRemoved { email, factor_id, kind, .. } => pb::MfaFactorRemoved {
                event_id,
                occurred_at,
                user_id,
                email: address(email.as_ref()),
                factor_id: factor_id.to_string(),
                factor_type: kind.as_str().to_owned(),
            }
            .encode_to_vec(),
            Event::BackupCodeUsed { email, remaining, .. } => pb::BackupCodeUsed {
                event_id,
                occurred_at,
                user_id,
                email: address(email.as_ref()),
                remaining: i32::try_from(*remaining).unwrap_or(i32::MAX),
            }
            .encode_to_vec(),
            Event::BackupCodesRegenerated { email, .. } => {
                pb::BackupCodesRegenerated { event_id, occurred_at, user_id, email: address(email.as_ref()) }
                    .encode_to_vec()
            }
            Event::LoginNotice { email, ip, device, at, .. } => pb::LoginNotice {
                event_id,
                occurred_at,
                user_id,
                email: email.as_str().to_owned(),
                ip: ip.clone().unwrap_or_default(),
                device: device.clone(),
                at: Some(timestamp(*at)),
            }
            .encode_to_vec(),
            Event::LoginThrottled { email, ip, until, .. } => pb::LoginThrottled {
                event_id,
                occurred_at,
                user_id,
                email: email.as_str().to_owned(),
                ip: ip.clone().unwrap_or_default(),
                until: Some(timestamp(*until)),
            }
            .encode_to_vec(),
            Event::SignupAttempted { email, ip, at, .. } => pb::SignupAttempted {
                event_id,
                occurred_at,
                user_id,
                email: email.as_str().to_owned(),
                ip: ip.clone().unwrap_or_default(),
                at: Some(timestamp(*at)),
            }
            .encode_to_vec(),
            Event::OrganizationInvitation {
                email,
                organization_id,
                organization_name,
                role,
                token,
                link,
                expires_at,
                ..
            } => pb::OrganizationInvitation {
                event_id,
                occurred_at,
                user_id,
                email: email.as_str().to_owned(),
                organization_id: organization_id.to_string(),
                organization_name: organization_name.clone(),
                role: role.clone(),
                token: token.expose().clone(),
                link: link.expose().clone(),
                expires_at: Some(timestamp(*expires_at)),
            }
            .encode_to_vec(),
            Event::Audit(record) => audit_event(envelope, record).encode_to_vec(),
        };
        OutboxMessage {
            id: envelope.id,
            event_type: envelope.event.event_type().to_owned(),
            payload,
            occurred_at: envelope.occurred_at,
            audit: None,
        }
    }
}

/// The `AuditEvent` of an audit fact; its id is the envelope's.
fn audit_event(envelope: &EventEnvelope, record: &AuditRecord) -> pb::AuditEvent {
    pb::AuditEvent {
        event_id: envelope.id.to_string(),
        occurred_at: Some(timestamp(record.occurred_at)),
        kind: record.kind.clone(),
        actor_id: record.actor.map(|u| u.to_string()).unwrap_or_default(),
        subject_id: record.subject.map(|u| u.to_string()).unwrap_or_default(),
        organization_id: record.organization.clone().unwrap_or_default(),
        client_ip: record.client.ip.clone().unwrap_or_default(),
        user_agent: record.client.user_agent.clone().unwrap_or_default(),
        outcome: record.outcome.as_str().to_owned(),
        details: record.details.iter().cloned().collect(),
    }
}

/// The text of an optional address; empty when the account has none.
fn address(email: Option<&EmailAddress>) -> String {
    email.map(|e| e.as_str().to_owned()).unwrap_or_default()
}

fn timestamp(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp::from(std::time::SystemTime::from(at))
}
