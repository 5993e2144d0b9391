//! GetMe and UpdateMe.

use gatehouse_domain::{Account, DisplayName, UserId};

use super::AccountDeps;
use crate::error::AppError;

/// Reads the caller's account.
#[derive(Clone, Debug)]
pub struct GetMe(AccountDeps);

impl GetMe {
    #[must_use]
    pub const fn new(deps: AccountDeps) -> Self {
        Self(deps)
    }

    /// # Errors
    /// [`AppError::NotFound`] when the account is gone.
    pub async fn execute(&self, user: UserId) -> Result<Account, AppError> {
        self.0.users.get(user).await?.ok_or(AppError::NotFound("user"))
    }
}

/// Changes the caller's profile fields named by the update mask.
#[derive(Clone, Debug)]
pub struct UpdateMe(AccountDeps);

impl UpdateMe {
    #[must_use]
    pub const fn new(deps: AccountDeps) -> Self {
        Self(deps)
    }

    /// Sets the display name when `Some`; returns the account as it is now.
    ///
    /// # Errors
    /// [`AppError::NotFound`] when the account is gone.
    pub async fn execute(&self, user: UserId, display_name: Option<DisplayName>) -> Result<Account, AppError> {
        if let Some(name) = display_name
            && !self.0.users.update_display_name(user, &name, self.0.clock.now()).await?
        {
            return Err(AppError::NotFound("user"));
        }
        self.0.users.get(user).await?.ok_or(AppError::NotFound("user"))
    }
}
