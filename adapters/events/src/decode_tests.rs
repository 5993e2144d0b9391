//! Every event survives encode → decode with all its fields, under the
//! routing key the domain names.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use gatehouse_application::ports::events::{EventEncoder, OutboxMessage};
use gatehouse_domain::{
    AuditOutcome, AuditRecord, ClientInfo, EmailAddress, Event, EventEnvelope, FactorKind, Secret, UserId,
};
use uuid::Uuid;

use super::*;
use crate::ProtoEventEncoder;

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 14, 15, 9, 26).unwrap() + TimeDelta::nanoseconds(535_897_932)
}

fn ts(at: DateTime<Utc>) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds: at.timestamp(), nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap() })
}

fn email(s: &str) -> EmailAddress {
    EmailAddress::parse(s).unwrap()
}

fn secret(s: &str) -> Secret<String> {
    Secret::new(s.to_owned())
}

fn encode(event: Event) -> (EventEnvelope, OutboxMessage) {
    let envelope = EventEnvelope { id: Uuid::now_v7(), occurred_at: at(), event };
    let message = ProtoEventEncoder::new().encode(&envelope);
    (envelope, message)
}

fn user() -> UserId {
    UserId::from_uuid(Uuid::now_v7())
}

#[test]
fn verification_requested_round_trips_with_every_field() {
    let user_id = user();
    let (envelope, message) = encode(Event::VerificationRequested {
        user_id,
        email: email("ann@example.com"),
        token: secret("link-token-abc"),
        code: secret("123456"),
        link: secret("https://gatehouse.test/verify?token=link-token-abc"),
        expires_at: at() + TimeDelta::days(5),
    });

    assert_eq!(message.id, envelope.id);
    assert_eq!(message.occurred_at, envelope.occurred_at);
    assert_eq!(message.event_type, "email.verification_requested");
    let decoded = decode(&message.event_type, &message.payload).unwrap();
    assert_eq!(
        decoded,
        DecodedEvent::VerificationRequested(pb::VerificationRequested {
            event_id: envelope.id.to_string(),
            occurred_at: ts(at()),
            user_id: user_id.to_string(),
            email: "ann@example.com".into(),
            token: "link-token-abc".into(),
            code: "123456".into(),
            link: "https://gatehouse.test/verify?token=link-token-abc".into(),
            expires_at: ts(at() + TimeDelta::days(5)),
        })
    );
    assert_eq!(decoded.event_type(), message.event_type);
    assert_eq!(decoded.event_id(), envelope.id.to_string());
    assert_eq!(decoded.recipient(), "ann@example.com");
}

#[test]
fn password_reset_requested_round_trips_with_every_field() {
    let user_id = user();
    let (envelope, message) = encode(Event::PasswordResetRequested {
        user_id,
        email: email("bob@example.com"),
        token: secret("reset-token-xyz"),
        code: secret("654321"),
        link: secret("https://gatehouse.test/reset?token=reset-token-xyz"),
        expires_at: at() + TimeDelta::hours(2),
    });

    assert_eq!(message.event_type, "email.password_reset_requested");
    let decoded = decode(&message.event_type, &message.payload).unwrap();
    assert_eq!(
        decoded,
        DecodedEvent::PasswordResetRequested(pb::PasswordResetRequested {
            event_id: envelope.id.to_string(),
            occurred_at: ts(at()),
            user_id: user_id.to_string(),
            email: "bob@example.com".into(),
            token: "reset-token-xyz".into(),
            code: "654321".into(),
            link: "https://gatehouse.test/reset?token=reset-token-xyz".into(),
            expires_at: ts(at() + TimeDelta::hours(2)),
        })
    );
    assert_eq!(decoded.event_type(), message.event_type);
}

