//! Logout: end a session so its tokens stop working everywhere at once.

use std::sync::Arc;

use gatehouse_domain::{ClientInfo, RefreshToken, RevokeReason, Secret};

use crate::auth::minter::{hash_refresh_token, looks_like_refresh_token};
use crate::auth::revoker::SessionRevoker;
use crate::error::{AppError, TokenRejection};
use crate::ports::clock::Clock;
use crate::ports::store::SessionRepository;
use crate::ports::tokens::AccessTokenVerifier;

/// Which session to end.
#[derive(Debug, Clone)]
pub enum LogoutTarget {
    /// The caller's own session, named by its access token. The token must
    /// be genuine and unexpired; whether it is already revoked does not
    /// matter (logging out twice succeeds twice).
    AccessToken(Secret<String>),
    /// The session a refresh token (current or already rotated) belongs to.
    RefreshToken(RefreshToken),
}

/// Ends sessions.
#[derive(Clone, Debug)]
pub struct Logout {
    sessions: Arc<dyn SessionRepository>,
    revoker: SessionRevoker,
    verifier: Arc<dyn AccessTokenVerifier>,
    clock: Arc<dyn Clock>,
}

impl Logout {
    #[must_use]
    pub fn new(
        sessions: Arc<dyn SessionRepository>,
        revoker: SessionRevoker,
        verifier: Arc<dyn AccessTokenVerifier>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { sessions, revoker, verifier, clock }
    }

    /// Revokes the target session. Logging out twice succeeds twice.
    ///
    /// # Errors
    /// [`AppError::InvalidToken`] / [`AppError::TokenExpired`] for an access
    /// token that is forged or expired (log out with the refresh token then);
    /// [`AppError::InvalidRefreshToken`] for a refresh token never issued;
    /// [`AppError::Unavailable`] when storage or the denylist is down.
    pub async fn execute(&self, target: LogoutTarget, client: &ClientInfo) -> Result<(), AppError> {
        let now = self.clock.now();
        match target {
            LogoutTarget::AccessToken(token) => {
                let claims = self.verifier.verify(token.expose(), now).map_err(|r| match r {
                    TokenRejection::Expired => AppError::TokenExpired,
                    other => AppError::InvalidToken(other),
                })?;
                let token = Some((claims.token_id, claims.expires_at));
                self.revoker
                    .revoke(claims.session_id, RevokeReason::Logout, Some(claims.user_id), client, token, now)
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
                self.revoker
                    .revoke(session.id(), RevokeReason::Logout, Some(session.user_id()), client, None, now)
                    .await
            }
        }
    }
}
