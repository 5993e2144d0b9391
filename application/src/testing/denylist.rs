//! An in-memory denylist that can be switched off.

use super::*;

/// A denylist in a map that can be switched off to simulate an outage.
#[derive(Debug, Default)]
pub struct FakeDenylist {
    entries: Mutex<HashMap<DenyKey, DateTime<Utc>>>,
    down: AtomicBool,
}

impl FakeDenylist {
    /// Simulates the denylist becoming unreachable (or reachable again).
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::Relaxed);
    }

    /// Forgets everything, like a Redis restarted without persistence.
    pub fn clear(&self) {
        self.entries.lock().unwrap().clear();
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

    fn check_up(&self) -> Result<(), DenylistError> {
        if self.down.load(Ordering::Relaxed) { Err(DenylistError("simulated outage".into())) } else { Ok(()) }
    }
}

#[async_trait]
impl Denylist for FakeDenylist {
    async fn deny(&self, entries: &[DenyEntry], now: DateTime<Utc>) -> Result<(), DenylistError> {
        self.check_up()?;
        let mut map = self.entries.lock().unwrap();
        // As the adapters do: an entry already past its end denies nothing
        // and is not kept.
        for e in entries.iter().filter(|e| e.until > now) {
            map.insert(e.key, e.until);
        }
        Ok(())
    }

    async fn is_denied(&self, session: SessionId, token: TokenId, now: DateTime<Utc>) -> Result<bool, DenylistError> {
        self.check_up()?;
        let map = self.entries.lock().unwrap();
        let live = |k: DenyKey| map.get(&k).is_some_and(|until| *until > now);
        Ok(live(DenyKey::Session(session)) || live(DenyKey::Token(token)))
    }
}
