//! In-memory fakes of every port, and a fixed clock, for use-case tests here
//! and in other crates (feature `testing`). They follow the ports' contracts,
//! including the compare-and-swap of refresh-token rotation, so a use-case
//! test exercises the same outcomes the SQL adapter produces.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::cast_possible_truncation, clippy::cast_sign_loss)]

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use gatehouse_domain::{
    AccessClaims, EmailAddress, Password, PasswordHash, Purpose, SessionId, TokenId, UserId, Verification,
};
use uuid::Uuid;

mod store;

pub use store::InMemoryStore;

use crate::error::TokenRejection;
use crate::ports::clock::Clock;
use crate::ports::denylist::{DenyEntry, DenyKey, Denylist, DenylistError};
use crate::ports::events::OutboxMessage;
use crate::ports::password::{HashError, PasswordCheck, PasswordHasher};
use crate::ports::random::RandomSource;
use crate::ports::tokens::{AccessTokenSigner, AccessTokenVerifier, PublicJwk, SigningError};

/// A clock that stands still until told to move.
#[derive(Debug)]
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
#[derive(Debug, Default)]
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
#[derive(Debug, Default)]
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

/// A readable stand-in for JWTs: `fake.<sub>.<sid>.<jti>.<iat>.<exp>`.
#[derive(Debug, Default)]
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
#[derive(Debug, Default)]
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

    /// How many entries it holds.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap().len()
    }

    /// Whether it holds no entry.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
    async fn deny(&self, entries: &[DenyEntry], now: DateTime<Utc>) -> Result<(), DenylistError> {
        self.check_up()?;
        let mut map = self.entries.lock().unwrap();
        // As the adapters do: an entry already past its end denies nothing
        // and is not kept.
        for e in entries.iter().filter(|e| e.until > now) {
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
    Verification::issue(
        Uuid::from_u128(now.timestamp_micros() as u128 ^ 0x5eed),
        user,
        email.clone(),
        Purpose::VerifyEmail,
        crate::secrets::hash_secret(&format!("token-{now}")),
        crate::secrets::hash_secret(&format!("code-{now}")),
        5,
        now,
        now + TimeDelta::days(5),
    )
}

/// An encoder that records every envelope (secrets included, as a mailer
/// would receive them) and enqueues a stand-in payload. The real encoding
/// is tested where it lives (the events adapter).
#[derive(Debug, Default)]
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
#[derive(Debug, Default)]
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
#[derive(Debug, Default)]
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
        uow: store.clone(),
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
