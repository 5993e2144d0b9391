//! The session repository and the unit of work's session writes.

use super::*;
use crate::ports::store::Tombstone;

#[async_trait]
impl SessionRepository for InMemoryStore {
    async fn find_by_refresh_token(&self, hash: &TokenHash) -> Result<Option<Session>, StoreError> {
        let state = self.state.lock().await;
        Ok(state.tokens.get(hash).and_then(|row| state.sessions.get(&row.session_id)).cloned())
    }

    async fn get(&self, id: SessionId) -> Result<Option<Session>, StoreError> {
        Ok(self.state.lock().await.sessions.get(&id).cloned())
    }

    async fn list_live(&self, user: UserId, now: DateTime<Utc>) -> Result<Vec<Session>, StoreError> {
        let state = self.state.lock().await;
        let mut live: Vec<Session> =
            state.sessions.values().filter(|s| s.user_id() == user && s.is_active(now)).cloned().collect();
        live.sort_by(|a, b| b.created_at().cmp(&a.created_at()).then(b.id().cmp(&a.id())));
        Ok(live)
    }

    async fn seen_device(&self, user: UserId, client: &ClientInfo) -> Result<bool, StoreError> {
        let state = self.state.lock().await;
        Ok(state
            .sessions
            .values()
            .any(|s| s.user_id() == user && s.client().ip == client.ip && s.client().user_agent == client.user_agent))
    }

    async fn revoked_since(&self, since: DateTime<Utc>) -> Result<Vec<Session>, StoreError> {
        let state = self.state.lock().await;
        let mut revoked: Vec<Session> =
            state.sessions.values().filter(|s| s.revoked_at().is_some_and(|r| r >= since)).cloned().collect();
        // SQL orders by revoked_at alone; the id only makes the fake's ties repeatable.
        revoked.sort_by_key(|s| (s.revoked_at(), s.id()));
        Ok(revoked)
    }

    async fn tombstones(&self, now: DateTime<Utc>) -> Result<Vec<Tombstone>, StoreError> {
        let state = self.state.lock().await;
        let mut live: Vec<Tombstone> = state
            .tombstones
            .iter()
            .filter(|(_, until)| **until > now)
            .map(|(user, until)| Tombstone { user: *user, until: *until })
            .collect();
        live.sort_by_key(|t| (t.until, t.user));
        Ok(live)
    }

    async fn prune(&self, ended_before: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut state = self.state.lock().await;
        let tombstones = state.tombstones.len();
        state.tombstones.retain(|_, until| *until >= ended_before);
        let tombstones = tombstones - state.tombstones.len();
        let before = state.sessions.len() + tombstones;
        state
            .sessions
            .retain(|_, s| s.expires_at() >= ended_before && s.revoked_at().is_none_or(|r| r >= ended_before));
        let kept: Vec<SessionId> = state.sessions.keys().copied().collect();
        state.tokens.retain(|_, t| kept.contains(&t.session_id));
        Ok((before - state.sessions.len()) as u64)
    }
}

#[async_trait]
impl SessionWrites for MemoryUnitOfWork {
    async fn insert(&self, session: &Session, refresh: &NewRefreshToken) -> Result<(), StoreError> {
        self.with(|state| {
            state.require_user(session.user_id(), "session")?;
            state.sessions.insert(session.id(), session.clone());
            state.tokens.insert(
                refresh.hash,
                RefreshRow { session_id: session.id(), expires_at: refresh.expires_at, rotated: false },
            );
            Ok(())
        })
    }

    async fn get(&self, id: SessionId) -> Result<Option<Session>, StoreError> {
        Ok(self.with(|state| state.sessions.get(&id).cloned()))
    }

    async fn unrevoked(&self, user: UserId) -> Result<Vec<Session>, StoreError> {
        Ok(self.with(|state| {
            let mut found: Vec<Session> =
                state.sessions.values().filter(|s| s.user_id() == user && s.revoked_at().is_none()).cloned().collect();
            found.sort_by_key(|s| (s.created_at(), s.id()));
            found
        }))
    }

    async fn owner_of_refresh_token(&self, presented: &TokenHash) -> Result<Option<UserId>, StoreError> {
        Ok(self.with(|state| {
            let row = state.tokens.get(presented)?;
            state.sessions.get(&row.session_id).map(Session::user_id)
        }))
    }

    async fn retire_refresh_token(&self, presented: &TokenHash, now: DateTime<Utc>) -> Result<Retirement, StoreError> {
        Ok(self.with(|state| {
            let Some(row) = state.tokens.get_mut(presented) else { return Retirement::Unknown };
            let session_id = row.session_id;
            if row.rotated {
                Retirement::Reused { session_id }
            } else if row.expires_at <= now {
                Retirement::Expired
            } else {
                row.rotated = true;
                Retirement::Retired { session_id }
            }
        }))
    }

    async fn save_rotation(&self, session: &Session, next: &NewRefreshToken) -> Result<(), StoreError> {
        self.with(|state| {
            state.sessions.insert(session.id(), session.clone());
            state.tokens.insert(
                next.hash,
                RefreshRow { session_id: session.id(), expires_at: next.expires_at, rotated: false },
            );
        });
        Ok(())
    }

    async fn save_revocations(&self, sessions: &[Session], _reason: RevokeReason) -> Result<(), StoreError> {
        self.with(|state| {
            for s in sessions {
                if let (Some(stored), Some(at)) = (state.sessions.get_mut(&s.id()), s.revoked_at()) {
                    stored.revoke(at);
                }
            }
        });
        Ok(())
    }
}
