//! AddLoginEmail: a new, unverified login email; a verification goes to it.

use std::sync::Arc;

use gatehouse_domain::{EmailAddress, Purpose, UserId};

use crate::auth::VerificationIssuer;
use crate::error::AppError;
use crate::events::Audit;
use crate::ports::clock::Clock;
use crate::ports::unit_of_work::UnitOfWorkFactory;

/// Adds login emails.
#[derive(Clone, Debug)]
pub struct AddLoginEmail {
    uow: Arc<dyn UnitOfWorkFactory>,
    issuer: VerificationIssuer,
    clock: Arc<dyn Clock>,
}

impl AddLoginEmail {
    #[must_use]
    pub fn new(uow: Arc<dyn UnitOfWorkFactory>, issuer: VerificationIssuer, clock: Arc<dyn Clock>) -> Self {
        Self { uow, issuer, clock }
    }

    /// # Errors
    /// [`AppError::EmailTaken`] when the address is a login email of any account.
    pub async fn execute(&self, user: UserId, email: &EmailAddress) -> Result<(), AppError> {
        let now = self.clock.now();
        let issued = self.issuer.issue(user, email, Purpose::VerifyEmail, now);
        let audit = self.issuer.events().audit(now, Audit::by("email.added", user).detail("email", email));
        let mut uow = self.uow.begin().await?;
        uow.accounts().lock(user).await?.ok_or(AppError::NotFound("user"))?;
        uow.accounts().add_email(user, email, now).await.map_err(AppError::email_taken_on_conflict)?;
        uow.verifications().insert(&issued.verification).await?;
        uow.add_messages(vec![issued.message, audit]);
        uow.commit().await.map_err(AppError::email_taken_on_conflict)
    }
}
