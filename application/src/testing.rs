//! In-memory fakes of every port, and a fixed clock, for use-case tests here
//! and in other crates (feature `testing`). They follow the ports' contracts,
//! including the compare-and-swap of refresh-token rotation, so a use-case
//! test exercises the same outcomes the SQL adapter produces.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    missing_debug_implementations
)]

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use gatehouse_domain::{
    AccessClaims, Account, AuditRecord, ClientInfo, DisplayName, EmailAddress, Factor, FactorKind, LoginEmail,
    MfaChallenge, Password, PasswordHash, Purpose, RevokeReason, Session, SessionId, TokenHash, TokenId, User, UserId,
    Verification,
};
use uuid::Uuid;

use crate::error::TokenRejection;
use crate::ports::clock::Clock;
use crate::ports::denylist::{DenyEntry, DenyKey, Denylist, DenylistError};
use crate::ports::events::{ClaimedMessage, OutboxMessage, OutboxStore};
use crate::ports::mfa::{FactorCode, MfaRepository};
use crate::ports::password::{HashError, PasswordCheck, PasswordHasher};
use crate::ports::random::RandomSource;
use crate::ports::store::{
    EmailRemoval, NewRefreshToken, PrimaryChange, Rotation, SessionRepository, StoreError, UserCredentials,
    UserRepository,
};
use crate::ports::tokens::{AccessTokenSigner, AccessTokenVerifier, PublicJwk, SigningError};
use crate::ports::verifications::{Consumed, Effect, VerificationRepository};

/// A clock that stands still until told to move.
pub struct FixedClock(Mutex<DateTime<Utc>>);

impl FixedClock {
    /// A clock at 2026-01-01T00:00:00Z.
    #[must_use]
    pub fn new() -> Self {
        Self(Mutex::new(DateTime::from_timestamp(1_767_225_600, 0).unwrap()))
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: TimeDelta) {
        *self.0.lock().unwrap() += by;
    }
}

impl Default for FixedClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

/// Deterministic "randomness": every call yields different bytes.
#[derive(Default)]
pub struct SeqRandom(AtomicU64);

impl RandomSource for SeqRandom {
    fn fill(&self, buf: &mut [u8]) {
        let n = self.0.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        for (i, b) in buf.iter_mut().enumerate() {
            let shift = (i % 8) * 8;
            *b = ((n >> shift) & 0xff) as u8 ^ (i as u8).wrapping_mul(31);
        }
    }
}

/// A transparent "hash" (`fake2$<password>`) that counts its verifications.
/// A stored `fake1$…` hash matches but asks for a rehash.
#[derive(Default)]
pub struct FakeHasher {
    pub verifications: AtomicUsize,
}

#[async_trait]
impl PasswordHasher for FakeHasher {
    async fn hash(&self, password: &Password) -> Result<PasswordHash, HashError> {
        Ok(PasswordHash::from_phc(format!("fake2${}", password.expose())))
    }

    async fn verify(&self, password: &Password, hash: Option<&PasswordHash>) -> Result<PasswordCheck, HashError> {
        self.verifications.fetch_add(1, Ordering::Relaxed);
        let Some(hash) = hash else { return Ok(PasswordCheck::Mismatch) };
        let (version, stored) = hash.as_str().split_once('$').unwrap_or_default();
        Ok(if stored == password.expose() {
            PasswordCheck::Match { needs_rehash: version != "fake2" }
        } else {
            PasswordCheck::Mismatch
        })
    }
}

#[derive(Clone)]
struct StoredUser {
    user: User,
    emails: Vec<LoginEmail>,
    updated_at: DateTime<Utc>,
}

struct RefreshRow {
    session_id: SessionId,
    expires_at: DateTime<Utc>,
    rotated: bool,
}

struct OutboxRow {
    message: OutboxMessage,
    available_at: DateTime<Utc>,
    attempts: u32,
    sent_at: Option<DateTime<Utc>>,
}

#[derive(Default)]
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

    fn user_mut(&mut self, id: UserId) -> Option<&mut StoredUser> {
        self.users.iter_mut().find(|u| u.user.id == id)
    }

    fn enqueue(&mut self, outbox: &[OutboxMessage]) {
        for m in outbox {
            if let Some(record) = &m.audit {
                self.audit.push(record.clone());
            }
            self.outbox.push(OutboxRow { message: m.clone(), available_at: m.occurred_at, attempts: 0, sent_at: None });
        }
    }

    fn revoke_user_sessions(
        &mut self,
        user: UserId,
        keep: Option<SessionId>,
        reason: RevokeReason,
        now: DateTime<Utc>,
    ) -> Vec<Session> {
        let _ = reason;
        self.sessions
            .values_mut()
            .filter(|s| s.user_id == user && s.revoked_at.is_none() && Some(s.id) != keep)
            .map(|s| {
                s.revoked_at = Some(now);
                s.clone()
            })
            .collect()
    }

    fn verify_email(&mut self, user: UserId, email: &EmailAddress, now: DateTime<Utc>) {
        if let Some(u) = self.user_mut(user) {
            for e in u.emails.iter_mut().filter(|e| &e.email == email) {
                e.verified_at.get_or_insert(now);
            }
        }
    }
}

