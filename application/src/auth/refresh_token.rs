//! RefreshToken: trade a refresh token for a new pair, retiring the old one.
//!
//! Rotation is a compare-and-swap in storage, so two concurrent refreshes with
//! one token never both mint a pair. Presenting a token that was already
//! rotated means a copy exists (stolen, or replayed): the whole session is
//! revoked and its access tokens stop validating (RFC 9700 §4.14.2, OWASP
//! ASVS 5.0 V10.4.5). There is no grace window for a client that lost the
//! response to a refresh: such a client signs in again. A grace window would
//! let a thief who races the real client keep a live session, and the cost
//! of the strict choice is one extra login after a network failure.

use std::sync::Arc;

// The domain's refresh token is the secret presented; this module's
// `RefreshToken` is the use case named after the RPC.
use gatehouse_domain::{ClientInfo, RefreshToken as Presented, RevokeReason, TokenPair};

use crate::auth::minter::{TokenMinter, hash_refresh_token, looks_like_refresh_token};
use crate::auth::revoker::SessionRevoker;
use crate::error::AppError;
use crate::ports::store::{Rotation, SessionRepository};

/// Rotates refresh tokens.
#[derive(Clone, Debug)]
pub struct RefreshToken {
    sessions: Arc<dyn SessionRepository>,
    minter: TokenMinter,
    revoker: SessionRevoker,
}

impl RefreshToken {
    #[must_use]
    pub fn new(sessions: Arc<dyn SessionRepository>, minter: TokenMinter, revoker: SessionRevoker) -> Self {
        Self { sessions, minter, revoker }
    }

    /// Retires `presented` and returns a new pair for its session. `client`
    /// is where the refresh comes from: the session's last-used address and
    /// user agent follow it.
    ///
    /// # Errors
    /// - [`AppError::InvalidRefreshToken`]: never issued;
    /// - [`AppError::TokenExpired`]: past its expiry;
    /// - [`AppError::TokenRevoked`]: its session has ended, or it was already
    ///   used (the session is revoked now).
    pub async fn execute(&self, presented: &Presented, client: &ClientInfo) -> Result<TokenPair, AppError> {
        if !looks_like_refresh_token(presented) {
            return Err(AppError::InvalidRefreshToken);
        }
        let now = self.minter.now();
        let (next, record) = self.minter.new_refresh_token(now);
        match self.sessions.rotate_refresh_token(&hash_refresh_token(presented), &record, client, now).await? {
            // The store capped the expiry at the session's absolute end.
            Rotation::Rotated(session) => self.minter.token_pair(&session, next, session.expires_at, now),
            Rotation::Reused { session_id } => {
                tracing::warn!(%session_id, "refresh token reuse detected; revoking the session");
                self.revoker.revoke(session_id, RevokeReason::RefreshTokenReuse, None, client, None, now).await?;
                Err(AppError::TokenRevoked)
            }
            Rotation::Expired => Err(AppError::TokenExpired),
            Rotation::SessionEnded => Err(AppError::TokenRevoked),
            Rotation::Unknown => Err(AppError::InvalidRefreshToken),
        }
    }
}
