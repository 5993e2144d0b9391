//! `AuditService.ListAuditEvents`: the caller's own audit trail, newest
//! first, a page at a time. (Organization admins will list their
//! organization's once organizations exist.)

use std::sync::Arc;

use gatehouse_domain::{AccessClaims, AuditRecord};

use crate::error::{AppError, FieldViolation};
use crate::ports::audit::{AuditCursor, AuditLog};

/// Rows per page when the caller does not say.
pub const DEFAULT_PAGE_SIZE: u32 = 50;
/// Most rows per page.
pub const MAX_PAGE_SIZE: u32 = 100;

/// One page of audit rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditPage {
    pub events: Vec<AuditRecord>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<AuditCursor>,
}

/// Lists the caller's audit trail.
#[derive(Clone, Debug)]
pub struct ListAuditEvents {
    log: Arc<dyn AuditLog>,
}

impl ListAuditEvents {
    #[must_use]
    pub fn new(log: Arc<dyn AuditLog>) -> Self {
        Self { log }
    }

    /// Rows whose actor or subject is the caller, newest first, after `page`.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` (`page_size`) above the maximum; storage failures.
    pub async fn execute(
        &self,
        caller: &AccessClaims,
        page_size: u32,
        page: Option<AuditCursor>,
    ) -> Result<AuditPage, AppError> {
        if page_size > MAX_PAGE_SIZE {
            return Err(AppError::InvalidArgument(vec![FieldViolation::new(
                "page_size",
                format!("page_size must be at most {MAX_PAGE_SIZE}"),
            )]));
        }
        let size = if page_size == 0 { DEFAULT_PAGE_SIZE } else { page_size };
        // One more than asked tells whether another page follows.
        let mut events = self.log.list(caller.user_id, page, size + 1).await?;
        let more = events.len() > size as usize;
        events.truncate(size as usize);
        let next = more.then(|| events.last().map(|e| AuditCursor { occurred_at: e.occurred_at, id: e.id })).flatten();
        Ok(AuditPage { events, next })
    }
}
