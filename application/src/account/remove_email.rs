//! RemoveLoginEmail: never the primary one, never the last verified one.

use gatehouse_domain::{EmailAddress, UserId};

use super::AccountDeps;
use crate::error::AppError;
use crate::events::Audit;
use crate::ports::store::EmailRemoval;

/// Removes login emails.
#[derive(Clone, Debug)]
pub struct RemoveLoginEmail(AccountDeps);

impl RemoveLoginEmail {
    #[must_use]
    pub const fn new(deps: AccountDeps) -> Self {
        Self(deps)
    }

    /// # Errors
    /// `NotFound`, or `FailedPrecondition` with `EMAIL_IS_PRIMARY` / `LAST_VERIFIED_EMAIL`.
    pub async fn execute(&self, user: UserId, email: &EmailAddress) -> Result<(), AppError> {
        let now = self.0.clock.now();
        let audit = self.0.issuer.events().audit(now, Audit::by("email.removed", user).detail("email", email));
        match self.0.users.remove_email(user, email, &[audit], now).await? {
            EmailRemoval::Removed => Ok(()),
            EmailRemoval::NotFound => Err(AppError::NotFound("login email")),
            EmailRemoval::IsPrimary => Err(AppError::FailedPrecondition {
                reason: "EMAIL_IS_PRIMARY",
                message: "make another address primary before removing this one",
            }),
            EmailRemoval::LastVerified => Err(AppError::FailedPrecondition {
                reason: "LAST_VERIFIED_EMAIL",
                message: "the last verified address cannot be removed",
            }),
        }
    }
}
