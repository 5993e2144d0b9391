//! An in-memory denylist that can be switched off or made to lose its data.

use super::*;
use crate::ports::denylist::RebuildTicket;

/// A denylist in a map that can be switched off to simulate an outage, or
/// cleared to simulate data loss. Like the adapters, it refuses lookups
/// after either until it is rebuilt. It starts rebuilt (empty and complete),
/// as the server's denylist is before it answers; [`Self::unbuilt`] starts it
/// as a process does.
#[derive(Debug)]
pub struct FakeDenylist {
    entries: Mutex<HashMap<DenyKey, DateTime<Utc>>>,
    down: AtomicBool,
    complete: AtomicBool,
    /// Bumped each time it goes stale, as the adapters do, so a rebuild that
    /// began before is not trusted.
    stale_count: AtomicU64,
}

impl Default for FakeDenylist {
    fn default() -> Self {
        let denylist = Self::unbuilt();
        denylist.complete.store(true, Ordering::Relaxed);
        denylist
    }
}

impl FakeDenylist {
    /// An empty denylist that has never been rebuilt: it answers no lookup.
    #[must_use]
    pub fn unbuilt() -> Self {
        Self {
            entries: Mutex::default(),
            down: AtomicBool::new(false),
            complete: AtomicBool::new(false),
            stale_count: AtomicU64::new(0),
        }
    }

    /// Simulates the denylist becoming unreachable (or reachable again).
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::Relaxed);
    }

    /// Forgets everything, like a Redis restarted without persistence; the
    /// next lookup notices.
    pub fn clear(&self) {
        self.entries.lock().unwrap().clear();
        self.go_stale();
    }

    /// Marks it complete again, as an empty rebuild would.
    pub fn mark_rebuilt(&self) {
        self.complete.store(true, Ordering::Relaxed);
    }

    /// Whether it answers lookups.
    #[must_use]
    pub fn is_complete(&self) -> bool {
        self.complete.load(Ordering::Relaxed)
    }

    /// How many entries it holds.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap().len()
    }

    /// Whether it holds no entry.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The expiry of one entry.
    #[must_use]
    pub fn until(&self, key: DenyKey) -> Option<DateTime<Utc>> {
        self.entries.lock().unwrap().get(&key).copied()
    }

    fn go_stale(&self) {
        self.stale_count.fetch_add(1, Ordering::Relaxed);
        self.complete.store(false, Ordering::Relaxed);
    }

    fn check_up(&self) -> Result<(), DenylistError> {
        if self.down.load(Ordering::Relaxed) {
            self.go_stale();
            Err(DenylistError("simulated outage".into()))
        } else {
            Ok(())
        }
    }

    fn insert_live(&self, entries: &[DenyEntry], now: DateTime<Utc>) {
        let mut map = self.entries.lock().unwrap();
        // As the adapters do: an entry already past its end denies nothing
        // and is not kept.
        for e in entries.iter().filter(|e| e.until > now) {
            map.insert(e.key, e.until);
        }
    }
}

#[async_trait]
impl Denylist for FakeDenylist {
    async fn deny(&self, entries: &[DenyEntry], now: DateTime<Utc>) -> Result<(), DenylistError> {
        self.check_up()?;
        self.insert_live(entries, now);
        Ok(())
    }

    async fn is_denied(
        &self,
        session: SessionId,
        token: TokenId,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<bool, DenylistError> {
        self.check_up()?;
        if !self.is_complete() {
            return Err(DenylistError("not rebuilt since it went stale".into()));
        }
        let map = self.entries.lock().unwrap();
        let live = |k: DenyKey| map.get(&k).is_some_and(|until| *until > now);
        Ok(live(DenyKey::Session(session)) || live(DenyKey::Token(token)) || live(DenyKey::User(user)))
    }

    async fn begin_rebuild(&self) -> Result<RebuildTicket, DenylistError> {
        self.check_up()?;
        Ok(RebuildTicket(u128::from(self.stale_count.load(Ordering::Relaxed))))
    }

    async fn complete_rebuild(
        &self,
        ticket: RebuildTicket,
        entries: &[DenyEntry],
        now: DateTime<Utc>,
    ) -> Result<(), DenylistError> {
        self.check_up()?;
        if u128::from(self.stale_count.load(Ordering::Relaxed)) != ticket.0 {
            return Err(DenylistError("went stale while the rebuild ran".into()));
        }
        self.insert_live(entries, now);
        self.mark_rebuilt();
        Ok(())
    }

    async fn stale(&self) {
        if self.is_complete() {
            std::future::pending::<()>().await;
        }
    }
}
