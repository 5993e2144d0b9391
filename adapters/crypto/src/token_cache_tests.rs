//! Tests of the verified-token cache: it saves signature checks and nothing
//! else. Revocation stays immediate (OWASP ASVS 5.0 V7.4.1), expiry stays
//! exact (V9.2.1), a refused token is never remembered, and the cache is
//! bounded (V15.2.2: no unbounded memory).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::TimeDelta;
use gatehouse_application::AppError;
use gatehouse_application::auth::ValidateToken;
use gatehouse_application::ports::clock::Clock as _;
use gatehouse_application::ports::denylist::{DenyEntry, DenyKey, Denylist as _};
use gatehouse_application::ports::tokens::AccessTokenSigner as _;
use gatehouse_application::testing::{FakeDenylist, FixedClock};
use gatehouse_domain::{SessionId, TokenId, UserId};
use uuid::Uuid;

use super::*;
use crate::{JwtKeys, PublicKey, SigningKey};

/// Counts the verifications that reach the real verifier.
#[derive(Debug)]
struct Counting {
    inner: JwtKeys,
    calls: AtomicU64,
}

impl AccessTokenVerifier for Counting {
    fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<AccessClaims, TokenRejection> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.inner.verify(token, now)
    }

    fn public_keys(&self) -> Vec<PublicJwk> {
        self.inner.public_keys()
    }
}

struct World {
    keys: Arc<Counting>,
    cache: Arc<CachingVerifier>,
    denylist: Arc<FakeDenylist>,
    clock: Arc<FixedClock>,
    validate: ValidateToken,
}

fn world(capacity: u64) -> World {
    let jwt = JwtKeys::new(SigningKey::generate(), Vec::<PublicKey>::new(), "gatehouse", "gatehouse");
    let keys = Arc::new(Counting { inner: jwt, calls: AtomicU64::new(0) });
    let cache = Arc::new(CachingVerifier::new(keys.clone(), capacity));
    let denylist = Arc::new(FakeDenylist::default());
    let clock = Arc::new(FixedClock::new());
    let validate = ValidateToken::new(cache.clone(), denylist.clone(), clock.clone());
    World { keys, cache, denylist, clock, validate }
}

impl World {
    fn token(&self, n: u128) -> (String, AccessClaims) {
        let now = self.clock.now();
        let claims = AccessClaims {
            user_id: UserId::from_uuid(Uuid::from_u128(n)),
            session_id: SessionId::from_uuid(Uuid::from_u128(n + 1_000_000)),
            token_id: TokenId::from_uuid(Uuid::from_u128(n + 2_000_000)),
            issued_at: now,
            expires_at: now + TimeDelta::minutes(15),
            // Organization-scoped, so the cached claims are shown to carry
            // the role and permissions too.
            organization_id: Some(Uuid::from_u128(n + 3_000_000).to_string()),
            scopes: vec!["profile:read".to_owned()],
            role: Some("admin".to_owned()),
            permissions: vec!["members:read".to_owned(), "members:write".to_owned()],
        };
        (self.keys.inner.sign(&claims).unwrap(), claims)
    }

    fn verifications(&self) -> u64 {
        self.keys.calls.load(Ordering::Relaxed)
    }
}

#[tokio::test]
async fn a_repeated_token_is_verified_once_and_answers_the_same_claims() {
    let w = world(16);
    let (token, claims) = w.token(1);
    assert_eq!(w.validate.execute(&token).await.unwrap(), claims);
    assert_eq!(w.validate.execute(&token).await.unwrap(), claims);
    assert_eq!(w.validate.execute(&token).await.unwrap(), claims);
    assert_eq!(w.verifications(), 1, "the signature is checked once");
    let stats = w.cache.stats();
    assert_eq!((stats.hits, stats.misses), (2, 1));
}

/// OWASP ASVS 5.0 V7.4.1: revocation takes effect at once, cache or not.
#[tokio::test]
async fn a_revoked_token_is_refused_on_the_next_call_although_it_is_cached() {
    let w = world(16);
    let (token, claims) = w.token(1);
    w.validate.execute(&token).await.unwrap();
    w.validate.execute(&token).await.unwrap();
    assert_eq!(w.cache.stats().hits, 1, "the token is cached");

    let until = claims.expires_at;
    w.denylist.deny(&[DenyEntry { key: DenyKey::Session(claims.session_id), until }], w.clock.now()).await.unwrap();
    assert!(matches!(w.validate.execute(&token).await, Err(AppError::TokenRevoked)));
    assert_eq!(w.cache.stats().hits, 2, "refused although answered from the cache");

    // And a denylist that cannot vouch for itself fails closed for cached tokens too.
    let (other, _) = w.token(2);
    w.validate.execute(&other).await.unwrap();
    w.denylist.set_down(true);
    assert!(matches!(w.validate.execute(&other).await, Err(AppError::Unavailable(_))));
}

/// OWASP ASVS 5.0 V9.2.1: a cached token is refused from its `exp` on.
#[tokio::test]
async fn an_expired_cached_token_is_refused() {
    let w = world(16);
    let (token, _) = w.token(1);
    w.validate.execute(&token).await.unwrap();
    w.clock.advance(TimeDelta::minutes(15) - TimeDelta::seconds(1));
    w.validate.execute(&token).await.unwrap();
    assert_eq!(w.cache.stats().hits, 1);

    w.clock.advance(TimeDelta::seconds(1));
    assert!(matches!(w.validate.execute(&token).await, Err(AppError::TokenExpired)));
    w.cache.settle();
    assert_eq!(w.cache.stats().entries, 0, "the expired entry is gone");
    // Asked again, the verifier itself refuses it.
    assert!(matches!(w.validate.execute(&token).await, Err(AppError::TokenExpired)));
    assert_eq!(w.verifications(), 2);
}

#[tokio::test]
async fn a_token_that_failed_verification_is_never_cached() {
    let w = world(16);
    let (token, _) = w.token(1);
    let (head, signature) = token.rsplit_once('.').unwrap();
    let flipped = if signature.starts_with('A') { 'B' } else { 'A' };
    let forged = format!("{head}.{flipped}{}", &signature[1..]);
    for _ in 0..3 {
        assert!(matches!(w.validate.execute(&forged).await, Err(AppError::InvalidToken(_))));
    }
    for junk in ["", "not a token", "a.b.c"] {
        assert!(w.validate.execute(junk).await.is_err());
        assert!(w.validate.execute(junk).await.is_err());
    }
    assert_eq!(w.verifications(), 9, "every refused token was checked in full");
    w.cache.settle();
    assert_eq!(w.cache.stats(), CacheStats { hits: 0, misses: 9, entries: 0 });

    // The genuine token still verifies (once), and only it is held.
    w.validate.execute(&token).await.unwrap();
    w.cache.settle();
    assert_eq!(w.cache.stats().entries, 1);
}

/// OWASP ASVS 5.0 V15.2.2: however many tokens are presented, the cache
/// holds at most its capacity.
#[tokio::test]
async fn the_cache_stays_within_its_bound() {
    let w = world(8);
    for n in 0..200 {
        let (token, claims) = w.token(n);
        assert_eq!(w.validate.execute(&token).await.unwrap(), claims);
    }
    w.cache.settle();
    let stats = w.cache.stats();
    assert!(stats.entries <= 8, "{stats:?}");
    assert_eq!(stats.misses, 200);
}
