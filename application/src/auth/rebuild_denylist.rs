//! Rebuilding the denylist from the session rows, the durable truth.
//!
//! Run before the server answers, periodically, and at once whenever the
//! denylist goes stale (it lost data, could not be reached, or failed a
//! write; see [`Denylist::stale`]): an in-process denylist starts empty
//! after a restart and a Redis that restarted without persistence forgets
//! its keys, and until the rebuild has run validation fails closed. Only
//! sessions revoked within the last access-token lifetime can still have
//! live access tokens, so that is all that needs re-denying, with the
//! tombstones of accounts deleted within it (their sessions are gone).

use std::sync::Arc;

use crate::auth::revoker::SessionRevoker;
use crate::error::AppError;
use crate::ports::clock::Clock;
use crate::ports::denylist::{DenyEntry, DenyKey, Denylist};
use crate::ports::store::SessionRepository;
use crate::settings::TokenSettings;

/// Re-denies recently revoked sessions.
#[derive(Clone, Debug)]
pub struct RebuildDenylist {
    sessions: Arc<dyn SessionRepository>,
    denylist: Arc<dyn Denylist>,
    revoker: SessionRevoker,
    clock: Arc<dyn Clock>,
    settings: TokenSettings,
}

impl RebuildDenylist {
    #[must_use]
    pub fn new(
        sessions: Arc<dyn SessionRepository>,
        denylist: Arc<dyn Denylist>,
        revoker: SessionRevoker,
        clock: Arc<dyn Clock>,
        settings: TokenSettings,
    ) -> Self {
        Self { sessions, denylist, revoker, clock, settings }
    }

    /// Writes a denylist entry for every session whose access tokens may
    /// still be alive; returns how many.
    ///
    /// # Errors
    /// [`AppError::Unavailable`] when storage or the denylist is down.
    pub async fn execute(&self) -> Result<usize, AppError> {
        // Taken before storage is read: data the denylist loses after this
        // point may be missing from what is read, and then the write is
        // refused rather than marking an incomplete denylist complete.
        let ticket = self.denylist.begin_rebuild().await?;
        let now = self.clock.now();
        let revoked = self.sessions.revoked_since(now - self.settings.access_ttl).await?;
        let deleted = self.sessions.tombstones(now).await?;
        let mut entries: Vec<_> = revoked.iter().filter_map(|s| self.revoker.session_entry(s, now)).collect();
        entries.extend(deleted.iter().map(|t| DenyEntry { key: DenyKey::User(t.user), until: t.until }));
        self.denylist.complete_rebuild(ticket, &entries, now).await?;
        Ok(entries.len())
    }

    /// Completes once the denylist needs a rebuild sooner than the next
    /// periodic one.
    pub async fn needed(&self) {
        self.denylist.stale().await;
    }
}
