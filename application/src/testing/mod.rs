//! In-memory fakes of every port, one file per port, and a fixed clock, for
//! use-case tests here and in other crates (feature `testing`). The store
//! and the denylist fake are held to the adapters' contract suites, so a
//! use-case test sees the outcomes the SQL and Redis adapters produce.

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

mod background;
mod clock;
mod denylist;
mod events;
mod hasher;
mod random;
mod rate_limit;
mod secret_box;
mod store;
mod tokens;
mod totp;

pub use background::FakeBackground;
pub use clock::FixedClock;
pub use denylist::FakeDenylist;
pub use events::RecordingEncoder;
pub use hasher::FakeHasher;
pub use random::SeqRandom;
pub use rate_limit::FakeRateLimiter;
pub use secret_box::FakeSecretBox;
pub use store::InMemoryStore;
pub use tokens::FakeTokens;
pub use totp::FakeTotp;

use crate::error::TokenRejection;
use crate::ports::clock::Clock;
use crate::ports::denylist::{DenyEntry, DenyKey, Denylist, DenylistError};
use crate::ports::events::OutboxMessage;
use crate::ports::password::{HashError, PasswordCheck, PasswordHasher};
use crate::ports::random::RandomSource;
use crate::ports::tokens::{AccessTokenSigner, AccessTokenVerifier, PublicJwk, SigningError};

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

/// A throttle with the default limits over `limiter` and `clock`.
#[must_use]
pub fn throttle(
    limiter: &std::sync::Arc<FakeRateLimiter>,
    clock: &std::sync::Arc<FixedClock>,
) -> crate::throttle::Throttle {
    crate::throttle::Throttle::new(limiter.clone(), clock.clone(), crate::throttle::RateLimits::default())
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
        throttle: throttle(&std::sync::Arc::new(FakeRateLimiter::default()), clock),
    }
}
