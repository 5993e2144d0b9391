//! DeleteMe: with the password as a fresh proof, the account and all it
//! owns are deleted, and its sessions' tokens stop validating at once.

use gatehouse_domain::{Password, UserId};

use super::AccountDeps;
use crate::error::AppError;
use crate::events::Audit;

/// Deletes the caller's account.
#[derive(Clone, Debug)]
pub struct DeleteMe(AccountDeps);

impl DeleteMe {
    #[must_use]
    pub const fn new(deps: AccountDeps) -> Self {
        Self(deps)
    }

    /// # Errors
    /// [`AppError::WrongPassword`] (`password`) when the password is wrong.
    pub async fn execute(&self, user: UserId, password: &Password) -> Result<(), AppError> {
        self.0.check_password(user, password, "password").await?;
        let now = self.0.clock.now();
        let audit = self.0.issuer.events().audit(now, Audit::by("account.deleted", user));
        let sessions = self.0.users.delete(user, &[audit], now).await?;
        self.0.revoker.deny_revoked(&sessions, now).await?;
        tracing::info!(user_id = %user, sessions = sessions.len(), "account deleted");
        Ok(())
    }
}
