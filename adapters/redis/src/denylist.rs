//! [`RedisDenylist`]: `SET key 1 PX <ms>` to deny; `MGET generation sid jti
//! uid` to check, in one round trip.
//!
//! Lookups that arrive while others are on their way to Redis wait and go
//! together, as one `MGET` of the marker and every key of the batch: under
//! load a gateway's validations then cost Redis (and both sides' sockets and
//! wakeups) one command per batch instead of one per token, and a lookup
//! alone is sent at once, without waiting for company.
//!
//! Redis is a cache that can lose its keys (a flush, a restart without
//! persistence, a failover to a copy that lags), and a lost entry would let
//! a revoked token through. So every completed rebuild from storage bumps a
//! generation marker, and every lookup reads the marker with the entries: a
//! missing marker, or one older than this replica has already seen, means
//! data was lost. The lookup then fails (validation fails closed) and the
//! denylist is stale until the next rebuild, which [`Denylist::stale`] starts
//! at once. A replica that could not reach Redis, or failed a write, is stale
//! in the same way: what it missed or failed to write is only in storage.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use gatehouse_application::ports::BoxError;
use gatehouse_application::ports::denylist::{DenyEntry, Denylist, DenylistError, RebuildTicket};
use gatehouse_application::ports::health::Probe;
use gatehouse_domain::{SessionId, TokenId, UserId};
use redis::aio::ConnectionManager;
use redis::{RedisError, Script};
use tokio::sync::{Notify, Semaphore, mpsc, oneshot, watch};
use uuid::Uuid;

use crate::connection;
use crate::key::KeyPrefixes;

/// The script that completes a rebuild (see the file for what it checks).
const COMPLETE_REBUILD: &str = include_str!("denylist_rebuild.lua");

/// How long a rebuild's key lives if its rebuild never completes.
const REBUILD_KEY_TTL_MS: u64 = 10 * 60 * 1000;

/// Batches of lookups on their way to Redis at once. More than one, so a
/// lookup that arrives just after a batch left waits for a free slot, not
/// for that batch's answer; few, so that under load the lookups queued
/// behind them go out together.
const BATCHES_IN_FLIGHT: usize = 2;

/// The most lookups one `MGET` carries (three keys each).
const MAX_BATCH: usize = 128;

/// Lookups waiting for a batch; callers wait for room beyond that.
const QUEUED_LOOKUPS: usize = 4096;

/// The token denylist in Redis, shared by every replica.
///
/// Cheap to share behind an `Arc`; calls run concurrently over one
/// multiplexed connection that is re-established in the background when it
/// drops. Lookups go through a task that batches them; it ends when the
/// denylist is dropped.
pub struct RedisDenylist {
    shared: Arc<Shared>,
    lookups: mpsc::Sender<Lookup>,
}

/// One token's lookup, waiting for its batch's answer.
struct Lookup {
    ids: [Uuid; 3],
    answer: oneshot::Sender<Result<bool, BatchFailed>>,
}

/// Why a batch got no usable answer, told to each of its lookups.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
struct BatchFailed(Arc<str>);

/// What the denylist's calls and its batching task share.
struct Shared {
    connection: ConnectionManager,
    keys: KeyPrefixes,
    timeout: Duration,
    complete_rebuild: Script,
    /// Whether lookups may be answered: set by a rebuild that saw no
    /// failure while it ran, cleared by any sign of missing data.
    complete: AtomicBool,
    /// Bumped each time the denylist goes stale; a rebuild that began
    /// before the latest bump may have read storage too early to cover it.
    stale_count: AtomicU64,
    /// The newest generation seen: a marker older than this was restored
    /// from a copy that lost later writes.
    generation: AtomicU64,
    stale: Notify,
    /// Counts changes of `complete`, for health to follow at once.
    changes: watch::Sender<u64>,
}

impl fmt::Debug for RedisDenylist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shared = &self.shared;
        f.debug_struct("RedisDenylist")
            .field("keys", &shared.keys)
            .field("timeout", &shared.timeout)
            .field("complete", &shared.complete)
            .field("generation", &shared.generation)
            .finish_non_exhaustive()
    }
}

/// Why the denylist cannot vouch for its lookups.
#[derive(Debug, thiserror::Error)]
enum Incomplete {
    #[error("the denylist has not been rebuilt since it went stale")]
    NotRebuilt,
    #[error("the generation marker is missing: Redis lost the denylist")]
    MarkerMissing,
    #[error("the generation marker went back from {seen} to {found}: Redis lost recent writes")]
    MarkerOlder { seen: u64, found: u64 },
    #[error("Redis lost data while the rebuild ran; starting over")]
    LostDuringRebuild,
    #[error("the denylist went stale while the rebuild ran; starting over")]
    StaleDuringRebuild,
}

fn incomplete(why: Incomplete) -> DenylistError {
    DenylistError(Box::new(why))
}

