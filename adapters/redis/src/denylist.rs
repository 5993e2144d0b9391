//! [`RedisDenylist`]: `SET key 1 PX <ms>` to deny, `EXISTS sid jti` to check.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use gatehouse_application::ports::BoxError;
use gatehouse_application::ports::denylist::{DenyEntry, Denylist, DenylistError};
use gatehouse_application::ports::health::Probe;
use gatehouse_domain::{SessionId, TokenId};
use redis::RedisError;
use redis::aio::ConnectionManager;

use crate::connection;
use crate::key::KeyPrefixes;

/// The token denylist in Redis, shared by every replica.
///
/// Cheap to share behind an `Arc`; calls run concurrently over one
/// multiplexed connection that is re-established in the background when it
/// drops.
pub struct RedisDenylist {
    connection: ConnectionManager,
    keys: KeyPrefixes,
    timeout: Duration,
}

impl fmt::Debug for RedisDenylist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisDenylist")
            .field("keys", &self.keys)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RedisDenylist {
    /// Connects to the Redis at `url` (`redis://[user:password@]host[:port][/db]`),
    /// storing keys under `key_prefix` (such as `gatehouse:`).
    ///
    /// `timeout` bounds each connection attempt and each later call, including
    /// any wait for a reconnection.
    ///
    /// # Errors
    /// When the URL is invalid or Redis cannot be reached (after one retry).
    pub async fn connect(url: &str, key_prefix: &str, timeout: Duration) -> Result<Self, DenylistError> {
        let connection = connection::connect(url, timeout).await.map_err(|e| DenylistError(Box::new(e)))?;
        Ok(Self { connection, keys: KeyPrefixes::new(key_prefix), timeout })
    }

    /// Runs one request within the timeout.
    async fn within_timeout<T>(
        &self,
        request: impl Future<Output = Result<T, RedisError>>,
    ) -> Result<T, DenylistError> {
        connection::within_timeout(self.timeout, request).await.map_err(DenylistError)
    }
}

/// How long Redis must keep an entry denied at `now`, in milliseconds, or
/// `None` when it has already expired. At least 1: `PX 0` is an error.
fn ttl_millis(entry: &DenyEntry, now: DateTime<Utc>) -> Option<i64> {
    let left = entry.until.signed_duration_since(now);
    (left > TimeDelta::zero()).then(|| left.num_milliseconds().max(1))
}

#[async_trait]
impl Denylist for RedisDenylist {
    async fn deny(&self, entries: &[DenyEntry], now: DateTime<Utc>) -> Result<(), DenylistError> {
        let mut pipe = redis::Pipeline::with_capacity(entries.len());
        for entry in entries {
            if let Some(ms) = ttl_millis(entry, now) {
                pipe.cmd("SET").arg(self.keys.of(&entry.key)).arg(1).arg("PX").arg(ms).ignore();
            }
        }
        if pipe.is_empty() {
            return Ok(());
        }
        let mut connection = self.connection.clone();
        self.within_timeout(pipe.exec_async(&mut connection)).await
    }

    async fn is_denied(&self, session: SessionId, token: TokenId, _now: DateTime<Utc>) -> Result<bool, DenylistError> {
        // Redis expires entries itself, so `now` is not needed.
        let mut exists = redis::Cmd::with_capacity(3, "EXISTS".len() + 2 * self.keys.key_len());
        exists.arg("EXISTS").arg(self.keys.session(session.as_uuid())).arg(self.keys.token(token.as_uuid()));
        let mut connection = self.connection.clone();
        let found: u64 = self.within_timeout(exists.query_async(&mut connection)).await?;
        Ok(found > 0)
    }
}

#[async_trait]
impl Probe for RedisDenylist {
    fn name(&self) -> &'static str {
        "denylist"
    }

    async fn check(&self) -> Result<(), BoxError> {
        let mut connection = self.connection.clone();
        connection::within_timeout(self.timeout, redis::cmd("PING").exec_async(&mut connection)).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use gatehouse_application::ports::denylist::DenyKey;
    use uuid::Uuid;

    use super::*;

    fn entry_until(until: DateTime<Utc>) -> DenyEntry {
        DenyEntry { key: DenyKey::Token(TokenId::from_uuid(Uuid::from_u128(1))), until }
    }

    #[test]
    fn ttl_is_the_time_left_in_milliseconds() {
        let now = DateTime::from_timestamp(1_767_225_600, 0).unwrap();
        assert_eq!(ttl_millis(&entry_until(now + TimeDelta::seconds(90)), now), Some(90_000));
    }

    #[test]
    fn ttl_of_less_than_a_millisecond_rounds_up_to_one() {
        let now = DateTime::from_timestamp(1_767_225_600, 0).unwrap();
        assert_eq!(ttl_millis(&entry_until(now + TimeDelta::microseconds(10)), now), Some(1));
    }

    #[test]
    fn expired_entries_have_no_ttl() {
        let now = DateTime::from_timestamp(1_767_225_600, 0).unwrap();
        assert_eq!(ttl_millis(&entry_until(now), now), None);
        assert_eq!(ttl_millis(&entry_until(now - TimeDelta::seconds(1)), now), None);
    }
}