/// Every repository port over one in-memory state behind one lock, so each
/// call is atomic like a transaction, and effects that span tables (a
/// password reset revoking sessions) behave as in SQL. Share one `Arc` as
/// every repository of a test.
#[derive(Default)]
pub struct InMemoryStore(Mutex<State>);

/// The store in its user-repository role.
pub type InMemoryUsers = InMemoryStore;
/// The store in its session-repository role.
pub type InMemorySessions = InMemoryStore;

impl InMemoryStore {
    /// A copy of one session.
    #[must_use]
    pub fn get_session(&self, id: SessionId) -> Option<Session> {
        self.0.lock().unwrap().sessions.get(&id).cloned()
    }

    /// How many sessions exist.
    #[must_use]
    pub fn session_count(&self) -> usize {
        self.0.lock().unwrap().sessions.len()
    }

    /// Every user stored.
    #[must_use]
    pub fn users(&self) -> Vec<User> {
        self.0.lock().unwrap().users.iter().map(|u| u.user.clone()).collect()
    }

    /// Every outbox message written, oldest first.
    #[must_use]
    pub fn outbox(&self) -> Vec<OutboxMessage> {
        self.0.lock().unwrap().outbox.iter().map(|r| r.message.clone()).collect()
    }

    /// Every verification stored.
    #[must_use]
    pub fn verifications(&self) -> Vec<Verification> {
        self.0.lock().unwrap().verifications.clone()
    }
}

#[async_trait]
impl UserRepository for InMemoryStore {
    async fn create(
        &self,
        user: &User,
        verification: &Verification,
        outbox: &[OutboxMessage],
    ) -> Result<(), StoreError> {
        let mut state = self.0.lock().unwrap();
        if state.email_taken(&user.email) {
            return Err(StoreError::Conflict("user_emails.email".into()));
        }
        let email =
            LoginEmail { email: user.email.clone(), primary: true, verified_at: None, created_at: user.created_at };
        state.users.push(StoredUser { user: user.clone(), emails: vec![email], updated_at: user.created_at });
        state.verifications.push(verification.clone());
        state.enqueue(outbox);
        Ok(())
    }

    async fn find_credentials(&self, email: &EmailAddress) -> Result<Option<UserCredentials>, StoreError> {
        let state = self.0.lock().unwrap();
        Ok(state.users.iter().find_map(|u| {
            u.emails.iter().find(|e| &e.email == email).map(|e| UserCredentials {
                user_id: u.user.id,
                password_hash: u.user.password_hash.clone(),
                email_verified: e.verified_at.is_some(),
            })
        }))
    }

    async fn password_hash(&self, user: UserId) -> Result<Option<PasswordHash>, StoreError> {
        let state = self.0.lock().unwrap();
        Ok(state.users.iter().find(|u| u.user.id == user).map(|u| u.user.password_hash.clone()))
    }

    async fn update_password_hash(
        &self,
        user: UserId,
        hash: &PasswordHash,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if let Some(u) = self.0.lock().unwrap().user_mut(user) {
            u.user.password_hash = hash.clone();
            u.updated_at = now;
        }
        Ok(())
    }

    async fn get(&self, user: UserId) -> Result<Option<Account>, StoreError> {
        let state = self.0.lock().unwrap();
        Ok(state.users.iter().find(|u| u.user.id == user).map(|u| {
            let mut emails = u.emails.clone();
            emails.sort_by_key(|e| (!e.primary, e.created_at));
            Account {
                id: u.user.id,
                display_name: u.user.display_name.clone(),
                created_at: u.user.created_at,
                updated_at: u.updated_at,
                emails,
            }
        }))
    }

    async fn update_display_name(
        &self,
        user: UserId,
        name: &DisplayName,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut state = self.0.lock().unwrap();
        Ok(state
            .user_mut(user)
            .map(|u| {
                u.user.display_name = name.clone();
                u.updated_at = now;
            })
            .is_some())
    }

    async fn change_password(
        &self,
        user: UserId,
        hash: &PasswordHash,
        keep: Option<SessionId>,
        outbox: &[OutboxMessage],
        now: DateTime<Utc>,
    ) -> Result<Vec<Session>, StoreError> {
        let mut state = self.0.lock().unwrap();
        let Some(u) = state.user_mut(user) else { return Ok(Vec::new()) };
        u.user.password_hash = hash.clone();
        u.updated_at = now;
        let revoked = state.revoke_user_sessions(user, keep, RevokeReason::PasswordChanged, now);
        state.enqueue(outbox);
        Ok(revoked)
    }

