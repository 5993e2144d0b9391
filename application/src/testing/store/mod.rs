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
    AccountWrites, ChallengeWrites, FactorWrites, SessionWrites, UnitOfWork, UnitOfWorkFactory, VerificationWrites,
};
use crate::ports::verifications::VerificationRepository;

mod audit;
mod mfa;
mod organizations;
mod outbox;
mod sessions;
mod users;
mod verifications;

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
    tombstones: HashMap<UserId, DateTime<Utc>>,
    orgs: organizations::Orgs,
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
        if self.user_exists(id) { Ok(()) } else { Err(StoreError::Gone(format!("{what} for an unknown user"))) }
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
    /// Microseconds each second-factor read outside a unit of work takes
    /// to come back (see [`InMemoryStore::delay_reads`]).
    read_delay_us: std::sync::atomic::AtomicU64,
}

impl InMemoryStore {
    /// Makes every second-factor read outside a unit of work take `delay`
    /// to answer, like a round trip to a database, so that parallel use
    /// cases (on threads) interleave between a read and the write they base
    /// on it, as they do against SQL.
    pub fn delay_reads(&self, delay: std::time::Duration) {
        let micros = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX);
        self.read_delay_us.store(micros, std::sync::atomic::Ordering::Relaxed);
    }

    /// Waits out the read delay, if any (on the calling thread: the fakes
    /// run under `block_on`).
    fn read_delay(&self) {
        let micros = self.read_delay_us.load(std::sync::atomic::Ordering::Relaxed);
        if micros > 0 {
            std::thread::sleep(std::time::Duration::from_micros(micros));
        }
    }
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

    fn challenges(&self) -> &dyn ChallengeWrites {
        self
    }

    fn organizations(&self) -> &dyn crate::ports::organizations::OrganizationWrites {
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
