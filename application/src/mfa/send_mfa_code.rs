//! SendMfaCode: an email or SMS code for a factor of an open challenge.

use std::sync::Arc;

use gatehouse_domain::{Event, FactorKind, Secret};
use uuid::Uuid;

use super::{MfaDeps, SecondFactors, live_challenge};
use crate::error::AppError;
use crate::events::EventFactory;
use crate::ports::unit_of_work::UnitOfWorkFactory;

/// Sends a code for an email or SMS factor of a challenge.
#[derive(Clone, Debug)]
pub struct SendMfaCode {
    factors: SecondFactors,
    uow: Arc<dyn UnitOfWorkFactory>,
    events: EventFactory,
}

impl SendMfaCode {
    #[must_use]
    pub fn new(deps: MfaDeps) -> Self {
        let factors = SecondFactors::from(&deps);
        let uow = deps.uow;
        let events = deps.events;
        Self { factors, uow, events }
    }

    /// A new code replaces the previous one for this factor and challenge;
    /// the challenge's failure count is not reset.
    ///
    /// # Errors
    /// Challenge errors; `INVALID_ARGUMENT` (`factor_id`) for a factor the
    /// challenge does not offer; `FailedPrecondition` for a TOTP factor;
    /// [`AppError::RateLimited`] past the recipient's or the account's
    /// message limit (texts cost money: SMS pumping).
    pub async fn execute(&self, challenge_id: Uuid, factor_id: Uuid) -> Result<(), AppError> {
        let d = self;
        let now = d.factors.clock.now();
        let c = live_challenge(&d.factors, challenge_id, now).await?;
        let factor = d.factors.factor(c.user_id(), factor_id).await?;
        if !factor.active() || !d.factors.enabled(factor.kind()) {
            return Err(super::unknown_factor());
        }
        let Some(destination) = factor.destination().map(str::to_owned).filter(|_| factor.kind() != FactorKind::Totp)
        else {
            return Err(AppError::FailedPrecondition {
                reason: "CODE_NOT_NEEDED",
                message: "an authenticator app makes its own codes",
            });
        };
        d.factors.throttle.message(&destination, Some(c.user_id())).await?;
        let (code, stored) = d.factors.new_code(factor.id(), Some(c.id()), now);
        let event = Event::MfaCode {
            user_id: c.user_id(),
            kind: factor.kind(),
            destination,
            code: Secret::new(code.expose().to_owned()),
            expires_at: stored.expires_at,
        };
        let mut uow = d.uow.begin().await?;
        uow.factors().insert_code(&stored).await?;
        uow.add_messages(vec![d.events.message(now, event)]);
        uow.commit().await?;
        Ok(())
    }
}
