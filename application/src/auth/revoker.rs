//! Ending a session everywhere at once: the session row first (the durable
//! truth), then the shared denylist so every replica refuses its access
//! tokens immediately.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use gatehouse_domain::{ClientInfo, RevokeReason, Session, SessionId, TokenId, UserId, revoke_all};

use crate::error::AppError;
use crate::events::{Audit, EventFactory};
use crate::ports::denylist::{DenyEntry, DenyKey, Denylist, DenylistError};
use crate::ports::unit_of_work::{UnitOfWork, UnitOfWorkFactory};
use crate::settings::TokenSettings;

/// A denylist write failed after storage committed: the change stands.
fn pending(e: DenylistError) -> AppError {
    tracing::warn!(error = %e, "denylist write failed; the rebuild from storage will write it");
    AppError::RevocationPending(Box::new(e))
}

/// Revokes sessions and propagates the revocation to the denylist.
#[derive(Clone, Debug)]
pub struct SessionRevoker {
    uow: Arc<dyn UnitOfWorkFactory>,
    denylist: Arc<dyn Denylist>,
    events: EventFactory,
    settings: TokenSettings,
}

impl SessionRevoker {
    #[must_use]
    pub fn new(
        uow: Arc<dyn UnitOfWorkFactory>,
        denylist: Arc<dyn Denylist>,
        events: EventFactory,
        settings: TokenSettings,
    ) -> Self {
        Self { uow, denylist, events, settings }
    }

    /// Revokes session `id` and denies its access tokens (and `token`, the
    /// access token in hand, by its `jti`). Idempotent: revoking a revoked
    /// session writes its denylist entries again, so a retry after a
    /// denylist outage completes the job. An unknown id does nothing.
    ///
    /// # Errors
    /// [`AppError::Unavailable`] when storage cannot be reached (nothing
    /// changed); [`AppError::RevocationPending`] when the session is ended
    /// but the denylist could not be written (the denylist's rebuild writes
    /// it; a retry is safe).
    pub async fn revoke(
        &self,
        id: SessionId,
        reason: RevokeReason,
        actor: Option<UserId>,
        client: &ClientInfo,
        token: Option<(TokenId, DateTime<Utc>)>,
        now: DateTime<Utc>,
    ) -> Result<(), AppError> {
        let mut uow = self.uow.begin().await?;
        let Some(mut session) = uow.sessions().get(id).await? else { return Ok(()) };
        let mut audit = Audit::of(reason.audit_kind())
            .subject(session.user_id())
            .client(client)
            .detail("session_id", id)
            .detail("reason", reason.as_str());
        if let Some(actor) = actor {
            audit = audit.actor(actor);
        }
        if session.revoke(now) {
            uow.sessions().save_revocations(std::slice::from_ref(&session), reason).await?;
        }
        uow.add_messages(vec![self.events.audit(now, audit)]);
        uow.commit().await?;
        let mut entries = Vec::with_capacity(2);
        entries.extend(self.session_entry(&session, now));
        if let Some((jti, exp)) = token.filter(|(_, exp)| *exp > now) {
            entries.push(DenyEntry { key: DenyKey::Token(jti), until: exp });
        }
        if !entries.is_empty() {
            self.denylist.deny(&entries, now).await.map_err(pending)?;
        }
        tracing::info!(session_id = %id, user_id = %session.user_id(), reason = reason.as_str(), "session revoked");
        Ok(())
    }

    /// The event factory revocations audit through.
    #[must_use]
    pub const fn events(&self) -> &EventFactory {
        &self.events
    }

    /// Ends every unrevoked session of `user` but `keep` inside `uow` (a
    /// password change or reset, "sign out everywhere else"); returns the
    /// sessions it ended, for [`Self::deny_revoked`] once `uow` is committed.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn revoke_all(
        uow: &dyn UnitOfWork,
        user: UserId,
        keep: Option<SessionId>,
        reason: RevokeReason,
        now: DateTime<Utc>,
    ) -> Result<Vec<Session>, AppError> {
        let ended = revoke_all(uow.sessions().unrevoked(user).await?, keep, now);
        uow.sessions().save_revocations(&ended, reason).await?;
        Ok(ended)
    }

    /// Denies the access tokens of sessions that storage has already
    /// revoked (a password change or reset, an account deletion).
    ///
    /// # Errors
    /// [`AppError::RevocationPending`] when the denylist cannot be reached;
    /// the denylist then goes stale and its rebuild from storage completes
    /// the job.
    pub async fn deny_revoked(&self, sessions: &[Session], now: DateTime<Utc>) -> Result<(), AppError> {
        let entries: Vec<_> = sessions.iter().filter_map(|s| self.session_entry(s, now)).collect();
        self.deny(&entries, now).await
    }

    /// Writes `entries` after storage has committed what they reflect.
    ///
    /// # Errors
    /// [`AppError::RevocationPending`] when the denylist cannot be reached.
    pub async fn deny(&self, entries: &[DenyEntry], now: DateTime<Utc>) -> Result<(), AppError> {
        if !entries.is_empty() {
            self.denylist.deny(entries, now).await.map_err(pending)?;
        }
        Ok(())
    }

    /// The denylist entry (and tombstone) that refuses every access token of
    /// an account deleted at `now`: none was minted later, so none lives
    /// past one access-token lifetime from now.
    #[must_use]
    pub fn account_entry(&self, user: UserId, now: DateTime<Utc>) -> DenyEntry {
        DenyEntry { key: DenyKey::User(user), until: now + self.settings.access_ttl }
    }

    /// The denylist entry that refuses every access token of a revoked
    /// session: it lives as long as the newest one could (`last_used_at`
    /// is when the last token was minted). `None` when all have expired.
    #[must_use]
    pub fn session_entry(&self, session: &Session, now: DateTime<Utc>) -> Option<DenyEntry> {
        let until = session.last_used_at() + self.settings.access_ttl;
        (until > now).then_some(DenyEntry { key: DenyKey::Session(session.id()), until })
    }
}
