//! ChangePassword: the current password, then a new one. The caller's other
//! sessions end (OWASP ASVS 5.0 V7.4.3) and the owner is notified.

use std::sync::Arc;

use gatehouse_domain::{AccessClaims, Event, Password, RevokeReason};

use super::PasswordProof;
use crate::auth::SessionRevoker;
use crate::error::AppError;
use crate::events::{Audit, EventFactory};
use crate::password_strength::PasswordStrength;
use crate::ports::clock::Clock;
use crate::ports::unit_of_work::UnitOfWorkFactory;

/// Changes the caller's password.
#[derive(Clone, Debug)]
pub struct ChangePassword {
    proof: PasswordProof,
    strength: PasswordStrength,
    uow: Arc<dyn UnitOfWorkFactory>,
    revoker: SessionRevoker,
    events: EventFactory,
    clock: Arc<dyn Clock>,
}

impl ChangePassword {
    #[must_use]
    pub fn new(
        proof: PasswordProof,
        strength: PasswordStrength,
        uow: Arc<dyn UnitOfWorkFactory>,
        revoker: SessionRevoker,
        events: EventFactory,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { proof, strength, uow, revoker, events, clock }
    }

    /// # Errors
    /// [`AppError::InvalidArgument`] (`new_password`) when the new password is
    /// too easy to guess, before the current one is checked;
    /// [`AppError::WrongPassword`] (`current_password`) when the current password is wrong.
    pub async fn execute(&self, caller: &AccessClaims, current: &Password, new: &Password) -> Result<(), AppError> {
        let user = caller.user_id;
        self.strength.check_account(user, new, "new_password").await?;
        self.proof.check(user, current, "current_password").await?;
        let hash = self.proof.hasher().hash(new).await?;
        let now = self.clock.now();
        let mut uow = self.uow.begin().await?;
        let account = uow.accounts().lock(user).await?.ok_or(AppError::NotFound("user"))?;
        uow.accounts().set_password_hash(user, &hash, now).await?;
        let revoked =
            SessionRevoker::revoke_all(uow.as_ref(), user, Some(caller.session_id), RevokeReason::PasswordChanged, now)
                .await?;
        let mut messages: Vec<_> = account
            .primary_email()
            .map(|e| self.events.message(now, Event::PasswordChanged { user_id: user, email: e.email.clone() }))
            .into_iter()
            .collect();
        messages.push(self.events.audit(now, Audit::by("password.changed", user)));
        uow.add_messages(messages);
        uow.commit().await?;
        self.revoker.deny_revoked(&revoked, now).await?;
        tracing::info!(user_id = %user, revoked = revoked.len(), "password changed");
        Ok(())
    }
}
