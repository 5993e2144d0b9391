//! Start-up against a database that is not there yet: without
//! `--wait-for-dependencies` the server stops at once and names the real
//! cause; with it, it waits with backoff and starts once the database is
//! reachable (OWASP ASVS 5.0 V16.5.2: a failed resource is reported, not
//! hidden behind a timeout).

use std::time::Duration;

use gatehouse::config::Config;
use gatehouse_testkit::FaultProxy;
use gatehouse_testkit::postgres::TestDatabase;

/// A configuration whose database sits behind `proxy`.
fn via_proxy(database: &TestDatabase, proxy: &FaultProxy, wait: bool) -> Config {
    Config {
        database_url: Some(database.url_via(proxy.addr())),
        wait_for_dependencies: wait,
        db_connect_timeout: Duration::from_secs(1),
        ..Config::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_stops_the_start_naming_the_cause() {
    let database = TestDatabase::create("gh_e2e").await;
    // A port nothing listens on: the connection is refused.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let config = Config { database_url: Some(database.url_via(free)), ..Config::default() };
    let started = std::time::Instant::now();
    let error = gatehouse::wiring::open_database(&config).await.expect_err("nothing listens there");
    let text = format!("{error:#}");
    assert!(text.to_lowercase().contains("refused"), "the cause is named: {text}");
    assert!(started.elapsed() < Duration::from_secs(30), "gave up without waiting: {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_for_dependencies_starts_once_the_database_is_back() {
    let database = TestDatabase::create("gh_e2e").await;
    let proxy = FaultProxy::start(database.upstream()).await;
    proxy.cut();
    let config = via_proxy(&database, &proxy, true);
    let opening = tokio::spawn(async move { gatehouse::wiring::open_database(&config).await.map(|_| ()) });
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!opening.is_finished(), "gave up instead of waiting");
    proxy.restore();
    tokio::time::timeout(Duration::from_secs(30), opening)
        .await
        .expect("did not start once the database was back")
        .unwrap()
        .unwrap();
}
