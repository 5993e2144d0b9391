//! ListSessions: the caller's live sessions.

use std::sync::Arc;

use gatehouse_domain::{AccessClaims, Session};

use crate::error::AppError;
use crate::ports::clock::Clock;
use crate::ports::store::SessionRepository;

/// One of the caller's sessions, and whether it is the one asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionView {
    pub session: Session,
    pub current: bool,
}

/// Lists the caller's live sessions.
#[derive(Clone, Debug)]
pub struct ListSessions {
    sessions: Arc<dyn SessionRepository>,
    clock: Arc<dyn Clock>,
}

impl ListSessions {
    #[must_use]
    pub fn new(sessions: Arc<dyn SessionRepository>, clock: Arc<dyn Clock>) -> Self {
        Self { sessions, clock }
    }

    /// Newest first; the caller's own session is marked current.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn execute(&self, caller: &AccessClaims) -> Result<Vec<SessionView>, AppError> {
        let live = self.sessions.list_live(caller.user_id, self.clock.now()).await?;
        Ok(live
            .into_iter()
            .map(|session| SessionView { current: session.id() == caller.session_id, session })
            .collect())
    }
}
