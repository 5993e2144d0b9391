//! Published messages back to their protobuf messages: for tests, consumers
//! written in Rust, and the log publisher.

use std::borrow::Cow;

use prost::Message;

use crate::pb;

/// The routing keys this crate can decode, one per message of
/// `gatehouse.events.v1`. They equal the domain's `Event::event_type`.
const VERIFICATION_REQUESTED: &str = "email.verification_requested";
const PASSWORD_RESET_REQUESTED: &str = "email.password_reset_requested";
const PASSWORD_CHANGED: &str = "email.password_changed";
const EMAIL_CHANGED: &str = "email.changed";
const EMAIL_MFA_CODE: &str = "email.mfa_code";
const SMS_MFA_CODE: &str = "sms.mfa_code";
const MFA_FACTOR_ADDED: &str = "audit.mfa_factor_added";
const MFA_FACTOR_REMOVED: &str = "audit.mfa_factor_removed";
const BACKUP_CODE_USED: &str = "audit.backup_code_used";
const BACKUP_CODES_REGENERATED: &str = "audit.backup_codes_regenerated";
const LOGIN_NOTICE: &str = "email.login_notice";
const LOGIN_THROTTLED: &str = "email.login_throttled";
const SIGNUP_ATTEMPTED: &str = "email.signup_attempted";
const ORG_INVITATION: &str = "email.org_invitation";
/// The prefix of the audit trail's routing keys: `audit.<kind>`, each an
/// [`pb::AuditEvent`] (apart from the four older `audit.` types above).
const AUDIT_PREFIX: &str = "audit.";
/// How a malformed audit payload names its type.
const AUDIT_EVENT: &str = "audit.<kind>";

/// A decoded event: its `gatehouse.events.v1` message. `Debug` redacts the
/// link tokens, codes and links.
///
/// Both MFA code events carry a [`pb::MfaCode`]; the variant says which
/// routing key it came under (and so whether `email` or `phone` is set).
/// Every other `audit.<kind>` routing key carries a [`pb::AuditEvent`].
#[derive(Clone, Debug, PartialEq)]
pub enum DecodedEvent {
    VerificationRequested(pb::VerificationRequested),
    PasswordResetRequested(pb::PasswordResetRequested),
    PasswordChanged(pb::PasswordChanged),
    EmailChanged(pb::EmailChanged),
    /// `email.mfa_code`: a code to email.
    EmailMfaCode(pb::MfaCode),
    /// `sms.mfa_code`: a code to text.
    SmsMfaCode(pb::MfaCode),
    MfaFactorAdded(pb::MfaFactorAdded),
    MfaFactorRemoved(pb::MfaFactorRemoved),
    BackupCodeUsed(pb::BackupCodeUsed),
    BackupCodesRegenerated(pb::BackupCodesRegenerated),
    LoginNotice(pb::LoginNotice),
    LoginThrottled(pb::LoginThrottled),
    SignupAttempted(pb::SignupAttempted),
    OrganizationInvitation(pb::OrganizationInvitation),
    /// `audit.<kind>`: one fact of the audit trail.
    Audit(pb::AuditEvent),
}

