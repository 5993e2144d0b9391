//! Deleting sessions that ended long enough ago.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::error::AppError;
use crate::ports::clock::Clock;
use crate::ports::store::SessionRepository;
use crate::settings::TokenSettings;

/// Deletes sessions that ended long enough ago, and tombstones of deleted
/// accounts likewise. A revoked session or a tombstone is kept as long as
/// its access tokens could live, since the denylist is rebuilt from them.
#[derive(Clone, Debug)]
pub struct PruneSessions {
    sessions: Arc<dyn SessionRepository>,
    clock: Arc<dyn Clock>,
    settings: TokenSettings,
}

impl PruneSessions {
    #[must_use]
    pub fn new(sessions: Arc<dyn SessionRepository>, clock: Arc<dyn Clock>, settings: TokenSettings) -> Self {
        Self { sessions, clock, settings }
    }

    /// The cut-off: sessions that ended before it can go.
    #[must_use]
    pub fn cutoff(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now - self.settings.access_ttl - chrono::TimeDelta::minutes(1)
    }

    /// # Errors
    /// Storage failures.
    pub async fn execute(&self) -> Result<u64, AppError> {
        let pruned = self.sessions.prune(self.cutoff(self.clock.now())).await?;
        if pruned > 0 {
            tracing::info!(pruned, "ended sessions pruned");
        }
        Ok(pruned)
    }
}
