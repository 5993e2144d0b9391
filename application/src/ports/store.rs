//! Storage of users and sessions (SQL in production).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use gatehouse_domain::{
    Account, ClientInfo, DisplayName, EmailAddress, PasswordHash, RevokeReason, Session, SessionId, TokenHash, User,
    UserId, Verification,
};

use crate::ports::BoxError;
use crate::ports::events::OutboxMessage;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule refused the write (the message names it).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database cannot be reached or timed out.
    #[error("store unavailable")]
    Unavailable(#[source] BoxError),
    /// Anything else: a bug, a broken invariant, data that cannot be read.
    #[error("store error")]
    Internal(#[source] BoxError),
}

/// What login needs to know about the account behind a login email.
#[derive(Debug, Clone)]
pub struct UserCredentials {
    pub user_id: UserId,
    pub password_hash: PasswordHash,
    /// Whether this particular address has been verified.
    pub email_verified: bool,
}

/// Why a login email could not be removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailRemoval {
    Removed,
    /// The account has no such login email.
    NotFound,
    /// The primary address must be replaced first (`SetPrimaryEmail`).
    IsPrimary,
    /// It is the account's last verified address.
    LastVerified,
}

/// The outcome of making a login email the primary one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrimaryChange {
    Changed,
    NotFound,
    NotVerified,
}

/// User accounts and their login emails. Every method that changes state
/// also writes the given outbox messages, in the same transaction.
#[async_trait]
pub trait UserRepository: Send + Sync {
    /// Stores a new user with `user.email` as its primary, unverified login
    /// email, and its first email verification.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the email is a login email of any account.
    async fn create(
        &self,
        user: &User,
        verification: &Verification,
        outbox: &[OutboxMessage],
    ) -> Result<(), StoreError>;

    /// The credentials of the account that logs in with `email`, if any.
    async fn find_credentials(&self, email: &EmailAddress) -> Result<Option<UserCredentials>, StoreError>;

    /// The stored password hash of a user.
    async fn password_hash(&self, user: UserId) -> Result<Option<PasswordHash>, StoreError>;

    /// Replaces the stored password hash (used to upgrade hash parameters).
    async fn update_password_hash(
        &self,
        user: UserId,
        hash: &PasswordHash,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// The account with its login emails (primary first).
    async fn get(&self, user: UserId) -> Result<Option<Account>, StoreError>;

    /// Sets the display name; `false` when there is no such user.
    async fn update_display_name(
        &self,
        user: UserId,
        name: &DisplayName,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Replaces the password and revokes every session of the user except
    /// `keep`, returning the sessions it revoked (for the denylist).
    async fn change_password(
        &self,
        user: UserId,
        hash: &PasswordHash,
        keep: Option<SessionId>,
        outbox: &[OutboxMessage],
        now: DateTime<Utc>,
    ) -> Result<Vec<Session>, StoreError>;

    /// Adds an unverified login email with its verification.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the address is a login email of any account.
    async fn add_email(
        &self,
        user: UserId,
        email: &EmailAddress,
        verification: &Verification,
        outbox: &[OutboxMessage],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Removes a login email unless it is the primary or the last verified
    /// one, and retires its live verifications (a late link must not report
    /// an address verified that is gone) and deletes an email second factor
    /// that sends codes to it (the address may be someone else's tomorrow).
    async fn remove_email(
        &self,
        user: UserId,
        email: &EmailAddress,
        outbox: &[OutboxMessage],
        now: DateTime<Utc>,
    ) -> Result<EmailRemoval, StoreError>;

    /// Makes a verified login email the primary one.
    async fn set_primary_email(
        &self,
        user: UserId,
        email: &EmailAddress,
        outbox: &[OutboxMessage],
        now: DateTime<Utc>,
    ) -> Result<PrimaryChange, StoreError>;

    /// Deletes the account and everything it owns (its audit rows stay);
    /// returns the sessions that were still live (for the denylist). Empty,
    /// and nothing written, when there is no such user.
    async fn delete(
        &self,
        user: UserId,
        outbox: &[OutboxMessage],
        now: DateTime<Utc>,
    ) -> Result<Vec<Session>, StoreError>;
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
    /// Stores a new session with its first refresh token, and `outbox`
    /// (a new-login notice) in the same transaction.
    async fn create(
        &self,
        session: &Session,
        refresh: &NewRefreshToken,
        outbox: &[OutboxMessage],
    ) -> Result<(), StoreError>;

    /// Atomically retires `presented` and stores `next` in its place: a
    /// compare-and-swap, so two concurrent rotations of one token never both
    /// succeed (the loser sees [`Rotation::Reused`]). `next` expires no later
    /// than the session's absolute end; the session's `expires_at`,
    /// `last_used_at` and client data (IP, user agent) move with it.
    async fn rotate_refresh_token(
        &self,
        presented: &TokenHash,
        next: &NewRefreshToken,
        client: &ClientInfo,
        now: DateTime<Utc>,
    ) -> Result<Rotation, StoreError>;

    /// The session any refresh token (current or retired) belongs to.
    async fn find_by_refresh_token(&self, hash: &TokenHash) -> Result<Option<Session>, StoreError>;

    /// One session by id, in any state.
    async fn get(&self, id: SessionId) -> Result<Option<Session>, StoreError>;

    /// The user's unrevoked sessions that have not expired at `now`, newest first.
    async fn list_live(&self, user: UserId, now: DateTime<Utc>) -> Result<Vec<Session>, StoreError>;

    /// Whether any session of the user, in any state, came from this IP
    /// address with this user agent: a device the user has used before.
    async fn seen_device(&self, user: UserId, client: &ClientInfo) -> Result<bool, StoreError>;

    /// Marks a session revoked (keeping an earlier revocation's time), writes
    /// `outbox` in the same transaction, and returns it; `None` (nothing
    /// written) when no such session exists.
    async fn revoke(
        &self,
        id: SessionId,
        reason: RevokeReason,
        outbox: &[OutboxMessage],
        now: DateTime<Utc>,
    ) -> Result<Option<Session>, StoreError>;

    /// Revokes every unrevoked session of `user` except `keep` and writes
    /// `outbox`, in one transaction; returns the sessions it revoked.
    async fn revoke_all(
        &self,
        user: UserId,
        keep: Option<SessionId>,
        reason: RevokeReason,
        outbox: &[OutboxMessage],
        now: DateTime<Utc>,
    ) -> Result<Vec<Session>, StoreError>;

    /// Sessions revoked at or after `since`: the ones whose access tokens
    /// may still be alive, used to rebuild a denylist that lost its data.
    async fn revoked_since(&self, since: DateTime<Utc>) -> Result<Vec<Session>, StoreError>;

    /// Deletes sessions (with their refresh tokens) that expired, or were
    /// revoked, before `ended_before`; returns how many.
    async fn prune(&self, ended_before: DateTime<Utc>) -> Result<u64, StoreError>;
}
