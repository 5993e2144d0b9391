//! In-memory fakes of every port, and a fixed clock, for use-case tests here
//! and in other crates (feature `testing`). They follow the ports' contracts,
//! including the compare-and-swap of refresh-token rotation, so a use-case
//! test exercises the same outcomes the SQL adapter produces.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::cast_possible_truncation, missing_debug_implementations)]

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use gatehouse_domain::{
    AccessClaims, EmailAddress, Password, PasswordHash, RevokeReason, Session, SessionId, TokenHash, TokenId, User,
    UserId,
};
use uuid::Uuid;

use crate::error::TokenRejection;
use crate::ports::clock::Clock;
use crate::ports::denylist::{DenyEntry, DenyKey, Denylist, DenylistError};
use crate::ports::password::{HashError, PasswordCheck, PasswordHasher};
use crate::ports::random::RandomSource;
use crate::ports::store::{NewRefreshToken, Rotation, SessionRepository, StoreError, UserCredentials, UserRepository};
use crate::ports::tokens::{AccessTokenSigner, AccessTokenVerifier, PublicJwk, SigningError};

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

/// Users in a vector.
#[derive(Default)]
pub struct InMemoryUsers {
    pub users: Mutex<Vec<User>>,
}

#[async_trait]
impl UserRepository for InMemoryUsers {
    async fn create(&self, user: &User) -> Result<(), StoreError> {
        let mut users = self.users.lock().unwrap();
        if users.iter().any(|u| u.email == user.email) {
            return Err(StoreError::Conflict("user_emails.email".into()));
        }
        users.push(user.clone());
        Ok(())
    }

    async fn find_credentials(&self, email: &EmailAddress) -> Result<Option<UserCredentials>, StoreError> {
        let users = self.users.lock().unwrap();
        Ok(users
            .iter()
            .find(|u| &u.email == email)
            .map(|u| UserCredentials { user_id: u.id, password_hash: u.password_hash.clone() }))
    }

    async fn update_password_hash(
        &self,
        user: UserId,
        hash: &PasswordHash,
        _now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut users = self.users.lock().unwrap();
        if let Some(u) = users.iter_mut().find(|u| u.id == user) {
            u.password_hash = hash.clone();
        }
        Ok(())
    }
}

struct RefreshRow {
    session_id: SessionId,
    expires_at: DateTime<Utc>,
    rotated: bool,
}

#[derive(Default)]
struct SessionState {
    sessions: HashMap<SessionId, Session>,
    tokens: HashMap<TokenHash, RefreshRow>,
}

/// Sessions and refresh tokens in maps, behind one lock (so rotation is atomic).
#[derive(Default)]
pub struct InMemorySessions(Mutex<SessionState>);

impl InMemorySessions {
    /// A copy of one session.
    #[must_use]
    pub fn get(&self, id: SessionId) -> Option<Session> {
        self.0.lock().unwrap().sessions.get(&id).cloned()
    }

    /// How many sessions exist.
    #[must_use]
    pub fn count(&self) -> usize {
        self.0.lock().unwrap().sessions.len()
    }
}

#[async_trait]
impl SessionRepository for InMemorySessions {
    async fn create(&self, session: &Session, refresh: &NewRefreshToken) -> Result<(), StoreError> {
        let mut state = self.0.lock().unwrap();
        state.sessions.insert(session.id, session.clone());
        state.tokens.insert(
            refresh.hash,
            RefreshRow { session_id: session.id, expires_at: refresh.expires_at, rotated: false },
        );
        Ok(())
    }

    async fn rotate_refresh_token(
        &self,
        presented: &TokenHash,
        next: &NewRefreshToken,
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
        session.last_used_at = now;
        session.expires_at = next.expires_at;
        let session = session.clone();
        if let Some(row) = state.tokens.get_mut(presented) {
            row.rotated = true;
        }
        state.tokens.insert(next.hash, RefreshRow { session_id, expires_at: next.expires_at, rotated: false });
        Ok(Rotation::Rotated(session))
    }

    async fn find_by_refresh_token(&self, hash: &TokenHash) -> Result<Option<Session>, StoreError> {
        let state = self.0.lock().unwrap();
        Ok(state.tokens.get(hash).and_then(|row| state.sessions.get(&row.session_id)).cloned())
    }

    async fn revoke(
        &self,
        id: SessionId,
        _reason: RevokeReason,
        now: DateTime<Utc>,
    ) -> Result<Option<Session>, StoreError> {
        let mut state = self.0.lock().unwrap();
        Ok(state.sessions.get_mut(&id).map(|s| {
            s.revoked_at.get_or_insert(now);
            s.clone()
        }))
    }

    async fn revoked_since(&self, since: DateTime<Utc>) -> Result<Vec<Session>, StoreError> {
        let state = self.0.lock().unwrap();
        Ok(state.sessions.values().filter(|s| s.revoked_at.is_some_and(|r| r >= since)).cloned().collect())
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
