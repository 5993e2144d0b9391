//! ValidateToken: is this access token valid right now, and whose is it?
//!
//! The hot path of every gateway request: one signature check in memory and
//! one denylist look-up, no SQL. If the denylist cannot be asked, or cannot
//! vouch that it is complete (it lost data and has not been rebuilt yet), the
//! answer is "unavailable", never "valid" (fail closed, OWASP ASVS 5.0
//! V16.5.3; revocation takes effect at once, V7.4.1).

use std::sync::Arc;

use gatehouse_domain::AccessClaims;

use crate::error::{AppError, TokenRejection};
use crate::ports::clock::Clock;
use crate::ports::denylist::Denylist;
use crate::ports::tokens::AccessTokenVerifier;

/// Validates access tokens.
#[derive(Clone, Debug)]
pub struct ValidateToken {
    verifier: Arc<dyn AccessTokenVerifier>,
    denylist: Arc<dyn Denylist>,
    clock: Arc<dyn Clock>,
}

impl ValidateToken {
    #[must_use]
    pub fn new(verifier: Arc<dyn AccessTokenVerifier>, denylist: Arc<dyn Denylist>, clock: Arc<dyn Clock>) -> Self {
        Self { verifier, denylist, clock }
    }

    /// The token's claims, if it verifies and is not revoked.
    ///
    /// # Errors
    /// [`AppError::InvalidToken`], [`AppError::TokenExpired`],
    /// [`AppError::TokenRevoked`] (its session, the token itself or its
    /// deleted account), or [`AppError::Unavailable`] when the denylist
    /// cannot be reached or is not known to be complete.
    pub async fn execute(&self, token: &str) -> Result<AccessClaims, AppError> {
        let now = self.clock.now();
        let claims = self.verifier.verify(token, now).map_err(|rejection| match rejection {
            TokenRejection::Expired => AppError::TokenExpired,
            other => AppError::InvalidToken(other),
        })?;
        if self.denylist.is_denied(claims.session_id, claims.token_id, claims.user_id, now).await? {
            return Err(AppError::TokenRevoked);
        }
        Ok(claims)
    }
}
