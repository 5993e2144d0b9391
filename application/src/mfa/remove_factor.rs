//! RemoveFactor: needs a fresh proof of presence (the current password or a
//! current TOTP code); the backup codes go with the last active factor.

use std::sync::Arc;

use gatehouse_domain::mfa::remove;
use gatehouse_domain::{Event, UserId};
use uuid::Uuid;

use super::{FreshProof, FreshProofs, MfaDeps, primary_email, unknown_factor};
use crate::error::AppError;
use crate::events::Audit;
use crate::events::EventFactory;
use crate::ports::store::UserRepository;
use crate::ports::unit_of_work::UnitOfWorkFactory;

/// Removes a factor.
#[derive(Clone, Debug)]
pub struct RemoveFactor {
    proofs: FreshProofs,
    uow: Arc<dyn UnitOfWorkFactory>,
    users: Arc<dyn UserRepository>,
    events: EventFactory,
}

impl RemoveFactor {
    #[must_use]
    pub fn new(deps: MfaDeps) -> Self {
        let proofs = FreshProofs::from(&deps);
        let uow = deps.uow;
        let users = deps.users;
        let events = deps.events;
        Self { proofs, uow, users, events }
    }

    /// # Errors
    /// `WrongPassword` / `CodeInvalid` without a valid fresh proof;
    /// `INVALID_ARGUMENT` (`factor_id`) for an unknown factor.
    pub async fn execute(&self, user: UserId, factor_id: Uuid, proof: &FreshProof) -> Result<(), AppError> {
        let d = self;
        let factor = d.proofs.factors.factor(user, factor_id).await?;
        d.proofs.check(user, proof).await?;
        let now = d.proofs.factors.clock.now();
        let notice = Event::MfaFactorRemoved {
            user_id: user,
            email: primary_email(d.users.as_ref(), user).await?,
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