    async fn add_email(
        &self,
        user: UserId,
        email: &EmailAddress,
        verification: &Verification,
        outbox: &[OutboxMessage],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut state = self.0.lock().unwrap();
        if state.email_taken(email) {
            return Err(StoreError::Conflict("user_emails.email".into()));
        }
        let Some(u) = state.user_mut(user) else { return Err(StoreError::Internal("no such user".into())) };
        u.emails.push(LoginEmail { email: email.clone(), primary: false, verified_at: None, created_at: now });
        state.verifications.push(verification.clone());
        state.enqueue(outbox);
        Ok(())
    }

    async fn remove_email(
        &self,
        user: UserId,
        email: &EmailAddress,
        outbox: &[OutboxMessage],
        now: DateTime<Utc>,
    ) -> Result<EmailRemoval, StoreError> {
        let mut state = self.0.lock().unwrap();
        let Some(u) = state.user_mut(user) else { return Ok(EmailRemoval::NotFound) };
        let Some(pos) = u.emails.iter().position(|e| &e.email == email) else { return Ok(EmailRemoval::NotFound) };
        let target = &u.emails[pos];
        if target.primary {
            return Ok(EmailRemoval::IsPrimary);
        }
        if target.verified_at.is_some() && u.emails.iter().filter(|e| e.verified_at.is_some()).count() == 1 {
            return Ok(EmailRemoval::LastVerified);
        }
        u.emails.remove(pos);
        for v in state.verifications.iter_mut().filter(|v| v.user_id == user && &v.email == email) {
            v.consumed_at.get_or_insert(now);
        }
        let gone: Vec<Uuid> = state
            .factors
            .iter()
            .filter(|f| {
                f.user_id == user && f.kind == FactorKind::Email && f.destination.as_deref() == Some(email.as_str())
            })
            .map(|f| f.id)
            .collect();
        state.factors.retain(|f| !gone.contains(&f.id));
        state.codes.retain(|(c, _)| !gone.contains(&c.factor_id));
        state.enqueue(outbox);
        Ok(EmailRemoval::Removed)
    }

    async fn set_primary_email(
        &self,
        user: UserId,
        email: &EmailAddress,
        outbox: &[OutboxMessage],
        now: DateTime<Utc>,
    ) -> Result<PrimaryChange, StoreError> {
        let mut state = self.0.lock().unwrap();
        let Some(u) = state.user_mut(user) else { return Ok(PrimaryChange::NotFound) };
        match u.emails.iter().find(|e| &e.email == email) {
            None => return Ok(PrimaryChange::NotFound),
            Some(e) if e.verified_at.is_none() => return Ok(PrimaryChange::NotVerified),
            Some(_) => {}
        }
        for e in &mut u.emails {
            e.primary = &e.email == email;
        }
        u.updated_at = now;
        state.enqueue(outbox);
        Ok(PrimaryChange::Changed)
    }

    async fn delete(
        &self,
        user: UserId,
        outbox: &[OutboxMessage],
        now: DateTime<Utc>,
    ) -> Result<Vec<Session>, StoreError> {
        let mut state = self.0.lock().unwrap();
        if !state.users.iter().any(|u| u.user.id == user) {
            return Ok(Vec::new());
        }
        state.enqueue(outbox);
        let live: Vec<Session> =
            state.sessions.values().filter(|s| s.user_id == user && s.is_active(now)).cloned().collect();
        state.users.retain(|u| u.user.id != user);
        state.sessions.retain(|_, s| s.user_id != user);
        let gone: Vec<SessionId> = live.iter().map(|s| s.id).collect();
        state.tokens.retain(|_, t| !gone.contains(&t.session_id));
        state.verifications.retain(|v| v.user_id != user);
        let factors: Vec<Uuid> = state.factors.iter().filter(|f| f.user_id == user).map(|f| f.id).collect();
        state.factors.retain(|f| f.user_id != user);
        state.codes.retain(|(c, _)| !factors.contains(&c.factor_id));
        state.challenges.retain(|c| c.user_id != user);
        state.backup_codes.retain(|(u, _, _)| *u != user);
        Ok(live)
    }
}

#[async_trait]
impl VerificationRepository for InMemoryStore {
    async fn replace(&self, verification: &Verification, outbox: &[OutboxMessage]) -> Result<(), StoreError> {
        let mut state = self.0.lock().unwrap();
        let any_address = verification.purpose == Purpose::ResetPassword;
        for v in state.verifications.iter_mut().filter(|v| {
            v.user_id == verification.user_id
                && (any_address || v.email == verification.email)
                && v.purpose == verification.purpose
                && v.consumed_at.is_none()
        }) {
            v.consumed_at = Some(verification.created_at);
        }
        state.verifications.push(verification.clone());
        state.enqueue(outbox);
        Ok(())
    }

