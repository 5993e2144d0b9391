//! Storage of users and sessions (SQL in production).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use gatehouse_domain::{
    Account, ClientInfo, DisplayName, EmailAddress, PasswordHash, Session, SessionId, TokenHash, UserId,
};

use crate::ports::BoxError;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule refused the write (the message names it).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A row the write refers to does not exist (a foreign key refused it):
    /// the account or factor was deleted meanwhile.
    #[error("refers to a missing row: {0}")]
    Gone(String),
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

/// User accounts and their login emails, read outside a unit of work (the
/// writes that go with other changes are in [`AccountWrites`]).
///
/// [`AccountWrites`]: crate::ports::unit_of_work::AccountWrites
#[async_trait]
pub trait UserRepository: std::fmt::Debug + Send + Sync {
    /// The credentials of the account that logs in with `email`, if any.
    async fn find_credentials(&self, email: &EmailAddress) -> Result<Option<UserCredentials>, StoreError>;

    /// The stored password hash of a user.
    async fn password_hash(&self, user: UserId) -> Result<Option<PasswordHash>, StoreError>;

    /// Replaces the stored password hash (used to upgrade hash parameters):
    /// one statement, no unit of work needed.
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
}

/// A refresh token to store: only its hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewRefreshToken {
    pub hash: TokenHash,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// What retiring a presented refresh token found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retirement {
    /// The token was current and is retired now (in the unit of work).
    Retired { session_id: SessionId },
    /// The token had already been retired (or lost a race to a concurrent
    /// refresh): a copy exists somewhere. Nothing was changed.
    Reused { session_id: SessionId },
    /// The token is past its expiry.
    Expired,
    /// No such token was ever issued.
    Unknown,
}

/// Sessions and their refresh-token chains, outside a unit of work: reads,
/// and pruning. A refresh retires its token in a unit of work
/// ([`SessionWrites::retire_refresh_token`]).
///
/// [`SessionWrites::retire_refresh_token`]: crate::ports::unit_of_work::SessionWrites::retire_refresh_token
#[async_trait]
pub trait SessionRepository: std::fmt::Debug + Send + Sync {
    /// The session any refresh token (current or retired) belongs to.
    async fn find_by_refresh_token(&self, hash: &TokenHash) -> Result<Option<Session>, StoreError>;

    /// One session by id, in any state.
    async fn get(&self, id: SessionId) -> Result<Option<Session>, StoreError>;

    /// The user's unrevoked sessions that have not expired at `now`, newest first.
    async fn list_live(&self, user: UserId, now: DateTime<Utc>) -> Result<Vec<Session>, StoreError>;

    /// Whether any session of the user, in any state, came from this IP
    /// address with this user agent: a device the user has used before.
    async fn seen_device(&self, user: UserId, client: &ClientInfo) -> Result<bool, StoreError>;

    /// Sessions revoked at or after `since`: the ones whose access tokens
    /// may still be alive, used to rebuild a denylist that lost its data.
    async fn revoked_since(&self, since: DateTime<Utc>) -> Result<Vec<Session>, StoreError>;

    /// Deleted accounts whose last access token expires after `now`: the
    /// rebuild re-denies them, since their sessions are gone.
    async fn tombstones(&self, now: DateTime<Utc>) -> Result<Vec<Tombstone>, StoreError>;

    /// Deletes sessions (with their refresh tokens) that expired, or were
    /// revoked, before `ended_before`, and tombstones that ended before it;
    /// returns how many rows.
    async fn prune(&self, ended_before: DateTime<Utc>) -> Result<u64, StoreError>;
}

/// What is left of a deleted account until its last access token expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tombstone {
    pub user: UserId,
    pub until: DateTime<Utc>,
}
