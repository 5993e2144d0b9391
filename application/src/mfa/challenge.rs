//! The login challenge: after the password, a user with an active factor
//! gets a challenge instead of tokens; `SendMfaCode` sends an email/SMS code
//! for it, and `VerifyMfa` with a TOTP code, an email/SMS code or a backup
//! code passes it and opens the session. A challenge lives 5 minutes and dies
//! after 5 wrong codes; wrong codes also count per account, so starting new
//! challenges does not buy more guesses.

use chrono::{DateTime, Utc};
use gatehouse_domain::{ClientInfo, Event, FactorKind, MfaChallenge, OneTimeCode, Secret, TokenPair, UserId};
use uuid::Uuid;

use super::{MfaDeps, backup_code_hash, factor_code_hash, normalize_backup_code};
use crate::auth::TokenMinter;
use crate::auth::login::{SessionOpener, open_session};
use crate::error::{AppError, FieldViolation};
use crate::events::Audit;
use crate::ids::new_uuid_v7;

/// One factor offered by a challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactorView {
    pub id: Uuid,
    pub kind: FactorKind,
    pub hint: String,
}

/// What `Login` returns instead of tokens when a second factor is needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeView {
    pub id: Uuid,
    pub factors: Vec<FactorView>,
    pub expires_at: DateTime<Utc>,
}

/// Decides whether a login needs a second factor, and opens the challenge.
#[derive(Clone, Debug)]
pub struct MfaGate(MfaDeps);

impl MfaGate {
    #[must_use]
    pub const fn new(deps: MfaDeps) -> Self {
        Self(deps)
    }

    /// The event factory the MFA use cases share.
    #[must_use]
    pub const fn events(&self) -> &crate::events::EventFactory {
        &self.0.events
    }

    /// A challenge when `user` has an active factor, `None` otherwise. Only
    /// enabled kinds are offered; backup codes always work.
    ///
    /// # Errors
    /// `RateLimited` after too many wrong codes on this account lately.
    pub async fn challenge(
        &self,
        user: UserId,
        client: ClientInfo,
        now: DateTime<Utc>,
    ) -> Result<Option<ChallengeView>, AppError> {
        let d = &self.0;
        let active: Vec<_> = d.mfa.factors(user).await?.into_iter().filter(|f| f.active).collect();
        if active.is_empty() {
            return Ok(None);
        }
        d.check_account_limit(user, now).await?;
        let challenge = MfaChallenge {
            id: new_uuid_v7(now, d.rng.as_ref()),
            user_id: user,
            client,
            created_at: now,
            expires_at: now + d.settings.challenge_ttl,
            attempts: 0,
            max_attempts: d.settings.max_attempts,
            consumed_at: None,
        };
        d.mfa.create_challenge(&challenge).await?;
        let factors = active
            .iter()
            .filter(|f| d.enabled(f.kind))
            .map(|f| FactorView { id: f.id, kind: f.kind, hint: f.hint() })
            .collect();
        Ok(Some(ChallengeView { id: challenge.id, factors, expires_at: challenge.expires_at }))
    }
}

/// The challenge `id`, if a code may still be tried on it.
async fn live_challenge(d: &MfaDeps, id: Uuid, now: DateTime<Utc>) -> Result<MfaChallenge, AppError> {
    let c = d.mfa.challenge(id).await?.ok_or(AppError::ChallengeInvalid)?;
    if c.consumed_at.is_some() {
        Err(AppError::ChallengeUsed)
    } else if now >= c.expires_at {
        Err(AppError::ChallengeExpired)
    } else if c.attempts >= c.max_attempts {
        Err(AppError::AttemptsExhausted)
    } else {
        Ok(c)
    }
}

/// Sends a code for an email or SMS factor of a challenge.
#[derive(Clone, Debug)]
pub struct SendMfaCode(MfaDeps);

impl SendMfaCode {
    #[must_use]
    pub const fn new(deps: MfaDeps) -> Self {
        Self(deps)
    }

