//! [`RedisRateLimiter`]: one GCRA decision per check in a single Lua script
//! on one key, `{prefix}rl:{rate key}`, which Redis expires itself once it
//! counts nothing.

use std::fmt;
use std::io::Write as _;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use gatehouse_application::ports::BoxError;
use gatehouse_application::ports::health::Probe;
use gatehouse_application::ports::rate_limit::{Decision, RateKey, RateLimitError, RateLimiter, Rule};
use redis::aio::ConnectionManager;
use redis::{RedisWrite, Script, ToRedisArgs};

use crate::connection;

/// The decision script (see the file for the algorithm).
const DECIDE: &str = include_str!("rate_limit.lua");

/// The script that gives one attempt back.
const REFUND: &str = include_str!("rate_refund.lua");

/// The rate limiter in Redis, shared by every replica.
///
/// Each check is one script run, so concurrent checks on one key from any
/// number of replicas are serialised by Redis and never over-allow. The
/// script reads Redis's clock, not the `now` the caller passes, so replicas
/// with drifting clocks still agree. Cheap to share behind an `Arc`.
pub struct RedisRateLimiter {
    connection: ConnectionManager,
    /// `{prefix}rl:`, built once.
    prefix: Box<[u8]>,
    decide: Script,
    refund: Script,
    timeout: Duration,
}

impl fmt::Debug for RedisRateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRateLimiter")
            .field("prefix", &String::from_utf8_lossy(&self.prefix))
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RedisRateLimiter {
    /// Connects to the Redis at `url` (`redis://[user:password@]host[:port][/db]`),
    /// storing keys under `key_prefix` (such as `gatehouse:`).
    ///
    /// `timeout` bounds each connection attempt and each later call, including
    /// any wait for a reconnection.
    ///
    /// # Errors
    /// When the URL is invalid or Redis cannot be reached (after one retry).
    pub async fn connect(url: &str, key_prefix: &str, timeout: Duration) -> Result<Self, RateLimitError> {
        let connection = connection::connect(url, timeout).await.map_err(|e| RateLimitError(Box::new(e)))?;
        let prefix = format!("{key_prefix}rl:").into_bytes().into_boxed_slice();
        Ok(Self { connection, prefix, decide: Script::new(DECIDE), refund: Script::new(REFUND), timeout })
    }

    fn key<'a>(&'a self, key: &'a RateKey) -> Key<'a> {
        Key { prefix: &self.prefix, key }
    }
}

/// One rate key under the prefix, written straight into the command buffer.
#[derive(Debug, Clone, Copy)]
struct Key<'a> {
    prefix: &'a [u8],
    key: &'a RateKey,
}

impl ToRedisArgs for Key<'_> {
    fn write_redis_args<W>(&self, out: &mut W)
    where
        W: ?Sized + RedisWrite,
    {
        let mut arg = out.writer_for_next_arg();
        // The writer appends to the command's in-memory buffer: it cannot fail.
        let _ = arg.write_all(self.prefix).and_then(|()| arg.write_all(self.key.as_str().as_bytes()));
    }
}

/// The script's answer as a decision; anything else is a broken script.
fn decision(reply: &[i64], rules: usize) -> Result<Decision, RateLimitError> {
    match *reply {
        [1, _, _] => Ok(Decision::Allowed),
        [0, retry_us, rule] if retry_us > 0 && rule >= 1 && usize::try_from(rule).is_ok_and(|r| r <= rules) => {
            let rule = usize::try_from(rule - 1).unwrap_or_default();
            Ok(Decision::Limited { retry_after: TimeDelta::microseconds(retry_us), rule })
        }
        _ => Err(RateLimitError(format!("redis: unexpected rate-limit reply {reply:?}").into())),
    }
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn check_all(&self, rules: &[Rule], _now: DateTime<Utc>) -> Result<Decision, RateLimitError> {
        let mut invocation = self.decide.prepare_invoke();
        for rule in rules {
            invocation.key(self.key(&rule.key));
            invocation.arg(rule.limit.interval_micros()).arg(rule.limit.tolerance_micros());
        }
        let mut connection = self.connection.clone();
        let reply: Vec<i64> = connection::within_timeout(self.timeout, invocation.invoke_async(&mut connection))
            .await
            .map_err(RateLimitError)?;
        decision(&reply, rules.len())
    }

    async fn refund(&self, rule: &Rule, _now: DateTime<Utc>) -> Result<(), RateLimitError> {
        let mut invocation = self.refund.key(self.key(&rule.key));
        invocation.arg(rule.limit.interval_micros());
        let mut connection = self.connection.clone();
        let _: i64 = connection::within_timeout(self.timeout, invocation.invoke_async(&mut connection))
            .await
            .map_err(RateLimitError)?;
        Ok(())
    }

    async fn reset(&self, key: &RateKey) -> Result<(), RateLimitError> {
        let mut del = redis::cmd("DEL");
        del.arg(self.key(key));
        let mut connection = self.connection.clone();
        connection::within_timeout(self.timeout, del.exec_async(&mut connection)).await.map_err(RateLimitError)
    }
}

#[async_trait]
impl Probe for RedisRateLimiter {
    fn name(&self) -> &'static str {
        "rate_limiter"
    }

    async fn check(&self) -> Result<(), BoxError> {
        let mut connection = self.connection.clone();
        connection::within_timeout(self.timeout, redis::cmd("PING").exec_async(&mut connection)).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn replies_map_to_decisions() {
        assert_eq!(decision(&[1, 0, 0], 1).unwrap(), Decision::Allowed);
        assert_eq!(
            decision(&[0, 250_000, 2], 3).unwrap(),
            Decision::Limited { retry_after: TimeDelta::milliseconds(250), rule: 1 }
        );
    }

    #[test]
    fn malformed_replies_are_errors() {
        assert!(decision(&[], 1).is_err());
        assert!(decision(&[0, 0, 1], 1).is_err(), "limited with no wait");
        assert!(decision(&[0, 5, 2], 1).is_err(), "limited by a rule that was not asked");
        assert!(decision(&[0, 5, 0], 1).is_err());
        assert!(decision(&[2, 0, 0], 1).is_err());
    }

    #[test]
    fn keys_are_prefix_rl_and_the_rate_key_in_one_argument() {
        let key = RateKey::new("login.account_ip").with("u").with("::1");
        let arg = Key { prefix: b"gatehouse:rl:", key: &key };
        assert_eq!(arg.to_redis_args(), vec![b"gatehouse:rl:login.account_ip:u:%3A%3A1".to_vec()]);
    }
}
