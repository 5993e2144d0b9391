//! EnrollEmailFactor: one of the user's verified addresses as a factor;
//! a code is sent, and it stays pending until `ConfirmFactor`.

use std::sync::Arc;

use gatehouse_domain::{EmailAddress, FactorKind, UserId};
use uuid::Uuid;

use super::{MfaDeps, SecondFactors, enroll_with_code};
use crate::error::{AppError, FieldViolation};
use crate::events::EventFactory;
use crate::ports::store::UserRepository;
use crate::ports::unit_of_work::UnitOfWorkFactory;

/// Starts enrolling one of the user's verified email addresses.
#[derive(Clone, Debug)]
pub struct EnrollEmailFactor {
    factors: SecondFactors,
    uow: Arc<dyn UnitOfWorkFactory>,
    users: Arc<dyn UserRepository>,
    events: EventFactory,
}

impl EnrollEmailFactor {
    #[must_use]
    pub fn new(deps: MfaDeps) -> Self {
        let factors = SecondFactors::from(&deps);
        let uow = deps.uow;
        let users = deps.users;
        let events = deps.events;
        Self { factors, uow, users, events }
    }

    /// A pending email factor; a code goes to the address (`email.mfa_code`).
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` (`email`) unless it is a verified login email of the user.
    pub async fn execute(&self, user: UserId, email: &EmailAddress) -> Result<Uuid, AppError> {
        let d = self;
        d.factors.require_enabled(FactorKind::Email)?;
        let account = d.users.get(user).await?.ok_or(AppError::NotFound("user"))?;
        if !account.emails().iter().any(|e| &e.email == email && e.verified_at.is_some()) {
            return Err(AppError::InvalidArgument(vec![FieldViolation::new(
                "email",
                "must be one of your verified login emails",
            )]));
        }
        enroll_with_code(&d.factors, d.uow.as_ref(), &d.events, user, FactorKind::Email, email.as_str()).await
    }
}
