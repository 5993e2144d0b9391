//! SetPrimaryEmail: the rule is the account's ([`Account::set_primary_email`]);
//! the old primary address is told. A fresh proof comes first (OWASP ASVS
//! 5.0 V7.5.1): notices stop reaching the old address.
//!
//! [`Account::set_primary_email`]: gatehouse_domain::Account::set_primary_email

use std::sync::Arc;

use gatehouse_domain::{EmailAddress, Event, PrimaryChange, UserId};

use crate::error::AppError;
use crate::events::{Audit, EventFactory};
use crate::mfa::{FreshProof, FreshProofs};
use crate::ports::clock::Clock;
use crate::ports::unit_of_work::UnitOfWorkFactory;

/// Changes the primary login email.
#[derive(Clone, Debug)]
pub struct SetPrimaryEmail {
    proofs: FreshProofs,
    uow: Arc<dyn UnitOfWorkFactory>,
    events: EventFactory,
    clock: Arc<dyn Clock>,
}

impl SetPrimaryEmail {
    #[must_use]
    pub fn new(
        proofs: FreshProofs,
        uow: Arc<dyn UnitOfWorkFactory>,
        events: EventFactory,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { proofs, uow, events, clock }
    }

    /// # Errors
    /// A failed fresh proof (`WrongPassword`, `CodeInvalid`, `RateLimited`)
    /// changes nothing;
    /// `NotFound`, or `FailedPrecondition` / `EMAIL_NOT_VERIFIED`.
    pub async fn execute(&self, user: UserId, email: &EmailAddress, proof: &FreshProof) -> Result<(), AppError> {
        self.proofs.check(user, proof).await?;
        let now = self.clock.now();
        let mut uow = self.uow.begin().await?;
        let mut account = uow.accounts().lock(user).await?.ok_or(AppError::NotFound("user"))?;
        let PrimaryChange::Changed { previous } = account.set_primary_email(email)? else { return Ok(()) };
        uow.accounts().set_primary_email(user, email, now).await?;
        let mut messages: Vec<_> = previous
            .map(|old| {
                self.events.message(now, Event::EmailChanged { user_id: user, email: old, new_email: email.clone() })
            })
            .into_iter()
            .collect();
        messages.push(self.events.audit(now, Audit::by("email.primary_changed", user).detail("email", email)));
        uow.add_messages(messages);
        uow.commit().await?;
        Ok(())
    }
}
