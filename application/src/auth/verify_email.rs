//! VerifyEmail: the link token, or email + short code, marks the address verified.

use std::sync::Arc;

use gatehouse_domain::Purpose;

use crate::auth::verification::{Proof, Redeemer};
use crate::error::AppError;
use crate::events::{Audit, EventFactory};
use crate::ports::clock::Clock;
use crate::ports::verifications::Effect;

/// Verifies email addresses.
#[derive(Clone)]
pub struct VerifyEmail {
    redeemer: Redeemer,
    events: EventFactory,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for VerifyEmail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyEmail").finish_non_exhaustive()
    }
}

impl VerifyEmail {
    #[must_use]
    pub fn new(redeemer: Redeemer, events: EventFactory, clock: Arc<dyn Clock>) -> Self {
        Self { redeemer, events, clock }
    }

    /// Redeems the verification `proof` names.
    ///
    /// # Errors
    /// See [`Redeemer::check`].
    pub async fn execute(&self, proof: Proof) -> Result<(), AppError> {
        let now = self.clock.now();
        let verification = self.redeemer.check(Purpose::VerifyEmail, &proof, now).await?;
        let audit = Audit::by("email.verified", verification.user_id).detail("email", &verification.email);
        self.redeemer.consume(&verification, &Effect::VerifyEmail, &[self.events.audit(now, audit)], now).await?;
        tracing::info!(user_id = %verification.user_id, "email verified");
        Ok(())
    }
}
