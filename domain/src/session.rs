//! Login sessions.
//!
//! A session is one sign-in on one device. It owns a chain of refresh tokens
//! (each rotation retires the previous one) and every access token minted from
//! that chain carries its id as `sid`, so revoking the session ends them all.
//! The session row in storage is the durable truth about revocation.

use chrono::{DateTime, Utc};

use crate::ids::{OrganizationId, SessionId, UserId};

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
    /// The user ended it from another session (`RevokeSession`, `RevokeOtherSessions`).
    RevokedByUser,
    /// The session was scoped to an organization the user is no longer a
    /// member of (removed, left, or the organization was deleted).
    OrganizationLeft,
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
            Self::RevokedByUser => "revoked_by_user",
            Self::OrganizationLeft => "organization_left",
        }
    }

    /// The audit kind of a revocation for this reason.
    #[must_use]
    pub const fn audit_kind(self) -> &'static str {
        match self {
            Self::Logout => "session.logout",
            Self::RefreshTokenReuse => "session.refresh_token_reuse",
            _ => "session.revoked",
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
            "revoked_by_user" => Some(Self::RevokedByUser),
            "organization_left" => Some(Self::OrganizationLeft),
            _ => None,
        }
    }
}

/// A login session. Its fields change only through its rules ([`Session::rotate`],
/// [`Session::revoke`]); storage reads it back with [`Session::restore`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    id: SessionId,
    user_id: UserId,
    created_at: DateTime<Utc>,
    /// The last time a token pair was issued for this session (login or refresh).
    last_used_at: DateTime<Utc>,
    /// When the current refresh token, and so the session, expires: the idle
    /// timeout, moved forward by every refresh, never past `absolute_expires_at`.
    expires_at: DateTime<Utc>,
    /// The absolute end of the session, however active: re-login after it.
    absolute_expires_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
    client: ClientInfo,
    /// The organization the session's tokens are issued for, if any; a
    /// refresh re-checks the membership behind it.
    organization: Option<OrganizationId>,
}

/// A short description of the device behind a user agent, for a session
/// list: `Firefox on Linux`, `Safari on iPhone`, `grpcurl`.
#[must_use]
pub fn describe_device(user_agent: Option<&str>) -> String {
    let Some(ua) = user_agent.filter(|ua| !ua.trim().is_empty()) else { return "unknown device".to_owned() };
    let lower = ua.to_ascii_lowercase();
    let browser = [
        ("edg/", "Edge"),
        ("opr/", "Opera"),
        ("firefox/", "Firefox"),
        ("chrome/", "Chrome"),
        ("safari/", "Safari"),
        ("grpcurl", "grpcurl"),
        ("grpc-", "gRPC client"),
        ("tonic/", "gRPC client"),
        ("curl/", "curl"),
    ]
    .iter()
    .find(|(needle, _)| lower.contains(needle))
    .map(|(_, name)| *name);
    let os = [
        ("iphone", "iPhone"),
        ("ipad", "iPad"),
        ("android", "Android"),
        ("windows", "Windows"),
        ("mac os x", "macOS"),
        ("macintosh", "macOS"),
        ("cros", "ChromeOS"),
        ("linux", "Linux"),
    ]
    .iter()
    .find(|(needle, _)| lower.contains(needle))
    .map(|(_, name)| *name);
    match (browser, os) {
        (Some(b), Some(o)) => format!("{b} on {o}"),
        (Some(b), None) => b.to_owned(),
        (None, Some(o)) => o.to_owned(),
        (None, None) => ua.split(['/', ' ']).next().unwrap_or("unknown device").chars().take(40).collect(),
    }
}

impl Session {
    /// A session a login opens at `now`: it ends when its first refresh token
    /// does (`token_expires_at`), never past `absolute_expires_at`.
    #[must_use]
    pub fn open(
        id: SessionId,
        user_id: UserId,
        client: ClientInfo,
        now: DateTime<Utc>,
        token_expires_at: DateTime<Utc>,
        absolute_expires_at: DateTime<Utc>,
    ) -> Self {
        Self {
            id,
            user_id,
            created_at: now,
            last_used_at: now,
            expires_at: token_expires_at.min(absolute_expires_at),
            absolute_expires_at,
            revoked_at: None,
            client,
            organization: None,
        }
    }

