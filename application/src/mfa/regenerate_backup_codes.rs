//! RegenerateBackupCodes: new codes, shown once; needs a fresh proof of presence.

use gatehouse_domain::{Event, UserId};

use super::{FreshProof, MfaDeps};
use crate::error::AppError;
use crate::events::Audit;

/// Replaces the backup codes.
#[derive(Clone, Debug)]
pub struct RegenerateBackupCodes(MfaDeps);

impl RegenerateBackupCodes {
    #[must_use]
    pub const fn new(deps: MfaDeps) -> Self {
        Self(deps)
    }

    /// New codes, shown once; the old ones stop working.
    ///
    /// # Errors
    /// `FailedPrecondition` without an active factor; a failed fresh proof.
    pub async fn execute(&self, user: UserId, proof: &FreshProof) -> Result<Vec<String>, AppError> {
        let d = &self.0;
        if !d.mfa.factors(user).await?.iter().any(|f| f.active()) {
            return Err(AppError::FailedPrecondition {
                reason: "NO_ACTIVE_FACTOR",
                message: "backup codes need an active second factor",
            });
        }
        d.check_fresh_proof(user, proof).await?;
        let now = d.clock.now();
        let (codes, hashes) = d.new_backup_codes(user);
        let notice = Event::BackupCodesRegenerated { user_id: user, email: d.primary_email(user).await? };
        let audit = d.events.audit(now, Audit::by("mfa.backup_codes_regenerated", user));
        let mut uow = d.uow.begin().await?;
        uow.factors().replace_backup_codes(user, &hashes, now).await?;
        uow.add_messages(vec![d.events.message(now, notice), audit]);
        uow.commit().await?;
        tracing::info!(user_id = %user, "backup codes regenerated");
        Ok(codes)
    }
}
