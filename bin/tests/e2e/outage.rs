//! The denylist going away: validation must fail closed (UNAVAILABLE, never
//! "valid"), health must say NOT_SERVING, and both recover with the broker.
//! OWASP ASVS 5.0 V16.5.3 (no fail-open), V16.5.2 (secure when a resource fails).

use std::time::{Duration, Instant};

use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use tonic_types::StatusExt;

use gatehouse_testkit::{FaultProxy, eventually, redis};

use crate::harness::{Mode, PASSWORD, TestApp, assert_error};

async fn health_status(app: &TestApp) -> i32 {
    health_of(app, "").await
}

async fn health_of(app: &TestApp, service: &str) -> i32 {
    let mut health = HealthClient::new(app.channel.clone());
    health.check(HealthCheckRequest { service: service.into() }).await.unwrap().into_inner().status
}

/// A PostgreSQL outage takes the account services out of rotation but not
/// `TokenService`, which validates from the keys and the denylist alone: a
/// load balancer following health keeps the hot path (OWASP ASVS 5.0
/// V16.5.2: degrade only what depends on the failed resource). Calls that
/// need the database answer UNAVAILABLE with RetryInfo within the outage
/// bound, not after the pool's acquire timeout, and everything recovers
/// on its own once the database is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_leaves_token_service_serving() {
    const ACQUIRE: Duration = Duration::from_secs(20);
    let database = gatehouse_testkit::postgres::TestDatabase::create("gh_e2e").await;
    let proxy = FaultProxy::start(database.upstream()).await;
    let via = database.url_via(proxy.addr());
    let app = TestApp::spawn_with(Mode::Production, |c| {
        c.database_url = Some(via);
        c.db_connect_timeout = ACQUIRE;
        c.db_outage_timeout = Duration::from_millis(300);
        // Health must follow the first failed call, not this timer.
        c.health_interval = Duration::from_secs(60);
    })
    .await;
    let pair = app.user_session("pg.outage@example.com").await;
    let (auth, token, user) = ("gatehouse.v1.AuthService", "gatehouse.v1.TokenService", "gatehouse.v1.UserService");
    assert_eq!((health_of(&app, token).await, health_of(&app, user).await), (1, 1));

    proxy.cut();
    // The first call to find the database gone tells health at once.
    assert_error(app.login("pg.outage@example.com", PASSWORD).await, Code::Unavailable, "UNAVAILABLE");
    eventually("AuthService to report NOT_SERVING", async || health_of(&app, auth).await == 2).await;
    assert_eq!(health_of(&app, user).await, 2);
    assert_eq!(health_of(&app, token).await, 1, "TokenService needs no database");
    assert_eq!(health_status(&app).await, 2, "the whole server is not all there");
    app.validate(&pair.access_token).await.unwrap();

    // Hung rather than refusing: a call waiting for a connection would wait
    // the whole acquire timeout.
    proxy.blackhole();
    for _ in 0..3 {
        let started = Instant::now();
        let refused =
            assert_error(app.login("pg.outage@example.com", PASSWORD).await, Code::Unavailable, "UNAVAILABLE");
        let took = started.elapsed();
        assert!(took < ACQUIRE / 4, "answered within the outage bound, not the acquire timeout: {took:?}");
        assert!(refused.get_error_details().retry_info().is_some(), "the caller is told to retry");
    }
    app.validate(&pair.access_token).await.unwrap();

    proxy.restore();
    eventually("Login to work again", async || app.login("pg.outage@example.com", PASSWORD).await.is_ok()).await;
    eventually("AuthService to serve again", async || health_of(&app, auth).await == 1).await;
    assert_eq!(health_of(&app, user).await, 1);
    drop(database);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_fails_closed_while_redis_is_unreachable() {
    let proxy = FaultProxy::start(redis::upstream()).await;
    let app = TestApp::spawn_with(Mode::Production, |c| c.redis_url = Some(redis::url_via(proxy.addr()))).await;
    let pair = app.user_session("outage@example.com").await;
    app.validate(&pair.access_token).await.unwrap();

    proxy.cut();
    for _ in 0..3 {
        assert_error(app.validate(&pair.access_token).await, Code::Unavailable, "UNAVAILABLE");
    }
    eventually("health to report NOT_SERVING", async || health_status(&app).await == 2).await;

    proxy.restore();
    eventually("validation to recover once Redis is reachable", async || {
        app.validate(&pair.access_token).await.is_ok()
    })
    .await;
    eventually("health to report SERVING again", async || health_status(&app).await == 1).await;
}
