//! The current password as a fresh proof before a sensitive change (account
//! changes, second factors).

use std::sync::Arc;

use gatehouse_domain::{Password, UserId};

use crate::error::AppError;
use crate::ports::password::{PasswordCheck, PasswordHasher};
use crate::ports::store::UserRepository;

/// Checks a signed-in user's password against the stored hash.
#[derive(Clone, Debug)]
pub struct PasswordProof {
    users: Arc<dyn UserRepository>,
    hasher: Arc<dyn PasswordHasher>,
}

impl PasswordProof {
    #[must_use]
    pub fn new(users: Arc<dyn UserRepository>, hasher: Arc<dyn PasswordHasher>) -> Self {
        Self { users, hasher }
    }

    /// The password hasher, for use cases that also hash a new password.
    #[must_use]
    pub fn hasher(&self) -> &dyn PasswordHasher {
        self.hasher.as_ref()
    }

    /// `field` names the request field on failure.
    ///
    /// # Errors
    /// [`AppError::WrongPassword`] naming `field`; `NotFound` when the account is gone.
    pub async fn check(&self, user: UserId, password: &Password, field: &'static str) -> Result<(), AppError> {
        let stored = self.users.password_hash(user).await?;
        let check = self.hasher.verify(password, stored.as_ref()).await?;
        match (stored, check) {
            (Some(_), PasswordCheck::Match { .. }) => Ok(()),
            (None, _) => Err(AppError::NotFound("user")),
            (Some(_), PasswordCheck::Mismatch) => Err(AppError::WrongPassword { field }),
        }
    }
}
