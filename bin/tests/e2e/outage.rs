//! The denylist going away: validation must fail closed (UNAVAILABLE, never
//! "valid"), health must say NOT_SERVING, and both recover with the broker.
//! OWASP ASVS 5.0 V16.5.3 (no fail-open), V16.5.2 (secure when a resource fails).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::harness::{Mode, TestApp, assert_error, redis_url};

/// A TCP forwarder to Redis that the test can cut and restore.
struct Cable {
    addr: SocketAddr,
    cut: Arc<AtomicBool>,
    kill: watch::Sender<u64>,
}

impl Cable {
    async fn to(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cut = Arc::new(AtomicBool::new(false));
        let (kill, _) = watch::channel(0_u64);
        let (cut2, kill2) = (cut.clone(), kill.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if cut2.load(Ordering::SeqCst) {
                    continue; // dropped: connection refused in effect
                }
                let target = target.clone();
                let mut killed = kill2.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(&target).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = killed.changed() => {}
                    }
                });
            }
        });
        Self { addr, cut, kill }
    }

    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        self.kill.send_modify(|n| *n += 1);
    }

    fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

async fn health_status(app: &TestApp) -> i32 {
    let mut health = HealthClient::new(app.channel.clone());
    health.check(HealthCheckRequest { service: String::new() }).await.unwrap().into_inner().status
}

async fn eventually(mut check: impl AsyncFnMut() -> bool) -> bool {
    for _ in 0..100 {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
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