#[test]
fn password_changed_round_trips_with_every_field() {
    let user_id = user();
    let (envelope, message) = encode(Event::PasswordChanged { user_id, email: email("cy@example.com") });

    assert_eq!(message.event_type, "email.password_changed");
    let decoded = decode(&message.event_type, &message.payload).unwrap();
    assert_eq!(
        decoded,
        DecodedEvent::PasswordChanged(pb::PasswordChanged {
            event_id: envelope.id.to_string(),
            occurred_at: ts(at()),
            user_id: user_id.to_string(),
            email: "cy@example.com".into(),
        })
    );
    assert_eq!(decoded.event_type(), message.event_type);
}

#[test]
fn email_changed_round_trips_to_the_old_address_with_the_new_one() {
    let user_id = user();
    let (envelope, message) =
        encode(Event::EmailChanged { user_id, email: email("old@example.com"), new_email: email("new@example.com") });

    assert_eq!(message.event_type, "email.changed");
    let decoded = decode(&message.event_type, &message.payload).unwrap();
    assert_eq!(
        decoded,
        DecodedEvent::EmailChanged(pb::EmailChanged {
            event_id: envelope.id.to_string(),
            occurred_at: ts(at()),
            user_id: user_id.to_string(),
            email: "old@example.com".into(),
            new_email: "new@example.com".into(),
        })
    );
    assert_eq!(decoded.recipient(), "old@example.com");
    assert_eq!(decoded.event_type(), message.event_type);
}

#[test]
fn email_mfa_code_round_trips_to_the_address() {
    let user_id = user();
    let (envelope, message) = encode(Event::MfaCode {
        user_id,
        kind: FactorKind::Email,
        destination: "ann@example.com".into(),
        code: secret("246810"),
        expires_at: at() + TimeDelta::minutes(10),
    });

    assert_eq!(message.event_type, "email.mfa_code");
    let decoded = decode(&message.event_type, &message.payload).unwrap();
    assert_eq!(
        decoded,
        DecodedEvent::EmailMfaCode(pb::MfaCode {
            event_id: envelope.id.to_string(),
            occurred_at: ts(at()),
            user_id: user_id.to_string(),
            email: "ann@example.com".into(),
            phone: String::new(),
            code: "246810".into(),
            expires_at: ts(at() + TimeDelta::minutes(10)),
        })
    );
    assert_eq!(decoded.recipient(), "ann@example.com");
    assert_eq!(decoded.event_id(), envelope.id.to_string());
    assert_eq!(decoded.event_type(), message.event_type);
}

#[test]
fn sms_mfa_code_round_trips_to_the_phone_number() {
    let user_id = user();
    let (envelope, message) = encode(Event::MfaCode {
        user_id,
        kind: FactorKind::Sms,
        destination: "+447700900123".into(),
        code: secret("135791"),
        expires_at: at() + TimeDelta::minutes(10),
    });

    assert_eq!(message.event_type, "sms.mfa_code");
    let decoded = decode(&message.event_type, &message.payload).unwrap();
    assert_eq!(
        decoded,
        DecodedEvent::SmsMfaCode(pb::MfaCode {
            event_id: envelope.id.to_string(),
            occurred_at: ts(at()),
            user_id: user_id.to_string(),
            email: String::new(),
            phone: "+447700900123".into(),
            code: "135791".into(),
            expires_at: ts(at() + TimeDelta::minutes(10)),
        })
    );
    assert_eq!(decoded.recipient(), "+447700900123");
    assert_eq!(decoded.event_type(), message.event_type);
}

#[test]
fn mfa_factor_added_round_trips_with_its_type() {
    let (user_id, factor_id) = (user(), Uuid::now_v7());
    let (envelope, message) = encode(Event::MfaFactorAdded {
        user_id,
        email: Some(email("ann@example.com")),
        factor_id,
        kind: FactorKind::Totp,
    });

    assert_eq!(message.event_type, "audit.mfa_factor_added");
    let decoded = decode(&message.event_type, &message.payload).unwrap();
    assert_eq!(
        decoded,
        DecodedEvent::MfaFactorAdded(pb::MfaFactorAdded {
            event_id: envelope.id.to_string(),
            occurred_at: ts(at()),
            user_id: user_id.to_string(),
            email: "ann@example.com".into(),
            factor_id: factor_id.to_string(),
            factor_type: "totp".into(),
        })
    );
    assert_eq!(decoded.recipient(), "ann@example.com");
    assert_eq!(decoded.event_type(), message.event_type);
}

