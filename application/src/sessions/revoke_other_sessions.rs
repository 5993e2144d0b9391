//! RevokeOtherSessions: "sign out everywhere else".

use std::sync::Arc;

use gatehouse_domain::{AccessClaims, ClientInfo, RevokeReason};

use crate::auth::SessionRevoker;
use crate::error::AppError;
use crate::events::Audit;
use crate::ports::clock::Clock;
use crate::ports::unit_of_work::UnitOfWorkFactory;

/// Ends every session of the caller except the current one.
#[derive(Clone, Debug)]
pub struct RevokeOtherSessions {
    uow: Arc<dyn UnitOfWorkFactory>,
    revoker: SessionRevoker,
    clock: Arc<dyn Clock>,
}

impl RevokeOtherSessions {
    #[must_use]
    pub fn new(uow: Arc<dyn UnitOfWorkFactory>, revoker: SessionRevoker, clock: Arc<dyn Clock>) -> Self {
        Self { uow, revoker, clock }
    }

    /// Returns how many sessions ended.
    ///
    /// # Errors
    /// Storage or denylist failures.
    pub async fn execute(&self, caller: &AccessClaims, client: &ClientInfo) -> Result<usize, AppError> {
        let now = self.clock.now();
        let user = caller.user_id;
        let mut uow = self.uow.begin().await?;
        // The account first, as every unit of work on it does (one lock order).
        uow.accounts().lock(user).await?;
        let revoked =
            SessionRevoker::revoke_all(uow.as_ref(), user, Some(caller.session_id), RevokeReason::RevokedByUser, now)
                .await?;
        let audit = Audit::by("session.revoked_others", user).client(client);
        uow.add_messages(vec![self.revoker.events().audit(now, audit)]);
        uow.commit().await?;
        self.revoker.deny_revoked(&revoked, now).await?;
        tracing::info!(user_id = %user, revoked = revoked.len(), "other sessions revoked");
        Ok(revoked.len())
    }
}