    async fn find_by_token(
        &self,
        purpose: Purpose,
        token_hash: &TokenHash,
    ) -> Result<Option<Verification>, StoreError> {
        let state = self.0.lock().unwrap();
        Ok(state.verifications.iter().find(|v| v.purpose == purpose && &v.token_hash == token_hash).cloned())
    }

    async fn find_latest(&self, purpose: Purpose, email: &EmailAddress) -> Result<Option<Verification>, StoreError> {
        let state = self.0.lock().unwrap();
        Ok(state
            .verifications
            .iter()
            .filter(|v| v.purpose == purpose && &v.email == email && v.consumed_at.is_none())
            .max_by_key(|v| v.created_at)
            .cloned())
    }

    async fn recent_activity(
        &self,
        user: UserId,
        purpose: Purpose,
        since: DateTime<Utc>,
    ) -> Result<crate::ports::verifications::RecentActivity, StoreError> {
        let state = self.0.lock().unwrap();
        let recent =
            state.verifications.iter().filter(|v| v.user_id == user && v.purpose == purpose && v.created_at >= since);
        let (issued, failures) = recent.fold((0, 0), |(i, f), v| (i + 1, f + v.attempts));
        Ok(crate::ports::verifications::RecentActivity { issued, failures })
    }

    async fn record_failed_attempt(&self, id: Uuid) -> Result<Option<u32>, StoreError> {
        let mut state = self.0.lock().unwrap();
        Ok(state
            .verifications
            .iter_mut()
            .find(|v| v.id == id && v.consumed_at.is_none() && v.attempts < v.max_attempts)
            .map(|v| {
                v.attempts += 1;
                v.attempts
            }))
    }

    async fn consume(
        &self,
        id: Uuid,
        effect: &Effect,
        outbox: &[OutboxMessage],
        now: DateTime<Utc>,
    ) -> Result<Consumed, StoreError> {
        let mut state = self.0.lock().unwrap();
        let Some(v) = state.verifications.iter_mut().find(|v| v.id == id && v.is_live(now)) else {
            return Ok(Consumed::Unavailable);
        };
        v.consumed_at = Some(now);
        let (user, email) = (v.user_id, v.email.clone());
        let revoked = match effect {
            Effect::VerifyEmail => {
                state.verify_email(user, &email, now);
                Vec::new()
            }
            Effect::ResetPassword { hash } => {
                if let Some(u) = state.user_mut(user) {
                    u.user.password_hash = hash.clone();
                    u.updated_at = now;
                }
                state.verify_email(user, &email, now);
                for v in state
                    .verifications
                    .iter_mut()
                    .filter(|v| v.user_id == user && v.purpose == Purpose::ResetPassword && v.consumed_at.is_none())
                {
                    v.consumed_at = Some(now);
                }
                state.revoke_user_sessions(user, None, RevokeReason::PasswordReset, now)
            }
        };
        state.enqueue(outbox);
        Ok(Consumed::Applied { revoked })
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
        let mut state = self.0.lock().unwrap();
        Ok(state
            .outbox
            .iter_mut()
            .filter(|r| r.sent_at.is_none() && r.available_at <= now)
            .take(limit as usize)
            .map(|r| {
                r.available_at = lease_until;
                // As in SQL: an outbox row does not point back at its audit row.
                ClaimedMessage { message: OutboxMessage { audit: None, ..r.message.clone() }, attempts: r.attempts }
            })
            .collect())
    }

    async fn mark_sent(&self, id: Uuid, now: DateTime<Utc>) -> Result<(), StoreError> {
        let mut state = self.0.lock().unwrap();
        if let Some(r) = state.outbox.iter_mut().find(|r| r.message.id == id) {
            r.sent_at = Some(now);
        }
        Ok(())
    }

    async fn retry_later(&self, id: Uuid, attempts: u32, next_attempt_at: DateTime<Utc>) -> Result<(), StoreError> {
        let mut state = self.0.lock().unwrap();
        if let Some(r) = state.outbox.iter_mut().find(|r| r.message.id == id) {
            r.attempts = attempts;
            r.available_at = next_attempt_at;
        }
        Ok(())
    }

    async fn prune_sent(&self, sent_before: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut state = self.0.lock().unwrap();
        let before = state.outbox.len();
        state.outbox.retain(|r| r.sent_at.is_none_or(|t| t >= sent_before));
        Ok((before - state.outbox.len()) as u64)
    }
}

#[async_trait]
impl SessionRepository for InMemoryStore {
    async fn create(
        &self,
        session: &Session,
        refresh: &NewRefreshToken,
        outbox: &[OutboxMessage],
    ) -> Result<(), StoreError> {
        let mut state = self.0.lock().unwrap();
        if !state.users.iter().any(|u| u.user.id == session.user_id) {
            return Err(StoreError::Internal("session for an unknown user".into()));
        }
        state.sessions.insert(session.id, session.clone());
        state.tokens.insert(
            refresh.hash,
            RefreshRow { session_id: session.id, expires_at: refresh.expires_at, rotated: false },
        );
        state.enqueue(outbox);
        Ok(())
    }

