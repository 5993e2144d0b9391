//! UpdateMe: the caller's profile fields named by the update mask.

use std::sync::Arc;

use gatehouse_domain::{Account, DisplayName, UserId};

use crate::error::AppError;
use crate::ports::clock::Clock;
use crate::ports::store::UserRepository;

/// Changes the caller's profile.
#[derive(Clone, Debug)]
pub struct UpdateMe {
    users: Arc<dyn UserRepository>,
    clock: Arc<dyn Clock>,
}

impl UpdateMe {
    #[must_use]
    pub fn new(users: Arc<dyn UserRepository>, clock: Arc<dyn Clock>) -> Self {
        Self { users, clock }
    }

    /// Sets the display name when `Some`; returns the account as it is now.
    ///
    /// # Errors
    /// [`AppError::NotFound`] when the account is gone.
    pub async fn execute(&self, user: UserId, display_name: Option<DisplayName>) -> Result<Account, AppError> {
        if let Some(name) = display_name
            && !self.users.update_display_name(user, &name, self.clock.now()).await?
        {
            return Err(AppError::NotFound("user"));
        }
        self.users.get(user).await?.ok_or(AppError::NotFound("user"))
    }
}
