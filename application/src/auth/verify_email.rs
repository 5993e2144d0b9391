//! VerifyEmail: the link token, or email + short code, marks the address verified.

use std::sync::Arc;

use gatehouse_domain::Purpose;

use crate::auth::verification::{Proof, Redeemer};
use crate::error::AppError;
use crate::events::{Audit, EventFactory};
use crate::ports::clock::Clock;
use crate::ports::unit_of_work::UnitOfWorkFactory;

/// Verifies email addresses.
#[derive(Clone, Debug)]
pub struct VerifyEmail {
    redeemer: Redeemer,
    uow: Arc<dyn UnitOfWorkFactory>,
    events: EventFactory,
    clock: Arc<dyn Clock>,
}

impl VerifyEmail {
    #[must_use]
    pub fn new(
        redeemer: Redeemer,
        uow: Arc<dyn UnitOfWorkFactory>,
        events: EventFactory,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { redeemer, uow, events, clock }
    }

    /// Redeems the verification `proof` names.
    ///
    /// # Errors
    /// See [`Redeemer::check`].
    pub async fn execute(&self, proof: Proof) -> Result<(), AppError> {
        let now = self.clock.now();
        let verification = self.redeemer.check(Purpose::VerifyEmail, &proof, now).await?;
        let audit = Audit::by("email.verified", verification.user_id()).detail("email", verification.email());
        let mut uow = self.uow.begin().await?;
        // The account first, as every unit of work on it does: one lock order,
        // so this cannot deadlock with a removal of the address.
        uow.accounts().lock(verification.user_id()).await?.ok_or(AppError::VerificationInvalid)?;
        Redeemer::consume(uow.as_ref(), &verification, now).await?;
        uow.accounts().mark_email_verified(verification.user_id(), verification.email(), now).await?;
        uow.add_messages(vec![self.events.audit(now, audit)]);
        uow.commit().await?;
        tracing::info!(user_id = %verification.user_id(), "email verified");
        Ok(())
    }
}