    async fn rotate_refresh_token(
        &self,
        presented: &TokenHash,
        next: &NewRefreshToken,
        client: &ClientInfo,
        now: DateTime<Utc>,
    ) -> Result<Rotation, StoreError> {
        let mut state = self.0.lock().unwrap();
        let Some(row) = state.tokens.get(presented) else { return Ok(Rotation::Unknown) };
        let session_id = row.session_id;
        if row.rotated {
            return Ok(Rotation::Reused { session_id });
        }
        if row.expires_at <= now {
            return Ok(Rotation::Expired);
        }
        let Some(session) = state.sessions.get_mut(&session_id) else { return Ok(Rotation::Unknown) };
        if !session.is_active(now) {
            return Ok(Rotation::SessionEnded);
        }
        let expires_at = next.expires_at.min(session.absolute_expires_at);
        session.last_used_at = now;
        session.expires_at = expires_at;
        if client.ip.is_some() {
            session.client.ip.clone_from(&client.ip);
        }
        if client.user_agent.is_some() {
            session.client.user_agent.clone_from(&client.user_agent);
        }
        let session = session.clone();
        if let Some(row) = state.tokens.get_mut(presented) {
            row.rotated = true;
        }
        state.tokens.insert(next.hash, RefreshRow { session_id, expires_at, rotated: false });
        Ok(Rotation::Rotated(session))
    }

    async fn find_by_refresh_token(&self, hash: &TokenHash) -> Result<Option<Session>, StoreError> {
        let state = self.0.lock().unwrap();
        Ok(state.tokens.get(hash).and_then(|row| state.sessions.get(&row.session_id)).cloned())
    }

    async fn get(&self, id: SessionId) -> Result<Option<Session>, StoreError> {
        Ok(self.0.lock().unwrap().sessions.get(&id).cloned())
    }

    async fn list_live(&self, user: UserId, now: DateTime<Utc>) -> Result<Vec<Session>, StoreError> {
        let state = self.0.lock().unwrap();
        let mut live: Vec<Session> =
            state.sessions.values().filter(|s| s.user_id == user && s.is_active(now)).cloned().collect();
        live.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        Ok(live)
    }

    async fn seen_device(&self, user: UserId, client: &ClientInfo) -> Result<bool, StoreError> {
        let state = self.0.lock().unwrap();
        Ok(state
            .sessions
            .values()
            .any(|s| s.user_id == user && s.client.ip == client.ip && s.client.user_agent == client.user_agent))
    }

    async fn revoke(
        &self,
        id: SessionId,
        _reason: RevokeReason,
        outbox: &[OutboxMessage],
        now: DateTime<Utc>,
    ) -> Result<Option<Session>, StoreError> {
        let mut state = self.0.lock().unwrap();
        let revoked = state.sessions.get_mut(&id).map(|s| {
            s.revoked_at.get_or_insert(now);
            s.clone()
        });
        if revoked.is_some() {
            state.enqueue(outbox);
        }
        Ok(revoked)
    }

    async fn revoke_all(
        &self,
        user: UserId,
        keep: Option<SessionId>,
        reason: RevokeReason,
        outbox: &[OutboxMessage],
        now: DateTime<Utc>,
    ) -> Result<Vec<Session>, StoreError> {
        let mut state = self.0.lock().unwrap();
        let revoked = state.revoke_user_sessions(user, keep, reason, now);
        state.enqueue(outbox);
        Ok(revoked)
    }

    async fn revoked_since(&self, since: DateTime<Utc>) -> Result<Vec<Session>, StoreError> {
        let state = self.0.lock().unwrap();
        Ok(state.sessions.values().filter(|s| s.revoked_at.is_some_and(|r| r >= since)).cloned().collect())
    }

    async fn prune(&self, ended_before: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut state = self.0.lock().unwrap();
        let before = state.sessions.len();
        state.sessions.retain(|_, s| s.expires_at >= ended_before && s.revoked_at.is_none_or(|r| r >= ended_before));
        let kept: Vec<SessionId> = state.sessions.keys().copied().collect();
        state.tokens.retain(|_, t| kept.contains(&t.session_id));
        Ok((before - state.sessions.len()) as u64)
    }
}

#[async_trait]
impl MfaRepository for InMemoryStore {
    async fn add_factor(
        &self,
        factor: &Factor,
        code: Option<&FactorCode>,
        outbox: &[OutboxMessage],
    ) -> Result<(), StoreError> {
        let mut state = self.0.lock().unwrap();
        let stale: Vec<Uuid> = state
            .factors
            .iter()
            .filter(|f| f.user_id == factor.user_id && f.kind == factor.kind && !f.active)
            .map(|f| f.id)
            .collect();
        state.factors.retain(|f| !stale.contains(&f.id));
        state.codes.retain(|(c, _)| !stale.contains(&c.factor_id));
        state.factors.push(factor.clone());
        if let Some(code) = code {
            state.codes.push((code.clone(), None));
        }
        state.enqueue(outbox);
        Ok(())
    }

