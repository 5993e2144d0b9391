//! EnrollEmailFactor: one of the user's verified addresses as a factor;
//! a code is sent, and it stays pending until `ConfirmFactor`. Needs a fresh
//! proof (OWASP ASVS 5.0 V7.5.1), like every change to the factors.

use std::sync::Arc;

use gatehouse_domain::{EmailAddress, FactorKind, UserId};
use uuid::Uuid;

use super::{FreshProof, FreshProofs, MfaDeps, enroll_with_code};
use crate::error::{AppError, FieldViolation};
use crate::events::EventFactory;
use crate::ports::store::UserRepository;
use crate::ports::unit_of_work::UnitOfWorkFactory;

/// Starts enrolling one of the user's verified email addresses.
#[derive(Clone, Debug)]
pub struct EnrollEmailFactor {
    proofs: FreshProofs,
    uow: Arc<dyn UnitOfWorkFactory>,
    users: Arc<dyn UserRepository>,
    events: EventFactory,
}

impl EnrollEmailFactor {
    #[must_use]
    pub fn new(deps: MfaDeps) -> Self {
        let proofs = FreshProofs::from(&deps);
        let uow = deps.uow;
        let users = deps.users;
        let events = deps.events;
        Self { proofs, uow, users, events }
    }

    /// A pending email factor; a code goes to the address (`email.mfa_code`).
    /// It replaces the user's pending email factor, if any.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` (`email`) unless it is a verified login email of the
    /// user; a failed fresh proof, which changes nothing.
    pub async fn execute(&self, user: UserId, email: &EmailAddress, proof: &FreshProof) -> Result<Uuid, AppError> {
        let d = self;
        d.proofs.factors.require_enabled(FactorKind::Email)?;
        let account = d.users.get(user).await?.ok_or(AppError::NotFound("user"))?;
        if !account.emails().iter().any(|e| &e.email == email && e.verified_at.is_some()) {
            return Err(AppError::InvalidArgument(vec![FieldViolation::new(
                "email",
                "must be one of your verified login emails",
            )]));
        }
        // Checked after the request itself, so a request that cannot succeed
        // spends no authenticator code.
        d.proofs.check(user, proof).await?;
        enroll_with_code(&d.proofs.factors, d.uow.as_ref(), &d.events, user, FactorKind::Email, email.as_str()).await
    }
}
