//! How the Redis denylist behaves when Redis is gone, slow or silent: every
//! call must end in a `DenylistError` within about the configured timeout,
//! never hang, so token validation fails closed quickly.
//!
//! The outage is staged with a TCP proxy in front of the real Redis at
//! `GATEHOUSE_TEST_REDIS_URL` (default `redis://127.0.0.1:6379`, started by
//! `make services`). These tests write no keys.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use gatehouse_application::ports::denylist::{DenyEntry, DenyKey, Denylist, DenylistError};
use gatehouse_application::ports::health::Probe;
use gatehouse_domain::{SessionId, TokenId};
use gatehouse_redis::RedisDenylist;
use redis::ConnectionAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use uuid::Uuid;

/// The timeout given to the denylist under test.
const TIMEOUT: Duration = Duration::from_millis(300);

/// How long a failing call may take: the timeout plus scheduling slack.
const FAIL_WITHIN: Duration = Duration::from_millis(900);

/// Bounds a whole test, so a hang fails it instead of stalling the run.
const TEST_BOUND: Duration = Duration::from_secs(10);

fn now() -> DateTime<Utc> {
    DateTime::from(std::time::SystemTime::now())
}

async fn is_denied(denylist: &RedisDenylist) -> Result<bool, DenylistError> {
    denylist.is_denied(SessionId::from_uuid(Uuid::now_v7()), TokenId::from_uuid(Uuid::now_v7()), now()).await
}

/// Runs `call` and checks it failed within [`FAIL_WITHIN`].
async fn fails_fast<T: std::fmt::Debug, E>(what: &str, call: impl Future<Output = Result<T, E>>) {
    let started = Instant::now();
    let outcome = call.await;
    assert!(outcome.is_err(), "{what} succeeded during the outage: {:?}", outcome.ok());
    assert!(started.elapsed() < FAIL_WITHIN, "{what} took {:?} to fail", started.elapsed());
}

/// The real Redis's address and the URL of the same server behind `proxy`.
fn upstream_and_proxy_url(proxy: SocketAddr) -> (String, String) {
    let url = std::env::var("GATEHOUSE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let info = redis::Client::open(url.as_str()).unwrap().get_connection_info().clone();
    let ConnectionAddr::Tcp(host, port) = &info.addr else { panic!("{url} is not a plain TCP Redis URL") };
    let auth = match (&info.redis.username, &info.redis.password) {
        (Some(user), Some(password)) => format!("{user}:{password}@"),
        (None, Some(password)) => format!(":{password}@"),
        _ => String::new(),
    };
    (format!("{host}:{port}"), format!("redis://{auth}{proxy}/{}", info.redis.db))
}

/// A TCP proxy that can stop answering (`freeze`) or vanish (`shut_down`).
struct Proxy {
    url: String,
    upstream: String,
    frozen: Arc<AtomicBool>,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (upstream, url) = upstream_and_proxy_url(listener.local_addr().unwrap());
        let frozen = Arc::new(AtomicBool::new(false));
        let tasks = Arc::new(Mutex::new(Vec::new()));
        let accept = tokio::spawn({
            let (upstream, frozen, tasks) = (upstream.clone(), frozen.clone(), tasks.clone());
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    let Ok(server) = TcpStream::connect(&upstream).await else { continue };
                    let (from_client, to_client) = client.into_split();
                    let (from_server, to_server) = server.into_split();
                    let up = tokio::spawn(pump(from_client, to_server, frozen.clone()));
                    let down = tokio::spawn(pump(from_server, to_client, frozen.clone()));
                    tasks.lock().unwrap().extend([up, down]);
                }
            }
        });
        tasks.lock().unwrap().push(accept);
        Self { url, upstream, frozen, tasks }
    }

    /// Keeps connections open but swallows everything: a hung Redis.
    fn freeze(&self) {
        self.frozen.store(true, Ordering::SeqCst);
    }

    /// Closes every connection and stops listening: a stopped Redis.
    fn shut_down(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    async fn connect(&self) -> RedisDenylist {
        RedisDenylist::connect(&self.url, "gh-test-outage:", TIMEOUT).await.unwrap_or_else(|e| {
            panic!("Redis at {} is unreachable ({e}); start it with `make services`", self.upstream)
        })
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// Copies bytes one way, dropping them while frozen.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, frozen: Arc<AtomicBool>) {
    let mut buf = [0_u8; 8192];
    while let Ok(n @ 1..) = from.read(&mut buf).await {
        if !frozen.load(Ordering::SeqCst) && to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

#[tokio::test]
async fn nothing_listening_fails_connect_instead_of_hanging() {
    let attempt = RedisDenylist::connect("redis://127.0.0.1:1", "gh-test:", TIMEOUT);
    // Refused twice, with a pause of 1 to 2 s before the one retry.
    let outcome = tokio::time::timeout(Duration::from_secs(5), attempt).await.expect("connect hung");
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
    let outcome = tokio::time::timeout(Duration::from_secs(5), attempt).await.expect("connect hung");
    assert!(outcome.is_err(), "connected to a server that never answers");
}

#[tokio::test]
async fn redis_that_stops_answering_fails_calls_within_the_timeout() {
    tokio::time::timeout(TEST_BOUND, async {
        let proxy = Proxy::start().await;
        let denylist = proxy.connect().await;
        assert!(!is_denied(&denylist).await.unwrap());
        assert_eq!(denylist.check().await, Ok(()));

        proxy.freeze();
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
        let proxy = Proxy::start().await;
        let denylist = proxy.connect().await;
        proxy.freeze();
        fails_fast("check", denylist.check()).await;
    })
    .await
    .expect("the probe hung on a silent Redis");
}

#[tokio::test]
async fn redis_that_goes_away_fails_calls_within_the_timeout() {
    tokio::time::timeout(TEST_BOUND, async {
        let proxy = Proxy::start().await;
        let denylist = proxy.connect().await;
        assert!(!is_denied(&denylist).await.unwrap());

        proxy.shut_down();
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