    async fn factors(&self, user: UserId) -> Result<Vec<Factor>, StoreError> {
        let state = self.0.lock().unwrap();
        Ok(state.factors.iter().filter(|f| f.user_id == user).cloned().collect())
    }

    async fn activate_factor(
        &self,
        user: UserId,
        factor: Uuid,
        backup_codes: &[TokenHash],
        outbox: &[OutboxMessage],
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut state = self.0.lock().unwrap();
        let Some(f) = state.factors.iter_mut().find(|f| f.id == factor && f.user_id == user && !f.active) else {
            return Ok(false);
        };
        f.active = true;
        f.confirmed_at = Some(now);
        if !backup_codes.is_empty() {
            state.backup_codes.retain(|(u, _, _)| *u != user);
            state.backup_codes.extend(backup_codes.iter().map(|h| (user, *h, None)));
        }
        state.enqueue(outbox);
        Ok(true)
    }

    async fn remove_factor(&self, user: UserId, factor: Uuid, outbox: &[OutboxMessage]) -> Result<bool, StoreError> {
        let mut state = self.0.lock().unwrap();
        let before = state.factors.len();
        state.factors.retain(|f| !(f.id == factor && f.user_id == user));
        if state.factors.len() == before {
            return Ok(false);
        }
        state.codes.retain(|(c, _)| c.factor_id != factor);
        if !state.factors.iter().any(|f| f.user_id == user && f.active) {
            state.backup_codes.retain(|(u, _, _)| *u != user);
        }
        state.enqueue(outbox);
        Ok(true)
    }

    async fn advance_totp_step(&self, factor: Uuid, step: i64) -> Result<bool, StoreError> {
        let mut state = self.0.lock().unwrap();
        Ok(state
            .factors
            .iter_mut()
            .find(|f| f.id == factor && f.last_totp_step.is_none_or(|last| last < step))
            .map(|f| f.last_totp_step = Some(step))
            .is_some())
    }

    async fn replace_backup_codes(
        &self,
        user: UserId,
        hashes: &[TokenHash],
        outbox: &[OutboxMessage],
        _now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut state = self.0.lock().unwrap();
        state.backup_codes.retain(|(u, _, _)| *u != user);
        state.backup_codes.extend(hashes.iter().map(|h| (user, *h, None)));
        state.enqueue(outbox);
        Ok(())
    }

    async fn use_backup_code(
        &self,
        user: UserId,
        hash: &TokenHash,
        notice: &(dyn Fn(u32) -> Vec<OutboxMessage> + Send + Sync),
        now: DateTime<Utc>,
    ) -> Result<Option<u32>, StoreError> {
        let mut state = self.0.lock().unwrap();
        let Some(code) = state.backup_codes.iter_mut().find(|(u, h, used)| *u == user && h == hash && used.is_none())
        else {
            return Ok(None);
        };
        code.2 = Some(now);
        let remaining = state.backup_codes.iter().filter(|(u, _, used)| *u == user && used.is_none()).count() as u32;
        state.enqueue(&notice(remaining));
        Ok(Some(remaining))
    }

    async fn add_code(&self, code: &FactorCode, outbox: &[OutboxMessage]) -> Result<(), StoreError> {
        let mut state = self.0.lock().unwrap();
        for (c, consumed) in &mut state.codes {
            if c.factor_id == code.factor_id && c.challenge_id == code.challenge_id && consumed.is_none() {
                *consumed = Some(code.created_at);
            }
        }
        state.codes.push((code.clone(), None));
        state.enqueue(outbox);
        Ok(())
    }

    async fn use_code(
        &self,
        factor: Uuid,
        challenge: Option<Uuid>,
        hash: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut state = self.0.lock().unwrap();
        let newest = state
            .codes
            .iter_mut()
            .filter(|(c, consumed)| c.factor_id == factor && c.challenge_id == challenge && consumed.is_none())
            .max_by_key(|(c, _)| c.created_at);
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
        self.0.lock().unwrap().challenges.push(challenge.clone());
        Ok(())
    }

    async fn challenge(&self, id: Uuid) -> Result<Option<MfaChallenge>, StoreError> {
        Ok(self.0.lock().unwrap().challenges.iter().find(|c| c.id == id).cloned())
    }

    async fn record_challenge_failure(&self, id: Uuid) -> Result<Option<u32>, StoreError> {
        let mut state = self.0.lock().unwrap();
        Ok(state
            .challenges
            .iter_mut()
            .find(|c| c.id == id && c.consumed_at.is_none() && c.attempts < c.max_attempts)
            .map(|c| {
                c.attempts += 1;
                c.attempts
            }))
    }

