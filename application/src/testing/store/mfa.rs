//! The second-factor repository and the unit of work's factor writes.

use super::*;

#[async_trait]
impl MfaRepository for InMemoryStore {
    async fn factors(&self, user: UserId) -> Result<Vec<Factor>, StoreError> {
        let factors = self.state.lock().await.factors_of(user);
        self.read_delay();
        Ok(factors)
    }

    async fn advance_totp_step(&self, factor: Uuid, step: i64) -> Result<bool, StoreError> {
        Ok(self.state.lock().await.advance_totp_step(factor, step))
    }

    async fn use_code(
        &self,
        factor: Uuid,
        challenge: Option<Uuid>,
        hash: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        Ok(self.state.lock().await.use_code(factor, challenge, hash, now))
    }

    async fn create_challenge(&self, challenge: &MfaChallenge) -> Result<(), StoreError> {
        let mut state = self.state.lock().await;
        state.require_user(challenge.user_id(), "challenge")?;
        state.challenges.push(challenge.clone());
        Ok(())
    }

    async fn challenge(&self, id: Uuid) -> Result<Option<MfaChallenge>, StoreError> {
        let challenge = self.state.lock().await.challenges.iter().find(|c| c.id() == id).cloned();
        self.read_delay();
        Ok(challenge)
    }

    async fn failures_since(&self, user: UserId, since: DateTime<Utc>) -> Result<u32, StoreError> {
        let failures = self.state.lock().await.failures_since(user, since);
        self.read_delay();
        Ok(failures)
    }
}

/// The guarded steps of second-factor checks, shared by the repository
/// (one lock per call) and the unit of work (its working copy).
impl State {
    fn advance_totp_step(&mut self, factor: Uuid, step: i64) -> bool {
        self.factors.iter_mut().find(|f| f.id() == factor).is_some_and(|f| f.accept_totp_step(step))
    }

    fn use_code(&mut self, factor: Uuid, challenge: Option<Uuid>, hash: &TokenHash, now: DateTime<Utc>) -> bool {
        let newest = self
            .codes
            .iter_mut()
            .filter(|(c, consumed)| c.factor_id == factor && c.challenge_id == challenge && consumed.is_none())
            .max_by_key(|(c, _)| (c.created_at, c.id));
        let Some((code, consumed)) = newest else { return false };
        if code.expires_at <= now || code.attempts >= code.max_attempts {
            return false;
        }
        if crate::secrets::hashes_equal(&code.code_hash, hash) {
            *consumed = Some(now);
            true
        } else {
            code.attempts += 1;
            false
        }
    }

    fn record_challenge_failure(&mut self, id: Uuid) -> Option<u32> {
        self.challenges.iter_mut().find(|c| c.id() == id).and_then(|c| c.count_failure().then(|| c.attempts()))
    }

    fn pass_challenge(&mut self, id: Uuid, now: DateTime<Utc>) -> bool {
        self.challenges.iter_mut().find(|c| c.id() == id).is_some_and(|c| c.pass(now))
    }

    fn failures_since(&self, user: UserId, since: DateTime<Utc>) -> u32 {
        self.challenges.iter().filter(|c| c.user_id() == user && c.created_at() >= since).map(|c| c.attempts()).sum()
    }
}

#[async_trait]
impl FactorWrites for MemoryUnitOfWork {
    async fn list(&self, user: UserId) -> Result<Vec<Factor>, StoreError> {
        Ok(self.with(|state| state.factors_of(user)))
    }

    async fn insert(&self, factor: &Factor) -> Result<(), StoreError> {
        self.with(|state| {
            state.require_user(factor.user_id(), "factor")?;
            state.factors.push(factor.clone());
            Ok(())
        })
    }

    async fn activate(&self, factor: Uuid, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.with(|state| {
            if let Some(f) = state.factors.iter_mut().find(|f| f.id() == factor) {
                f.confirm(now);
            }
        });
        Ok(())
    }

    async fn delete(&self, factors: &[Uuid]) -> Result<(), StoreError> {
        self.with(|state| {
            state.factors.retain(|f| !factors.contains(&f.id()));
            state.codes.retain(|(c, _)| !factors.contains(&c.factor_id));
        });
        Ok(())
    }

    async fn insert_code(&self, code: &FactorCode) -> Result<(), StoreError> {
        self.with(|state| {
            // What the foreign keys to the factor and the challenge do in SQL.
            if !state.factors.iter().any(|f| f.id() == code.factor_id) {
                return Err(StoreError::Gone("code for an unknown factor".into()));
            }
            if code.challenge_id.is_some_and(|id| !state.challenges.iter().any(|c| c.id() == id)) {
                return Err(StoreError::Gone("code for an unknown challenge".into()));
            }
            for (c, consumed) in &mut state.codes {
                if c.factor_id == code.factor_id && c.challenge_id == code.challenge_id && consumed.is_none() {
                    *consumed = Some(code.created_at);
                }
            }
            state.codes.push((code.clone(), None));
            Ok(())
        })
    }

    async fn replace_backup_codes(
        &self,
        user: UserId,
        hashes: &[TokenHash],
        _now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.with(|state| {
            // Deleting an unknown user's codes is a no-op in SQL; inserting
            // them is refused by the foreign key.
            if !hashes.is_empty() {
                state.require_user(user, "backup codes")?;
            }
            state.backup_codes.retain(|(u, _, _)| *u != user);
            state.backup_codes.extend(hashes.iter().map(|h| (user, *h, None)));
            Ok(())
        })
    }

    async fn use_backup_code(
        &self,
        user: UserId,
        hash: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<Option<u32>, StoreError> {
        Ok(self.with(|state| {
            let code = state.backup_codes.iter_mut().find(|(u, h, used)| *u == user && h == hash && used.is_none())?;
            code.2 = Some(now);
            Some(state.backup_codes.iter().filter(|(u, _, used)| *u == user && used.is_none()).count() as u32)
        }))
    }
    async fn advance_totp_step(&self, factor: Uuid, step: i64) -> Result<bool, StoreError> {
        Ok(self.with(|state| state.advance_totp_step(factor, step)))
    }

    async fn use_code(
        &self,
        factor: Uuid,
        challenge: Option<Uuid>,
        hash: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        Ok(self.with(|state| state.use_code(factor, challenge, hash, now)))
    }
}

#[async_trait]
impl ChallengeWrites for MemoryUnitOfWork {
    async fn get(&self, id: Uuid) -> Result<Option<MfaChallenge>, StoreError> {
        Ok(self.with(|state| state.challenges.iter().find(|c| c.id() == id).cloned()))
    }

    async fn insert(&self, challenge: &MfaChallenge) -> Result<(), StoreError> {
        self.with(|state| {
            state.require_user(challenge.user_id(), "challenge")?;
            state.challenges.push(challenge.clone());
            Ok(())
        })
    }

    async fn delete(&self, id: Uuid) -> Result<(), StoreError> {
        self.with(|state| {
            state.challenges.retain(|c| c.id() != id);
            state.codes.retain(|(c, _)| c.challenge_id != Some(id));
        });
        Ok(())
    }

    async fn failures_since(&self, user: UserId, since: DateTime<Utc>) -> Result<u32, StoreError> {
        Ok(self.with(|state| state.failures_since(user, since)))
    }

    async fn record_failure(&self, id: Uuid) -> Result<Option<u32>, StoreError> {
        Ok(self.with(|state| state.record_challenge_failure(id)))
    }

    async fn pass(&self, id: Uuid, now: DateTime<Utc>) -> Result<bool, StoreError> {
        Ok(self.with(|state| state.pass_challenge(id, now)))
    }
}
