//! AddLoginEmail: a new, unverified login email; a verification goes to it.

use gatehouse_domain::{EmailAddress, Purpose, UserId};

use super::AccountDeps;
use crate::error::AppError;
use crate::events::Audit;
use crate::ports::store::StoreError;

/// Adds login emails.
#[derive(Clone, Debug)]
pub struct AddLoginEmail(AccountDeps);

impl AddLoginEmail {
    #[must_use]
    pub const fn new(deps: AccountDeps) -> Self {
        Self(deps)
    }

    /// # Errors
    /// [`AppError::EmailTaken`] when the address is a login email of any account.
    pub async fn execute(&self, user: UserId, email: &EmailAddress) -> Result<(), AppError> {
        let now = self.0.clock.now();
        let issued = self.0.issuer.issue(user, email, Purpose::VerifyEmail, now);
        let audit = self.0.issuer.events().audit(now, Audit::by("email.added", user).detail("email", email));
        self.0.users.add_email(user, email, &issued.verification, &[issued.message, audit], now).await.map_err(|e| {
            match e {
                StoreError::Conflict(_) => AppError::EmailTaken,
                other => other.into(),
            }
        })
    }
}
