//! `make bench`: the cost of the hot path every gateway request pays, token
//! validation (Ed25519 JWT verification plus one denylist look-up), and of a
//! login's argon2 hash for contrast. Prints nanoseconds per operation; no
//! timing is ever asserted (numbers depend on the machine).

#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use gatehouse_application::auth::ValidateToken;
use gatehouse_application::ports::denylist::Denylist;
use gatehouse_application::ports::password::PasswordHasher as _;
use gatehouse_application::ports::tokens::{AccessTokenSigner as _, AccessTokenVerifier as _};
use gatehouse_crypto::{Argon2Hasher, JwtKeys, SigningKey, SystemClock};
use gatehouse_domain::{AccessClaims, Password, SessionId, TokenId, UserId};
use gatehouse_memory::MemoryDenylist;
use gatehouse_redis::RedisDenylist;

fn report(name: &str, iterations: u32, elapsed: Duration) {
    let per_op = elapsed.as_nanos() / u128::from(iterations);
    println!("{name:<45} {per_op:>10} ns/op  ({iterations} iterations)");
}

/// Brings a fresh denylist to the state the server answers from.
async fn rebuilt(denylist: &dyn Denylist) {
    let ticket = denylist.begin_rebuild().await.unwrap();
    denylist.complete_rebuild(ticket, &[], Utc::now()).await.unwrap();
}

fn main() {
    let keys = Arc::new(JwtKeys::new(SigningKey::generate(), Vec::<SigningKey>::new(), "gatehouse", "gatehouse"));
    let now = Utc::now();
    let claims = AccessClaims {
        user_id: UserId::from_uuid(uuid::Uuid::now_v7()),
        session_id: SessionId::from_uuid(uuid::Uuid::now_v7()),
        token_id: TokenId::from_uuid(uuid::Uuid::now_v7()),
        issued_at: now,
        expires_at: now + TimeDelta::minutes(15),
        organization_id: None,
        role: None,
        permissions: Vec::new(),
        scopes: Vec::new(),
    };
    let token = keys.sign(&claims).unwrap();

    let n = 20_000;
    let start = Instant::now();
    for _ in 0..n {
        std::hint::black_box(keys.sign(&claims).unwrap());
    }
    report("sign access token", n, start.elapsed());

    let start = Instant::now();
    for _ in 0..n {
        std::hint::black_box(keys.verify(&token, now).unwrap());
    }
    report("verify access token (signature + claims)", n, start.elapsed());

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let memory = Arc::new(MemoryDenylist::default());
        rebuilt(memory.as_ref()).await;
        let validate = ValidateToken::new(keys.clone(), memory, Arc::new(SystemClock));
        let start = Instant::now();
        for _ in 0..n {
            std::hint::black_box(validate.execute(&token).await.unwrap());
        }
        report("ValidateToken with the in-process denylist", n, start.elapsed());

        // The production hot path: one round trip to a local Redis (the
        // test server, `make services`), under a throwaway key prefix.
        let url = std::env::var("GATEHOUSE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        let prefix = format!("gh-bench-{}:", uuid::Uuid::now_v7().simple());
        match RedisDenylist::connect(&url, &prefix, Duration::from_secs(2)).await {
            Ok(redis) => {
                let redis = Arc::new(redis);
                rebuilt(redis.as_ref()).await;
                let validate = ValidateToken::new(keys.clone(), redis, Arc::new(SystemClock));
                let r = 5_000;
                let start = Instant::now();
                for _ in 0..r {
                    std::hint::black_box(validate.execute(&token).await.unwrap());
                }
                report("ValidateToken with Redis (one round trip)", r, start.elapsed());
                let client = redis::Client::open(url.as_str()).unwrap();
                let mut connection = client.get_multiplexed_async_connection().await.unwrap();
                let _: () = redis::cmd("DEL")
                    .arg(format!("{prefix}denylist:generation"))
                    .query_async(&mut connection)
                    .await
                    .unwrap();
            }
            Err(e) => println!("ValidateToken with Redis: not measured, Redis at {url} unreachable ({e})"),
        }

        let hasher = Argon2Hasher::new(1, 0).unwrap();
        let password = Password::new("correct horse battery staple".into()).unwrap();
        let hash = hasher.hash(&password).await.unwrap();
        let m = 10;
        let start = Instant::now();
        for _ in 0..m {
            std::hint::black_box(hasher.verify(&password, Some(&hash)).await.unwrap());
        }
        report("argon2id verify (m=19456 KiB, t=2, p=1)", m, start.elapsed());
    });
}
