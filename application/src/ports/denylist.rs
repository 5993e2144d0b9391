//! The token denylist: the fast, shared record of revoked sessions and access
//! tokens that every replica consults on each validation. It is a cache of
//! the session rows and account tombstones in storage (the durable truth)
//! and is rebuilt from them, so its entries only need to live as long as the
//! tokens they deny.
//!
//! A cache that can lose its contents (a Redis restarted without
//! persistence, flushed, or failed over to a lagging copy) must know when it
//! is complete: a denylist answers lookups only after a rebuild has filled
//! it, and refuses to answer (an error, so validation fails closed) once it
//! sees that data was lost or that it could not be reached, until the next
//! rebuild has run. [`Denylist::stale`] tells the rebuild task to run at once.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use gatehouse_domain::{SessionId, TokenId, UserId};

use crate::ports::BoxError;

/// What a denylist entry refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DenyKey {
    /// Every access token carrying this `sid`.
    Session(SessionId),
    /// The one access token with this `jti`.
    Token(TokenId),
    /// Every access token of this (deleted) account.
    User(UserId),
}

/// One entry, kept until the last token it could refuse has expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DenyEntry {
    pub key: DenyKey,
    pub until: DateTime<Utc>,
}

/// The denylist could not be read or written, or cannot vouch that it is
/// complete. Validation treats this as "cannot tell" and refuses (fails
/// closed).
#[derive(Debug, thiserror::Error)]
#[error("denylist unavailable")]
pub struct DenylistError(#[source] pub BoxError);

/// A rebuild in progress: taken before storage is read, so that data lost
/// between the read and the write is noticed (the write is then refused and
/// the rebuild starts over).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RebuildTicket(pub u128);

/// The shared denylist.
#[async_trait]
pub trait Denylist: std::fmt::Debug + Send + Sync {
    /// Adds entries; each expires at its `until`. A failure leaves the
    /// denylist stale (see [`Self::stale`]): the rebuild from storage then
    /// writes what this call could not.
    async fn deny(&self, entries: &[DenyEntry], now: DateTime<Utc>) -> Result<(), DenylistError>;

    /// Whether the session, the token or the user is denied, in one round
    /// trip that also checks the denylist is complete.
    ///
    /// # Errors
    /// When the denylist cannot be reached, has not been rebuilt yet, or has
    /// lost data since its last rebuild.
    async fn is_denied(
        &self,
        session: SessionId,
        token: TokenId,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<bool, DenylistError>;

    /// Starts a rebuild; call before reading storage.
    async fn begin_rebuild(&self) -> Result<RebuildTicket, DenylistError>;

    /// Writes every entry storage still holds, read after `ticket` was
    /// taken, and marks the denylist complete again.
    ///
    /// # Errors
    /// When the denylist cannot be reached, or lost data since `ticket` was
    /// taken (the entries read may then miss what was lost: start over).
    async fn complete_rebuild(
        &self,
        ticket: RebuildTicket,
        entries: &[DenyEntry],
        now: DateTime<Utc>,
    ) -> Result<(), DenylistError>;

    /// Completes once the denylist needs a rebuild (it has never been
    /// rebuilt, lost data, was unreachable or failed a write); at most one
    /// wake-up is stored while nobody waits.
    async fn stale(&self);
}
