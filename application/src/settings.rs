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
