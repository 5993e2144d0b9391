//! The outbox store the relay reads.

use super::*;

#[async_trait]
impl OutboxStore for InMemoryStore {
    async fn claim(
        &self,
        limit: u32,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<ClaimedMessage>, StoreError> {
        let mut state = self.state.lock().await;
        // As SQL's ORDER BY created_at, id (a row's created_at is its event's occurred_at).
        let mut due: Vec<&mut OutboxRow> =
            state.outbox.iter_mut().filter(|r| r.sent_at.is_none() && r.available_at <= now).collect();
        due.sort_by_key(|r| (r.message.occurred_at, r.message.id));
        Ok(due
            .into_iter()
            .take(limit as usize)
            .map(|r| {
                r.available_at = lease_until;
                // As in SQL: an outbox row does not point back at its audit row.
                ClaimedMessage { message: OutboxMessage { audit: None, ..r.message.clone() }, attempts: r.attempts }
            })
            .collect())
    }

    async fn mark_sent(&self, ids: &[Uuid], now: DateTime<Utc>) -> Result<(), StoreError> {
        let mut state = self.state.lock().await;
        for r in state.outbox.iter_mut().filter(|r| r.sent_at.is_none() && ids.contains(&r.message.id)) {
            r.sent_at = Some(now);
        }
        Ok(())
    }

    async fn retry_later(&self, id: Uuid, attempts: u32, next_attempt_at: DateTime<Utc>) -> Result<(), StoreError> {
        let mut state = self.state.lock().await;
        if let Some(r) = state.outbox.iter_mut().find(|r| r.message.id == id) {
            r.attempts = attempts;
            r.available_at = next_attempt_at;
        }
        Ok(())
    }

    async fn retry_now(&self, ids: &[Uuid], now: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut state = self.state.lock().await;
        let mut n = 0;
        for r in state.outbox.iter_mut().filter(|r| r.sent_at.is_none() && r.available_at > now) {
            if ids.contains(&r.message.id) {
                r.available_at = now;
                n += 1;
            }
        }
        Ok(n)
    }

    async fn prune_sent(&self, sent_before: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut state = self.state.lock().await;
        let before = state.outbox.len();
        state.outbox.retain(|r| r.sent_at.is_none_or(|t| t >= sent_before));
        Ok((before - state.outbox.len()) as u64)
    }
}
