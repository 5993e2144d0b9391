//! GetMe: the caller's account.

use std::sync::Arc;

use gatehouse_domain::{Account, UserId};

use crate::error::AppError;
use crate::ports::store::UserRepository;

/// Reads the caller's account.
#[derive(Clone, Debug)]
pub struct GetMe {
    users: Arc<dyn UserRepository>,
}

impl GetMe {
    #[must_use]
    pub fn new(users: Arc<dyn UserRepository>) -> Self {
        Self { users }
    }

    /// # Errors
    /// [`AppError::NotFound`] when the account is gone.
    pub async fn execute(&self, user: UserId) -> Result<Account, AppError> {
        self.users.get(user).await?.ok_or(AppError::NotFound("user"))
    }
}
