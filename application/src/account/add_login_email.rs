//! AddLoginEmail: a new, unverified login email; a verification goes to it.
//! A fresh proof comes first (OWASP ASVS 5.0 V7.5.1): a verified address can
//! receive password resets, so an access token alone must not add one.

use std::sync::Arc;

use gatehouse_domain::{EmailAddress, Purpose, UserId};

use crate::auth::VerificationIssuer;
use crate::error::AppError;
use crate::events::Audit;
use crate::mfa::{FreshProof, FreshProofs};
use crate::ports::clock::Clock;
use crate::ports::unit_of_work::UnitOfWorkFactory;

/// Adds login emails.
#[derive(Clone, Debug)]
pub struct AddLoginEmail {
    proofs: FreshProofs,
    uow: Arc<dyn UnitOfWorkFactory>,
    issuer: VerificationIssuer,
    clock: Arc<dyn Clock>,
}

impl AddLoginEmail {
    #[must_use]
    pub fn new(
        proofs: FreshProofs,
        uow: Arc<dyn UnitOfWorkFactory>,
        issuer: VerificationIssuer,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { proofs, uow, issuer, clock }
    }

    /// # Errors
    /// A failed fresh proof (`WrongPassword`, `CodeInvalid`, `RateLimited`)
    /// changes nothing;
    /// [`AppError::EmailTaken`] when the address is a login email of any account;
    /// [`AppError::RateLimited`] past the recipient's or the account's
    /// message limit (each added address is sent a verification).
    pub async fn execute(&self, user: UserId, email: &EmailAddress, proof: &FreshProof) -> Result<(), AppError> {
        self.proofs.check(user, proof).await?;
        self.proofs.throttle().message(email.as_str(), Some(user)).await?;
        let now = self.clock.now();
        let issued = self.issuer.issue(user, email, Purpose::VerifyEmail, now);
        let audit = self.issuer.events().audit(now, Audit::by("email.added", user).detail("email", email));
        let mut uow = self.uow.begin().await?;
        uow.accounts().lock(user).await?.ok_or(AppError::NotFound("user"))?;
        // Another account's unverified, added claim proves nothing.
        let mut messages = vec![issued.message, audit];
        if let Some(loser) = uow.accounts().release_unverified_claim(email).await?.filter(|l| *l != user) {
            messages.push(crate::auth::sign_up::released(self.issuer.events(), now, loser, email));
        }
        uow.accounts().add_email(user, email, now).await.map_err(AppError::email_taken_on_conflict)?;
        uow.verifications().insert(&issued.verification).await?;
        uow.add_messages(messages);
        uow.commit().await.map_err(AppError::email_taken_on_conflict)
    }
}
