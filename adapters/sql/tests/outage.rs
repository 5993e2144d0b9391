//! PostgreSQL going away under a running pool: once a call has found no
//! connection, the others answer unavailable within the outage bound instead
//! of each waiting out the acquire timeout, health hears of it without
//! waiting for its next probe, and the first call after the restore ends
//! the outage (OWASP ASVS 5.0 V16.5.2: fail securely and promptly when a
//! resource is unavailable; V16.5.3: no fail-open).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use gatehouse_application::ports::health::Probe;
use gatehouse_application::ports::store::{StoreError, UserRepository};
use gatehouse_application::ports::unit_of_work::UnitOfWorkFactory;
use gatehouse_domain::EmailAddress;
use gatehouse_sql::{Database, PoolSettings, SqlUnitOfWorkFactory, SqlUserRepository};
use gatehouse_testkit::FaultProxy;
use gatehouse_testkit::postgres::TestDatabase;

/// Far longer than the outage bound, so that a call that waited on the pool
/// cannot pass for one that was answered from the outage state.
const ACQUIRE: Duration = Duration::from_secs(20);
const OUTAGE: Duration = Duration::from_millis(200);

async fn behind_proxy() -> (TestDatabase, FaultProxy, Database) {
    let database = TestDatabase::create("gh_sql_outage").await;
    let proxy = FaultProxy::start(database.upstream()).await;
    let settings = PoolSettings {
        max_connections: 4,
        connect_timeout: ACQUIRE,
        acquire_timeout: ACQUIRE,
        statement_timeout: ACQUIRE,
        outage_timeout: OUTAGE,
    };
    let db = Database::connect(&database.url_via(proxy.addr()), settings).await.unwrap();
    db.migrate().await.unwrap();
    (database, proxy, db)
}

fn email() -> EmailAddress {
    EmailAddress::parse("outage@example.com").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_known_outage_is_answered_within_the_outage_bound_and_ends_with_the_first_success() {
    let (_database, proxy, db) = behind_proxy().await;
    let users = SqlUserRepository::new(&db);
    let units = SqlUnitOfWorkFactory::new(&db);
    assert!(users.find_credentials(&email()).await.unwrap().is_none());
    let health = tokio::spawn({
        let db = db.clone();
        async move { db.changed(0).await }
    });

    proxy.cut();
    // The pooled connection is gone: the call that finds out fails (its own
    // wait is the pool's), and the database is known to be down from then on.
    assert!(matches!(users.find_credentials(&email()).await, Err(StoreError::Unavailable(_))));
    assert!(db.is_known_down());
    let changes = tokio::time::timeout(Duration::from_secs(5), health).await.expect("health is told").unwrap();
    assert_eq!(changes, 1);

    // Now the database hangs instead of refusing (a partition): a call
    // that waited for a connection would wait out the acquire timeout.
    proxy.blackhole();
    for _ in 0..5 {
        let started = Instant::now();
        let read = users.find_credentials(&email()).await;
        let write = units.begin().await.map(|_| ());
        assert!(matches!(read, Err(StoreError::Unavailable(_))), "{read:?}");
        assert!(matches!(write, Err(StoreError::Unavailable(_))), "{write:?}");
        let took = started.elapsed();
        assert!(took < ACQUIRE / 4, "a known outage answers within its bound, not the acquire timeout: {took:?}");
    }
    assert!(db.check().await.is_err(), "the health probe fails too");

    proxy.restore();
    let started = Instant::now();
    loop {
        match users.find_credentials(&email()).await {
            Ok(found) => break assert!(found.is_none()),
            Err(StoreError::Unavailable(_)) if started.elapsed() < Duration::from_secs(10) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(other) => panic!("the database came back, yet: {other:?}"),
        }
    }
    assert!(!db.is_known_down(), "one successful call ends the outage");
    assert_eq!(tokio::time::timeout(Duration::from_secs(1), db.changed(1)).await.unwrap(), 2, "health is told again");
    units.begin().await.unwrap();
    db.check().await.unwrap();
}

/// While the database is known down, the calls that are not the trial are
/// answered at once: a burst of them cannot pile up behind the dead pool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_one_call_at_a_time_waits_for_a_database_known_to_be_down() {
    let (_database, proxy, db) = behind_proxy().await;
    let users = SqlUserRepository::new(&db);
    users.find_credentials(&email()).await.unwrap();
    // A blackholed database: connections hang instead of failing, the worst
    // case for callers that would each wait for one.
    proxy.cut();
    assert!(users.find_credentials(&email()).await.is_err());
    proxy.blackhole();
    assert!(db.is_known_down());

    let started = Instant::now();
    let burst: Vec<_> = (0..20)
        .map(|_| {
            let users = users.clone();
            tokio::spawn(async move { (users.find_credentials(&email()).await, Instant::now()) })
        })
        .collect();
    let mut answered_at_once = 0;
    for call in burst {
        let (outcome, at) = call.await.unwrap();
        assert!(matches!(outcome, Err(StoreError::Unavailable(_))), "{outcome:?}");
        if at.duration_since(started) < OUTAGE {
            answered_at_once += 1;
        }
        assert!(at.duration_since(started) < ACQUIRE / 4, "every call answered within the bound");
    }
    assert!(answered_at_once >= 19, "all but the trial answered without waiting: {answered_at_once}");
    proxy.restore();
}

/// A trial whose caller goes away (a cancelled request drops its future)
/// must not leave the database refused for good: the next call tries again,
/// and once the database is back the outage ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_trial_lets_the_next_call_try() {
    let (_database, proxy, db) = behind_proxy().await;
    let users = SqlUserRepository::new(&db);
    users.find_credentials(&email()).await.unwrap();
    proxy.cut();
    assert!(users.find_credentials(&email()).await.is_err());
    proxy.blackhole();
    assert!(db.is_known_down());

    // The trial hangs on the blackholed database; its caller gives up first.
    let cancelled = tokio::time::timeout(OUTAGE / 4, users.find_credentials(&email())).await;
    assert!(cancelled.is_err(), "the trial was still waiting when its caller left");

    proxy.restore();
    let started = Instant::now();
    while users.find_credentials(&email()).await.is_err() {
        assert!(started.elapsed() < Duration::from_secs(10), "the database came back, but calls are still refused");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!db.is_known_down());
}

/// A pooled connection that went away while idle (a database restart, a
/// proxy's idle timeout) is found out before a query uses it: the pool
/// pings a connection idle for a second or more and opens a fresh one in
/// its place, so the caller sees no error and no outage is declared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_cut_while_idle_is_replaced_before_a_query_uses_it() {
    let (_database, proxy, db) = behind_proxy().await;
    let users = SqlUserRepository::new(&db);
    assert!(users.find_credentials(&email()).await.unwrap().is_none());
    let opened = proxy.connections();

    proxy.cut();
    tokio::time::sleep(Duration::from_millis(100)).await;
    proxy.restore();
    tokio::time::sleep(Duration::from_millis(1_200)).await;

    let read = users.find_credentials(&email()).await;
    assert!(matches!(read, Ok(None)), "answered on a fresh connection: {read:?}");
    assert!(!db.is_known_down(), "no outage was declared");
    assert!(proxy.connections() > opened, "a new connection was opened");
}
