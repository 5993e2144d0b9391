//! SetPrimaryEmail: only a verified address; the old primary is told.

use gatehouse_domain::{EmailAddress, Event, UserId};

use super::AccountDeps;
use crate::error::AppError;
use crate::events::Audit;
use crate::ports::store::PrimaryChange;

/// Changes the primary login email.
#[derive(Clone, Debug)]
pub struct SetPrimaryEmail(AccountDeps);

impl SetPrimaryEmail {
    #[must_use]
    pub const fn new(deps: AccountDeps) -> Self {
        Self(deps)
    }

    /// # Errors
    /// `NotFound`, or `FailedPrecondition` / `EMAIL_NOT_VERIFIED`.
    pub async fn execute(&self, user: UserId, email: &EmailAddress) -> Result<(), AppError> {
        let d = &self.0;
        let account = d.users.get(user).await?.ok_or(AppError::NotFound("user"))?;
        let old = account.primary_email().map(|e| e.email.clone());
        if old.as_ref() == Some(email) {
            return Ok(());
        }
        let now = d.clock.now();
        let notices: Vec<_> = old
            .map(|old| {
                d.issuer
                    .events()
                    .message(now, Event::EmailChanged { user_id: user, email: old, new_email: email.clone() })
            })
            .into_iter()
            .collect();
        let mut outbox = notices;
        outbox.push(d.issuer.events().audit(now, Audit::by("email.primary_changed", user).detail("email", email)));
        match d.users.set_primary_email(user, email, &outbox, now).await? {
            PrimaryChange::Changed => Ok(()),
            PrimaryChange::NotFound => Err(AppError::NotFound("login email")),
            PrimaryChange::NotVerified => Err(AppError::FailedPrecondition {
                reason: "EMAIL_NOT_VERIFIED",
                message: "only a verified address can be primary",
            }),
        }
    }
}