    /// A session as storage holds it, one argument per stored column.
    #[must_use]
    #[allow(clippy::too_many_arguments)]
    pub const fn restore(
        id: SessionId,
        user_id: UserId,
        created_at: DateTime<Utc>,
        last_used_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        absolute_expires_at: DateTime<Utc>,
        revoked_at: Option<DateTime<Utc>>,
        client: ClientInfo,
    ) -> Self {
        Self {
            id,
            user_id,
            created_at,
            last_used_at,
            expires_at,
            absolute_expires_at,
            revoked_at,
            client,
            organization: None,
        }
    }

    /// The session scoped to `organization` (its tokens carry it).
    #[must_use]
    pub const fn with_organization(mut self, organization: Option<OrganizationId>) -> Self {
        self.organization = organization;
        self
    }

    /// The organization the session's tokens are issued for.
    #[must_use]
    pub const fn organization(&self) -> Option<OrganizationId> {
        self.organization
    }

    #[must_use]
    pub const fn id(&self) -> SessionId {
        self.id
    }

    #[must_use]
    pub const fn user_id(&self) -> UserId {
        self.user_id
    }

    #[must_use]
    pub const fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }

    /// The last time a token pair was issued for this session (login or refresh).
    #[must_use]
    pub const fn last_used_at(&self) -> DateTime<Utc> {
        self.last_used_at
    }

    /// When the current refresh token, and so the session, expires.
    #[must_use]
    pub const fn expires_at(&self) -> DateTime<Utc> {
        self.expires_at
    }

    /// The absolute end of the session, however active.
    #[must_use]
    pub const fn absolute_expires_at(&self) -> DateTime<Utc> {
        self.absolute_expires_at
    }

    #[must_use]
    pub const fn revoked_at(&self) -> Option<DateTime<Utc>> {
        self.revoked_at
    }

    /// Where the session was last used from.
    #[must_use]
    pub const fn client(&self) -> &ClientInfo {
        &self.client
    }

    /// Whether the session can still mint tokens at `now`.
    #[must_use]
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && now < self.expires_at
    }

    /// Ends the session at `now`; an earlier revocation keeps its time (the
    /// moment its tokens died, which the denylist and the audit trail rely
    /// on). `true` when this call ended it.
    pub fn revoke(&mut self, now: DateTime<Utc>) -> bool {
        if self.revoked_at.is_some() {
            return false;
        }
        self.revoked_at = Some(now);
        true
    }
}

/// Why a session cannot take a new refresh token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the session has ended")]
pub struct SessionEnded;

impl Session {
    /// Moves the session on with a new refresh token at `now` (a refresh):
    /// it was used now, from `client` (only values the client sent replace
    /// the stored ones), and it now ends when the new token expires, but
    /// never past its absolute end. Returns that end, which is also the new
    /// token's expiry.
    ///
    /// # Errors
    /// [`SessionEnded`] when the session is revoked or past either end;
    /// nothing changes then.
    pub fn rotate(
        &mut self,
        now: DateTime<Utc>,
        token_expires_at: DateTime<Utc>,
        client: &ClientInfo,
    ) -> Result<DateTime<Utc>, SessionEnded> {
        if !self.is_active(now) || now >= self.absolute_expires_at {
            return Err(SessionEnded);
        }
        self.last_used_at = now;
        self.expires_at = token_expires_at.min(self.absolute_expires_at);
        if client.ip.is_some() {
            self.client.ip.clone_from(&client.ip);
        }
        if client.user_agent.is_some() {
            self.client.user_agent.clone_from(&client.user_agent);
        }
        Ok(self.expires_at)
    }
}

