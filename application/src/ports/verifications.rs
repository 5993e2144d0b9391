//! Storage of one-time verifications (email verification, password reset).
//!
//! The use cases decide; the store makes each step atomic: a failed attempt
//! is counted only while the limit is not reached, and a verification is
//! consumed, together with its effect, only once. So twenty parallel wrong
//! codes stop at the limit and a token redeemed twice in parallel succeeds
//! once (OWASP ASVS 5.0 V6.5.1).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use gatehouse_domain::{EmailAddress, Purpose, TokenHash, UserId, Verification};
use uuid::Uuid;

use crate::ports::store::StoreError;

/// What a user's verifications of one purpose saw lately.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecentActivity {
    /// Verifications issued.
    pub issued: u32,
    /// Wrong codes counted on them.
    pub failures: u32,
}

/// One-time verifications, outside a unit of work: reads, and counting a
/// wrong code (one guarded statement). Issuing and consuming them goes
/// through [`VerificationWrites`].
///
/// [`VerificationWrites`]: crate::ports::unit_of_work::VerificationWrites
#[async_trait]
pub trait VerificationRepository: std::fmt::Debug + Send + Sync {
    /// The verification whose link token hashes to `token_hash`, if any.
    async fn find_by_token(&self, purpose: Purpose, token_hash: &TokenHash)
    -> Result<Option<Verification>, StoreError>;

    /// The newest unconsumed verification of `purpose` for `email`.
    async fn find_latest(&self, purpose: Purpose, email: &EmailAddress) -> Result<Option<Verification>, StoreError>;

    /// Activity on the verifications of `user` for `purpose` created at or
    /// after `since`: the budget a new verification cannot reset.
    async fn recent_activity(
        &self,
        user: UserId,
        purpose: Purpose,
        since: DateTime<Utc>,
    ) -> Result<RecentActivity, StoreError>;

    /// Counts one wrong code, only while `attempts < max_attempts` and the
    /// verification is unconsumed. Returns the new count, or `None` when
    /// nothing was counted (limit reached or consumed).
    async fn record_failed_attempt(&self, id: Uuid) -> Result<Option<u32>, StoreError>;
}
