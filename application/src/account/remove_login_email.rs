//! RemoveLoginEmail: the rule is the account's ([`Account::remove_email`]);
//! this stores what it decided, in one unit of work. A fresh proof comes
//! first (OWASP ASVS 5.0 V7.5.1): removing the owner's address is the last
//! step of a takeover.
//!
//! [`Account::remove_email`]: gatehouse_domain::Account::remove_email

use std::sync::Arc;

use gatehouse_domain::{EmailAddress, Purpose, UserId};

use crate::error::AppError;
use crate::events::{Audit, EventFactory};
use crate::mfa::{FreshProof, FreshProofs};
use crate::ports::clock::Clock;
use crate::ports::unit_of_work::UnitOfWorkFactory;

/// Removes login emails.
#[derive(Clone, Debug)]
pub struct RemoveLoginEmail {
    proofs: FreshProofs,
    uow: Arc<dyn UnitOfWorkFactory>,
    events: EventFactory,
    clock: Arc<dyn Clock>,
}

impl RemoveLoginEmail {
    #[must_use]
    pub fn new(
        proofs: FreshProofs,
        uow: Arc<dyn UnitOfWorkFactory>,
        events: EventFactory,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { proofs, uow, events, clock }
    }

    /// Removes the address, retires its live verifications (a late link must
    /// not report an address verified that is gone) and drops the email
    /// factors that send codes to it.
    ///
    /// # Errors
    /// A failed fresh proof (`WrongPassword`, `CodeInvalid`, `RateLimited`)
    /// changes nothing;
    /// `NotFound`, or `FailedPrecondition` with `EMAIL_IS_PRIMARY` / `LAST_VERIFIED_EMAIL`.
    pub async fn execute(&self, user: UserId, email: &EmailAddress, proof: &FreshProof) -> Result<(), AppError> {
        self.proofs.check(user, proof).await?;
        let now = self.clock.now();
        let mut uow = self.uow.begin().await?;
        let mut account = uow.accounts().lock(user).await?.ok_or(AppError::NotFound("user"))?;
        let factors = uow.factors().list(user).await?;
        let removal = account.remove_email(email, &factors).map_err(AppError::from)?;
        uow.accounts().remove_email(user, email).await?;
        uow.verifications().retire(user, Purpose::VerifyEmail, Some(email), now).await?;
        uow.verifications().retire(user, Purpose::ResetPassword, Some(email), now).await?;
        uow.factors().delete(&removal.factors).await?;
        if removal.backup_codes {
            uow.factors().replace_backup_codes(user, &[], now).await?;
        }
        uow.add_messages(vec![self.events.audit(now, Audit::by("email.removed", user).detail("email", email))]);
        uow.commit().await?;
        Ok(())
    }
}
