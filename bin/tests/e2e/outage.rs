//! The denylist going away: validation must fail closed (UNAVAILABLE, never
//! "valid"), health must say NOT_SERVING, and both recover with the broker.
//! OWASP ASVS 5.0 V16.5.3 (no fail-open), V16.5.2 (secure when a resource fails).

use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::harness::{Cable, Mode, TestApp, assert_error, eventually, redis_url};

async fn health_status(app: &TestApp) -> i32 {
    let mut health = HealthClient::new(app.channel.clone());
    health.check(HealthCheckRequest { service: String::new() }).await.unwrap().into_inner().status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_fails_closed_while_redis_is_unreachable() {
    let target = redis_url().trim_start_matches("redis://").trim_end_matches('/').to_owned();
    let cable = Cable::to(target).await;
    let app = TestApp::spawn_with(Mode::Production, |c| c.redis_url = Some(format!("redis://{}", cable.addr))).await;
    let pair = app.user_session("outage@example.com").await;
    app.validate(&pair.access_token).await.unwrap();

    cable.cut();
    for _ in 0..3 {
        assert_error(app.validate(&pair.access_token).await, Code::Unavailable, "UNAVAILABLE");
    }
    assert!(eventually(async || health_status(&app).await == 2).await, "health should report NOT_SERVING");

    cable.restore();
    assert!(
        eventually(async || app.validate(&pair.access_token).await.is_ok()).await,
        "validation should recover once Redis is reachable"
    );
    assert!(eventually(async || health_status(&app).await == 1).await, "health should report SERVING again");
}
