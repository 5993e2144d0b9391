//! The user repository and the unit of work's account writes.

use super::*;

#[async_trait]
impl UserRepository for InMemoryStore {
    async fn find_credentials(&self, email: &EmailAddress) -> Result<Option<UserCredentials>, StoreError> {
        let state = self.state.lock().await;
        Ok(state.users.iter().find_map(|u| {
            u.emails.iter().find(|e| &e.email == email).map(|e| UserCredentials {
                user_id: u.id,
                password_hash: u.password_hash.clone(),
                email_verified: e.verified_at.is_some(),
            })
        }))
    }

    async fn password_hash(&self, user: UserId) -> Result<Option<PasswordHash>, StoreError> {
        let state = self.state.lock().await;
        Ok(state.users.iter().find(|u| u.id == user).map(|u| u.password_hash.clone()))
    }

    async fn update_password_hash(
        &self,
        user: UserId,
        hash: &PasswordHash,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if let Some(u) = self.state.lock().await.user_mut(user) {
            u.password_hash = hash.clone();
            u.updated_at = now;
        }
        Ok(())
    }

    async fn get(&self, user: UserId) -> Result<Option<Account>, StoreError> {
        let state = self.state.lock().await;
        Ok(state.account(user))
    }

    async fn update_display_name(
        &self,
        user: UserId,
        name: &DisplayName,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut state = self.state.lock().await;
        Ok(state
            .user_mut(user)
            .map(|u| {
                u.display_name = name.clone();
                u.updated_at = now;
            })
            .is_some())
    }
}

#[async_trait]
impl AccountWrites for MemoryUnitOfWork {
    async fn insert(&self, user: &User) -> Result<(), StoreError> {
        self.with(|state| {
            if state.email_taken(user.email()) {
                return Err(StoreError::Conflict("user_emails.email".into()));
            }
            let email = LoginEmail {
                email: user.email().clone(),
                primary: true,
                verified_at: None,
                created_at: user.created_at(),
            };
            state.users.push(StoredUser {
                id: user.id(),
                display_name: user.display_name().clone(),
                password_hash: user.password_hash().clone(),
                created_at: user.created_at(),
                emails: vec![email],
                updated_at: user.created_at(),
            });
            Ok(())
        })
    }

    async fn lock(&self, user: UserId) -> Result<Option<Account>, StoreError> {
        Ok(self.with(|state| state.account(user)))
    }

    async fn add_email(&self, user: UserId, email: &EmailAddress, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.with(|state| {
            if state.email_taken(email) {
                return Err(StoreError::Conflict("user_emails.email".into()));
            }
            let Some(u) = state.user_mut(user) else { return Err(StoreError::Gone("no such user".into())) };
            u.emails.push(LoginEmail { email: email.clone(), primary: false, verified_at: None, created_at: now });
            Ok(())
        })
    }

    async fn release_unverified_claim(&self, email: &EmailAddress) -> Result<Option<UserId>, StoreError> {
        Ok(self.with(|state| {
            state.users.iter_mut().find_map(|u| {
                let before = u.emails.len();
                u.emails.retain(|e| !(&e.email == email && !e.primary && e.verified_at.is_none()));
                (u.emails.len() < before).then_some(u.id)
            })
        }))
    }

    async fn remove_email(&self, user: UserId, email: &EmailAddress) -> Result<(), StoreError> {
        self.with(|state| {
            if let Some(u) = state.user_mut(user) {
                u.emails.retain(|e| &e.email != email);
            }
        });
        Ok(())
    }

    async fn set_primary_email(
        &self,
        user: UserId,
        email: &EmailAddress,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.with(|state| {
            if let Some(u) = state.user_mut(user) {
                for e in &mut u.emails {
                    e.primary = &e.email == email;
                }
                u.updated_at = now;
            }
        });
        Ok(())
    }

    async fn mark_email_verified(
        &self,
        user: UserId,
        email: &EmailAddress,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.with(|state| state.verify_email(user, email, now));
        Ok(())
    }

    async fn set_password_hash(
        &self,
        user: UserId,
        hash: &PasswordHash,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        Ok(self.with(|state| {
            state
                .user_mut(user)
                .map(|u| {
                    u.password_hash = hash.clone();
                    u.updated_at = now;
                })
                .is_some()
        }))
    }

    async fn delete(&self, user: UserId, tombstone_until: DateTime<Utc>) -> Result<(), StoreError> {
        // What ON DELETE CASCADE does in SQL; audit rows stay.
        self.with(|state| {
            state.users.retain(|u| u.id != user);
            state.orgs.forget_user(user);
            state.tombstones.insert(user, tombstone_until);
            let gone: Vec<SessionId> =
                state.sessions.values().filter(|s| s.user_id() == user).map(|s| s.id()).collect();
            state.sessions.retain(|_, s| s.user_id() != user);
            state.tokens.retain(|_, t| !gone.contains(&t.session_id));
            state.verifications.retain(|v| v.user_id() != user);
            let factors: Vec<Uuid> = state.factors.iter().filter(|f| f.user_id() == user).map(|f| f.id()).collect();
            state.factors.retain(|f| f.user_id() != user);
            state.codes.retain(|(c, _)| !factors.contains(&c.factor_id));
            state.challenges.retain(|c| c.user_id() != user);
            state.backup_codes.retain(|(u, _, _)| *u != user);
        });
        Ok(())
    }
}
