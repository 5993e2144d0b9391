//! Events: facts other systems (the mailer, the audit stream) must learn
//! about. Use cases write them to the outbox in the same transaction as the
//! change they describe; a relay publishes them. Their wire format is defined
//! in `proto/gatehouse/events/v1/`.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::audit::AuditRecord;
use crate::email::EmailAddress;
use crate::ids::{OrganizationId, UserId};
use crate::mfa::FactorKind;
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
    /// A second-factor code to deliver by email (`email.mfa_code`) or SMS (`sms.mfa_code`).
    MfaCode { user_id: UserId, kind: FactorKind, destination: String, code: Secret<String>, expires_at: DateTime<Utc> },
    /// Audit: a second factor was activated (notice to the primary address).
    MfaFactorAdded { user_id: UserId, email: Option<EmailAddress>, factor_id: Uuid, kind: FactorKind },
    /// Audit: a second factor was removed.
    MfaFactorRemoved { user_id: UserId, email: Option<EmailAddress>, factor_id: Uuid, kind: FactorKind },
    /// Audit: a backup code was used; tells the owner how many remain.
    BackupCodeUsed { user_id: UserId, email: Option<EmailAddress>, remaining: u32 },
    /// Audit: new backup codes replaced the old ones.
    BackupCodesRegenerated { user_id: UserId, email: Option<EmailAddress> },
    /// An audit fact, published on the audit stream as `audit.<kind>`.
    Audit(AuditRecord),
    /// A login from a device or address this account has not used before.
    LoginNotice { user_id: UserId, email: EmailAddress, ip: Option<String>, device: String, at: DateTime<Utc> },
    /// Logins to this account were refused for too many wrong passwords
    /// from everywhere: tell the owner, once per throttling, that someone
    /// is guessing and that a password reset ends it.
    LoginThrottled { user_id: UserId, email: EmailAddress, ip: Option<String>, until: DateTime<Utc> },
    /// Someone tried to sign up with an address that already has an
    /// account: tell its owner (the caller got the same answer as a new
    /// sign-up, so the answer reveals nothing).
    SignupAttempted { user_id: UserId, email: EmailAddress, ip: Option<String>, at: DateTime<Utc> },
    /// Someone was invited to an organization: email the link. `user_id`
    /// is whoever sent the invitation (the invitee may have no account).
    OrganizationInvitation {
        user_id: UserId,
        email: EmailAddress,
        organization_id: OrganizationId,
        organization_name: String,
        role: String,
        token: Secret<String>,
        link: Secret<String>,
        expires_at: DateTime<Utc>,
    },
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
            Self::MfaCode { kind: FactorKind::Sms, .. } => "sms.mfa_code",
            Self::MfaCode { .. } => "email.mfa_code",
            Self::MfaFactorAdded { .. } => "audit.mfa_factor_added",
            Self::MfaFactorRemoved { .. } => "audit.mfa_factor_removed",
            Self::BackupCodeUsed { .. } => "audit.backup_code_used",
            Self::BackupCodesRegenerated { .. } => "audit.backup_codes_regenerated",
            Self::LoginNotice { .. } => "email.login_notice",
            Self::LoginThrottled { .. } => "email.login_throttled",
            Self::SignupAttempted { .. } => "email.signup_attempted",
            Self::OrganizationInvitation { .. } => "email.org_invitation",
            // The encoder publishes it as `audit.<kind>`.
            Self::Audit(_) => "audit.event",
        }
    }

    /// The user the event is about.
    #[must_use]
    pub const fn user_id(&self) -> UserId {
        match self {
            Self::VerificationRequested { user_id, .. }
            | Self::PasswordResetRequested { user_id, .. }
            | Self::PasswordChanged { user_id, .. }
            | Self::EmailChanged { user_id, .. }
            | Self::MfaCode { user_id, .. }
            | Self::MfaFactorAdded { user_id, .. }
            | Self::MfaFactorRemoved { user_id, .. }
            | Self::BackupCodeUsed { user_id, .. }
            | Self::BackupCodesRegenerated { user_id, .. }
            | Self::LoginNotice { user_id, .. }
            | Self::LoginThrottled { user_id, .. }
            | Self::SignupAttempted { user_id, .. }
            | Self::OrganizationInvitation { user_id, .. } => *user_id,
            Self::Audit(AuditRecord { subject: Some(user), .. })
            | Self::Audit(AuditRecord { subject: None, actor: Some(user), .. }) => *user,
            Self::Audit(_) => UserId::from_uuid(Uuid::nil()),
        }
    }
}
