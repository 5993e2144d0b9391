//! Storage of users and sessions (SQL in production).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use gatehouse_domain::{EmailAddress, PasswordHash, RevokeReason, Session, SessionId, TokenHash, User, UserId};

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule refused the write (the message names it).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database cannot be reached or timed out.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("store error: {0}")]
    Internal(String),
}

/// What login needs to know about an account.
#[derive(Debug, Clone)]
pub struct UserCredentials {
    pub user_id: UserId,
    pub password_hash: PasswordHash,
}

/// User accounts.
#[async_trait]
pub trait UserRepository: Send + Sync {
    /// Stores a new user with `user.email` as its primary login email.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the email is taken by any account.
    async fn create(&self, user: &User) -> Result<(), StoreError>;

    /// The credentials of the account that logs in with `email`, if any.
    async fn find_credentials(&self, email: &EmailAddress) -> Result<Option<UserCredentials>, StoreError>;

    /// Replaces the stored password hash (used to upgrade hash parameters).
    async fn update_password_hash(
        &self,
        user: UserId,
        hash: &PasswordHash,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
}

/// A refresh token to store: only its hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewRefreshToken {
    pub hash: TokenHash,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// The result of presenting a refresh token for rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The token was current and is now retired; `next` is stored and the
    /// session (returned with its new `last_used_at`/`expires_at`) goes on.
    Rotated(Session),
    /// The token had already been rotated (or lost a race to a concurrent
    /// rotation): a copy exists somewhere. Nothing was changed.
    Reused { session_id: SessionId },
    /// The token is past its expiry.
    Expired,
    /// The token's session is revoked or expired.
    SessionEnded,
    /// No such token was ever issued.
    Unknown,
}

/// Sessions and their refresh-token chains.
#[async_trait]
pub trait SessionRepository: Send + Sync {
    /// Stores a new session with its first refresh token.
    async fn create(&self, session: &Session, refresh: &NewRefreshToken) -> Result<(), StoreError>;

    /// Atomically retires `presented` and stores `next` in its place: a
    /// compare-and-swap, so two concurrent rotations of one token never both
    /// succeed (the loser sees [`Rotation::Reused`]).
    async fn rotate_refresh_token(
        &self,
        presented: &TokenHash,
        next: &NewRefreshToken,
        now: DateTime<Utc>,
    ) -> Result<Rotation, StoreError>;

    /// The session any refresh token (current or retired) belongs to.
    async fn find_by_refresh_token(&self, hash: &TokenHash) -> Result<Option<Session>, StoreError>;

    /// Marks a session revoked (keeping an earlier revocation's time) and
    /// returns it; `None` when no such session exists.
    async fn revoke(
        &self,
        id: SessionId,
        reason: RevokeReason,
        now: DateTime<Utc>,
    ) -> Result<Option<Session>, StoreError>;

    /// Sessions revoked at or after `since`: the ones whose access tokens
    /// may still be alive, used to rebuild a denylist that lost its data.
    async fn revoked_since(&self, since: DateTime<Utc>) -> Result<Vec<Session>, StoreError>;
}
