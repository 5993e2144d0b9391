//! How the Redis denylist behaves when Redis is gone, slow or silent: every
//! call must end in a `DenylistError` within about the configured timeout,
//! never hang, so token validation fails closed quickly.
//!
//! The outage is staged with the testkit's fault proxy in front of the real
//! Redis at `GATEHOUSE_TEST_REDIS_URL` (default `redis://127.0.0.1:6379`,
//! started by `make services`): blackholed for a hung Redis, cut for a
//! stopped one. Each test writes only its denylist's generation marker,
//! under a key prefix of its own that is deleted when it ends.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use gatehouse_application::ports::denylist::{DenyEntry, DenyKey, Denylist, DenylistError};
use gatehouse_application::ports::health::Probe;
use gatehouse_domain::{SessionId, TokenId, UserId};
use gatehouse_redis::RedisDenylist;
use gatehouse_testkit::redis::{self as test_redis, RedisPrefix};
use gatehouse_testkit::{FaultProxy, fails_within};
use tokio::net::TcpListener;
use uuid::Uuid;

/// The timeout given to the denylist under test.
const TIMEOUT: Duration = Duration::from_millis(300);

/// How long a failing call may take: many times the timeout, so a loaded
/// machine's scheduling delays cannot fail the test, yet far below the
/// client's own reconnection backoff and the OS's TCP timeouts, which are
/// what a call without the timeout would wait for.
const FAIL_WITHIN: Duration = Duration::from_secs(3);

/// Bounds a whole test, so a hang fails it instead of stalling the run.
const TEST_BOUND: Duration = Duration::from_secs(30);

/// Bounds a connection attempt that must give up rather than hang.
const CONNECT_BOUND: Duration = Duration::from_secs(15);

fn now() -> DateTime<Utc> {
    DateTime::from(std::time::SystemTime::now())
}

async fn is_denied(denylist: &RedisDenylist) -> Result<bool, DenylistError> {
    let (sid, jti) = (SessionId::from_uuid(Uuid::now_v7()), TokenId::from_uuid(Uuid::now_v7()));
    denylist.is_denied(sid, jti, UserId::from_uuid(Uuid::now_v7()), now()).await
}

/// An empty rebuild, as the server runs before answering.
async fn rebuild(denylist: &RedisDenylist) -> Result<(), DenylistError> {
    let ticket = denylist.begin_rebuild().await?;
    denylist.complete_rebuild(ticket, &[], now()).await
}

/// Runs `call` and checks it failed within [`FAIL_WITHIN`].
async fn fails_fast<T: std::fmt::Debug, E>(what: &str, call: impl Future<Output = Result<T, E>>) {
    fails_within(what, FAIL_WITHIN, call).await;
}

/// Whether Redis answers a PING through `proxy` on a connection of its own
/// (the denylist's probe also wants a rebuild, which these tests stage).
async fn answers(proxy: &FaultProxy) -> bool {
    let Ok(client) = ::redis::Client::open(test_redis::url_via(proxy.addr())) else { return false };
    let ping = async {
        let mut connection = client.get_multiplexed_async_connection().await?;
        ::redis::cmd("PING").exec_async(&mut connection).await
    };
    matches!(tokio::time::timeout(FAIL_WITHIN, ping).await, Ok(Ok(())))
}

/// A proxy in front of the test Redis and a rebuilt denylist connected
/// through it, under a prefix of its own.
async fn denylist_behind_a_proxy() -> (FaultProxy, RedisDenylist, RedisPrefix) {
    let prefix = RedisPrefix::new("gh-test-outage");
    let proxy = FaultProxy::start(test_redis::upstream()).await;
    let url = test_redis::url_via(proxy.addr());
    let denylist = RedisDenylist::connect(&url, prefix.prefix(), TIMEOUT).await.unwrap_or_else(|e| {
        panic!("Redis at {} is unreachable ({e}); start it with `make services`", test_redis::upstream())
    });
    rebuild(&denylist).await.unwrap();
    (proxy, denylist, prefix)
}

#[tokio::test]
async fn nothing_listening_fails_connect_instead_of_hanging() {
    let attempt = RedisDenylist::connect("redis://127.0.0.1:1", "gh-test:", TIMEOUT);
    // Refused twice, with a pause of 1 to 2 s before the one retry.
    let outcome = tokio::time::timeout(CONNECT_BOUND, attempt).await.expect("connect hung");
    let error = outcome.expect_err("connected to a port with nothing listening");
    assert!(error.0.downcast_ref::<redis::RedisError>().is_some(), "the cause is Redis's own error: {error:?}");
}

