//! Settings the token use cases need, read from configuration by `bin`.

use chrono::TimeDelta;

/// Lifetimes of the tokens Gatehouse issues.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenSettings {
    /// Access-token life (`exp - iat`). Default 15 minutes.
    pub access_ttl: TimeDelta,
    /// Refresh-token life from issue; every rotation starts a new one. Default 30 days.
    pub refresh_ttl: TimeDelta,
}

impl Default for TokenSettings {
    fn default() -> Self {
        Self { access_ttl: TimeDelta::minutes(15), refresh_ttl: TimeDelta::days(30) }
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
    /// Whether login needs a verified address. Default on.
    pub require_verified_email: bool,
}

impl Default for VerificationSettings {
    fn default() -> Self {
        Self {
            public_url: "http://localhost:8080".to_owned(),
            verify_email_ttl: TimeDelta::days(5),
            reset_password_ttl: TimeDelta::hours(2),
            max_code_attempts: 5,
            require_verified_email: true,
        }
    }
}
