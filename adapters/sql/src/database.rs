//! The connection pool, schema migration and the health probe.

use std::time::Duration;

use async_trait::async_trait;
use gatehouse_application::ports::BoxError;
use gatehouse_application::ports::health::Probe;
use gatehouse_application::ports::store::StoreError;
use gatehouse_migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::SqliteJournalMode;
use sea_orm::{ConnectOptions, ConnectionTrait, DbBackend, Statement};

use crate::error::store_error;
use crate::pool::Pool;

/// How long a SQLite connection waits for another connection's write lock
/// before giving up with "database is locked".
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Idle pooled connections are closed after this long.
const IDLE_TIMEOUT: Duration = Duration::from_secs(600);

/// Connection pool limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSettings {
    /// Most connections open at once.
    pub max_connections: u32,
    /// Longest wait to open one new connection.
    pub connect_timeout: Duration,
    /// Longest wait for a free pooled connection before the store reports
    /// itself unavailable.
    pub acquire_timeout: Duration,
    /// Longest a single PostgreSQL statement may run.
    pub statement_timeout: Duration,
    /// While the database is known to be down (a call just found no
    /// connection), how long the one call that tries it again may wait; the
    /// others answer unavailable at once.
    pub outage_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_connections: 10,
            connect_timeout: Duration::from_secs(5),
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(5),
            outage_timeout: Duration::from_secs(1),
        }
    }
}

