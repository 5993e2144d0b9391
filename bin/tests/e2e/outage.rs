//! The denylist going away: validation must fail closed (UNAVAILABLE, never
//! "valid"), health must say NOT_SERVING, and both recover with the broker.
//! OWASP ASVS 5.0 V16.5.3 (no fail-open), V16.5.2 (secure when a resource fails).

use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use gatehouse_testkit::{FaultProxy, eventually, redis};

use crate::harness::{Mode, TestApp, assert_error};

async fn health_status(app: &TestApp) -> i32 {
    let mut health = HealthClient::new(app.channel.clone());
    health.check(HealthCheckRequest { service: String::new() }).await.unwrap().into_inner().status
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