#[test]
fn mfa_factor_removed_round_trips_without_a_primary_address() {
    let (user_id, factor_id) = (user(), Uuid::now_v7());
    let (envelope, message) =
        encode(Event::MfaFactorRemoved { user_id, email: None, factor_id, kind: FactorKind::Sms });

    assert_eq!(message.event_type, "audit.mfa_factor_removed");
    let decoded = decode(&message.event_type, &message.payload).unwrap();
    assert_eq!(
        decoded,
        DecodedEvent::MfaFactorRemoved(pb::MfaFactorRemoved {
            event_id: envelope.id.to_string(),
            occurred_at: ts(at()),
            user_id: user_id.to_string(),
            email: String::new(),
            factor_id: factor_id.to_string(),
            factor_type: "sms".into(),
        })
    );
    assert_eq!(decoded.recipient(), "");
    assert_eq!(decoded.event_type(), message.event_type);
}

#[test]
fn backup_code_used_round_trips_with_the_count_left() {
    let user_id = user();
    let (envelope, message) =
        encode(Event::BackupCodeUsed { user_id, email: Some(email("bob@example.com")), remaining: 9 });

    assert_eq!(message.event_type, "audit.backup_code_used");
    let decoded = decode(&message.event_type, &message.payload).unwrap();
    assert_eq!(
        decoded,
        DecodedEvent::BackupCodeUsed(pb::BackupCodeUsed {
            event_id: envelope.id.to_string(),
            occurred_at: ts(at()),
            user_id: user_id.to_string(),
            email: "bob@example.com".into(),
            remaining: 9,
        })
    );
    assert_eq!(decoded.recipient(), "bob@example.com");
    assert_eq!(decoded.event_type(), message.event_type);
}

#[test]
fn backup_codes_regenerated_round_trips_with_every_field() {
    let user_id = user();
    let (envelope, message) = encode(Event::BackupCodesRegenerated { user_id, email: Some(email("cy@example.com")) });

    assert_eq!(message.event_type, "audit.backup_codes_regenerated");
    let decoded = decode(&message.event_type, &message.payload).unwrap();
    assert_eq!(
        decoded,
        DecodedEvent::BackupCodesRegenerated(pb::BackupCodesRegenerated {
            event_id: envelope.id.to_string(),
            occurred_at: ts(at()),
            user_id: user_id.to_string(),
            email: "cy@example.com".into(),
        })
    );
    assert_eq!(decoded.event_id(), envelope.id.to_string());
    assert_eq!(decoded.event_type(), message.event_type);
}

#[test]
fn login_notice_round_trips_to_the_primary_address() {
    let user_id = user();
    let (envelope, message) = encode(Event::LoginNotice {
        user_id,
        email: email("ann@example.com"),
        ip: Some("2001:db8::7".into()),
        device: "Safari on iPhone".into(),
        at: at() - TimeDelta::seconds(1),
    });

    assert_eq!(message.event_type, "email.login_notice");
    let decoded = decode(&message.event_type, &message.payload).unwrap();
    assert_eq!(
        decoded,
        DecodedEvent::LoginNotice(pb::LoginNotice {
            event_id: envelope.id.to_string(),
            occurred_at: ts(at()),
            user_id: user_id.to_string(),
            email: "ann@example.com".into(),
            ip: "2001:db8::7".into(),
            device: "Safari on iPhone".into(),
            at: ts(at() - TimeDelta::seconds(1)),
        })
    );
    assert_eq!(decoded.recipient(), "ann@example.com");
    assert_eq!(decoded.event_id(), envelope.id.to_string());
    assert_eq!(decoded.event_type(), message.event_type);
}

