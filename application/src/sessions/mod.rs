//! The caller's sessions (`SessionService`), and pruning ended ones.
//! Every use case acts on the caller's own sessions only: another user's
//! session id is answered with `NOT_FOUND`, exactly like an unknown one.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use gatehouse_domain::{AccessClaims, ClientInfo, RevokeReason, Session, SessionId};

use crate::auth::SessionRevoker;
use crate::error::AppError;
use crate::events::Audit;
use crate::ports::clock::Clock;
use crate::ports::store::SessionRepository;
use crate::settings::TokenSettings;

/// What the session use cases are built from.
#[derive(Clone)]
pub struct SessionDeps {
    pub sessions: Arc<dyn SessionRepository>,
    pub revoker: SessionRevoker,
    pub clock: Arc<dyn Clock>,
    pub settings: TokenSettings,
}

impl std::fmt::Debug for SessionDeps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionDeps").finish_non_exhaustive()
    }
}

/// One of the caller's sessions, and whether it is the one asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionView {
    pub session: Session,
    pub current: bool,
}

/// Lists the caller's live sessions.
#[derive(Clone, Debug)]
pub struct ListSessions(SessionDeps);

impl ListSessions {
    #[must_use]
    pub const fn new(deps: SessionDeps) -> Self {
        Self(deps)
    }

    /// Newest first; the caller's own session is marked current.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn execute(&self, caller: &AccessClaims) -> Result<Vec<SessionView>, AppError> {
        let live = self.0.sessions.list_live(caller.user_id, self.0.clock.now()).await?;
        Ok(live.into_iter().map(|session| SessionView { current: session.id == caller.session_id, session }).collect())
    }
}

/// Ends one of the caller's sessions.
#[derive(Clone, Debug)]
pub struct RevokeSession(SessionDeps);

impl RevokeSession {
    #[must_use]
    pub const fn new(deps: SessionDeps) -> Self {
        Self(deps)
    }

    /// Its tokens stop validating at once on every replica.
    ///
    /// # Errors
    /// `NotFound` for an unknown session or one of another user (no leak).
    pub async fn execute(&self, caller: &AccessClaims, id: SessionId, client: &ClientInfo) -> Result<(), AppError> {
        match self.0.sessions.get(id).await? {
            Some(s) if s.user_id == caller.user_id => {}
            _ => return Err(AppError::NotFound("session")),
        }
        let now = self.0.clock.now();
        self.0.revoker.revoke(id, RevokeReason::RevokedByUser, Some(caller.user_id), client, None, now).await
    }
}

/// Ends every session of the caller except the current one.
#[derive(Clone, Debug)]
pub struct RevokeOtherSessions(SessionDeps);

impl RevokeOtherSessions {
    #[must_use]
    pub const fn new(deps: SessionDeps) -> Self {
        Self(deps)
    }

    /// Returns how many sessions ended.
    ///
    /// # Errors
    /// Storage or denylist failures.
    pub async fn execute(&self, caller: &AccessClaims, client: &ClientInfo) -> Result<usize, AppError> {
        let now = self.0.clock.now();
        let revoked = self
            .0
            .sessions
            .revoke_all(
                caller.user_id,
                Some(caller.session_id),
                RevokeReason::RevokedByUser,
                &[self
                    .0
                    .revoker
                    .events()
                    .audit(now, Audit::by("session.revoked_others", caller.user_id).client(client))],
                now,
            )
            .await?;
        self.0.revoker.deny_revoked(&revoked, now).await?;
        tracing::info!(user_id = %caller.user_id, revoked = revoked.len(), "other sessions revoked");
        Ok(revoked.len())
    }
}

/// Deletes sessions that ended long enough ago. A revoked session is kept as
/// long as its access tokens could live, since the denylist is rebuilt from
/// revoked sessions.
#[derive(Clone, Debug)]
pub struct PruneSessions(SessionDeps);

impl PruneSessions {
    #[must_use]
    pub const fn new(deps: SessionDeps) -> Self {
        Self(deps)
    }

    /// The cut-off: sessions that ended before it can go.
    #[must_use]
    pub fn cutoff(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now - self.0.settings.access_ttl - chrono::TimeDelta::minutes(1)
    }

    /// # Errors
    /// Storage failures.
    pub async fn execute(&self) -> Result<u64, AppError> {
        let pruned = self.0.sessions.prune(self.cutoff(self.0.clock.now())).await?;
        if pruned > 0 {
            tracing::info!(pruned, "ended sessions pruned");
        }
        Ok(pruned)
    }
}

#[cfg(test)]
mod tests;
