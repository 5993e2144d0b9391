//! The in-memory store: every repository port and the unit of work over one
//! state behind one async lock. A unit of work holds the lock from `begin`
//! until it ends and works on a copy that replaces the state only at commit,
//! so units of work run one after the other and a dropped one changes
//! nothing, as with SQL. It stores what it is told: the rules are the
//! domain's, as in the SQL adapter.

use std::collections::HashMap;
use std::sync::Arc;

use async_lock::{Mutex, MutexGuardArc};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use gatehouse_domain::{
    Account, AuditRecord, ClientInfo, DisplayName, EmailAddress, Factor, LoginEmail, MfaChallenge, PasswordHash,
    Purpose, RevokeReason, Session, SessionId, TokenHash, User, UserId, Verification,
};
use uuid::Uuid;

use crate::ports::events::{ClaimedMessage, OutboxMessage, OutboxStore};
use crate::ports::mfa::{FactorCode, MfaRepository};
use crate::ports::store::{
    NewRefreshToken, Retirement, SessionRepository, StoreError, UserCredentials, UserRepository,
};
use crate::ports::unit_of_work::{
    AccountWrites, FactorWrites, SessionWrites, UnitOfWork, UnitOfWorkFactory, VerificationWrites,
};
use crate::ports::verifications::VerificationRepository;

#[derive(Clone, Debug)]
struct StoredUser {
    id: UserId,
    display_name: DisplayName,
    password_hash: PasswordHash,
    created_at: DateTime<Utc>,
    emails: Vec<LoginEmail>,
    updated_at: DateTime<Utc>,
}

#[derive(Clone, Debug)]
struct RefreshRow {
    session_id: SessionId,
    expires_at: DateTime<Utc>,
    rotated: bool,
}

#[derive(Clone, Debug)]
struct OutboxRow {
    message: OutboxMessage,
    available_at: DateTime<Utc>,
    attempts: u32,
    sent_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, Default)]
struct State {
    users: Vec<StoredUser>,
    sessions: HashMap<SessionId, Session>,
    tokens: HashMap<TokenHash, RefreshRow>,
    verifications: Vec<Verification>,
    outbox: Vec<OutboxRow>,
    factors: Vec<Factor>,
    codes: Vec<(FactorCode, Option<DateTime<Utc>>)>,
    challenges: Vec<MfaChallenge>,
    backup_codes: Vec<(UserId, TokenHash, Option<DateTime<Utc>>)>,
    audit: Vec<AuditRecord>,
}

impl State {
    fn email_taken(&self, email: &EmailAddress) -> bool {
        self.users.iter().any(|u| u.emails.iter().any(|e| &e.email == email))
    }

    fn account(&self, user: UserId) -> Option<Account> {
        self.users
            .iter()
            .find(|u| u.id == user)
            .map(|u| Account::restore(u.id, u.display_name.clone(), u.created_at, u.updated_at, u.emails.clone()))
    }

    fn user_exists(&self, id: UserId) -> bool {
        self.users.iter().any(|u| u.id == id)
    }

    /// What a foreign key to `users` does in SQL: a row of an unknown user is refused.
    fn require_user(&self, id: UserId, what: &str) -> Result<(), StoreError> {
        if self.user_exists(id) {
            Ok(())
        } else {
            Err(StoreError::Internal(format!("{what} for an unknown user").into()))
        }
    }

    /// A user's factors as SQL lists them: by (created_at, id).
    fn factors_of(&self, user: UserId) -> Vec<Factor> {
        let mut found: Vec<Factor> = self.factors.iter().filter(|f| f.user_id() == user).cloned().collect();
        found.sort_by_key(|f| (f.created_at(), f.id()));
        found
    }

    fn user_mut(&mut self, id: UserId) -> Option<&mut StoredUser> {
        self.users.iter_mut().find(|u| u.id == id)
    }

    fn enqueue(&mut self, outbox: &[OutboxMessage]) {
        for m in outbox {
            if let Some(record) = &m.audit {
                self.audit.push(record.clone());
            }
            self.outbox.push(OutboxRow { message: m.clone(), available_at: m.occurred_at, attempts: 0, sent_at: None });
        }
    }

