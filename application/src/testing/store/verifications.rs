//! The verification repository and the unit of work's verification writes.

use super::*;

#[async_trait]
impl VerificationRepository for InMemoryStore {
    async fn find_by_token(
        &self,
        purpose: Purpose,
        token_hash: &TokenHash,
    ) -> Result<Option<Verification>, StoreError> {
        let state = self.state.lock().await;
        Ok(state.verifications.iter().find(|v| v.purpose() == purpose && v.token_hash() == token_hash).cloned())
    }

    async fn find_latest(&self, purpose: Purpose, email: &EmailAddress) -> Result<Option<Verification>, StoreError> {
        let state = self.state.lock().await;
        Ok(state
            .verifications
            .iter()
            .filter(|v| v.purpose() == purpose && v.email() == email && v.consumed_at().is_none())
            // As SQL's ORDER BY created_at DESC, id DESC.
            .max_by_key(|v| (v.created_at(), v.id()))
            .cloned())
    }

    async fn recent_activity(
        &self,
        user: UserId,
        purpose: Purpose,
        since: DateTime<Utc>,
    ) -> Result<crate::ports::verifications::RecentActivity, StoreError> {
        let state = self.state.lock().await;
        let recent = state
            .verifications
            .iter()
            .filter(|v| v.user_id() == user && v.purpose() == purpose && v.created_at() >= since);
        let (issued, failures) = recent.fold((0, 0), |(i, f), v| (i + 1, f + v.attempts()));
        Ok(crate::ports::verifications::RecentActivity { issued, failures })
    }

    async fn record_failed_attempt(&self, id: Uuid) -> Result<Option<u32>, StoreError> {
        let mut state = self.state.lock().await;
        Ok(state.verifications.iter_mut().find(|v| v.id() == id).and_then(|v| v.count_failure().then(|| v.attempts())))
    }
}

#[async_trait]
impl VerificationWrites for MemoryUnitOfWork {
    async fn insert(&self, verification: &Verification) -> Result<(), StoreError> {
        self.with(|state| {
            state.require_user(verification.user_id(), "verification")?;
            // The primary key and the unique token hash of SQL.
            if state
                .verifications
                .iter()
                .any(|v| v.id() == verification.id() || v.token_hash() == verification.token_hash())
            {
                return Err(StoreError::Conflict("verifications.token_hash".into()));
            }
            state.verifications.push(verification.clone());
            Ok(())
        })
    }

    async fn retire(
        &self,
        user: UserId,
        purpose: Purpose,
        email: Option<&EmailAddress>,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        Ok(self.with(|state| {
            let mut retired = 0;
            for v in state.verifications.iter_mut().filter(|v| {
                v.user_id() == user
                    && v.purpose() == purpose
                    && email.is_none_or(|e| v.email() == e)
                    && v.consumed_at().is_none()
            }) {
                v.consume(now);
                retired += 1;
            }
            retired
        }))
    }

    async fn consume(&self, id: Uuid, now: DateTime<Utc>) -> Result<bool, StoreError> {
        Ok(self.with(|state| {
            state.verifications.iter_mut().find(|v| v.id() == id && v.is_live(now)).map(|v| v.consume(now)).is_some()
        }))
    }
}
