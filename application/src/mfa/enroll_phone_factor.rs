//! EnrollPhoneFactor: a phone number as a factor; a code is sent, and it
//! stays pending until `ConfirmFactor`. Needs a fresh proof (OWASP ASVS 5.0
//! V7.5.1): a thief's phone must not become the account's second factor.

use std::sync::Arc;

use gatehouse_domain::{FactorKind, PhoneNumber, UserId};
use uuid::Uuid;

use super::{FreshProof, FreshProofs, MfaDeps, enroll_with_code};
use crate::error::AppError;
use crate::events::EventFactory;
use crate::ports::unit_of_work::UnitOfWorkFactory;

/// Starts enrolling a phone number.
#[derive(Clone, Debug)]
pub struct EnrollPhoneFactor {
    proofs: FreshProofs,
    uow: Arc<dyn UnitOfWorkFactory>,
    events: EventFactory,
}

impl EnrollPhoneFactor {
    #[must_use]
    pub fn new(deps: MfaDeps) -> Self {
        let proofs = FreshProofs::from(&deps);
        let uow = deps.uow;
        let events = deps.events;
        Self { proofs, uow, events }
    }

    /// A pending SMS factor; a code goes to the number (`sms.mfa_code`), and
    /// confirming it proves the number is the user's. It replaces the user's
    /// pending SMS factor, if any.
    ///
    /// # Errors
    /// `FailedPrecondition` when SMS factors are disabled; a failed fresh
    /// proof, which changes nothing.
    pub async fn execute(&self, user: UserId, phone: &PhoneNumber, proof: &FreshProof) -> Result<Uuid, AppError> {
        let d = self;
        d.proofs.factors.require_enabled(FactorKind::Sms)?;
        d.proofs.check(user, proof).await?;
        enroll_with_code(&d.proofs.factors, d.uow.as_ref(), &d.events, user, FactorKind::Sms, phone.as_str()).await
    }
}
