//! The audit trail: security-relevant facts, who did what to whom, when,
//! from where, and with what outcome (OWASP ASVS 5.0 V16.3).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::ids::UserId;
use crate::session::ClientInfo;

/// Whether the audited attempt succeeded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditOutcome {
    Success,
    Failure,
}

impl AuditOutcome {
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
        }
    }

    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "success" => Some(Self::Success),
            "failure" => Some(Self::Failure),
            _ => None,
        }
    }
}

/// One audit row. Never holds a secret: details are small, plain facts
/// (a reason, a factor kind, a session id).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRecord {
    pub id: Uuid,
    /// What happened: `user.signed_up`, `login.succeeded`, `login.failed`,
    /// `session.revoked`, … (stable text).
    pub kind: String,
    pub occurred_at: DateTime<Utc>,
    /// Who did it (`None` for an anonymous caller).
    pub actor: Option<UserId>,
    /// Whose account it concerns.
    pub subject: Option<UserId>,
    pub organization: Option<String>,
    pub client: ClientInfo,
    pub outcome: AuditOutcome,
    /// Small plain facts, in order.
    pub details: Vec<(String, String)>,
}
