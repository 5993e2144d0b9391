//! The login challenge: after the password, a user with an active factor
//! gets a challenge instead of tokens (`SendMfaCode` sends an email/SMS code
//! for it, `VerifyMfa` passes it). A challenge lives 5 minutes and dies after
//! 5 wrong codes; wrong codes also count per account, so starting new
//! challenges does not buy more guesses.

use chrono::{DateTime, Utc};
use gatehouse_domain::{ClientInfo, FactorKind, MfaChallenge, UserId};
use uuid::Uuid;

use super::{MfaDeps, SecondFactors};
use crate::error::AppError;
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
pub struct MfaGate {
    factors: SecondFactors,
}

impl MfaGate {
    #[must_use]
    pub fn new(deps: MfaDeps) -> Self {
        let factors = SecondFactors::from(&deps);
        Self { factors }
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
        let d = self;
        let active: Vec<_> = d.factors.mfa.factors(user).await?.into_iter().filter(|f| f.active()).collect();
        if active.is_empty() {
            return Ok(None);
        }
        d.factors.check_account_limit(user, now).await?;
        let id = new_uuid_v7(now, d.factors.rng.as_ref());
        let challenge = MfaChallenge::open(
            id,
            user,
            client,
            now,
            now + d.factors.settings.challenge_ttl,
            d.factors.settings.max_attempts,
        );
        d.factors.mfa.create_challenge(&challenge).await?;
        let factors = active
            .iter()
            .filter(|f| d.factors.enabled(f.kind()))
            .map(|f| FactorView { id: f.id(), kind: f.kind(), hint: f.hint() })
            .collect();
        Ok(Some(ChallengeView { id: challenge.id(), factors, expires_at: challenge.expires_at() }))
    }
}
