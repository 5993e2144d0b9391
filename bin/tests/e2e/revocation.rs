//! Revocation through Redis faults: data loss (keys deleted, a restart
//! without persistence) and an outage during a logout. A revoked token must
//! never validate again, on any replica: until the denylist is rebuilt from
//! SQL every answer is UNAVAILABLE, then TOKEN_REVOKED (OWASP ASVS 5.0
//! V7.4.1: revocation takes effect at once; V16.5.3: no fail-open).

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tonic::Code;

use gatehouse_testkit::{FaultProxy, eventually, redis};

use crate::harness::{Mode, TestApp, assert_error, authed, code_and_reason};
use crate::sessions::revoked_never_accepted;
use gatehouse_grpc::pb;

crate::in_both_modes!(asvs_7_4_1_a_deleted_accounts_tokens_stay_refused_through_restarts_and_data_loss);

/// Sessions logged out before the data loss.
const SESSIONS: usize = 20;

/// A periodic resync far off: only the rebuild a detected loss triggers may
/// restore the denylist in these tests.
const NO_RESYNC: Duration = Duration::from_secs(3600);

/// Logs one user in `SESSIONS` times and logs every session out; returns
/// their (revoked) access tokens.
async fn revoked_tokens(app: &TestApp, email: &str) -> Vec<String> {
    app.verified_user(email).await;
    let mut tokens = Vec::with_capacity(SESSIONS);
    for _ in 0..SESSIONS {
        let pair = app.login(email, "correct horse battery").await.unwrap();
        app.logout_bearer(&pair.access_token).await.unwrap();
        tokens.push(pair.access_token);
    }
    tokens
}

/// Validates every token on every app, round after round, until all are
/// refused as revoked; fails at the first one accepted. Each replica's first
/// lookup after the loss must have noticed it (UNAVAILABLE).
async fn none_accepted_until_all_refused(apps: &[&TestApp], tokens: &[String]) {
    let mut unavailable = 0;
    eventually("every revoked token to be refused as revoked", async || {
        let mut all_refused = true;
        for app in apps {
            for token in tokens {
                match app.validate(token).await {
                    Ok(claims) => panic!("a revoked token was accepted after the data loss: {claims:?}"),
                    Err(status) if status.code() == Code::Unavailable => {
                        unavailable += 1;
                        all_refused = false;
                    }
                    Err(status) => {
                        assert_error::<()>(Err(status), Code::Unauthenticated, "TOKEN_REVOKED");
                    }
                }
            }
        }
        all_refused
    })
    .await;
    assert!(unavailable >= apps.len(), "only {unavailable} lookups noticed the loss");
}

/// FLUSHALL as the service sees it (this test's own keys deleted, not the
/// shared Redis flushed): zero revoked tokens accepted on either replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asvs_7_4_1_flushed_redis_accepts_no_revoked_token() {
    let app = TestApp::spawn_with(Mode::Production, |c| c.denylist_resync_interval = NO_RESYNC).await;
    let replica = app.replica().await;
    let tokens = revoked_tokens(&app, "flush@example.com").await;
    assert!(redis::delete_keys(&app.config.redis_key_prefix) > SESSIONS, "the denylist keys were lost");
    none_accepted_until_all_refused(&[&app, &replica], &tokens).await;
}

/// A Redis of the test's own, without persistence, that can be restarted.
struct PrivateRedis {
    port: u16,
    child: Child,
}

impl PrivateRedis {
    fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        Self { port, child: Self::spawn(port) }
    }

    fn spawn(port: u16) -> Child {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start redis-server (install Redis; `make services` needs it too): {e}"));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "redis-server did not listen on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        child
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (its data is gone) and starts a new one on the same port.
    fn restart(&mut self) {
        self.stop();
        self.child = Self::spawn(self.port);
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A Redis restarted without persistence comes back empty: zero revoked
/// tokens accepted on either replica afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asvs_7_4_1_restarted_redis_accepts_no_revoked_token() {
    let mut private = PrivateRedis::start();
    let url = private.url();
    let app = TestApp::spawn_with(Mode::Production, |c| {
        c.redis_url = Some(url);
        c.denylist_resync_interval = NO_RESYNC;
    })
    .await;
    let replica = app.replica().await;
    let tokens = revoked_tokens(&app, "restart@example.com").await;
    private.restart();
    none_accepted_until_all_refused(&[&app, &replica], &tokens).await;
}

/// A logout while Redis is unreachable ends the session in SQL and says the
/// revocation is pending; once Redis is back, neither replica accepts the
/// token (both saw the outage and rebuild before answering again), and a
/// retried logout succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asvs_7_4_1_logout_while_redis_is_down_is_refused_on_both_replicas_after_recovery() {
    let proxy = FaultProxy::start(redis::upstream()).await;
    let via = redis::url_via(proxy.addr());
    let app = TestApp::spawn_with(Mode::Production, |c| {
        c.redis_url = Some(via);
        c.denylist_resync_interval = NO_RESYNC;
    })
    .await;
    let replica = app.replica().await;
    let pair = app.user_session("down@example.com").await;
    replica.validate(&pair.access_token).await.unwrap();

    proxy.cut();
    let outcome = app.logout_bearer(&pair.access_token).await.expect_err("the denylist could not be written");
    assert_eq!(code_and_reason(&outcome), (Code::Unavailable, "REVOCATION_PENDING".to_owned()), "{outcome:?}");
    assert_error(app.refresh(&pair.refresh_token).await, Code::Unauthenticated, "TOKEN_REVOKED");
    assert_error(replica.validate(&pair.access_token).await, Code::Unavailable, "UNAVAILABLE");

    proxy.restore();
    revoked_never_accepted(&replica, &pair.access_token).await;
    revoked_never_accepted(&app, &pair.access_token).await;
    app.logout_bearer(&pair.access_token).await.unwrap();
    assert_error(replica.validate(&pair.access_token).await, Code::Unauthenticated, "TOKEN_REVOKED");
}

/// The deleted account's sessions are gone with it, so only its tombstone
/// tells the rebuild to keep refusing its tokens: after a restart (the
/// in-process denylist starts empty) and after Redis lost its keys.
async fn asvs_7_4_1_a_deleted_accounts_tokens_stay_refused_through_restarts_and_data_loss(mode: Mode) {
    let app = TestApp::spawn_with(mode, |c| c.denylist_resync_interval = NO_RESYNC).await;
    let pair = app.user_session("gone@example.com").await;
    let mut user = app.user.clone();
    user.delete_me(authed(pb::DeleteMeRequest { password: "correct horse battery".into() }, &pair.access_token))
        .await
        .unwrap();
    assert_error(app.validate(&pair.access_token).await, Code::Unauthenticated, "TOKEN_REVOKED");

    if mode == Mode::Production {
        assert!(redis::delete_keys(&app.config.redis_key_prefix) > 0, "the denylist keys were lost");
        revoked_never_accepted(&app, &pair.access_token).await;
    }
    let mut app = app.restart().await;
    assert_error(app.validate(&pair.access_token).await, Code::Unauthenticated, "TOKEN_REVOKED");
    if mode == Mode::Production {
        // Lost while no server runs: the start-up rebuild reads the tombstone.
        app.stop().await;
        assert!(redis::delete_keys(&app.config.redis_key_prefix) > 0);
        let app = app.restart().await;
        assert_error(app.validate(&pair.access_token).await, Code::Unauthenticated, "TOKEN_REVOKED");
    }
}