/// Ends every unrevoked session in `sessions` but `keep`, at `now`; returns
/// the ones this ended, oldest first.
pub fn revoke_all(sessions: Vec<Session>, keep: Option<SessionId>, now: DateTime<Utc>) -> Vec<Session> {
    let mut ended: Vec<Session> =
        sessions.into_iter().filter(|s| Some(s.id) != keep).filter_map(|mut s| s.revoke(now).then_some(s)).collect();
    ended.sort_by_key(|s| (s.created_at, s.id));
    ended
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
            absolute_expires_at: now + TimeDelta::days(90),
            revoked_at: None,
            client: ClientInfo::default(),
            organization: None,
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
    fn a_rotation_never_outlives_the_absolute_end_and_keeps_unsent_client_data() {
        let now = DateTime::<Utc>::UNIX_EPOCH + TimeDelta::days(20_000);
        let mut s = session(now);
        s.client = ClientInfo::new(Some("Firefox/1"), Some("192.0.2.1".into()));
        let later = now + TimeDelta::days(85);
        s.expires_at = later + TimeDelta::days(1);
        let end = s.rotate(later, later + TimeDelta::days(30), &ClientInfo::new(None, Some("198.51.100.7".into())));
        assert_eq!(end, Ok(now + TimeDelta::days(90)));
        assert_eq!((s.last_used_at, s.expires_at), (later, now + TimeDelta::days(90)));
        assert_eq!(s.client.ip.as_deref(), Some("198.51.100.7"));
        assert_eq!(s.client.user_agent.as_deref(), Some("Firefox/1"));
    }

    #[test]
    fn an_ended_session_takes_no_new_token() {
        let now = DateTime::<Utc>::UNIX_EPOCH + TimeDelta::days(20_000);
        let mut revoked = session(now);
        revoked.revoked_at = Some(now);
        assert_eq!(revoked.rotate(now, now + TimeDelta::days(30), &ClientInfo::default()), Err(SessionEnded));
        assert_eq!(revoked.last_used_at, now, "a refusal changes nothing");
        let mut idle = session(now);
        let after = now + TimeDelta::days(30);
        assert_eq!(idle.rotate(after, after + TimeDelta::days(30), &ClientInfo::default()), Err(SessionEnded));
        let mut old = session(now);
        old.expires_at = now + TimeDelta::days(100);
        let past = now + TimeDelta::days(90);
        assert_eq!(old.rotate(past, past + TimeDelta::days(30), &ClientInfo::default()), Err(SessionEnded));
    }

    #[test]
    fn a_revocation_keeps_its_first_time() {
        let now = DateTime::<Utc>::UNIX_EPOCH + TimeDelta::days(20_000);
        let mut s = session(now);
        assert!(s.revoke(now));
        assert!(!s.revoke(now + TimeDelta::hours(1)));
        assert_eq!(s.revoked_at, Some(now));
    }

    #[test]
    fn revoke_all_spares_the_kept_and_the_already_ended() {
        let now = DateTime::<Utc>::UNIX_EPOCH + TimeDelta::days(20_000);
        let mut a = session(now);
        a.id = SessionId::from_uuid(Uuid::from_u128(1));
        let mut b = session(now);
        b.id = SessionId::from_uuid(Uuid::from_u128(2));
        let mut c = session(now);
        c.id = SessionId::from_uuid(Uuid::from_u128(3));
        c.revoked_at = Some(now - TimeDelta::hours(1));
        let ended = revoke_all(vec![c, b, a.clone()], Some(a.id), now);
        assert_eq!(ended.iter().map(|s| s.id).collect::<Vec<_>>(), [SessionId::from_uuid(Uuid::from_u128(2))]);
        assert_eq!(ended[0].revoked_at, Some(now));
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
    fn devices_are_described_briefly() {
        let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
        assert_eq!(describe_device(Some(firefox)), "Firefox on Linux");
        let iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Mobile/15E148 Safari/604.1";
        assert_eq!(describe_device(Some(iphone)), "Safari on iPhone");
        assert_eq!(describe_device(Some("grpcurl/v1.8.6 grpc-go/1.44.1-dev")), "grpcurl");
        assert_eq!(describe_device(Some("ExampleBrowser/7.1")), "ExampleBrowser");
        assert_eq!(describe_device(None), "unknown device");
    }

    #[test]
    fn revoke_reason_text_round_trips() {
        for r in [
            RevokeReason::Logout,
            RevokeReason::RefreshTokenReuse,
            RevokeReason::PasswordChanged,
            RevokeReason::PasswordReset,
            RevokeReason::AccountDeleted,
            RevokeReason::RevokedByUser,
        ] {
            assert_eq!(RevokeReason::parse(r.as_str()), Some(r));
        }
    }
}