    async fn consume_challenge(&self, id: Uuid, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let mut state = self.0.lock().unwrap();
        Ok(state
            .challenges
            .iter_mut()
            .find(|c| c.id == id && c.consumed_at.is_none() && now < c.expires_at)
            .map(|c| c.consumed_at = Some(now))
            .is_some())
    }

    async fn failures_since(&self, user: UserId, since: DateTime<Utc>) -> Result<u32, StoreError> {
        let state = self.0.lock().unwrap();
        Ok(state.challenges.iter().filter(|c| c.user_id == user && c.created_at >= since).map(|c| c.attempts).sum())
    }
}

#[async_trait]
impl crate::ports::audit::AuditLog for InMemoryStore {
    async fn record(&self, messages: &[OutboxMessage]) -> Result<(), StoreError> {
        self.0.lock().unwrap().enqueue(messages);
        Ok(())
    }

    async fn list(
        &self,
        user: UserId,
        after: Option<crate::ports::audit::AuditCursor>,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let state = self.0.lock().unwrap();
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
        self.0.lock().unwrap().audit.clone()
    }
}

/// A readable stand-in for JWTs: `fake.<sub>.<sid>.<jti>.<iat>.<exp>`.
#[derive(Default)]
pub struct FakeTokens;

impl AccessTokenSigner for FakeTokens {
    fn sign(&self, c: &AccessClaims) -> Result<String, SigningError> {
        Ok(format!(
            "fake.{}.{}.{}.{}.{}",
            c.user_id,
            c.session_id,
            c.token_id,
            c.issued_at.timestamp(),
            c.expires_at.timestamp()
        ))
    }
}

impl AccessTokenVerifier for FakeTokens {
    fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<AccessClaims, TokenRejection> {
        let parts: Vec<&str> = token.split('.').collect();
        let [_, sub, sid, jti, iat, exp] = parts.as_slice() else { return Err(TokenRejection::Malformed) };
        if parts[0] != "fake" {
            return Err(TokenRejection::Malformed);
        }
        let time = |s: &str| s.parse::<i64>().ok().and_then(|t| DateTime::from_timestamp(t, 0));
        let claims = AccessClaims {
            user_id: sub.parse().map_err(|_| TokenRejection::Malformed)?,
            session_id: sid.parse().map_err(|_| TokenRejection::Malformed)?,
            token_id: jti.parse().map_err(|_| TokenRejection::Malformed)?,
            issued_at: time(iat).ok_or(TokenRejection::Malformed)?,
            expires_at: time(exp).ok_or(TokenRejection::Malformed)?,
            organization_id: None,
            scopes: Vec::new(),
        };
        if claims.expires_at <= now {
            return Err(TokenRejection::Expired);
        }
        Ok(claims)
    }

    fn public_keys(&self) -> Vec<PublicJwk> {
        vec![PublicJwk {
            kid: "fake".into(),
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            x: String::new(),
            alg: "EdDSA".into(),
            usage: "sig".into(),
        }]
    }
}

/// A denylist in a map that can be switched off to simulate an outage.
#[derive(Default)]
pub struct FakeDenylist {
    entries: Mutex<HashMap<DenyKey, DateTime<Utc>>>,
    down: AtomicBool,
}

impl FakeDenylist {
    /// Simulates the denylist becoming unreachable (or reachable again).
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::Relaxed);
    }

    /// Forgets everything, like a Redis restarted without persistence.
    pub fn clear(&self) {
        self.entries.lock().unwrap().clear();
    }

    /// The expiry of one entry.
    #[must_use]
    pub fn until(&self, key: DenyKey) -> Option<DateTime<Utc>> {
        self.entries.lock().unwrap().get(&key).copied()
    }

    fn check_up(&self) -> Result<(), DenylistError> {
        if self.down.load(Ordering::Relaxed) { Err(DenylistError("simulated outage".into())) } else { Ok(()) }
    }
}

#[async_trait]
impl Denylist for FakeDenylist {
    async fn deny(&self, entries: &[DenyEntry], _now: DateTime<Utc>) -> Result<(), DenylistError> {
        self.check_up()?;
        let mut map = self.entries.lock().unwrap();
        for e in entries {
            map.insert(e.key, e.until);
        }
        Ok(())
    }

    async fn is_denied(&self, session: SessionId, token: TokenId, now: DateTime<Utc>) -> Result<bool, DenylistError> {
        self.check_up()?;
        let map = self.entries.lock().unwrap();
        let live = |k: DenyKey| map.get(&k).is_some_and(|until| *until > now);
        Ok(live(DenyKey::Session(session)) || live(DenyKey::Token(token)))
    }
}

/// A user id for tests.
#[must_use]
pub fn user_id(n: u128) -> UserId {
    UserId::from_uuid(Uuid::from_u128(n))
}