#[test]
fn login_notice_without_an_address_has_an_empty_ip() {
    let (_, message) = encode(Event::LoginNotice {
        user_id: user(),
        email: email("ann@example.com"),
        ip: None,
        device: "unknown device".into(),
        at: at(),
    });
    let DecodedEvent::LoginNotice(m) = decode(&message.event_type, &message.payload).unwrap() else {
        panic!("a login notice expected")
    };
    assert_eq!(m.ip, "");
}

#[test]
fn login_throttled_round_trips_to_the_owner() {
    let user_id = user();
    let until = at() + TimeDelta::minutes(14);
    let (envelope, message) =
        encode(Event::LoginThrottled { user_id, email: email("ann@example.com"), ip: Some("192.0.2.9".into()), until });
    assert_eq!(message.event_type, "email.login_throttled");
    let decoded = decode(&message.event_type, &message.payload).unwrap();
    assert_eq!(
        decoded,
        DecodedEvent::LoginThrottled(pb::LoginThrottled {
            event_id: envelope.id.to_string(),
            occurred_at: ts(at()),
            user_id: user_id.to_string(),
            email: "ann@example.com".into(),
            ip: "192.0.2.9".into(),
            until: ts(until),
        })
    );
    assert_eq!(decoded.recipient(), "ann@example.com");
    assert_eq!(decoded.event_type(), message.event_type);
}

#[test]
fn signup_attempted_round_trips_to_the_address_owner() {
    let user_id = user();
    let (envelope, message) =
        encode(Event::SignupAttempted { user_id, email: email("ann@example.com"), ip: None, at: at() });
    assert_eq!(message.event_type, "email.signup_attempted");
    let decoded = decode(&message.event_type, &message.payload).unwrap();
    assert_eq!(
        decoded,
        DecodedEvent::SignupAttempted(pb::SignupAttempted {
            event_id: envelope.id.to_string(),
            occurred_at: ts(at()),
            user_id: user_id.to_string(),
            email: "ann@example.com".into(),
            ip: String::new(),
            at: ts(at()),
        })
    );
    assert_eq!(decoded.recipient(), "ann@example.com");
    assert_eq!(decoded.event_type(), message.event_type);
}

#[test]
fn unknown_event_type_is_a_decode_error() {
    let (_, message) = encode(Event::PasswordChanged { user_id: user(), email: email("cy@example.com") });
    let err = decode("email.nonexistent", &message.payload).unwrap_err();
    assert!(matches!(&err, DecodeError::UnknownType(t) if t == "email.nonexistent"), "{err:?}");
}

#[test]
fn payload_that_is_not_the_message_is_a_decode_error() {
    let err = decode("email.password_changed", &[0xff, 0xff, 0xff]).unwrap_err();
    assert!(matches!(err, DecodeError::Malformed { event_type: "email.password_changed", .. }), "{err:?}");
}

fn audit_record(kind: &str) -> AuditRecord {
    AuditRecord {
        id: Uuid::now_v7(),
        kind: kind.into(),
        occurred_at: at(),
        actor: Some(user()),
        subject: Some(user()),
        organization: Some("org-1".into()),
        client: ClientInfo::new(Some("Mozilla/5.0 Firefox/133.0"), Some("203.0.113.7".into())),
        outcome: AuditOutcome::Success,
        details: vec![("session_id".into(), "s-1".into()), ("factor_type".into(), "totp".into())],
    }
}

