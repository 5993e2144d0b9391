//! Test databases: a fresh SQLite file or a fresh PostgreSQL database per
//! test, migrated, and removed afterwards even when the test fails.

use std::future::Future;
use std::path::PathBuf;
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
use sea_orm::{ConnectionTrait, DatabaseConnection};
use uuid::Uuid;

/// The admin connection used to create and drop per-test databases.
pub const POSTGRES_URL_VAR: &str = "GATEHOUSE_TEST_POSTGRES_URL";
const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

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
    }
}

fn unique_name() -> String {
    format!("gh_test_{}", Uuid::now_v7().simple())
}

/// Runs `test` against a migrated SQLite database in a new temporary file.
pub async fn on_sqlite<F, Fut>(test: F)
where
    F: FnOnce(TestDb) -> Fut,
    Fut: Future<Output = ()>,
{
    let guard = SqliteFile(std::env::temp_dir().join(format!("{}.sqlite3", unique_name())));
    let url = format!("sqlite://{}", guard.0.display());
    let db = Database::connect(&url, pool()).await.unwrap_or_else(|e| panic!("open {url}: {e}"));
    db.migrate().await.unwrap();
    test(TestDb { db: db.clone(), url }).await;
    db.close().await.unwrap();
    drop(guard);
}

/// Runs `test` against a migrated database created for it on the test
/// PostgreSQL server, dropped afterwards.
pub async fn on_postgres<F, Fut>(test: F)
where
    F: FnOnce(TestDb) -> Fut,
    Fut: Future<Output = ()>,
{
    let admin_url = std::env::var(POSTGRES_URL_VAR).unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
    let mut options = sea_orm::ConnectOptions::new(admin_url.clone());
    options.max_connections(1).connect_timeout(Duration::from_secs(5)).acquire_timeout(Duration::from_secs(5));
    let admin_conn = match sea_orm::Database::connect(options).await {
        Ok(conn) => conn,
        Err(e) => panic!(
            "PostgreSQL at {admin_url} is not reachable ({e}). Start it with `make services`, \
             or point {POSTGRES_URL_VAR} at a server where the user may CREATE DATABASE."
        ),
    };
    let name = unique_name();
    admin_conn.execute_unprepared(&format!("CREATE DATABASE \"{name}\"")).await.unwrap();
    admin_conn.close().await.unwrap();
    let guard = PostgresDatabase { admin_url: admin_url.clone(), name: name.clone() };

    let url = with_database(&admin_url, &name);
    let db = Database::connect(&url, pool()).await.unwrap_or_else(|e| panic!("open test database {name}: {e}"));
    db.migrate().await.unwrap();
    test(TestDb { db: db.clone(), url }).await;
    db.close().await.unwrap();
    drop(guard);
}

/// `url` with its database name replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, ""), |(b, q)| (b, q));
    let authority = base.find("://").map_or(0, |i| i + 3);
    let server = base[authority..].find('/').map_or(base, |slash| &base[..authority + slash]);
    if query.is_empty() { format!("{server}/{name}") } else { format!("{server}/{name}?{query}") }
}

/// Deletes the SQLite file and its WAL side files when dropped.
struct SqliteFile(PathBuf);

impl Drop for SqliteFile {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut path = self.0.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Drops the per-test PostgreSQL database when dropped, also while a failed
/// test unwinds. The drop runs on its own thread and runtime because `Drop`
/// cannot await and may run inside the test's runtime.
struct PostgresDatabase {
    admin_url: String,
    name: String,
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        let dropped = std::thread::spawn(move || {
            let runtime =
                tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let conn = sea_orm::Database::connect(&admin_url).await.map_err(|e| e.to_string())?;
                conn.execute_unprepared(&sql).await.map_err(|e| e.to_string())?;
                conn.close().await.map_err(|e| e.to_string())
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("could not drop test database {}: {e}", self.name),
            Err(_) => eprintln!("dropping test database {} panicked", self.name),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn database_name_is_replaced_in_the_url() {
        assert_eq!(with_database("postgres://u@h:5432/postgres", "x"), "postgres://u@h:5432/x");
        assert_eq!(with_database("postgres://u@h/postgres?sslmode=disable", "x"), "postgres://u@h/x?sslmode=disable");
        assert_eq!(with_database("postgres://u@h", "x"), "postgres://u@h/x");
    }
}