    /// A new code replaces the previous one for this factor and challenge;
    /// the challenge's failure count is not reset.
    ///
    /// # Errors
    /// Challenge errors; `INVALID_ARGUMENT` (`factor_id`) for a factor the
    /// challenge does not offer; `FailedPrecondition` for a TOTP factor.
    pub async fn execute(&self, challenge_id: Uuid, factor_id: Uuid) -> Result<(), AppError> {
        let d = &self.0;
        let now = d.clock.now();
        let c = live_challenge(d, challenge_id, now).await?;
        let factor = d.factor(c.user_id, factor_id).await?;
        if !factor.active || !d.enabled(factor.kind) {
            return Err(super::unknown_factor());
        }
        let Some(destination) = factor.destination.clone().filter(|_| factor.kind != FactorKind::Totp) else {
            return Err(AppError::FailedPrecondition {
                reason: "CODE_NOT_NEEDED",
                message: "an authenticator app makes its own codes",
            });
        };
        let (code, stored) = d.new_code(factor.id, Some(c.id), now);
        let event = Event::MfaCode {
            user_id: c.user_id,
            kind: factor.kind,
            destination,
            code: Secret::new(code.expose().to_owned()),
            expires_at: stored.expires_at,
        };
        let mut uow = d.uow.begin().await?;
        uow.factors().insert_code(&stored).await?;
        uow.add_messages(vec![d.events.message(now, event)]);
        uow.commit().await?;
        Ok(())
    }
}

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
    deps: MfaDeps,
    opener: SessionOpener,
    minter: TokenMinter,
}

impl VerifyMfa {
    #[must_use]
    pub const fn new(deps: MfaDeps, opener: SessionOpener, minter: TokenMinter) -> Self {
        Self { deps, opener, minter }
    }

    /// Checks the proof; on success the challenge is consumed (exactly once,
    /// however many requests race) and the session opens.
    ///
    /// # Errors
    /// Challenge errors, `CodeInvalid`, `AttemptsExhausted`, `RateLimited`,
    /// `INVALID_ARGUMENT` (`factor_id`) for a factor the challenge does not offer.
    pub async fn execute(&self, challenge_id: Uuid, proof: MfaProof) -> Result<MfaPassed, AppError> {
        let d = &self.deps;
        let now = d.clock.now();
        let c = live_challenge(d, challenge_id, now).await?;
        d.check_account_limit(c.user_id, now).await?;
        let mut used = "backup_code";
        let (accepted, remaining) = match &proof {
            MfaProof::Factor { factor_id, code } => {
                let factor = d.factor(c.user_id, *factor_id).await?;
                if !factor.active || !d.enabled(factor.kind) {
                    return Err(super::unknown_factor());
                }
                used = factor.kind.as_str();
                let ok = match factor.kind {
                    FactorKind::Totp => d.accept_totp(&factor, code, now).await?,
                    FactorKind::Email | FactorKind::Sms => {
                        d.mfa.use_code(factor.id, Some(c.id), &factor_code_hash(factor.id, code), now).await?
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
                let user = c.user_id;
                let email = d.primary_email(user).await?;
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
            let audit = Audit::of("mfa.failed").failure().subject(c.user_id).client(&c.client).detail("factor", used);
            d.events.record(now, audit).await?;
            return match d.mfa.record_challenge_failure(c.id).await? {
                Some(_) => Err(AppError::CodeInvalid { field: "code" }),
                None => Err(AppError::AttemptsExhausted),
            };
        }
        if !d.mfa.consume_challenge(c.id, now).await? {
            return Err(AppError::ChallengeUsed);
        }
        tracing::info!(user_id = %c.user_id, challenge_id = %c.id, "second factor passed");
        let tokens = open_session(&self.opener, &self.minter, c.user_id, c.client, Some(used)).await?;
        Ok(MfaPassed { tokens, backup_codes_remaining: remaining })
    }
}
