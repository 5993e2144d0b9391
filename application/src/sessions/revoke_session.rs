//! RevokeSession: ends one of the caller's sessions.

use std::sync::Arc;

use gatehouse_domain::{AccessClaims, ClientInfo, RevokeReason, SessionId};

use crate::auth::SessionRevoker;
use crate::error::AppError;
use crate::ports::clock::Clock;
use crate::ports::store::SessionRepository;

/// Ends one of the caller's sessions.
#[derive(Clone, Debug)]
pub struct RevokeSession {
    sessions: Arc<dyn SessionRepository>,
    revoker: SessionRevoker,
    clock: Arc<dyn Clock>,
}

impl RevokeSession {
    #[must_use]
    pub fn new(sessions: Arc<dyn SessionRepository>, revoker: SessionRevoker, clock: Arc<dyn Clock>) -> Self {
        Self { sessions, revoker, clock }
    }

    /// Its tokens stop validating at once on every replica.
    ///
    /// # Errors
    /// `NotFound` for an unknown session or one of another user (no leak).
    pub async fn execute(&self, caller: &AccessClaims, id: SessionId, client: &ClientInfo) -> Result<(), AppError> {
        match self.sessions.get(id).await? {
            Some(s) if s.user_id() == caller.user_id => {}
            _ => return Err(AppError::NotFound("session")),
        }
        let now = self.clock.now();
        self.revoker.revoke(id, RevokeReason::RevokedByUser, Some(caller.user_id), client, None, now).await
    }
}