    fn verify_email(&mut self, user: UserId, email: &EmailAddress, now: DateTime<Utc>) {
        if let Some(u) = self.user_mut(user) {
            for e in u.emails.iter_mut().filter(|e| &e.email == email) {
                e.verified_at.get_or_insert(now);
            }
        }
    }
}

/// Every repository port and the unit of work over one in-memory state.
/// Share one `Arc` as every repository of a test.
#[derive(Debug, Default)]
pub struct InMemoryStore {
    state: Arc<Mutex<State>>,
}

impl InMemoryStore {
    /// A copy of one session.
    #[must_use]
    pub fn get_session(&self, id: SessionId) -> Option<Session> {
        self.state.lock_blocking().sessions.get(&id).cloned()
    }

    /// How many sessions exist.
    #[must_use]
    pub fn session_count(&self) -> usize {
        self.state.lock_blocking().sessions.len()
    }

    /// Every user stored.
    #[must_use]
    pub fn users(&self) -> Vec<User> {
        self.state
            .lock_blocking()
            .users
            .iter()
            .map(|u| {
                let primary = u.emails.iter().find(|e| e.primary).map(|e| e.email.clone());
                let email = primary.unwrap_or_else(|| u.emails[0].email.clone());
                User::new(u.id, email, u.display_name.clone(), u.password_hash.clone(), u.created_at)
            })
            .collect()
    }

    /// Every outbox message written, oldest first.
    #[must_use]
    pub fn outbox(&self) -> Vec<OutboxMessage> {
        self.state.lock_blocking().outbox.iter().map(|r| r.message.clone()).collect()
    }

