//! RegenerateBackupCodes: new codes, shown once; needs a fresh proof of presence.

use std::sync::Arc;

use gatehouse_domain::{Event, Factor, UserId};

use super::{FreshProof, FreshProofs, MfaDeps, primary_email};
use crate::error::AppError;
use crate::events::Audit;
use crate::events::EventFactory;
use crate::ports::store::UserRepository;
use crate::ports::unit_of_work::UnitOfWorkFactory;

/// Replaces the backup codes.
#[derive(Clone, Debug)]
pub struct RegenerateBackupCodes {
    proofs: FreshProofs,
    uow: Arc<dyn UnitOfWorkFactory>,
    users: Arc<dyn UserRepository>,
    events: EventFactory,
}

impl RegenerateBackupCodes {
    #[must_use]
    pub fn new(deps: MfaDeps) -> Self {
        let proofs = FreshProofs::from(&deps);
        let uow = deps.uow;
        let users = deps.users;
        let events = deps.events;
        Self { proofs, uow, users, events }
    }

    /// New codes, shown once; the old ones stop working.
    ///
    /// # Errors
    /// `FailedPrecondition` without an active factor; a failed fresh proof.
    pub async fn execute(&self, user: UserId, proof: &FreshProof) -> Result<Vec<String>, AppError> {
        let d = self;
        if !d.proofs.factors.mfa.factors(user).await?.iter().any(Factor::active) {
            return Err(no_active_factor());
        }
        d.proofs.check(user, proof).await?;
        let now = d.proofs.factors.clock.now();
        let (codes, hashes) = d.proofs.factors.new_backup_codes(user);
        let notice =
            Event::BackupCodesRegenerated { user_id: user, email: primary_email(d.users.as_ref(), user).await? };
        let audit = d.events.audit(now, Audit::by("mfa.backup_codes_regenerated", user));
        let mut uow = d.uow.begin().await?;
        // Under the account's lock: of two regenerations one waits for the
        // other and replaces its codes, so only the last set works; and a
        // removal of the last factor meanwhile is seen.
        uow.accounts().lock(user).await?.ok_or(AppError::NotFound("user"))?;
        if !uow.factors().list(user).await?.iter().any(Factor::active) {
            return Err(no_active_factor());
        }
        uow.factors().replace_backup_codes(user, &hashes, now).await?;
        uow.add_messages(vec![d.events.message(now, notice), audit]);
        uow.commit().await?;
        tracing::info!(user_id = %user, "backup codes regenerated");
        Ok(codes)
    }
}

fn no_active_factor() -> AppError {
    AppError::FailedPrecondition { reason: "NO_ACTIVE_FACTOR", message: "backup codes need an active second factor" }
}