impl DecodedEvent {
    /// The event type (routing key) the message was published under; for
    /// an audit event, `audit.<kind>`.
    #[must_use]
    pub fn event_type(&self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
            Self::VerificationRequested(_) => VERIFICATION_REQUESTED,
            Self::PasswordResetRequested(_) => PASSWORD_RESET_REQUESTED,
            Self::PasswordChanged(_) => PASSWORD_CHANGED,
            Self::EmailChanged(_) => EMAIL_CHANGED,
            Self::EmailMfaCode(_) => EMAIL_MFA_CODE,
            Self::SmsMfaCode(_) => SMS_MFA_CODE,
            Self::MfaFactorAdded(_) => MFA_FACTOR_ADDED,
            Self::MfaFactorRemoved(_) => MFA_FACTOR_REMOVED,
            Self::BackupCodeUsed(_) => BACKUP_CODE_USED,
            Self::BackupCodesRegenerated(_) => BACKUP_CODES_REGENERATED,
            Self::LoginNotice(_) => LOGIN_NOTICE,
            Self::LoginThrottled(_) => LOGIN_THROTTLED,
            Self::SignupAttempted(_) => SIGNUP_ATTEMPTED,
            Self::OrganizationInvitation(_) => ORG_INVITATION,
            Self::Audit(m) => return Cow::Owned(format!("{AUDIT_PREFIX}{}", m.kind)),
        })
    }

    /// The event id (UUID text), the consumers' de-duplication key.
    #[must_use]
    pub fn event_id(&self) -> &str {
        match self {
            Self::VerificationRequested(m) => &m.event_id,
            Self::PasswordResetRequested(m) => &m.event_id,
            Self::PasswordChanged(m) => &m.event_id,
            Self::EmailChanged(m) => &m.event_id,
            Self::EmailMfaCode(m) | Self::SmsMfaCode(m) => &m.event_id,
            Self::MfaFactorAdded(m) => &m.event_id,
            Self::MfaFactorRemoved(m) => &m.event_id,
            Self::BackupCodeUsed(m) => &m.event_id,
            Self::BackupCodesRegenerated(m) => &m.event_id,
            Self::LoginNotice(m) => &m.event_id,
            Self::LoginThrottled(m) => &m.event_id,
            Self::SignupAttempted(m) => &m.event_id,
            Self::OrganizationInvitation(m) => &m.event_id,
            Self::Audit(m) => &m.event_id,
        }
    }

    /// Where the notice goes: an email address (for `email.changed`, the
    /// old one), or for `sms.mfa_code` a phone number. Empty for an audit
    /// event of an account without a primary address, and always for an
    /// [`pb::AuditEvent`] (it notifies nobody).
    #[must_use]
    pub fn recipient(&self) -> &str {
        match self {
            Self::VerificationRequested(m) => &m.email,
            Self::PasswordResetRequested(m) => &m.email,
            Self::PasswordChanged(m) => &m.email,
            Self::EmailChanged(m) => &m.email,
            Self::EmailMfaCode(m) => &m.email,
            Self::SmsMfaCode(m) => &m.phone,
            Self::MfaFactorAdded(m) => &m.email,
            Self::MfaFactorRemoved(m) => &m.email,
            Self::BackupCodeUsed(m) => &m.email,
            Self::BackupCodesRegenerated(m) => &m.email,
            Self::LoginNotice(m) => &m.email,
            Self::LoginThrottled(m) => &m.email,
            Self::SignupAttempted(m) => &m.email,
            Self::OrganizationInvitation(m) => &m.email,
            Self::Audit(_) => "",
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
/// [`DecodeError::UnknownType`] for a type this crate does not know (any
/// `audit.<kind>` is known: an [`pb::AuditEvent`]),
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
        EMAIL_MFA_CODE => parse(EMAIL_MFA_CODE, payload).map(DecodedEvent::EmailMfaCode),
        SMS_MFA_CODE => parse(SMS_MFA_CODE, payload).map(DecodedEvent::SmsMfaCode),
        MFA_FACTOR_ADDED => parse(MFA_FACTOR_ADDED, payload).map(DecodedEvent::MfaFactorAdded),
        MFA_FACTOR_REMOVED => parse(MFA_FACTOR_REMOVED, payload).map(DecodedEvent::MfaFactorRemoved),
        BACKUP_CODE_USED => parse(BACKUP_CODE_USED, payload).map(DecodedEvent::BackupCodeUsed),
        BACKUP_CODES_REGENERATED => parse(BACKUP_CODES_REGENERATED, payload).map(DecodedEvent::BackupCodesRegenerated),
        LOGIN_NOTICE => parse(LOGIN_NOTICE, payload).map(DecodedEvent::LoginNotice),
        LOGIN_THROTTLED => parse(LOGIN_THROTTLED, payload).map(DecodedEvent::LoginThrottled),
        SIGNUP_ATTEMPTED => parse(SIGNUP_ATTEMPTED, payload).map(DecodedEvent::SignupAttempted),
        ORG_INVITATION => parse(ORG_INVITATION, payload).map(DecodedEvent::OrganizationInvitation),
        audit if audit.starts_with(AUDIT_PREFIX) => parse(AUDIT_EVENT, payload).map(DecodedEvent::Audit),
        other => Err(DecodeError::UnknownType(other.to_owned())),
    }
}

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;