    /// Every verification stored.
    #[must_use]
    pub fn verifications(&self) -> Vec<Verification> {
        self.state.lock_blocking().verifications.clone()
    }
}

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

    async fn mark_sent(&self, id: Uuid, now: DateTime<Utc>) -> Result<(), StoreError> {
        let mut state = self.state.lock().await;
        if let Some(r) = state.outbox.iter_mut().find(|r| r.message.id == id) {
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

    async fn prune_sent(&self, sent_before: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut state = self.state.lock().await;
        let before = state.outbox.len();
        state.outbox.retain(|r| r.sent_at.is_none_or(|t| t >= sent_before));
        Ok((before - state.outbox.len()) as u64)
    }
}

#[async_trait]
impl SessionRepository for InMemoryStore {
    async fn find_by_refresh_token(&self, hash: &TokenHash) -> Result<Option<Session>, StoreError> {
        let state = self.state.lock().await;
        Ok(state.tokens.get(hash).and_then(|row| state.sessions.get(&row.session_id)).cloned())
    }

    async fn get(&self, id: SessionId) -> Result<Option<Session>, StoreError> {
        Ok(self.state.lock().await.sessions.get(&id).cloned())
    }

    async fn list_live(&self, user: UserId, now: DateTime<Utc>) -> Result<Vec<Session>, StoreError> {
        let state = self.state.lock().await;
        let mut live: Vec<Session> =
            state.sessions.values().filter(|s| s.user_id() == user && s.is_active(now)).cloned().collect();
        live.sort_by(|a, b| b.created_at().cmp(&a.created_at()).then(b.id().cmp(&a.id())));
        Ok(live)
    }

    async fn seen_device(&self, user: UserId, client: &ClientInfo) -> Result<bool, StoreError> {
        let state = self.state.lock().await;
        Ok(state
            .sessions
            .values()
            .any(|s| s.user_id() == user && s.client().ip == client.ip && s.client().user_agent == client.user_agent))
    }

    async fn revoked_since(&self, since: DateTime<Utc>) -> Result<Vec<Session>, StoreError> {
        let state = self.state.lock().await;
        let mut revoked: Vec<Session> =
            state.sessions.values().filter(|s| s.revoked_at().is_some_and(|r| r >= since)).cloned().collect();
        // SQL orders by revoked_at alone; the id only makes the fake's ties repeatable.
        revoked.sort_by_key(|s| (s.revoked_at(), s.id()));
        Ok(revoked)
    }

    async fn prune(&self, ended_before: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut state = self.state.lock().await;
        let before = state.sessions.len();
        state
            .sessions
            .retain(|_, s| s.expires_at() >= ended_before && s.revoked_at().is_none_or(|r| r >= ended_before));
        let kept: Vec<SessionId> = state.sessions.keys().copied().collect();
        state.tokens.retain(|_, t| kept.contains(&t.session_id));
        Ok((before - state.sessions.len()) as u64)
    }
}

#[async_trait]
impl MfaRepository for InMemoryStore {
    async fn factors(&self, user: UserId) -> Result<Vec<Factor>, StoreError> {
        Ok(self.state.lock().await.factors_of(user))
    }

    async fn advance_totp_step(&self, factor: Uuid, step: i64) -> Result<bool, StoreError> {
        let mut state = self.state.lock().await;
        Ok(state.factors.iter_mut().find(|f| f.id() == factor).is_some_and(|f| f.accept_totp_step(step)))
    }

    async fn use_code(
        &self,
        factor: Uuid,
        challenge: Option<Uuid>,
        hash: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut state = self.state.lock().await;
        let newest = state
            .codes
            .iter_mut()
            .filter(|(c, consumed)| c.factor_id == factor && c.challenge_id == challenge && consumed.is_none())
            .max_by_key(|(c, _)| (c.created_at, c.id));
        let Some((code, consumed)) = newest else { return Ok(false) };
        if code.expires_at <= now || code.attempts >= code.max_attempts {
            return Ok(false);
        }
        if crate::secrets::hashes_equal(&code.code_hash, hash) {
            *consumed = Some(now);
            Ok(true)
        } else {
            code.attempts += 1;
            Ok(false)
        }
    }

    async fn create_challenge(&self, challenge: &MfaChallenge) -> Result<(), StoreError> {
        let mut state = self.state.lock().await;
        state.require_user(challenge.user_id(), "challenge")?;
        state.challenges.push(challenge.clone());
        Ok(())
    }

    async fn challenge(&self, id: Uuid) -> Result<Option<MfaChallenge>, StoreError> {
        Ok(self.state.lock().await.challenges.iter().find(|c| c.id() == id).cloned())
    }

    async fn record_challenge_failure(&self, id: Uuid) -> Result<Option<u32>, StoreError> {
        let mut state = self.state.lock().await;
        Ok(state.challenges.iter_mut().find(|c| c.id() == id).and_then(|c| c.count_failure().then(|| c.attempts())))
    }

    async fn consume_challenge(&self, id: Uuid, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let mut state = self.state.lock().await;
        Ok(state.challenges.iter_mut().find(|c| c.id() == id).is_some_and(|c| c.pass(now)))
    }

    async fn failures_since(&self, user: UserId, since: DateTime<Utc>) -> Result<u32, StoreError> {
        let state = self.state.lock().await;
        Ok(state
            .challenges
            .iter()
            .filter(|c| c.user_id() == user && c.created_at() >= since)
            .map(|c| c.attempts())
            .sum())
    }
}

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

impl InMemoryStore {
    /// Every audit row, in the order written.
    #[must_use]
    pub fn audit_rows(&self) -> Vec<AuditRecord> {
        self.state.lock_blocking().audit.clone()
    }
}

#[async_trait]
impl UnitOfWorkFactory for InMemoryStore {
    async fn begin(&self) -> Result<Box<dyn UnitOfWork>, StoreError> {
        let committed = self.state.lock_arc().await;
        let working = std::sync::Mutex::new(committed.clone());
        Ok(Box::new(MemoryUnitOfWork { committed, working, messages: Vec::new() }))
    }
}

/// An open unit of work of [`InMemoryStore`]: the store's lock, and the copy
/// of its state that becomes the state at commit.
#[derive(Debug)]
struct MemoryUnitOfWork {
    committed: MutexGuardArc<State>,
    working: std::sync::Mutex<State>,
    messages: Vec<OutboxMessage>,
}

impl MemoryUnitOfWork {
    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.working.lock().unwrap())
    }
}

