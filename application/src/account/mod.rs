//! The caller's own account: the `UserService` use cases. Every one acts on
//! the user named by a validated access token, never on an id from the
//! request, so no caller can reach another user's account.

mod add_email;
mod change_password;
mod delete_me;
mod profile;
mod remove_email;
mod set_primary_email;

use std::sync::Arc;

pub use add_email::AddLoginEmail;
pub use change_password::ChangePassword;
pub use delete_me::DeleteMe;
pub use profile::{GetMe, UpdateMe};
pub use remove_email::RemoveLoginEmail;
pub use set_primary_email::SetPrimaryEmail;

use gatehouse_domain::{Password, UserId};

use crate::auth::{SessionRevoker, VerificationIssuer};
use crate::error::AppError;
use crate::ports::clock::Clock;
use crate::ports::password::{PasswordCheck, PasswordHasher};
use crate::ports::store::UserRepository;

/// What the account use cases are built from.
#[derive(Clone)]
pub struct AccountDeps {
    pub users: Arc<dyn UserRepository>,
    pub hasher: Arc<dyn PasswordHasher>,
    pub revoker: SessionRevoker,
    pub issuer: VerificationIssuer,
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for AccountDeps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountDeps").finish_non_exhaustive()
    }
}

impl AccountDeps {
    /// Checks a signed-in user's password (a fresh proof before a sensitive
    /// change); `field` names the request field on failure.
    async fn check_password(&self, user: UserId, password: &Password, field: &'static str) -> Result<(), AppError> {
        check_password(self.users.as_ref(), self.hasher.as_ref(), user, password, field).await
    }
}

/// Checks a signed-in user's password against the stored hash: the fresh
/// proof before a sensitive change (account changes, second factors).
///
/// # Errors
/// [`AppError::WrongPassword`] naming `field`; `NotFound` when the account is gone.
pub(crate) async fn check_password(
    users: &dyn UserRepository,
    hasher: &dyn PasswordHasher,
    user: UserId,
    password: &Password,
    field: &'static str,
) -> Result<(), AppError> {
    let stored = users.password_hash(user).await?;
    let check = hasher.verify(password, stored.as_ref()).await?;
    match (stored, check) {
        (Some(_), PasswordCheck::Match { .. }) => Ok(()),
        (None, _) => Err(AppError::NotFound("user")),
        (Some(_), PasswordCheck::Mismatch) => Err(AppError::WrongPassword { field }),
    }
}

#[cfg(test)]
mod tests;
