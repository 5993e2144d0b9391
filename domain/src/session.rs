//! Login sessions.
//!
//! A session is one sign-in on one device. It owns a chain of refresh tokens
//! (each rotation retires the previous one) and every access token minted from
//! that chain carries its id as `sid`, so revoking the session ends them all.
//! The session row in storage is the durable truth about revocation.

use chrono::{DateTime, Utc};

use crate::ids::{SessionId, UserId};

/// Where a request came from, as far as the server can tell.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientInfo {
    /// The `user-agent` the client sent, shortened to a sane length.
    pub user_agent: Option<String>,
    /// The client's IP address in text form.
    pub ip: Option<String>,
}

impl ClientInfo {
    /// Longest user agent kept; the rest is cut off.
    pub const MAX_USER_AGENT_CHARS: usize = 512;

    /// Builds client data from raw request values, bounding their size.
    #[must_use]
    pub fn new(user_agent: Option<&str>, ip: Option<String>) -> Self {
        let user_agent = user_agent
            .map(|ua| ua.chars().filter(|c| !c.is_control()).take(Self::MAX_USER_AGENT_CHARS).collect::<String>())
            .filter(|ua| !ua.is_empty());
        Self { user_agent, ip }
    }
}

/// Why a session ended before its time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RevokeReason {
    /// The user logged out.
    Logout,
    /// A refresh token that had already been rotated was presented again:
    /// someone holds a copy, so the whole session is ended (RFC 9700 §4.14.2).
    RefreshTokenReuse,
    /// The password was changed; the user's other sessions end.
    PasswordChanged,
    /// The password was reset by email; every session ends.
    PasswordReset,
    /// The account was deleted.
    AccountDeleted,
}

impl RevokeReason {
    /// Stable text stored with the session and shown in audit data.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Logout => "logout",
            Self::RefreshTokenReuse => "refresh_token_reuse",
            Self::PasswordChanged => "password_changed",
            Self::PasswordReset => "password_reset",
            Self::AccountDeleted => "account_deleted",
        }
    }

    /// Reads the stored text back.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "logout" => Some(Self::Logout),
            "refresh_token_reuse" => Some(Self::RefreshTokenReuse),
            "password_changed" => Some(Self::PasswordChanged),
            "password_reset" => Some(Self::PasswordReset),
            "account_deleted" => Some(Self::AccountDeleted),
            _ => None,
        }
    }
}

/// A login session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub id: SessionId,
    pub user_id: UserId,
    pub created_at: DateTime<Utc>,
    /// The last time a token pair was issued for this session (login or refresh).
    pub last_used_at: DateTime<Utc>,
    /// When the current refresh token, and so the session, expires.
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub client: ClientInfo,
}

impl Session {
    /// Whether the session can still mint tokens at `now`.
    #[must_use]
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && now < self.expires_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;
    use uuid::Uuid;

    fn session(now: DateTime<Utc>) -> Session {
        Session {
            id: SessionId::from_uuid(Uuid::nil()),
            user_id: UserId::from_uuid(Uuid::nil()),
            created_at: now,
            last_used_at: now,
            expires_at: now + TimeDelta::days(30),
            revoked_at: None,
            client: ClientInfo::default(),
        }
    }

    #[test]
    fn session_is_active_until_expiry_or_revocation() {
        let now = DateTime::<Utc>::UNIX_EPOCH + TimeDelta::days(20_000);
        let mut s = session(now);
        assert!(s.is_active(now));
        assert!(!s.is_active(now + TimeDelta::days(30)));
        s.revoked_at = Some(now);
        assert!(!s.is_active(now));
    }

    #[test]
    fn client_info_bounds_and_cleans_the_user_agent() {
        let info = ClientInfo::new(Some(&"a\u{0}b".repeat(400)), None);
        let ua = info.user_agent.unwrap_or_default();
        assert_eq!(ua.chars().count(), ClientInfo::MAX_USER_AGENT_CHARS);
        assert!(!ua.contains('\u{0}'));
        assert_eq!(ClientInfo::new(Some(""), None).user_agent, None);
    }

    #[test]
    fn revoke_reason_text_round_trips() {
        for r in [
            RevokeReason::Logout,
            RevokeReason::RefreshTokenReuse,
            RevokeReason::PasswordChanged,
            RevokeReason::PasswordReset,
            RevokeReason::AccountDeleted,
        ] {
            assert_eq!(RevokeReason::parse(r.as_str()), Some(r));
        }
    }
}