impl RedisDenylist {
    /// Connects to the Redis at `url` (`redis://[user:password@]host[:port][/db]`),
    /// storing keys under `key_prefix` (such as `gatehouse:`). The denylist
    /// answers lookups only after its first rebuild.
    ///
    /// `timeout` bounds each connection attempt and each later call, including
    /// any wait for a reconnection.
    ///
    /// # Errors
    /// When the URL is invalid or Redis cannot be reached (after one retry).
    pub async fn connect(url: &str, key_prefix: &str, timeout: Duration) -> Result<Self, DenylistError> {
        let connection = connection::connect(url, timeout).await.map_err(|e| DenylistError(Box::new(e)))?;
        let shared = Arc::new(Shared {
            connection,
            keys: KeyPrefixes::new(key_prefix),
            timeout,
            complete_rebuild: Script::new(COMPLETE_REBUILD),
            complete: AtomicBool::new(false),
            stale_count: AtomicU64::new(0),
            generation: AtomicU64::new(0),
            stale: Notify::new(),
            changes: watch::Sender::new(0),
        });
        let (lookups, queue) = mpsc::channel(QUEUED_LOOKUPS);
        tokio::spawn(batch_lookups(shared.clone(), queue));
        Ok(Self { shared, lookups })
    }
}

/// Sends the queued lookups to Redis in batches, at most
/// [`BATCHES_IN_FLIGHT`] at a time, until the denylist is dropped.
async fn batch_lookups(shared: Arc<Shared>, mut queue: mpsc::Receiver<Lookup>) {
    let slots = Arc::new(Semaphore::new(BATCHES_IN_FLIGHT));
    loop {
        // A slot first: while every slot is taken, lookups gather in the
        // queue and leave together when one frees.
        let Ok(slot) = slots.clone().acquire_owned().await else { return };
        let mut batch = Vec::with_capacity(MAX_BATCH);
        if queue.recv_many(&mut batch, MAX_BATCH).await == 0 {
            return;
        }
        let shared = shared.clone();
        tokio::spawn(async move {
            shared.look_up(batch).await;
            drop(slot);
        });
    }
}

impl Shared {
    /// Asks Redis about every lookup of `batch` in one `MGET` and answers
    /// each. A missing or older marker fails them all: the keys read came
    /// from a Redis that lost data.
    async fn look_up(&self, batch: Vec<Lookup>) {
        let generation = self.keys.generation();
        let keys = 3 * batch.len();
        let mut mget =
            redis::Cmd::with_capacity(1 + 1 + keys, "MGET".len() + generation.len() + keys * self.keys.key_len());
        mget.arg("MGET").arg(generation);
        for lookup in &batch {
            let [session, token, user] = &lookup.ids;
            mget.arg(self.keys.session(session)).arg(self.keys.token(token)).arg(self.keys.user(user));
        }
        // What was known before asking: a rebuild that completes while this
        // batch is in flight raises the generation, and the marker this
        // batch read, current when read, must not count as going back.
        let seen = self.generation.load(Ordering::Acquire);
        let mut connection = self.connection.clone();
        let answer: Result<Vec<Option<u64>>, DenylistError> =
            self.within_timeout(mget.query_async(&mut connection)).await;
        let outcome = answer.and_then(|values| self.judge(&values, seen, batch.len()).map(|()| values));
        match outcome {
            Ok(values) => {
                for (lookup, entries) in batch.into_iter().zip(values[1..].chunks_exact(3)) {
                    // A caller that gave up (its timeout) no longer listens.
                    let _ = lookup.answer.send(Ok(entries.iter().any(Option::is_some)));
                }
            }
            Err(error) => {
                let failed = BatchFailed(error.to_string().into());
                for lookup in batch {
                    let _ = lookup.answer.send(Err(failed.clone()));
                }
            }
        }
    }

    /// The batch's values if its marker vouches for them.
    fn judge(&self, values: &[Option<u64>], seen: u64, lookups: usize) -> Result<(), DenylistError> {
        if values.len() != 1 + 3 * lookups {
            self.mark_stale();
            return Err(DenylistError(
                format!("redis answered {} values for {} keys", values.len(), 1 + 3 * lookups).into(),
            ));
        }
        let Some(found) = values[0] else {
            self.mark_stale();
            return Err(incomplete(Incomplete::MarkerMissing));
        };
        self.generation.fetch_max(found, Ordering::AcqRel);
        if found < seen {
            self.mark_stale();
            return Err(incomplete(Incomplete::MarkerOlder { seen, found }));
        }
        Ok(())
    }

    /// Runs one request within the timeout; a failure makes the denylist
    /// stale (a lookup missed nothing, but a write may be lost, and an
    /// outage may have hidden a restart).
    async fn within_timeout<T>(
        &self,
        request: impl Future<Output = Result<T, RedisError>>,
    ) -> Result<T, DenylistError> {
        let result = connection::within_timeout(self.timeout, request).await.map_err(DenylistError);
        if result.is_err() {
            self.mark_stale();
        }
        result
    }

