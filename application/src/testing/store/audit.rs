//! The audit log.

use super::*;

#[async_trait]
impl crate::ports::audit::AuditLog for InMemoryStore {
    async fn record(&self, messages: &[OutboxMessage]) -> Result<(), StoreError> {
        self.state.lock().await.enqueue(messages);
        Ok(())
    }

    async fn list(
        &self,
        user: UserId,
        after: Option<crate::ports::audit::AuditCursor>,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let state = self.state.lock().await;
        let mut rows: Vec<AuditRecord> = state
            .audit
            .iter()
            .filter(|r| r.actor == Some(user) || r.subject == Some(user))
            .filter(|r| after.is_none_or(|c| (r.occurred_at, r.id) < (c.occurred_at, c.id)))
            .cloned()
            .collect();
        rows.sort_by_key(|r| std::cmp::Reverse((r.occurred_at, r.id)));
        rows.truncate(limit as usize);
        Ok(rows)
    }
}
