//! Logout: end a session so its tokens stop working everywhere at once.

use std::sync::Arc;

use gatehouse_domain::{AccessClaims, RefreshToken, RevokeReason};

use crate::auth::minter::{hash_refresh_token, looks_like_refresh_token};
use crate::auth::revoker::SessionRevoker;
use crate::error::AppError;
use crate::ports::clock::Clock;
use crate::ports::store::SessionRepository;

/// Which session to end.
#[derive(Debug, Clone)]
pub enum LogoutTarget {
    /// The caller's own session, named by a validated access token.
    Caller(AccessClaims),
    /// The session a refresh token (current or already rotated) belongs to.
    RefreshToken(RefreshToken),
}

/// Ends sessions.
#[derive(Clone)]
pub struct Logout {
    sessions: Arc<dyn SessionRepository>,
    revoker: SessionRevoker,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Logout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Logout").finish_non_exhaustive()
    }
}

impl Logout {
    #[must_use]
    pub fn new(sessions: Arc<dyn SessionRepository>, revoker: SessionRevoker, clock: Arc<dyn Clock>) -> Self {
        Self { sessions, revoker, clock }
    }

    /// Revokes the target session. Logging out twice succeeds twice.
    ///
    /// # Errors
    /// [`AppError::InvalidRefreshToken`] for a refresh token never issued;
    /// [`AppError::Unavailable`] when storage or the denylist is down.
    pub async fn execute(&self, target: LogoutTarget) -> Result<(), AppError> {
        let now = self.clock.now();
        match target {
            LogoutTarget::Caller(claims) => {
                self.revoker
                    .revoke(claims.session_id, RevokeReason::Logout, Some((claims.token_id, claims.expires_at)), now)
                    .await
            }
            LogoutTarget::RefreshToken(token) => {
                if !looks_like_refresh_token(&token) {
                    return Err(AppError::InvalidRefreshToken);
                }
                let session = self
                    .sessions
                    .find_by_refresh_token(&hash_refresh_token(&token))
                    .await?
                    .ok_or(AppError::InvalidRefreshToken)?;
                self.revoker.revoke(session.id, RevokeReason::Logout, None, now).await
            }
        }
    }
}
