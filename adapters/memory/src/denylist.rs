//! [`MemoryDenylist`]: the denylist in a map behind a read-write lock.
//!
//! Readers (every token validation) share the lock; writers (revocations) are
//! rare. Entries past their `until` deny nothing and are dropped in bulk when
//! the map has doubled since the last sweep, so memory stays proportional to
//! the live entries at an amortised O(1) per write.
//!
//! The map starts empty with the process, so it answers no lookup before its
//! first rebuild from storage (the revocations of the previous run live only
//! there); after that it cannot lose anything while the process runs.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use gatehouse_application::ports::BoxError;
use gatehouse_application::ports::denylist::{DenyEntry, DenyKey, Denylist, DenylistError, RebuildTicket};
use gatehouse_application::ports::health::Probe;
use gatehouse_domain::{SessionId, TokenId, UserId};

/// Below this many entries `deny` never sweeps: a sweep of a small map buys
/// nothing.
const MIN_SWEEP_LEN: usize = 1024;

/// The token denylist of a single-process deployment.
///
/// Like Redis, a later `deny` of the same key replaces its expiry, and the
/// entries are lost when the process stops (they are rebuilt from storage).
#[derive(Debug)]
pub struct MemoryDenylist {
    state: RwLock<State>,
}

#[derive(Debug)]
struct State {
    entries: HashMap<DenyKey, DateTime<Utc>>,
    /// `deny` sweeps expired entries once the map reaches this size.
    sweep_at: usize,
    /// Set by the first rebuild: from then on the map holds every entry.
    complete: bool,
}

impl MemoryDenylist {
    /// An empty denylist.
    #[must_use]
    pub fn new() -> Self {
        Self { state: RwLock::new(State { entries: HashMap::new(), sweep_at: MIN_SWEEP_LEN, complete: false }) }
    }

    /// Drops every entry whose `until` is not after `now`, and returns how
    /// many were dropped. `deny` does this by itself as the map grows; a
    /// caller may also run it periodically.
    pub fn purge_expired(&self, now: DateTime<Utc>) -> usize {
        self.write().purge_expired(now)
    }

    /// How many entries are held, including expired ones not yet purged.
    #[must_use]
    pub fn len(&self) -> usize {
        self.read().entries.len()
    }

    /// Whether no entry is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.read().entries.is_empty()
    }

    // No code panics while holding the lock, and every write leaves the map
    // consistent, so a poisoned lock still guards valid data: use it.
    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for MemoryDenylist {
    fn default() -> Self {
        Self::new()
    }
}

impl State {
    fn purge_expired(&mut self, now: DateTime<Utc>) -> usize {
        let before = self.entries.len();
        self.entries.retain(|_, until| *until > now);
        self.sweep_at = MIN_SWEEP_LEN.max(self.entries.len().saturating_mul(2));
        before - self.entries.len()
    }

    fn is_live(&self, key: DenyKey, now: DateTime<Utc>) -> bool {
        self.entries.get(&key).is_some_and(|until| *until > now)
    }

    fn insert_live(&mut self, entries: &[DenyEntry], now: DateTime<Utc>) {
        // An entry already expired would deny nothing: don't store it.
        for entry in entries.iter().filter(|e| e.until > now) {
            self.entries.insert(entry.key, entry.until);
        }
        if self.entries.len() >= self.sweep_at {
            self.purge_expired(now);
        }
    }
}

/// The error of a lookup before the first rebuild.
#[derive(Debug, thiserror::Error)]
#[error("the in-process denylist has not been filled from storage yet")]
struct NotRebuilt;

#[async_trait]
impl Denylist for MemoryDenylist {
    async fn deny(&self, entries: &[DenyEntry], now: DateTime<Utc>) -> Result<(), DenylistError> {
        self.write().insert_live(entries, now);
        Ok(())
    }