#[test]
fn audit_event_round_trips_under_audit_kind_and_carries_its_row() {
    let record = audit_record("session.revoked");
    let (envelope, message) = encode(Event::Audit(record.clone()));

    assert_eq!(message.event_type, "audit.session.revoked");
    assert_eq!(message.audit.as_ref(), Some(&record));
    assert_eq!(message.id, envelope.id);
    let decoded = decode(&message.event_type, &message.payload).unwrap();
    assert_eq!(
        decoded,
        DecodedEvent::Audit(pb::AuditEvent {
            event_id: envelope.id.to_string(),
            occurred_at: ts(at()),
            kind: "session.revoked".into(),
            actor_id: record.actor.unwrap().to_string(),
            subject_id: record.subject.unwrap().to_string(),
            organization_id: "org-1".into(),
            client_ip: "203.0.113.7".into(),
            user_agent: "Mozilla/5.0 Firefox/133.0".into(),
            outcome: "success".into(),
            details: [("session_id".to_owned(), "s-1".to_owned()), ("factor_type".to_owned(), "totp".to_owned())]
                .into_iter()
                .collect(),
        })
    );
    assert_eq!(decoded.event_type(), message.event_type);
    assert_eq!(decoded.event_id(), envelope.id.to_string());
    assert_eq!(decoded.recipient(), "");
}

#[test]
fn anonymous_audit_event_has_empty_ids_and_a_failure_outcome() {
    let record = AuditRecord {
        actor: None,
        subject: None,
        organization: None,
        client: ClientInfo::default(),
        outcome: AuditOutcome::Failure,
        details: vec![],
        ..audit_record("login.failed")
    };
    let (_, message) = encode(Event::Audit(record));
    assert_eq!(message.event_type, "audit.login.failed");
    let DecodedEvent::Audit(m) = decode(&message.event_type, &message.payload).unwrap() else {
        panic!("an audit event expected")
    };
    assert_eq!((m.actor_id.as_str(), m.subject_id.as_str(), m.organization_id.as_str()), ("", "", ""));
    assert_eq!((m.client_ip.as_str(), m.user_agent.as_str(), m.outcome.as_str()), ("", "", "failure"));
    assert!(m.details.is_empty());
}

#[test]
fn older_audit_types_keep_their_own_messages_and_no_row() {
    let (_, message) = encode(Event::BackupCodesRegenerated { user_id: user(), email: Some(email("ann@example.com")) });
    assert_eq!(message.audit, None);
    assert!(matches!(decode(&message.event_type, &message.payload).unwrap(), DecodedEvent::BackupCodesRegenerated(_)));
}

#[test]
fn malformed_audit_payload_is_a_decode_error() {
    let err = decode("audit.login.failed", &[0xff, 0xff, 0xff]).unwrap_err();
    assert!(matches!(err, DecodeError::Malformed { event_type: "audit.<kind>", .. }), "{err:?}");
}

#[test]
fn other_event_messages_carry_no_audit_row() {
    let (_, message) = encode(Event::PasswordChanged { user_id: user(), email: email("cy@example.com") });
    assert_eq!(message.audit, None);
}

#[test]
fn an_organization_invitation_round_trips_to_the_invited_address() {
    let user_id = user();
    let organization_id = gatehouse_domain::OrganizationId::from_uuid(uuid::Uuid::from_u128(42));
    let (envelope, message) = encode(Event::OrganizationInvitation {
        user_id,
        email: email("carol@example.com"),
        organization_id,
        organization_name: "Acme".into(),
        role: "member".into(),
        token: Secret::new("ghi_token".into()),
        link: Secret::new("https://id.example/accept-invitation?token=ghi_token".into()),
        expires_at: at(),
    });
    assert_eq!(message.event_type, "email.org_invitation");
    let decoded = decode(&message.event_type, &message.payload).unwrap();
    assert_eq!(
        decoded,
        DecodedEvent::OrganizationInvitation(pb::OrganizationInvitation {
            event_id: envelope.id.to_string(),
            occurred_at: ts(at()),
            user_id: user_id.to_string(),
            email: "carol@example.com".into(),
            organization_id: organization_id.to_string(),
            organization_name: "Acme".into(),
            role: "member".into(),
            token: "ghi_token".into(),
            link: "https://id.example/accept-invitation?token=ghi_token".into(),
            expires_at: ts(at()),
        })
    );
    assert_eq!(decoded.recipient(), "carol@example.com");
    assert_eq!(decoded.event_type(), message.event_type);
    // The token and the link never show in Debug.
    assert!(!format!("{decoded:?}").contains("ghi_token"));
}
