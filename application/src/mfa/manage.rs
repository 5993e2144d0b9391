//! ListFactors, RemoveFactor and RegenerateBackupCodes: each needs a fresh
//! proof of presence (the current password or a current TOTP code).

use gatehouse_domain::mfa::remove;
use gatehouse_domain::{Event, Factor, UserId};
use uuid::Uuid;

use super::{FreshProof, MfaDeps, unknown_factor};
use crate::error::AppError;
use crate::events::Audit;

/// Lists the caller's factors.
#[derive(Clone, Debug)]
pub struct ListFactors(MfaDeps);

impl ListFactors {
    #[must_use]
    pub const fn new(deps: MfaDeps) -> Self {
        Self(deps)
    }

    /// Pending and active factors, oldest first. Needs a fresh proof: the
    /// list reveals where codes go.
    ///
    /// # Errors
    /// A failed fresh proof; storage failures.
    pub async fn execute(&self, user: UserId, proof: &FreshProof) -> Result<Vec<Factor>, AppError> {
        self.0.check_fresh_proof(user, proof).await?;
        Ok(self.0.mfa.factors(user).await?)
    }
}

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
            kind: factor.kind,
        };
        let audit = d.events.audit(now, Audit::by("mfa.factor_removed", user).detail("factor", factor.kind.as_str()));
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
        if !d.mfa.factors(user).await?.iter().any(|f| f.active) {
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