    /// Refuses lookups until the next rebuild, and wakes the rebuild task.
    fn mark_stale(&self) {
        self.stale_count.fetch_add(1, Ordering::AcqRel);
        if self.complete.swap(false, Ordering::AcqRel) {
            self.changes.send_modify(|n| *n = n.wrapping_add(1));
        }
        self.stale.notify_one();
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
                pipe.cmd("SET").arg(self.shared.keys.of(&entry.key)).arg(1).arg("PX").arg(ms).ignore();
            }
        }
        if pipe.is_empty() {
            return Ok(());
        }
        let mut connection = self.shared.connection.clone();
        self.shared.within_timeout(pipe.exec_async(&mut connection)).await
    }

    async fn is_denied(
        &self,
        session: SessionId,
        token: TokenId,
        user: UserId,
        _now: DateTime<Utc>,
    ) -> Result<bool, DenylistError> {
        let shared = &self.shared;
        if !shared.complete.load(Ordering::Acquire) {
            return Err(incomplete(Incomplete::NotRebuilt));
        }
        // Redis expires entries itself, so `now` is not needed.
        let (answer, answered) = oneshot::channel();
        let lookup = Lookup { ids: [*session.as_uuid(), *token.as_uuid(), *user.as_uuid()], answer };
        let ended = || BatchFailed("the lookup task has ended".into());
        let asked = async {
            self.lookups.send(lookup).await.map_err(|_| ended())?;
            answered.await.map_err(|_| ended())?
        };
        match tokio::time::timeout(shared.timeout, asked).await {
            Ok(Ok(denied)) => Ok(denied),
            // The batch has already made the denylist stale if it must.
            Ok(Err(failed)) => Err(DenylistError(Box::new(failed))),
            Err(_) => {
                shared.mark_stale();
                Err(DenylistError(format!("redis: no answer within {} ms", shared.timeout.as_millis()).into()))
            }
        }
    }

    async fn begin_rebuild(&self) -> Result<RebuildTicket, DenylistError> {
        // The low half names this rebuild's key; the high half remembers how
        // often the denylist had gone stale when it began.
        let nonce = u128::from(uuid::Uuid::now_v7().as_u64_pair().1);
        let ticket = RebuildTicket(u128::from(self.shared.stale_count.load(Ordering::Acquire)) << 64 | nonce);
        let mut set = redis::cmd("SET");
        set.arg(self.shared.keys.rebuild(nonce)).arg(1).arg("PX").arg(REBUILD_KEY_TTL_MS);
        let mut connection = self.shared.connection.clone();
        self.shared.within_timeout(set.exec_async(&mut connection)).await?;
        Ok(ticket)
    }

    async fn complete_rebuild(
        &self,
        ticket: RebuildTicket,
        entries: &[DenyEntry],
        now: DateTime<Utc>,
    ) -> Result<(), DenylistError> {
        let nonce = ticket.0 & u128::from(u64::MAX);
        let mut invocation = self.shared.complete_rebuild.key(self.shared.keys.rebuild(nonce));
        invocation.key(self.shared.keys.generation());
        for entry in entries {
            if let Some(ms) = ttl_millis(entry, now) {
                invocation.key(self.shared.keys.of(&entry.key));
                invocation.arg(ms);
            }
        }
        let mut connection = self.shared.connection.clone();
        let written: Option<u64> = self.shared.within_timeout(invocation.invoke_async(&mut connection)).await?;
        let Some(generation) = written else {
            self.shared.mark_stale();
            return Err(incomplete(Incomplete::LostDuringRebuild));
        };
        // After a loss the marker starts again from 1: this rebuild is the
        // new reference, lower than what was seen before or not.
        self.shared.generation.store(generation, Ordering::Release);
        if u128::from(self.shared.stale_count.load(Ordering::Acquire)) != ticket.0 >> 64 {
            // A failed write or a lookup that saw a loss while storage was
            // being read: what it missed may not be in what was read.
            self.shared.stale.notify_one();
            return Err(incomplete(Incomplete::StaleDuringRebuild));
        }
        if !self.shared.complete.swap(true, Ordering::AcqRel) {
            self.shared.changes.send_modify(|n| *n = n.wrapping_add(1));
        }
        Ok(())
    }

    async fn stale(&self) {
        if self.shared.complete.load(Ordering::Acquire) {
            self.shared.stale.notified().await;
        }
    }
}

#[async_trait]
impl Probe for RedisDenylist {
    fn name(&self) -> &'static str {
        "denylist"
    }

    async fn check(&self) -> Result<(), BoxError> {
        let mut connection = self.shared.connection.clone();
        let result =
            connection::within_timeout(self.shared.timeout, redis::cmd("PING").exec_async(&mut connection)).await;
        if result.is_err() {
            // Redis may come back empty, or without writes this replica
            // missed: rebuild before answering from it again.
            self.shared.mark_stale();
        }
        result?;
        // Reachable is not enough: until the rebuild has run, validation
        // answers UNAVAILABLE, so TokenService must not be in rotation.
        if self.shared.complete.load(Ordering::Acquire) {
            Ok(())
        } else {
            Err(incomplete(Incomplete::NotRebuilt).into())
        }
    }

    async fn changed(&self, seen: u64) -> u64 {
        let mut rx = self.shared.changes.subscribe();
        rx.wait_for(|now| *now != seen).await.map_or(seen, |now| *now)
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
