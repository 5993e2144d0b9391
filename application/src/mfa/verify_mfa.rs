//! VerifyMfa: a TOTP code, an email/SMS code or a backup code passes the
//! challenge (once, however many requests race) and opens the session; the
//! account's limit on wrong codes and the challenge's are decided under the
//! account's lock, with the check they guard.

use std::sync::Arc;

use gatehouse_domain::{Event, FactorKind, OneTimeCode, OrganizationId, Secret, TokenPair};
use uuid::Uuid;

use super::{
    MfaDeps, SecondFactors, backup_code_hash, factor_code_hash, live_challenge, normalize_backup_code, open_challenge,
    primary_email, unknown_factor,
};
use crate::auth::TokenMinter;
use crate::auth::login::{SessionOpener, open_session};
use crate::error::{AppError, FieldViolation};
use crate::events::Audit;
use crate::events::EventFactory;
use crate::organizations::member_role;
use crate::ports::store::UserRepository;
use crate::ports::unit_of_work::UnitOfWorkFactory;

/// What `VerifyMfa` is given.
#[derive(Debug, Clone)]
pub enum MfaProof {
    /// A 6-digit code of a factor (TOTP, or a code sent by email/SMS).
    Factor { factor_id: Uuid, code: OneTimeCode },
    /// One of the user's backup codes.
    BackupCode(Secret<String>),
}

/// A passed challenge.
#[derive(Debug, Clone)]
pub struct MfaPassed {
    pub tokens: TokenPair,
    /// After a backup code: how many unused ones remain.
    pub backup_codes_remaining: Option<u32>,
}

/// Passes challenges.
#[derive(Clone, Debug)]
pub struct VerifyMfa {
    factors: SecondFactors,
    uow: Arc<dyn UnitOfWorkFactory>,
    users: Arc<dyn UserRepository>,
    events: EventFactory,
    opener: SessionOpener,
    minter: TokenMinter,
}

impl VerifyMfa {
    #[must_use]
    pub fn new(deps: MfaDeps, opener: SessionOpener, minter: TokenMinter) -> Self {
        let factors = SecondFactors::from(&deps);
        Self { factors, uow: deps.uow, users: deps.users, events: deps.events, opener, minter }
    }

    /// Checks the proof; on success the challenge is consumed (exactly once,
    /// however many requests race) and the session opens.
    ///
    /// The decision is one unit of work that locks the account first: the
    /// account's recent wrong codes are counted, the challenge is re-read,
    /// the code (or backup code) is checked and consumed, and a wrong one is
    /// recorded, all before the commit. Parallel guesses on one account are
    /// therefore decided one after the other and never exceed the account's
    /// limit or the challenge's; and a backup code is spent only together
    /// with the challenge it passes.
    ///
    /// # Errors
    /// Challenge errors, `CodeInvalid`, `AttemptsExhausted`, `RateLimited`,
    /// `INVALID_ARGUMENT` (`factor_id`) for a factor the challenge does not offer.
    pub async fn execute(&self, challenge_id: Uuid, proof: MfaProof) -> Result<MfaPassed, AppError> {
        self.execute_for(challenge_id, proof, None).await
    }

    /// [`Self::execute`] for a session scoped to `organization` (a member only).
    ///
    /// # Errors
    /// As [`Self::execute`], and `NOT_FOUND` (`organization`) for a non-member.
    pub async fn execute_for(
        &self,
        challenge_id: Uuid,
        proof: MfaProof,
        organization: Option<OrganizationId>,
    ) -> Result<MfaPassed, AppError> {
        let d = self;
        let now = d.factors.clock.now();
        if let MfaProof::BackupCode(code) = &proof
            && normalize_backup_code(code.expose()).is_none()
        {
            return Err(AppError::InvalidArgument(vec![FieldViolation::new(
                "code",
                "a backup code is 12 letters and digits (xxxx-xxxx-xxxx)",
            )]));
        }
        // Read before the lock, only to learn whose account to lock (and to
        // refuse a dead challenge cheaply); decided again under the lock.
        let user = live_challenge(&d.factors, challenge_id, now).await?.user_id();
        if let Some(org) = organization {
            // Refused before the code is spent: a non-member keeps the challenge.
            member_role(self.opener.organizations.as_ref(), org, user).await?;
        }
        let email = match proof {
            MfaProof::BackupCode(_) => primary_email(d.users.as_ref(), user).await?,
            MfaProof::Factor { .. } => None,
        };
        let mut uow = d.uow.begin().await?;
        uow.accounts().lock(user).await?.ok_or(AppError::ChallengeInvalid)?;
        let c = open_challenge(uow.challenges().get(challenge_id).await?, now)?;
        d.factors.check_account_limit_in(uow.as_ref(), user, now).await?;
        let (used, accepted, remaining) = match &proof {
            MfaProof::Factor { factor_id, code } => {
                let factor = uow.factors().list(user).await?.into_iter().find(|f| f.id() == *factor_id);
                let factor = factor.filter(|f| f.active() && d.factors.enabled(f.kind())).ok_or_else(unknown_factor)?;
                let ok = match factor.kind() {
                    FactorKind::Totp => match d.factors.totp_step(&factor, code, now)? {
                        Some(step) => uow.factors().advance_totp_step(factor.id(), step).await?,
                        None => false,
                    },
                    FactorKind::Email | FactorKind::Sms => {
                        let hash = factor_code_hash(factor.id(), code);
                        uow.factors().use_code(factor.id(), Some(c.id()), &hash, now).await?
                    }
                };
                (factor.kind().as_str(), ok, None)
            }
            MfaProof::BackupCode(code) => {
                let hash = backup_code_hash(user, code.expose());
                let remaining = uow.factors().use_backup_code(user, &hash, now).await?;
                ("backup_code", remaining.is_some(), remaining)
            }
        };
        if !accepted {
            let audit = Audit::of("mfa.failed").failure().subject(user).client(c.client()).detail("factor", used);
            let counted = uow.challenges().record_failure(c.id()).await?;
            uow.add_messages(vec![d.events.audit(now, audit)]);
            uow.commit().await?;
            return match counted {
                Some(_) => Err(AppError::CodeInvalid { field: "code" }),
                None => Err(AppError::AttemptsExhausted),
            };
        }
        if !uow.challenges().pass(c.id(), now).await? {
            // Dropped uncommitted: a backup code stays unused.
            return Err(AppError::ChallengeUsed);
        }
        if let Some(remaining) = remaining {
            let audit = Audit::by("mfa.backup_code_used", user).detail("remaining", remaining);
            uow.add_messages(vec![
                d.events.message(now, Event::BackupCodeUsed { user_id: user, email, remaining }),
                d.events.audit(now, audit),
            ]);
        }
        uow.commit().await?;
        tracing::info!(user_id = %user, challenge_id = %c.id(), "second factor passed");
        let tokens =
            open_session(&self.opener, &self.minter, user, c.client().clone(), Some(used), organization).await?;
        Ok(MfaPassed { tokens, backup_codes_remaining: remaining })
    }
}
