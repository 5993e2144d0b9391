//! The audit log.

use super::*;
use crate::ports::audit::AuditCursor;

/// The rows `keep` selects, newest first, after `after`, at most `limit`.
fn page(
    rows: &[AuditRecord],
    keep: impl Fn(&AuditRecord) -> bool,
    after: Option<AuditCursor>,
    limit: u32,
) -> Vec<AuditRecord> {
    let mut rows: Vec<AuditRecord> = rows
        .iter()
        .filter(|r| keep(r))
        .filter(|r| after.is_none_or(|c| (r.occurred_at, r.id) < (c.occurred_at, c.id)))
        .cloned()
        .collect();
    rows.sort_by_key(|r| std::cmp::Reverse((r.occurred_at, r.id)));
    rows.truncate(limit as usize);
    rows
}

#[async_trait]
impl crate::ports::audit::AuditLog for InMemoryStore {
    async fn record(&self, messages: &[OutboxMessage]) -> Result<(), StoreError> {
        self.state.lock().await.enqueue(messages);
        Ok(())
    }

    async fn list(&self, user: UserId, after: Option<AuditCursor>, limit: u32) -> Result<Vec<AuditRecord>, StoreError> {
        let state = self.state.lock().await;
        Ok(page(&state.audit, |r| r.actor == Some(user) || r.subject == Some(user), after, limit))
    }

    async fn list_organization(
        &self,
        org: gatehouse_domain::OrganizationId,
        after: Option<AuditCursor>,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let state = self.state.lock().await;
        let org = org.to_string();
        Ok(page(&state.audit, |r| r.organization.as_deref() == Some(org.as_str()), after, limit))
    }
}