    async fn is_denied(
        &self,
        session: SessionId,
        token: TokenId,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<bool, DenylistError> {
        let state = self.read();
        if !state.complete {
            return Err(DenylistError(Box::new(NotRebuilt)));
        }
        Ok(state.is_live(DenyKey::Session(session), now)
            || state.is_live(DenyKey::Token(token), now)
            || state.is_live(DenyKey::User(user), now))
    }

    async fn begin_rebuild(&self) -> Result<RebuildTicket, DenylistError> {
        // Nothing can be lost between the read and the write in-process.
        Ok(RebuildTicket(0))
    }

    async fn complete_rebuild(
        &self,
        _ticket: RebuildTicket,
        entries: &[DenyEntry],
        now: DateTime<Utc>,
    ) -> Result<(), DenylistError> {
        let mut state = self.write();
        state.insert_live(entries, now);
        state.complete = true;
        Ok(())
    }

    async fn stale(&self) {
        if self.read().complete {
            // Nothing is ever lost again while the process runs.
            std::future::pending::<()>().await;
        }
    }
}

/// In-process, so always reachable; reported so the health service lists the
/// same dependencies in both deployments.
#[async_trait]
impl Probe for MemoryDenylist {
    fn name(&self) -> &'static str {
        "denylist"
    }

    async fn check(&self) -> Result<(), BoxError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use chrono::TimeDelta;
    use uuid::Uuid;

    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_767_225_600, 0).unwrap()
    }

    async fn rebuilt() -> MemoryDenylist {
        let denylist = MemoryDenylist::new();
        let ticket = denylist.begin_rebuild().await.unwrap();
        denylist.complete_rebuild(ticket, &[], now()).await.unwrap();
        denylist
    }

    fn token_entry(n: usize, until: DateTime<Utc>) -> DenyEntry {
        let n = u128::try_from(n).unwrap();
        DenyEntry { key: DenyKey::Token(TokenId::from_uuid(Uuid::from_u128(n + 1))), until }
    }

    #[tokio::test]
    async fn purge_expired_drops_only_expired_entries() {
        let denylist = rebuilt().await;
        let t0 = now();
        let short = token_entry(1, t0 + TimeDelta::seconds(10));
        let long = token_entry(2, t0 + TimeDelta::seconds(60));
        denylist.deny(&[short, long], t0).await.unwrap();

        assert_eq!(denylist.purge_expired(t0 + TimeDelta::seconds(10)), 1);
        assert_eq!(denylist.len(), 1);
        let DenyKey::Token(long_id) = long.key else { unreachable!() };
        let session = SessionId::from_uuid(Uuid::from_u128(99));
        let user = UserId::from_uuid(Uuid::from_u128(98));
        assert!(denylist.is_denied(session, long_id, user, t0 + TimeDelta::seconds(10)).await.unwrap());
    }

    #[tokio::test]
    async fn deny_sweeps_expired_entries_as_the_map_grows() {
        let denylist = MemoryDenylist::new();
        let mut t = now();
        // Many revocations over time, each entry living one second: the map
        // must not keep all of them.
        for n in 0..10 * MIN_SWEEP_LEN {
            denylist.deny(&[token_entry(n, t + TimeDelta::seconds(1))], t).await.unwrap();
            t += TimeDelta::seconds(2);
        }
        assert!(denylist.len() <= MIN_SWEEP_LEN, "{} entries kept", denylist.len());
    }

    #[tokio::test]
    async fn sweeping_keeps_live_entries() {
        let denylist = MemoryDenylist::new();
        let t0 = now();
        let live: Vec<_> = (0..2 * MIN_SWEEP_LEN).map(|n| token_entry(n, t0 + TimeDelta::hours(1))).collect();
        denylist.deny(&live, t0).await.unwrap();
        assert_eq!(denylist.len(), live.len());
    }

    #[tokio::test]
    async fn probe_is_always_healthy() {
        let denylist = MemoryDenylist::new();
        assert_eq!(denylist.name(), "denylist");
        denylist.check().await.unwrap();
    }
}
