//! Test databases for the storage contract: a fresh SQLite file or a fresh
//! PostgreSQL database (the testkit's guards) per test, migrated, and
//! removed afterwards even when the test fails.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use gatehouse_application::ports::audit::AuditLog;
use gatehouse_application::ports::events::OutboxStore;
use gatehouse_application::ports::mfa::MfaRepository;
use gatehouse_application::ports::store::{SessionRepository, UserRepository};
use gatehouse_application::ports::unit_of_work::UnitOfWorkFactory;
use gatehouse_application::ports::verifications::VerificationRepository;
use gatehouse_application::testing::InMemoryStore;
use gatehouse_sql::{
    Database, PoolSettings, SqlAuditLog, SqlMfaRepository, SqlOutboxStore, SqlSessionRepository, SqlUnitOfWorkFactory,
    SqlUserRepository, SqlVerificationRepository,
};
use gatehouse_testkit::TempDir;
use gatehouse_testkit::postgres::TestDatabase;
use sea_orm::{ConnectionTrait, DatabaseConnection};

/// The storage ports, as the use cases and the relay see them.
#[derive(Clone)]
pub struct Stores {
    pub uow: Arc<dyn UnitOfWorkFactory>,
    pub users: Arc<dyn UserRepository>,
    pub sessions: Arc<dyn SessionRepository>,
    pub verifications: Arc<dyn VerificationRepository>,
    pub mfa: Arc<dyn MfaRepository>,
    pub outbox: Arc<dyn OutboxStore>,
    pub audit: Arc<dyn AuditLog>,
}

/// Runs `test` against the in-memory fakes of `gatehouse_application::testing`,
/// so the fakes the use-case tests rely on cannot drift from the SQL adapter.
pub async fn on_memory<F, Fut>(test: F)
where
    F: FnOnce(Stores) -> Fut,
    Fut: Future<Output = ()>,
{
    // One store in every role, as the fakes' docs ask: effects span tables.
    let store = Arc::new(InMemoryStore::default());
    test(Stores {
        uow: store.clone(),
        users: store.clone(),
        sessions: store.clone(),
        verifications: store.clone(),
        mfa: store.clone(),
        outbox: store.clone(),
        audit: store,
    })
    .await;
}

/// A migrated, empty database for one test.
#[derive(Debug, Clone)]
pub struct TestDb {
    /// The adapter's handle, as production code gets it.
    pub db: Database,
    /// The URL, for tests that need a raw connection (e.g. to delete rows).
    pub url: String,
}

impl TestDb {
    /// The SQL repositories over this database.
    pub fn stores(&self) -> Stores {
        Stores {
            uow: Arc::new(SqlUnitOfWorkFactory::new(&self.db)),
            users: Arc::new(SqlUserRepository::new(&self.db)),
            sessions: Arc::new(SqlSessionRepository::new(&self.db)),
            verifications: Arc::new(SqlVerificationRepository::new(&self.db)),
            mfa: Arc::new(SqlMfaRepository::new(&self.db)),
            outbox: Arc::new(SqlOutboxStore::new(&self.db)),
            audit: Arc::new(SqlAuditLog::new(&self.db)),
        }
    }

    /// Runs raw SQL on a separate connection, for set-up the ports do not offer.
    pub async fn execute(&self, sql: &str) {
        let conn = raw_connection(&self.url).await;
        conn.execute_unprepared(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        conn.close().await.unwrap();
    }

    /// The first column of the first row `sql` returns, as text.
    pub async fn query_string(&self, sql: &str) -> String {
        let conn = raw_connection(&self.url).await;
        let row =
            conn.query_one(sea_orm::Statement::from_string(conn.get_database_backend(), sql)).await.unwrap().unwrap();
        let value: String = row.try_get_by_index(0).unwrap();
        conn.close().await.unwrap();
        value
    }

    /// A separate connection, e.g. to hold a transaction open while the
    /// adapter works.
    pub async fn raw(&self) -> DatabaseConnection {
        raw_connection(&self.url).await
    }

    /// Counts the rows of `table`.
    pub async fn count(&self, table: &str) -> i64 {
        let conn = raw_connection(&self.url).await;
        let sql = format!("SELECT COUNT(*) AS n FROM {table}");
        let row =
            conn.query_one(sea_orm::Statement::from_string(conn.get_database_backend(), sql)).await.unwrap().unwrap();
        let n: i64 = row.try_get("", "n").unwrap();
        conn.close().await.unwrap();
        n
    }
}

async fn raw_connection(url: &str) -> DatabaseConnection {
    sea_orm::Database::connect(url).await.unwrap_or_else(|e| panic!("raw connection: {e}"))
}

fn pool() -> PoolSettings {
    PoolSettings {
        max_connections: 8,
        connect_timeout: Duration::from_secs(5),
        acquire_timeout: Duration::from_secs(10),
        statement_timeout: Duration::from_secs(10),
        ..PoolSettings::default()
    }
}

/// Runs `test` against a migrated SQLite database in a new temporary file.
pub async fn on_sqlite<F, Fut>(test: F)
where
    F: FnOnce(TestDb) -> Fut,
    Fut: Future<Output = ()>,
{
    // The directory takes the WAL side files with it.
    let dir = TempDir::new("gh_test_sqlite");
    let url = format!("sqlite://{}", dir.path().join("test.sqlite3").display());
    let db = Database::connect(&url, pool()).await.unwrap_or_else(|e| panic!("open {url}: {e}"));
    db.migrate().await.unwrap();
    test(TestDb { db: db.clone(), url }).await;
    db.close().await.unwrap();
    drop(dir);
}

/// Runs `test` against a migrated database created for it on the test
/// PostgreSQL server, dropped afterwards.
pub async fn on_postgres<F, Fut>(test: F)
where
    F: FnOnce(TestDb) -> Fut,
    Fut: Future<Output = ()>,
{
    let database = TestDatabase::create("gh_test").await;
    let url = database.url().to_owned();
    let db =
        Database::connect(&url, pool()).await.unwrap_or_else(|e| panic!("open test database {}: {e}", database.name()));
    db.migrate().await.unwrap();
    test(TestDb { db: db.clone(), url }).await;
    db.close().await.unwrap();
    drop(database);
}

/// Declares the contract tests: each `ports` test (taking [`Stores`]) once per
/// backend as `memory::<name>`, `sqlite::<name>` and `postgres::<name>`; each
/// `sql` test (taking [`TestDb`]) as `sqlite::<name>` and `postgres::<name>`;
/// each `postgres` test (taking [`TestDb`]) as `postgres::<name>` only.
macro_rules! contract_tests {
    (
        ports: [$($port:ident),* $(,)?],
        sql: [$($sql:ident),* $(,)?],
        postgres: [$($pg:ident),* $(,)?] $(,)?
    ) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $port() {
                    crate::support::on_memory(super::$port).await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $port() {
                    crate::support::on_sqlite(|t| super::$port(t.stores())).await;
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $sql() {
                    crate::support::on_sqlite(super::$sql).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $port() {
                    crate::support::on_postgres(|t| super::$port(t.stores())).await;
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $sql() {
                    crate::support::on_postgres(super::$sql).await;
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $pg() {
                    crate::support::on_postgres(super::$pg).await;
                }
            )*
        }
    };
}
