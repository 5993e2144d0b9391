//! A bounded cache of access tokens that already verified, in front of any
//! [`AccessTokenVerifier`].
//!
//! A gateway presents the same token for every request of a user, and the
//! Ed25519 check is almost all the cost of a validation. A token that
//! verified once verifies again until it expires (keys are fixed for the
//! life of the process), so the claims are kept, keyed by the token's
//! SHA-256 digest: collision-resistant, a fixed 32 bytes per entry whatever
//! the token's length (so the entry bound is a memory bound), and no bearer
//! token sits in memory for a heap dump to reveal.
//!
//! What it does not change:
//! - Only tokens that verified enter; a refused token is checked in full
//!   every time it is presented.
//! - An entry is never served at or past the token's `exp`, measured on the
//!   caller's clock (the same `now` verification uses), and leaves the cache
//!   by then on the cache's own clock too.
//! - Revocation: the denylist is asked by the use case after the verifier
//!   on every call, cached or not.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use gatehouse_application::TokenRejection;
use gatehouse_application::ports::tokens::{AccessTokenVerifier, PublicJwk};
use gatehouse_domain::AccessClaims;
use moka::Expiry;
use moka::sync::Cache;
use sha2::{Digest as _, Sha256};

type Key = [u8; 32];

/// Verified claims, and when the cache must drop them (on its own
/// monotonic clock).
#[derive(Clone)]
struct Entry {
    claims: AccessClaims,
    time_to_live: Duration,
}

/// Each entry lives until its token expires, no longer.
struct UntilExpiry;

impl Expiry<Key, Entry> for UntilExpiry {
    fn expire_after_create(&self, _key: &Key, entry: &Entry, _created_at: Instant) -> Option<Duration> {
        Some(entry.time_to_live)
    }
}

/// How often the cache answered, since start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheStats {
    /// Validations answered from the cache (no signature check).
    pub hits: u64,
    /// Validations that ran the full verification.
    pub misses: u64,
    /// Entries held now (approximate: the cache settles its bookkeeping lazily).
    pub entries: u64,
}

/// An [`AccessTokenVerifier`] that remembers the tokens its inner verifier
/// accepted.
pub struct CachingVerifier {
    inner: Arc<dyn AccessTokenVerifier>,
    cache: Cache<Key, Entry>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl CachingVerifier {
    /// Holds at most `capacity` verified tokens (at least one); a cache of
    /// none is no cache: wire `inner` alone instead.
    #[must_use]
    pub fn new(inner: Arc<dyn AccessTokenVerifier>, capacity: u64) -> Self {
        let cache = Cache::builder().max_capacity(capacity.max(1)).expire_after(UntilExpiry).build();
        Self { inner, cache, hits: AtomicU64::new(0), misses: AtomicU64::new(0) }
    }

    /// Hits, misses and size so far.
    #[must_use]
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries: self.cache.entry_count(),
        }
    }

    /// Settles pending evictions, so that [`stats`](Self::stats) counts
    /// exactly what is held (tests; the cache does it by itself as it goes).
    pub fn settle(&self) {
        self.cache.run_pending_tasks();
    }
}

impl AccessTokenVerifier for CachingVerifier {
    fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<AccessClaims, TokenRejection> {
        let key: Key = Sha256::digest(token.as_bytes()).into();
        if let Some(entry) = self.cache.get(&key) {
            if now < entry.claims.expires_at {
                self.hits.fetch_add(1, Ordering::Relaxed);
                return Ok(entry.claims);
            }
            // Expired on the caller's clock before the cache's clock
            // dropped it: the answer is the verifier's.
            self.cache.invalidate(&key);
            return Err(TokenRejection::Expired);
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let claims = self.inner.verify(token, now)?;
        // The verifier accepted it, so `now < expires_at` and this is positive.
        if let Ok(time_to_live) = (claims.expires_at - now).to_std() {
            self.cache.insert(key, Entry { claims: claims.clone(), time_to_live });
        }
        Ok(claims)
    }

    fn public_keys(&self) -> Vec<PublicJwk> {
        self.inner.public_keys()
    }
}

impl fmt::Debug for CachingVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachingVerifier")
            .field("inner", &self.inner)
            .field("capacity", &self.cache.policy().max_capacity())
            .field("stats", &self.stats())
            .finish()
    }
}

#[cfg(test)]
#[path = "token_cache_tests.rs"]
mod tests;
