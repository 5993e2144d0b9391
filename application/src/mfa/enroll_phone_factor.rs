//! EnrollPhoneFactor: a phone number as a factor; a code is sent, and it
//! stays pending until `ConfirmFactor`.

use std::sync::Arc;

use gatehouse_domain::{FactorKind, PhoneNumber, UserId};
use uuid::Uuid;

use super::{MfaDeps, SecondFactors, enroll_with_code};
use crate::error::AppError;
use crate::events::EventFactory;
use crate::ports::unit_of_work::UnitOfWorkFactory;

/// Starts enrolling a phone number.
#[derive(Clone, Debug)]
pub struct EnrollPhoneFactor {
    factors: SecondFactors,
    uow: Arc<dyn UnitOfWorkFactory>,
    events: EventFactory,
}

impl EnrollPhoneFactor {
    #[must_use]
    pub fn new(deps: MfaDeps) -> Self {
        let factors = SecondFactors::from(&deps);
        let uow = deps.uow;
        let events = deps.events;
        Self { factors, uow, events }
    }

    /// A pending SMS factor; a code goes to the number (`sms.mfa_code`), and
    /// confirming it proves the number is the user's.
    ///
    /// # Errors
    /// `FailedPrecondition` when SMS factors are disabled.
    pub async fn execute(&self, user: UserId, phone: &PhoneNumber) -> Result<Uuid, AppError> {
        let d = self;
        d.factors.require_enabled(FactorKind::Sms)?;
        enroll_with_code(&d.factors, d.uow.as_ref(), &d.events, user, FactorKind::Sms, phone.as_str()).await
    }
}