/// A live email verification for tests.
#[must_use]
pub fn verification(user: UserId, email: &EmailAddress, now: DateTime<Utc>) -> Verification {
    Verification {
        id: Uuid::from_u128(now.timestamp_micros() as u128 ^ 0x5eed),
        user_id: user,
        email: email.clone(),
        purpose: Purpose::VerifyEmail,
        token_hash: crate::secrets::hash_secret(&format!("token-{now}")),
        code_hash: crate::secrets::hash_secret(&format!("code-{now}")),
        attempts: 0,
        max_attempts: 5,
        created_at: now,
        expires_at: now + TimeDelta::days(5),
        consumed_at: None,
    }
}

/// An encoder that records every envelope (secrets included, as a mailer
/// would receive them) and enqueues a stand-in payload. The real encoding
/// is tested where it lives (the events adapter).
#[derive(Default)]
pub struct RecordingEncoder {
    pub events: Mutex<Vec<gatehouse_domain::EventEnvelope>>,
}

impl crate::ports::events::EventEncoder for RecordingEncoder {
    fn encode(&self, e: &gatehouse_domain::EventEnvelope) -> OutboxMessage {
        self.events.lock().unwrap().push(e.clone());
        OutboxMessage {
            id: e.id,
            event_type: e.event.event_type().to_owned(),
            payload: e.id.as_bytes().to_vec(),
            occurred_at: e.occurred_at,
            audit: None,
        }
    }
}

/// A stand-in TOTP: the code of step `s` is derived from the secret and `s`
/// by a simple formula, so tests can compute it. The real RFC 6238
/// implementation is tested with the RFC's vectors in the crypto adapter.
#[derive(Default)]
pub struct FakeTotp;

impl FakeTotp {
    /// The code a fake authenticator shows at `step`.
    #[must_use]
    pub fn code(secret: &[u8], step: i64) -> String {
        let seed: i64 = secret.iter().take(4).fold(0_i64, |acc, b| acc * 31 + i64::from(*b));
        format!("{:06}", (seed.wrapping_mul(7919).wrapping_add(step.wrapping_mul(104_729))).rem_euclid(1_000_000))
    }

    /// The step `now` falls in.
    #[must_use]
    pub fn step(now: DateTime<Utc>) -> i64 {
        now.timestamp().div_euclid(30)
    }
}

impl crate::ports::mfa::Totp for FakeTotp {
    fn matching_step(&self, secret: &[u8], code: &str, now: DateTime<Utc>, skew: u8) -> Option<i64> {
        let current = Self::step(now);
        (current - i64::from(skew)..=current + i64::from(skew)).rev().find(|s| Self::code(secret, *s) == code)
    }

    fn provisioning_uri(&self, secret: &[u8], issuer: &str, account: &str) -> String {
        format!("otpauth://totp/{issuer}:{account}?secret={}&issuer={issuer}", crate::mfa::base32(secret))
    }

    fn qr_png(&self, uri: &str) -> Result<Vec<u8>, crate::ports::mfa::QrError> {
        Ok(uri.as_bytes().to_vec())
    }
}

/// A reversible stand-in for the AEAD box (XOR with a constant).
#[derive(Default)]
pub struct FakeSecretBox;

impl crate::ports::mfa::SecretBox for FakeSecretBox {
    fn seal(&self, plaintext: &[u8]) -> Result<gatehouse_domain::SealedSecret, crate::ports::mfa::SealError> {
        Ok(gatehouse_domain::SealedSecret { key_id: "fake".into(), data: plaintext.iter().map(|b| b ^ 0x5a).collect() })
    }

    fn open(&self, sealed: &gatehouse_domain::SealedSecret) -> Result<Vec<u8>, crate::ports::mfa::SealError> {
        if sealed.key_id != "fake" {
            return Err(crate::ports::mfa::SealError("unknown key".into()));
        }
        Ok(sealed.data.iter().map(|b| b ^ 0x5a).collect())
    }
}

/// MFA dependencies over the fakes, sharing `store`, `clock` and `encoder`.
#[must_use]
pub fn mfa_deps(
    store: &std::sync::Arc<InMemoryStore>,
    clock: &std::sync::Arc<FixedClock>,
    encoder: &std::sync::Arc<RecordingEncoder>,
    settings: crate::MfaSettings,
) -> crate::mfa::MfaDeps {
    let rng = std::sync::Arc::new(SeqRandom::default());
    crate::mfa::MfaDeps {
        mfa: store.clone(),
        users: store.clone(),
        hasher: std::sync::Arc::new(FakeHasher::default()),
        totp: std::sync::Arc::new(FakeTotp),
        secrets: std::sync::Arc::new(FakeSecretBox),
        events: crate::events::EventFactory::new(encoder.clone(), rng.clone(), store.clone()),
        rng,
        clock: clock.clone(),
        settings,
    }
}
