//! VerifyMfa: a TOTP code, an email/SMS code or a backup code passes the
//! challenge (once, however many requests race) and opens the session.

use std::sync::Arc;

use gatehouse_domain::{Event, FactorKind, OneTimeCode, Secret, TokenPair};
use uuid::Uuid;

use super::{
    MfaDeps, SecondFactors, backup_code_hash, factor_code_hash, live_challenge, normalize_backup_code, primary_email,
};
use crate::auth::TokenMinter;
use crate::auth::login::{SessionOpener, open_session};
use crate::error::{AppError, FieldViolation};
use crate::events::Audit;
use crate::events::EventFactory;
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
    /// # Errors
    /// Challenge errors, `CodeInvalid`, `AttemptsExhausted`, `RateLimited`,
    /// `INVALID_ARGUMENT` (`factor_id`) for a factor the challenge does not offer.
    pub async fn execute(&self, challenge_id: Uuid, proof: MfaProof) -> Result<MfaPassed, AppError> {
        let d = self;
        let now = d.factors.clock.now();
        let c = live_challenge(&d.factors, challenge_id, now).await?;
        d.factors.check_account_limit(c.user_id(), now).await?;
        let mut used = "backup_code";
        let (accepted, remaining) = match &proof {
            MfaProof::Factor { factor_id, code } => {
                let factor = d.factors.factor(c.user_id(), *factor_id).await?;
                if !factor.active() || !d.factors.enabled(factor.kind()) {
                    return Err(super::unknown_factor());
                }
                used = factor.kind().as_str();
                let ok = match factor.kind() {
                    FactorKind::Totp => d.factors.accept_totp(&factor, code, now).await?,
                    FactorKind::Email | FactorKind::Sms => {
                        d.factors
                            .mfa
                            .use_code(factor.id(), Some(c.id()), &factor_code_hash(factor.id(), code), now)
                            .await?
                    }
                };
                (ok, None)
            }
            MfaProof::BackupCode(code) => {
                if normalize_backup_code(code.expose()).is_none() {
                    return Err(AppError::InvalidArgument(vec![FieldViolation::new(
                        "code",
                        "a backup code is 12 letters and digits (xxxx-xxxx-xxxx)",
                    )]));
                }
                let user = c.user_id();
                let email = primary_email(d.users.as_ref(), user).await?;
                let mut uow = d.uow.begin().await?;
                let remaining =
                    uow.factors().use_backup_code(user, &backup_code_hash(user, code.expose()), now).await?;
                if let Some(remaining) = remaining {
                    let audit = Audit::by("mfa.backup_code_used", user).detail("remaining", remaining);
                    uow.add_messages(vec![
                        d.events.message(now, Event::BackupCodeUsed { user_id: user, email, remaining }),
                        d.events.audit(now, audit),
                    ]);
                    uow.commit().await?;
                }
                (remaining.is_some(), remaining)
            }
        };
        if !accepted {
            let audit =
                Audit::of("mfa.failed").failure().subject(c.user_id()).client(c.client()).detail("factor", used);
            d.events.record(now, audit).await?;
            return match d.factors.mfa.record_challenge_failure(c.id()).await? {
                Some(_) => Err(AppError::CodeInvalid { field: "code" }),
                None => Err(AppError::AttemptsExhausted),
            };
        }
        if !d.factors.mfa.consume_challenge(c.id(), now).await? {
            return Err(AppError::ChallengeUsed);
        }
        tracing::info!(user_id = %c.user_id(), challenge_id = %c.id(), "second factor passed");
        let tokens = open_session(&self.opener, &self.minter, c.user_id(), c.client().clone(), Some(used)).await?;
        Ok(MfaPassed { tokens, backup_codes_remaining: remaining })
    }
}
