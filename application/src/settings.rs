//! Settings the token use cases need, read from configuration by `bin`.

use chrono::TimeDelta;

/// Lifetimes of the tokens Gatehouse issues.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenSettings {
    /// Access-token life (`exp - iat`). Default 15 minutes.
    pub access_ttl: TimeDelta,
    /// Refresh-token life from issue; every rotation starts a new one, so
    /// this is the session's idle timeout. Default 30 days.
    pub refresh_ttl: TimeDelta,
    /// The absolute life of a session, however active. Default 90 days.
    pub session_lifetime: TimeDelta,
}

impl Default for TokenSettings {
    fn default() -> Self {
        Self {
            access_ttl: TimeDelta::minutes(15),
            refresh_ttl: TimeDelta::days(30),
            session_lifetime: TimeDelta::days(90),
        }
    }
}

/// Settings of email verification and password reset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerificationSettings {
    /// Base of the links in emails, from configuration, never from request
    /// headers: a forged `Host` cannot point a reset link elsewhere.
    pub public_url: String,
    /// Life of an email verification. Default 5 days.
    pub verify_email_ttl: TimeDelta,
    /// Life of a password reset. Default 2 hours.
    pub reset_password_ttl: TimeDelta,
    /// Wrong codes allowed per verification. Default 5.
    pub max_code_attempts: u32,
    /// Wrong codes allowed per user and purpose within `activity_window`,
    /// however many new verifications were requested. Default 10.
    pub max_failures_per_window: u32,
    /// Verifications issued per user and purpose within `activity_window`;
    /// further requests are answered the same but send nothing. Default 5.
    pub max_issued_per_window: u32,
    /// Default 1 hour.
    pub activity_window: TimeDelta,
}

impl Default for VerificationSettings {
    fn default() -> Self {
        Self {
            public_url: "http://localhost:8080".to_owned(),
            verify_email_ttl: TimeDelta::days(5),
            reset_password_ttl: TimeDelta::hours(2),
            max_code_attempts: 5,
            max_failures_per_window: 10,
            max_issued_per_window: 5,
            activity_window: TimeDelta::hours(1),
        }
    }
}

/// Which second factors users may enrol and use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EnabledFactors {
    pub totp: bool,
    pub email: bool,
    pub sms: bool,
}

/// Settings of second factors and the login challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MfaSettings {
    /// The issuer shown by authenticator apps.
    pub issuer: String,
    /// TOTP steps accepted either side of the current one (0 or 1).
    pub totp_skew: u8,
    pub enabled: EnabledFactors,
    /// Life of a login challenge. Default 5 minutes.
    pub challenge_ttl: TimeDelta,
    /// Wrong codes per challenge (and per email/SMS code). Default 5.
    pub max_attempts: u32,
    /// Life of an email/SMS code. Default 10 minutes (OWASP ASVS 5.0 V6.5.5).
    pub code_ttl: TimeDelta,
    /// Wrong codes per account within `failure_window` before logins with a
    /// second factor are refused for a while. Default 10 in 15 minutes.
    pub account_failure_limit: u32,
    pub failure_window: TimeDelta,
    /// Backup codes issued at a time. Default 10.
    pub backup_code_count: usize,
}

impl Default for MfaSettings {
    fn default() -> Self {
        Self {
            issuer: "Gatehouse".to_owned(),
            totp_skew: 1,
            enabled: EnabledFactors { totp: true, email: true, sms: true },
            challenge_ttl: TimeDelta::minutes(5),
            max_attempts: 5,
            code_ttl: TimeDelta::minutes(10),
            account_failure_limit: 10,
            failure_window: TimeDelta::minutes(15),
            backup_code_count: 10,
        }
    }
}

/// Settings of organizations and their invitations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrganizationSettings {
    /// Base of invitation links, from configuration (never request headers).
    pub public_url: String,
    /// Life of an invitation. Default 7 days.
    pub invitation_ttl: TimeDelta,
}

impl Default for OrganizationSettings {
    fn default() -> Self {
        Self { public_url: "http://localhost:8080".to_owned(), invitation_ttl: TimeDelta::days(7) }
    }
}
