//! ChangePassword: the current password, then a new one. The caller's other
//! sessions end (OWASP ASVS 5.0 V7.4.3) and the owner is notified.

use gatehouse_domain::{AccessClaims, Event, Password};

use super::AccountDeps;
use crate::error::AppError;
use crate::events::Audit;

/// Changes the caller's password.
#[derive(Clone, Debug)]
pub struct ChangePassword(AccountDeps);

impl ChangePassword {
    #[must_use]
    pub const fn new(deps: AccountDeps) -> Self {
        Self(deps)
    }

    /// # Errors
    /// [`AppError::WrongPassword`] (`current_password`) when the current password is wrong.
    pub async fn execute(&self, caller: &AccessClaims, current: &Password, new: &Password) -> Result<(), AppError> {
        let d = &self.0;
        d.check_password(caller.user_id, current, "current_password").await?;
        let hash = d.hasher.hash(new).await?;
        let account = d.users.get(caller.user_id).await?.ok_or(AppError::NotFound("user"))?;
        let now = d.clock.now();
        let notices: Vec<_> = account
            .primary_email()
            .map(|e| {
                d.issuer
                    .events()
                    .message(now, Event::PasswordChanged { user_id: caller.user_id, email: e.email.clone() })
            })
            .into_iter()
            .collect();
        let mut outbox = notices;
        outbox.push(d.issuer.events().audit(now, Audit::by("password.changed", caller.user_id)));
        let revoked = d.users.change_password(caller.user_id, &hash, Some(caller.session_id), &outbox, now).await?;
        d.revoker.deny_revoked(&revoked, now).await?;
        tracing::info!(user_id = %caller.user_id, revoked = revoked.len(), "password changed");
        Ok(())
    }
}