/// Why a pool could not be opened. The pool itself only says "pool timed
/// out" however the connections failed, which tells an operator nothing; one
/// plain connection attempt names the cause (connection refused, password
/// authentication failed, unknown host).
/// A pooled PostgreSQL connection idle at least this long is pinged before
/// use; one in use more recently is taken as it is.
const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// The PostgreSQL pool `options` describe, built here rather than by sea-orm
/// for its acquire check: sea-orm can only ping before every acquire, a
/// round trip (and the server's work for it) before each query outside a
/// transaction. A connection idle for a while is the one that may have been
/// cut (a restart, a proxy's idle timeout) and is pinged; one used within
/// the last second is not, and if it did break since, its query fails and
/// the pool's outage handling answers for it.
async fn connect_postgres(
    url: &str,
    options: ConnectOptions,
    statement_timeout: Duration,
) -> Result<sea_orm::DatabaseConnection, sea_orm::DbErr> {
    use sea_orm::sqlx::postgres::{PgConnectOptions, Postgres};
    use sea_orm::sqlx::{ConnectOptions as _, Connection as _};
    use sea_orm::{RuntimeErr, SqlxPostgresConnector};

    let failed = |e| sea_orm::DbErr::Conn(RuntimeErr::SqlxError(e));
    // A query that hangs must fail instead of holding a request (and the
    // health probe) forever.
    let timeout = format!("{}ms", statement_timeout.as_millis());
    let connect = url
        .parse::<PgConnectOptions>()
        .map_err(failed)?
        .application_name("gatehouse")
        .options([("statement_timeout", timeout.as_str())])
        .disable_statement_logging();
    let pool = options
        .sqlx_pool_options::<Postgres>()
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= PING_AFTER_IDLE {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
        .connect_with(connect)
        .await
        .map_err(failed)?;
    Ok(SqlxPostgresConnector::from_sqlx_postgres_pool(pool))
}

async fn real_cause(url: &str, timeout: Duration, pool_error: sea_orm::DbErr) -> StoreError {
    if !url.starts_with("postgres") {
        return store_error(pool_error);
    }
    use sea_orm::sqlx::Connection as _;
    match tokio::time::timeout(timeout, sea_orm::sqlx::PgConnection::connect(url)).await {
        Ok(Err(cause)) => StoreError::Unavailable(Box::new(cause)),
        Ok(Ok(_)) | Err(_) => store_error(pool_error),
    }
}

/// The advisory lock that serializes migrations across replicas ("gatehouse" in ASCII).
const MIGRATION_LOCK_KEY: i64 = 0x6761_7465_686f_7573;

/// A pool of connections to PostgreSQL or SQLite. Cheap to clone: clones
/// share the pool.
#[derive(Debug, Clone)]
pub struct Database {
    pub(crate) conn: Pool,
}

impl Database {
    /// Opens a pool for a `postgres://` (or `postgresql://`) or `sqlite:` URL.
    ///
    /// A SQLite file is created when missing and put in WAL mode (readers do
    /// not block the writer), with a busy timeout so concurrent writers wait
    /// for each other instead of failing, and with foreign keys enforced.
    ///
    /// # Errors
    /// [`StoreError::Internal`] for an unsupported URL;
    /// [`StoreError::Unavailable`] when the database cannot be reached.
    pub async fn connect(url: &str, settings: PoolSettings) -> Result<Self, StoreError> {
        let mut options = ConnectOptions::new(url);
        options
            .max_connections(settings.max_connections)
            .min_connections(0)
            .connect_timeout(settings.connect_timeout)
            .acquire_timeout(settings.acquire_timeout)
            .idle_timeout(IDLE_TIMEOUT)
            .sqlx_logging(false);
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let connected = connect_postgres(url, options, settings.statement_timeout).await;
            return match connected {
                Ok(conn) => Ok(Self { conn: Pool::new(conn, settings.outage_timeout) }),
                Err(pool_error) => Err(real_cause(url, settings.connect_timeout, pool_error).await),
            };
        } else if url.starts_with("sqlite:") {
            // A connection to a local file cannot go stale, and sqlx's test
            // before each acquire is one more hop to the connection's worker
            // thread and back: two context switches per query, on the cores
            // that hash passwords.
            options.test_before_acquire(false);
            options.map_sqlx_sqlite_opts(|o| {
                o.create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .busy_timeout(SQLITE_BUSY_TIMEOUT)
                    .foreign_keys(true)
            });
        } else {
            return Err(StoreError::Internal("unsupported database URL: expected postgres:// or sqlite:".into()));
        }
        match sea_orm::Database::connect(options).await {
            Ok(conn) => Ok(Self { conn: Pool::new(conn, settings.outage_timeout) }),
            Err(pool_error) => Err(real_cause(url, settings.connect_timeout, pool_error).await),
        }
    }

    /// Applies the migrations not applied yet; a no-op when the schema is current.
    ///
    /// # Errors
    /// [`StoreError`] when a migration fails (it is rolled back where the
    /// backend allows).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        if self.conn.get_database_backend() != DbBackend::Postgres {
            return Migrator::up(self.conn.unguarded(), None).await.map_err(store_error);
        }
        // Replicas starting together would race to create the same tables:
        // the first takes a transaction-scoped advisory lock, the others wait
        // for it and then find nothing left to do.
        let txn = self.conn.begin().await.map_err(store_error)?;
        txn.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})"))
            .await
            .map_err(store_error)?;
        Migrator::up(&txn, None).await.map_err(store_error)?;
        txn.commit().await.map_err(store_error)
    }

    /// Closes every pooled connection, waiting for those in use to come back.
    ///
    /// # Errors
    /// [`StoreError`] if the pool cannot be closed cleanly.
    pub async fn close(self) -> Result<(), StoreError> {
        self.conn.close().await.map_err(store_error)
    }

    /// Whether calls are being refused because the database was found down.
    #[must_use]
    pub fn is_known_down(&self) -> bool {
        self.conn.is_down()
    }
}

#[async_trait]
impl Probe for Database {
    fn name(&self) -> &'static str {
        "database"
    }

    async fn check(&self) -> Result<(), BoxError> {
        let ping = Statement::from_string(self.conn.get_database_backend(), "SELECT 1");
        self.conn.query_one(ping).await.map(|_| ()).map_err(|e| Box::new(store_error(e)).into())
    }

    async fn changed(&self, seen: u64) -> u64 {
        self.conn.changed(seen).await
    }
}
