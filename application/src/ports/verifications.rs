//! Storage of one-time verifications (email verification, password reset).
//!
//! The use cases decide; the store makes each step atomic: a failed attempt
//! is counted only while the limit is not reached, and a verification is
//! consumed, together with its effect, only once. So twenty parallel wrong
//! codes stop at the limit and a token redeemed twice in parallel succeeds
//! once (OWASP ASVS 5.0 V6.5.1).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use gatehouse_domain::{EmailAddress, PasswordHash, Purpose, Session, TokenHash, UserId, Verification};
use uuid::Uuid;

use crate::ports::events::OutboxMessage;
use crate::ports::store::StoreError;

/// What consuming a verification does, in the same transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Mark the verification's address verified.
    VerifyEmail,
    /// Replace the password, mark the address verified (the reset proved
    /// control of it), and revoke every session of the user.
    ResetPassword { hash: PasswordHash },
}

/// The outcome of [`VerificationRepository::consume`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Consumed {
    /// Consumed now; the effect is applied. `revoked` lists sessions the
    /// effect revoked (for the denylist).
    Applied { revoked: Vec<Session> },
    /// Already consumed, expired, or out of attempts: nothing changed.
    Unavailable,
}

/// What a user's verifications of one purpose saw lately.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecentActivity {
    /// Verifications issued.
    pub issued: u32,
    /// Wrong codes counted on them.
    pub failures: u32,
}

/// One-time verifications.
#[async_trait]
pub trait VerificationRepository: Send + Sync {
    /// Stores `verification`, retiring (consuming) every live one of the same
    /// user and purpose (for email verification, of the same address only),
    /// and writes `outbox`. A completed password reset likewise retires the
    /// user's other live resets.
    async fn replace(&self, verification: &Verification, outbox: &[OutboxMessage]) -> Result<(), StoreError>;

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

    /// Consumes the verification if it is unconsumed, unexpired at `now` and
    /// within its attempts, applies `effect` and writes `outbox`, atomically.
    async fn consume(
        &self,
        id: Uuid,
        effect: &Effect,
        outbox: &[OutboxMessage],
        now: DateTime<Utc>,
    ) -> Result<Consumed, StoreError>;
}
