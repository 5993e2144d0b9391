//! ConfirmFactor: a correct code activates a pending factor; the first
//! active factor also yields backup codes, shown once.

use std::sync::Arc;

use gatehouse_domain::mfa::activate;
use gatehouse_domain::{Event, FactorKind, OneTimeCode, UserId};
use uuid::Uuid;

use super::{MfaDeps, SecondFactors, factor_code_hash, primary_email};
use crate::error::AppError;
use crate::events::Audit;
use crate::events::EventFactory;
use crate::ports::store::UserRepository;
use crate::ports::unit_of_work::UnitOfWorkFactory;

/// Activates factors.
#[derive(Clone, Debug)]
pub struct ConfirmFactor {
    factors: SecondFactors,
    uow: Arc<dyn UnitOfWorkFactory>,
    users: Arc<dyn UserRepository>,
    events: EventFactory,
}

impl ConfirmFactor {
    #[must_use]
    pub fn new(deps: MfaDeps) -> Self {
        let factors = SecondFactors::from(&deps);
        let uow = deps.uow;
        let users = deps.users;
        let events = deps.events;
        Self { factors, uow, users, events }
    }

    /// Returns the new backup codes when this is the user's first active factor.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` for an unknown factor, `CodeInvalid` for a wrong code,
    /// `FailedPrecondition` when the factor is already active (`FACTOR_ACTIVE`)
    /// or its enrolment expired (`FACTOR_EXPIRED`).
    pub async fn execute(
        &self,
        user: UserId,
        factor_id: Uuid,
        code: &OneTimeCode,
    ) -> Result<Option<Vec<String>>, AppError> {
        let d = self;
        let factor = d.factors.factor(user, factor_id).await?;
        if factor.active() {
            return Err(AppError::FailedPrecondition {
                reason: "FACTOR_ACTIVE",
                message: "the factor is already active",
            });
        }
        let now = d.factors.clock.now();
        // OWASP ASVS 5.0 V6.4.1: an enrolment is short-lived; a stale one is
        // refused before its code is looked at, so nothing changes.
        if factor.enrolment_expired(now) {
            return Err(AppError::FailedPrecondition {
                reason: "FACTOR_EXPIRED",
                message: "the enrolment expired; enrol the factor again",
            });
        }
        let accepted = match factor.kind() {
            FactorKind::Totp => d.factors.accept_totp(&factor, code, now).await?,
            FactorKind::Email | FactorKind::Sms => {
                d.factors.mfa.use_code(factor.id(), None, &factor_code_hash(factor.id(), code), now).await?
            }
        };
        if !accepted {
            return Err(AppError::CodeInvalid { field: "code" });
        }
        let email = primary_email(d.users.as_ref(), user).await?;
        let mut uow = d.uow.begin().await?;
        uow.accounts().lock(user).await?.ok_or(AppError::NotFound("user"))?;
        // Decided under the account's lock: of two factors confirmed at once,
        // exactly one is the first and issues backup codes.
        let Some(activation) = activate(&uow.factors().list(user).await?, factor.id()) else {
            return Err(AppError::FailedPrecondition {
                reason: "FACTOR_ACTIVE",
                message: "the factor is already active",
            });
        };
        let first = activation.first;
        let (codes, hashes) = if first { d.factors.new_backup_codes(user) } else { (Vec::new(), Vec::new()) };
        uow.factors().activate(factor.id(), now).await?;
        if first {
            uow.factors().replace_backup_codes(user, &hashes, now).await?;
        }
        let notice = Event::MfaFactorAdded { user_id: user, email, factor_id: factor.id(), kind: factor.kind() };
        let audit = d.events.audit(now, Audit::by("mfa.factor_added", user).detail("factor", factor.kind().as_str()));
        uow.add_messages(vec![d.events.message(now, notice), audit]);
        uow.commit().await?;
        tracing::info!(user_id = %user, factor_id = %factor.id(), kind = factor.kind().as_str(), "second factor added");
        Ok(first.then_some(codes))
    }
}
