//! The token denylist: the fast, shared record of revoked sessions and access
//! tokens that every replica consults on each validation. It is a cache of
//! the session rows in storage (the durable truth) and can be rebuilt from
//! them, so its entries only need to live as long as the tokens they deny.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use gatehouse_domain::{SessionId, TokenId};

use crate::ports::BoxError;

/// What a denylist entry refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DenyKey {
    /// Every access token carrying this `sid`.
    Session(SessionId),
    /// The one access token with this `jti`.
    Token(TokenId),
}

/// One entry, kept until the last token it could refuse has expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DenyEntry {
    pub key: DenyKey,
    pub until: DateTime<Utc>,
}

/// The denylist could not be read or written. Validation treats this as
/// "cannot tell" and refuses (fails closed).
#[derive(Debug, thiserror::Error)]
#[error("denylist unavailable")]
pub struct DenylistError(#[source] pub BoxError);

/// The shared denylist.
#[async_trait]
pub trait Denylist: std::fmt::Debug + Send + Sync {
    /// Adds entries; each expires at its `until`.
    async fn deny(&self, entries: &[DenyEntry], now: DateTime<Utc>) -> Result<(), DenylistError>;

    /// Whether the session or the token is denied, in one round trip.
    async fn is_denied(&self, session: SessionId, token: TokenId, now: DateTime<Utc>) -> Result<bool, DenylistError>;
}
