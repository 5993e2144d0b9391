//! SetPrimaryEmail: the rule is the account's ([`Account::set_primary_email`]);
//! the old primary address is told.
//!
//! [`Account::set_primary_email`]: gatehouse_domain::Account::set_primary_email

use std::sync::Arc;

use gatehouse_domain::{EmailAddress, Event, PrimaryChange, UserId};

use crate::error::AppError;
use crate::events::{Audit, EventFactory};
use crate::ports::clock::Clock;
use crate::ports::unit_of_work::UnitOfWorkFactory;

/// Changes the primary login email.
#[derive(Clone, Debug)]
pub struct SetPrimaryEmail {
    uow: Arc<dyn UnitOfWorkFactory>,
    events: EventFactory,
    clock: Arc<dyn Clock>,
}

impl SetPrimaryEmail {
    #[must_use]
    pub fn new(uow: Arc<dyn UnitOfWorkFactory>, events: EventFactory, clock: Arc<dyn Clock>) -> Self {
        Self { uow, events, clock }
    }

    /// # Errors
    /// `NotFound`, or `FailedPrecondition` / `EMAIL_NOT_VERIFIED`.
    pub async fn execute(&self, user: UserId, email: &EmailAddress) -> Result<(), AppError> {
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