#[async_trait]
impl UnitOfWork for MemoryUnitOfWork {
    fn accounts(&self) -> &dyn AccountWrites {
        self
    }

    fn sessions(&self) -> &dyn SessionWrites {
        self
    }

    fn verifications(&self) -> &dyn VerificationWrites {
        self
    }

    fn factors(&self) -> &dyn FactorWrites {
        self
    }

    fn add_messages(&mut self, messages: Vec<OutboxMessage>) {
        self.messages.extend(messages);
    }

    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        let Self { mut committed, working, messages } = *self;
        let mut state = working.into_inner().unwrap();
        state.enqueue(&messages);
        *committed = state;
        Ok(())
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
            let Some(u) = state.user_mut(user) else { return Err(StoreError::Internal("no such user".into())) };
            u.emails.push(LoginEmail { email: email.clone(), primary: false, verified_at: None, created_at: now });
            Ok(())
        })
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

    async fn delete(&self, user: UserId) -> Result<(), StoreError> {
        // What ON DELETE CASCADE does in SQL; audit rows stay.
        self.with(|state| {
            state.users.retain(|u| u.id != user);
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

#[async_trait]
impl SessionWrites for MemoryUnitOfWork {
    async fn insert(&self, session: &Session, refresh: &NewRefreshToken) -> Result<(), StoreError> {
        self.with(|state| {
            state.require_user(session.user_id(), "session")?;
            state.sessions.insert(session.id(), session.clone());
            state.tokens.insert(
                refresh.hash,
                RefreshRow { session_id: session.id(), expires_at: refresh.expires_at, rotated: false },
            );
            Ok(())
        })
    }

    async fn get(&self, id: SessionId) -> Result<Option<Session>, StoreError> {
        Ok(self.with(|state| state.sessions.get(&id).cloned()))
    }

    async fn unrevoked(&self, user: UserId) -> Result<Vec<Session>, StoreError> {
        Ok(self.with(|state| {
            let mut found: Vec<Session> =
                state.sessions.values().filter(|s| s.user_id() == user && s.revoked_at().is_none()).cloned().collect();
            found.sort_by_key(|s| (s.created_at(), s.id()));
            found
        }))
    }

    async fn owner_of_refresh_token(&self, presented: &TokenHash) -> Result<Option<UserId>, StoreError> {
        Ok(self.with(|state| {
            let row = state.tokens.get(presented)?;
            state.sessions.get(&row.session_id).map(Session::user_id)
        }))
    }

    async fn retire_refresh_token(&self, presented: &TokenHash, now: DateTime<Utc>) -> Result<Retirement, StoreError> {
        Ok(self.with(|state| {
            let Some(row) = state.tokens.get_mut(presented) else { return Retirement::Unknown };
            let session_id = row.session_id;
            if row.rotated {
                Retirement::Reused { session_id }
            } else if row.expires_at <= now {
                Retirement::Expired
            } else {
                row.rotated = true;
                Retirement::Retired { session_id }
            }
        }))
    }

    async fn save_rotation(&self, session: &Session, next: &NewRefreshToken) -> Result<(), StoreError> {
        self.with(|state| {
            state.sessions.insert(session.id(), session.clone());
            state.tokens.insert(
                next.hash,
                RefreshRow { session_id: session.id(), expires_at: next.expires_at, rotated: false },
            );
        });
        Ok(())
    }

    async fn save_revocations(&self, sessions: &[Session], _reason: RevokeReason) -> Result<(), StoreError> {
        self.with(|state| {
            for s in sessions {
                if let (Some(stored), Some(at)) = (state.sessions.get_mut(&s.id()), s.revoked_at()) {
                    stored.revoke(at);
                }
            }
        });
        Ok(())
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
                return Err(StoreError::Internal("code for an unknown factor".into()));
            }
            if code.challenge_id.is_some_and(|id| !state.challenges.iter().any(|c| c.id() == id)) {
                return Err(StoreError::Internal("code for an unknown challenge".into()));
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
}