#[tokio::test]
async fn silent_server_fails_connect_within_the_timeout() {
    // Accepts connections and never answers, not even the handshake.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("redis://{}", listener.local_addr().unwrap());
    let _server = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });

    let attempt = RedisDenylist::connect(&url, "gh-test:", TIMEOUT);
    let outcome = tokio::time::timeout(CONNECT_BOUND, attempt).await.expect("connect hung");
    assert!(outcome.is_err(), "connected to a server that never answers");
}

#[tokio::test]
async fn redis_that_stops_answering_fails_calls_within_the_timeout() {
    tokio::time::timeout(TEST_BOUND, async {
        let (proxy, denylist, _prefix) = denylist_behind_a_proxy().await;
        assert!(!is_denied(&denylist).await.unwrap());
        denylist.check().await.unwrap();

        proxy.blackhole();
        fails_fast("is_denied", is_denied(&denylist)).await;
        let entry = DenyEntry {
            key: DenyKey::Session(SessionId::from_uuid(Uuid::now_v7())),
            until: now() + TimeDelta::minutes(1),
        };
        fails_fast("deny", denylist.deny(&[entry], now())).await;
    })
    .await
    .expect("the denylist hung on a silent Redis");
}

#[tokio::test]
async fn probe_fails_when_redis_stops_answering() {
    tokio::time::timeout(TEST_BOUND, async {
        let (proxy, denylist, _prefix) = denylist_behind_a_proxy().await;
        proxy.blackhole();
        fails_fast("check", denylist.check()).await;
    })
    .await
    .expect("the probe hung on a silent Redis");
}

#[tokio::test]
async fn redis_that_goes_away_fails_calls_within_the_timeout() {
    tokio::time::timeout(TEST_BOUND, async {
        let (proxy, denylist, _prefix) = denylist_behind_a_proxy().await;
        assert!(!is_denied(&denylist).await.unwrap());

        proxy.cut();
        // The first call sees the dropped connection; later ones wait on the
        // background reconnection, which the timeout must also bound.
        for _ in 0..3 {
            fails_fast("is_denied", is_denied(&denylist)).await;
        }
        fails_fast("check", denylist.check()).await;
    })
    .await
    .expect("the denylist hung on a vanished Redis");
}

/// OWASP ASVS 5.0 V7.4.1: a replica that could not reach Redis may have
/// missed a restart (keys lost) or failed a write (a revocation missing), so
/// once Redis answers again it still refuses to answer until it has been
/// rebuilt from storage, and asks for that rebuild.
#[tokio::test]
async fn after_an_outage_lookups_wait_for_a_rebuild() {
    tokio::time::timeout(TEST_BOUND, async {
        let (proxy, denylist, _prefix) = denylist_behind_a_proxy().await;
        proxy.cut();
        let entry = DenyEntry {
            key: DenyKey::Session(SessionId::from_uuid(Uuid::now_v7())),
            until: now() + TimeDelta::minutes(1),
        };
        fails_fast("deny", denylist.deny(&[entry], now())).await;
        proxy.restore();
        gatehouse_testkit::eventually("Redis answers again", async || answers(&proxy).await).await;

        assert!(is_denied(&denylist).await.is_err(), "answered from Redis before a rebuild");
        tokio::time::timeout(FAIL_WITHIN, denylist.stale()).await.expect("no rebuild asked for");
        rebuild(&denylist).await.unwrap();
        assert!(!is_denied(&denylist).await.unwrap());
    })
    .await
    .expect("the denylist hung");
}

/// ASVS 5.0 V7.4.1: a rebuild that began before the denylist went stale
/// read storage too early to hold what the failure missed: it does not mark
/// the denylist complete.
#[tokio::test]
async fn a_rebuild_that_began_before_a_failed_write_does_not_count() {
    tokio::time::timeout(TEST_BOUND, async {
        let (proxy, denylist, _prefix) = denylist_behind_a_proxy().await;
        let ticket = denylist.begin_rebuild().await.unwrap();
        proxy.cut();
        let entry = DenyEntry {
            key: DenyKey::Session(SessionId::from_uuid(Uuid::now_v7())),
            until: now() + TimeDelta::minutes(1),
        };
        fails_fast("deny", denylist.deny(&[entry], now())).await;
        proxy.restore();
        gatehouse_testkit::eventually("Redis answers again", async || answers(&proxy).await).await;

        assert!(denylist.complete_rebuild(ticket, &[], now()).await.is_err());
        assert!(is_denied(&denylist).await.is_err());
        rebuild(&denylist).await.unwrap();
        assert!(!is_denied(&denylist).await.unwrap());
    })
    .await
    .expect("the denylist hung");
}
