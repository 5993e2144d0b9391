//! ResetPassword: a reset token, or email + code, and a new password. The
//! password is replaced, every session of the account is revoked (their
//! access tokens stop validating at once), and the owner is notified. No
//! session is created: the user logs in afterwards, with any second factor.
//! The reset proves the owner, so it also ends the account's run of login
//! failures: someone else's guessing cannot keep the owner locked out.

use std::sync::Arc;

use gatehouse_domain::{Event, Password, Purpose, RevokeReason};

use crate::auth::revoker::SessionRevoker;
use crate::auth::verification::{Proof, Redeemer, VerificationIssuer};
use crate::error::AppError;
use crate::events::Audit;
use crate::password_strength::PasswordStrength;
use crate::ports::clock::Clock;
use crate::ports::password::PasswordHasher;
use crate::ports::unit_of_work::UnitOfWorkFactory;
use crate::throttle::Throttle;

/// Resets passwords.
#[derive(Clone, Debug)]
pub struct ResetPassword {
    redeemer: Redeemer,
    uow: Arc<dyn UnitOfWorkFactory>,
    hasher: Arc<dyn PasswordHasher>,
    strength: PasswordStrength,
    issuer: VerificationIssuer,
    revoker: SessionRevoker,
    clock: Arc<dyn Clock>,
    throttle: Throttle,
}

impl ResetPassword {
    #[must_use]
    #[allow(clippy::too_many_arguments, reason = "each is a port or policy of its own; a bundle would only hide them")]
    pub fn new(
        redeemer: Redeemer,
        uow: Arc<dyn UnitOfWorkFactory>,
        hasher: Arc<dyn PasswordHasher>,
        strength: PasswordStrength,
        issuer: VerificationIssuer,
        revoker: SessionRevoker,
        clock: Arc<dyn Clock>,
        throttle: Throttle,
    ) -> Self {
        Self { redeemer, uow, hasher, strength, issuer, revoker, clock, throttle }
    }

    /// Redeems the reset `proof` names and sets `new_password`.
    ///
    /// # Errors
    /// See [`Redeemer::check`]; [`AppError::InvalidArgument`] (`new_password`)
    /// when the password is too easy to guess, with the verification left
    /// unused (checking a right proof consumes nothing).
    pub async fn execute(&self, proof: Proof, new_password: Password) -> Result<(), AppError> {
        let now = self.clock.now();
        let verification = self.redeemer.check(Purpose::ResetPassword, &proof, now).await?;
        self.strength.check_account(verification.user_id(), &new_password, "new_password").await?;
        let hash = self.hasher.hash(&new_password).await?;
        let notice = self.issuer.events().message(
            now,
            Event::PasswordChanged { user_id: verification.user_id(), email: verification.email().clone() },
        );
        let audit = self.issuer.events().audit(now, Audit::by("password.reset", verification.user_id()));
        let user = verification.user_id();
        let mut uow = self.uow.begin().await?;
        // The account first, as every unit of work on it does (one lock order).
        uow.accounts().lock(user).await?.ok_or(AppError::VerificationInvalid)?;
        Redeemer::consume(uow.as_ref(), &verification, now).await?;
        uow.accounts().set_password_hash(user, &hash, now).await?;
        // The reset proved control of the address.
        uow.accounts().mark_email_verified(user, verification.email(), now).await?;
        uow.verifications().retire(user, Purpose::ResetPassword, verification.retires_for(), now).await?;
        let revoked = SessionRevoker::revoke_all(uow.as_ref(), user, None, RevokeReason::PasswordReset, now).await?;
        uow.add_messages(vec![notice, audit]);
        uow.commit().await?;
        self.revoker.deny_revoked(&revoked, now).await?;
        if let Err(error) = self.throttle.clear_account(user).await {
            // The password is reset; the ceiling then runs out by itself.
            tracing::warn!(user_id = %user, error = %crate::error_chain(&error), "login throttle not cleared");
        }
        tracing::info!(user_id = %verification.user_id(), revoked = revoked.len(), "password reset");
        Ok(())
    }
}
