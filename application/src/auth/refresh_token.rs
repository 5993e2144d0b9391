//! RefreshToken: trade a refresh token for a new pair, retiring the old one.
//!
//! The session decides whether it may go on and until when
//! ([`Session::rotate`]); retiring the presented token is a compare-and-swap
//! in the same unit of work, so two concurrent refreshes with one token never
//! both mint a pair. Presenting a token that was already
//! rotated means a copy exists (stolen, or replayed): the whole session is
//! revoked and its access tokens stop validating (RFC 9700 §4.14.2, OWASP
//! ASVS 5.0 V10.4.5). There is no grace window for a client that lost the
//! response to a refresh: such a client signs in again. A grace window would
//! let a thief who races the real client keep a live session, and the cost
//! of the strict choice is one extra login after a network failure.
//!
//! [`Session::rotate`]: gatehouse_domain::Session::rotate

use std::sync::Arc;

// The domain's refresh token is the secret presented; this module's
// `RefreshToken` is the use case named after the RPC.
use gatehouse_domain::{ClientInfo, OrganizationId, RefreshToken as Presented, RevokeReason, TokenPair};

use crate::auth::minter::{TokenMinter, hash_refresh_token, looks_like_refresh_token};
use crate::auth::revoker::SessionRevoker;
use crate::error::AppError;
use crate::organizations::member_role;
use crate::ports::store::Retirement;
use crate::ports::unit_of_work::UnitOfWorkFactory;

/// Rotates refresh tokens.
#[derive(Clone, Debug)]
pub struct RefreshToken {
    uow: Arc<dyn UnitOfWorkFactory>,
    minter: TokenMinter,
    revoker: SessionRevoker,
}

impl RefreshToken {
    #[must_use]
    pub fn new(uow: Arc<dyn UnitOfWorkFactory>, minter: TokenMinter, revoker: SessionRevoker) -> Self {
        Self { uow, minter, revoker }
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
        self.execute_for(presented, client, None).await
    }

    /// [`Self::execute`], moving the session to `organization` when given;
    /// otherwise it stays in the one it is scoped to. Either way the
    /// membership is read again now, so the new token carries the member's
    /// current role, and a removed member's refresh into the organization
    /// is refused (the presented token then stays unretired).
    ///
    /// # Errors
    /// As [`Self::execute`], and `NOT_FOUND` (`organization`) when the user
    /// is not a member of it.
    pub async fn execute_for(
        &self,
        presented: &Presented,
        client: &ClientInfo,
        organization: Option<OrganizationId>,
    ) -> Result<TokenPair, AppError> {
        if !looks_like_refresh_token(presented) {
            return Err(AppError::InvalidRefreshToken);
        }
        let now = self.minter.now();
        let hash = hash_refresh_token(presented);
        let uow = self.uow.begin().await?;
        // The account first, as every unit of work on it does: one lock order,
        // so a refresh cannot deadlock with a deletion of the account.
        let Some(owner) = uow.sessions().owner_of_refresh_token(&hash).await? else {
            return Err(AppError::InvalidRefreshToken);
        };
        uow.accounts().lock(owner).await?;
        let session_id = match uow.sessions().retire_refresh_token(&hash, now).await? {
            Retirement::Retired { session_id } => session_id,
            Retirement::Reused { session_id } => {
                drop(uow);
                tracing::warn!(%session_id, "refresh token reuse detected; revoking the session");
                self.revoker.revoke(session_id, RevokeReason::RefreshTokenReuse, None, client, None, now).await?;
                return Err(AppError::TokenRevoked);
            }
            Retirement::Expired => return Err(AppError::TokenExpired),
            Retirement::Unknown => return Err(AppError::InvalidRefreshToken),
        };
        let mut session = uow.sessions().get(session_id).await?.ok_or(AppError::InvalidRefreshToken)?;
        let (next, mut record) = self.minter.new_refresh_token(now);
        // The session decides; dropping the unit of work undoes the retirement.
        record.expires_at = session.rotate(now, record.expires_at, client).map_err(|_| AppError::TokenRevoked)?;
        let scope = organization.or(session.organization());
        let role = match scope {
            Some(org) => Some(member_role(uow.organizations(), org, owner).await?),
            None => None,
        };
        let session = session.with_organization(scope);
        uow.sessions().save_rotation(&session, &record).await?;
        uow.commit().await?;
        self.minter.token_pair(&session, role.as_ref(), next, record.expires_at, now)
    }
}
