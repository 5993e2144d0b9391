//! RemoveFactor: needs a fresh proof of presence (the current password or a
//! current TOTP code); the backup codes go with the last active factor.

use gatehouse_domain::mfa::remove;
use gatehouse_domain::{Event, UserId};
use uuid::Uuid;

use super::{FreshProof, MfaDeps, unknown_factor};
use crate::error::AppError;
use crate::events::Audit;

/// Removes a factor.
#[derive(Clone, Debug)]
pub struct RemoveFactor(MfaDeps);

impl RemoveFactor {
    #[must_use]
    pub const fn new(deps: MfaDeps) -> Self {
        Self(deps)
    }

    /// # Errors
    /// `WrongPassword` / `CodeInvalid` without a valid fresh proof;
    /// `INVALID_ARGUMENT` (`factor_id`) for an unknown factor.
    pub async fn execute(&self, user: UserId, factor_id: Uuid, proof: &FreshProof) -> Result<(), AppError> {
        let d = &self.0;
        let factor = d.factor(user, factor_id).await?;
        d.check_fresh_proof(user, proof).await?;
        let now = d.clock.now();
        let notice = Event::MfaFactorRemoved {
            user_id: user,
            email: d.primary_email(user).await?,
            factor_id,
            kind: factor.kind(),
        };
        let audit = d.events.audit(now, Audit::by("mfa.factor_removed", user).detail("factor", factor.kind().as_str()));
        let mut uow = d.uow.begin().await?;
        uow.accounts().lock(user).await?.ok_or(AppError::NotFound("user"))?;
        let removal = remove(&uow.factors().list(user).await?, factor_id).ok_or_else(unknown_factor)?;
        uow.factors().delete(&[factor_id]).await?;
        if removal.backup_codes {
            uow.factors().replace_backup_codes(user, &[], now).await?;
        }
        uow.add_messages(vec![d.events.message(now, notice), audit]);
        uow.commit().await?;
        tracing::info!(user_id = %user, %factor_id, "second factor removed");
        Ok(())
    }
}
