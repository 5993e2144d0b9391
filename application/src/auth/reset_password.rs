//! ResetPassword: a reset token, or email + code, and a new password. The
//! password is replaced, every session of the account is revoked (their
//! access tokens stop validating at once), and the owner is notified. No
//! session is created: the user logs in afterwards, with any second factor.

use std::sync::Arc;

use gatehouse_domain::{Event, Password, Purpose};

use crate::auth::revoker::SessionRevoker;
use crate::auth::verification::{Proof, Redeemer, VerificationIssuer};
use crate::error::AppError;
use crate::events::Audit;
use crate::ports::clock::Clock;
use crate::ports::password::PasswordHasher;
use crate::ports::verifications::Effect;

/// Resets passwords.
#[derive(Clone)]
pub struct ResetPassword {
    redeemer: Redeemer,
    hasher: Arc<dyn PasswordHasher>,
    issuer: VerificationIssuer,
    revoker: SessionRevoker,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for ResetPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResetPassword").finish_non_exhaustive()
    }
}

impl ResetPassword {
    #[must_use]
    pub fn new(
        redeemer: Redeemer,
        hasher: Arc<dyn PasswordHasher>,
        issuer: VerificationIssuer,
        revoker: SessionRevoker,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { redeemer, hasher, issuer, revoker, clock }
    }

    /// Redeems the reset `proof` names and sets `new_password`.
    ///
    /// # Errors
    /// See [`Redeemer::check`].
    pub async fn execute(&self, proof: Proof, new_password: Password) -> Result<(), AppError> {
        let now = self.clock.now();
        let verification = self.redeemer.check(Purpose::ResetPassword, &proof, now).await?;
        let hash = self.hasher.hash(&new_password).await?;
        let notice = self
            .issuer
            .events()
            .message(now, Event::PasswordChanged { user_id: verification.user_id, email: verification.email.clone() });
        let audit = self.issuer.events().audit(now, Audit::by("password.reset", verification.user_id));
        let revoked =
            self.redeemer.consume(&verification, &Effect::ResetPassword { hash }, &[notice, audit], now).await?;
        self.revoker.deny_revoked(&revoked, now).await?;
        tracing::info!(user_id = %verification.user_id, revoked = revoked.len(), "password reset");
        Ok(())
    }
}
