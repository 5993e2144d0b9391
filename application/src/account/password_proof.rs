//! The current password as a fresh proof before a sensitive change (account
//! changes, second factors).
//!
//! Each check is counted against the account's password-check limit before
//! the hash is compared, and a match gives it back, so a stolen access token
//! cannot be used to guess the password at argon2 speed (OWASP ASVS 5.0
//! V6.3.1).

use std::sync::Arc;

use gatehouse_domain::{Password, UserId};

use crate::error::AppError;
use crate::ports::password::{PasswordCheck, PasswordHasher};
use crate::ports::store::UserRepository;
use crate::throttle::Throttle;

/// Checks a signed-in user's password against the stored hash.
#[derive(Clone, Debug)]
pub struct PasswordProof {
    users: Arc<dyn UserRepository>,
    hasher: Arc<dyn PasswordHasher>,
    throttle: Throttle,
}

impl PasswordProof {
    #[must_use]
    pub fn new(users: Arc<dyn UserRepository>, hasher: Arc<dyn PasswordHasher>, throttle: Throttle) -> Self {
        Self { users, hasher, throttle }
    }

    /// The password hasher, for use cases that also hash a new password.
    #[must_use]
    pub fn hasher(&self) -> &dyn PasswordHasher {
        self.hasher.as_ref()
    }

    /// `field` names the request field on failure.
    ///
    /// # Errors
    /// [`AppError::WrongPassword`] naming `field`; `NotFound` when the
    /// account is gone; [`AppError::RateLimited`] past the account's limit
    /// on wrong passwords, without comparing.
    pub async fn check(&self, user: UserId, password: &Password, field: &'static str) -> Result<(), AppError> {
        let attempt = self.throttle.password_check(user).await?;
        let stored = self.users.password_hash(user).await?;
        let check = match self.hasher.verify(password, stored.as_ref()).await {
            Ok(check) => check,
            Err(error) => {
                // Nothing was compared (a full hashing queue, say): no guess.
                self.throttle.password_matched(attempt).await;
                return Err(error.into());
            }
        };
        match (stored, check) {
            (Some(_), PasswordCheck::Match { .. }) => {
                self.throttle.password_matched(attempt).await;
                Ok(())
            }
            (None, _) => Err(AppError::NotFound("user")),
            (Some(_), PasswordCheck::Mismatch) => Err(AppError::WrongPassword { field }),
        }
    }
}
