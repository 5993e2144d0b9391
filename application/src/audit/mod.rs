//! `AuditService.ListAuditEvents`: the caller's own audit trail, newest
//! first, a page at a time. (An organization's trail is listed by
//! `organizations::ListOrganizationAuditEvents`, with the same paging.)

use std::sync::Arc;

use gatehouse_domain::{AccessClaims, AuditRecord};

use crate::error::AppError;
use crate::ports::audit::{AuditCursor, AuditLog};

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
        let (log, user) = (self.log.clone(), caller.user_id);
        page_of(page_size, |limit| async move { log.list(user, page, limit).await }).await
    }
}

/// One page of at most `page_size` rows (0: the default) from `fetch`,
/// which is asked for up to a limit of rows after the page's cursor.
///
/// # Errors
/// `INVALID_ARGUMENT` (`page_size`) above the maximum; storage failures.
pub(crate) async fn page_of<F, Fut>(page_size: u32, fetch: F) -> Result<AuditPage, AppError>
where
    F: FnOnce(u32) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<AuditRecord>, crate::ports::store::StoreError>>,
{
    let size = crate::paging::page_size(page_size)?;
    // One more than asked tells whether another page follows.
    let mut events = fetch(size + 1).await?;
    let more = events.len() > size as usize;
    events.truncate(size as usize);
    let next = more.then(|| events.last().map(|e| AuditCursor { occurred_at: e.occurred_at, id: e.id })).flatten();
    Ok(AuditPage { events, next })
}
