//! The pool as every repository sees it: sea-orm's connection with a memory
//! of outages, so that a database known to be down costs callers a short,
//! bounded wait instead of the full acquire timeout each.
//!
//! Without it, every request during an outage waits out the pool's acquire
//! timeout (seconds) before answering UNAVAILABLE, and callers with shorter
//! deadlines see DEADLINE_EXCEEDED instead of an error they can act on.
//! With it, the first call that finds no connection marks the database
//! down; from then on one call at a time tries the database with a short
//! bound (a trial) and the others are refused at once, until a trial
//! succeeds. Health hears of every change through [`Pool::changed`].

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use sea_orm::{
    ConnAcquireErr, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, ExecResult,
    QueryResult, Statement, TransactionTrait,
};
use tokio::sync::watch;

use crate::error::is_lost_connection;

/// A cheaply cloned handle on the pool and its outage state.
#[derive(Debug, Clone)]
pub(crate) struct Pool {
    conn: DatabaseConnection,
    reach: Arc<Reachability>,
}

#[derive(Debug)]
struct Reachability {
    down: AtomicBool,
    /// Set while one call is trying the database during an outage.
    trial: AtomicBool,
    /// How long a trial may wait for a connection.
    trial_timeout: Duration,
    /// Counts up/down transitions; health waits on it.
    changes: watch::Sender<u64>,
}

impl Pool {
    pub(crate) fn new(conn: DatabaseConnection, trial_timeout: Duration) -> Self {
        let reach = Reachability {
            down: AtomicBool::new(false),
            trial: AtomicBool::new(false),
            trial_timeout,
            changes: watch::Sender::new(0),
        };
        Self { conn, reach: Arc::new(reach) }
    }

    /// Opens a transaction; the statements in it then run on its connection.
    pub(crate) async fn begin(&self) -> Result<DatabaseTransaction, DbErr> {
        self.guard(self.conn.begin()).await
    }

    /// sea-orm's own connection, for migrations, which run at start-up
    /// before anything serves.
    pub(crate) const fn unguarded(&self) -> &DatabaseConnection {
        &self.conn
    }

    /// Whether calls are being refused for an outage.
    pub(crate) fn is_down(&self) -> bool {
        self.reach.down.load(Ordering::Acquire)
    }

    /// Resolves when the up/down state changed after the counter stood at `seen`.
    pub(crate) async fn changed(&self, seen: u64) -> u64 {
        let mut rx = self.reach.changes.subscribe();
        // The sender lives as long as `self`: the error is never seen.
        rx.wait_for(|now| *now != seen).await.map_or(seen, |now| *now)
    }

    pub(crate) async fn close(self) -> Result<(), DbErr> {
        self.conn.close().await
    }

    async fn guard<T>(&self, work: impl Future<Output = Result<T, DbErr>>) -> Result<T, DbErr> {
        let reach = &self.reach;
        let result = if !reach.down.load(Ordering::Acquire) {
            work.await
        } else if reach.trial.swap(true, Ordering::AcqRel) {
            // Another call is already finding out; answering now keeps
            // callers from piling up behind a dead database.
            return Err(DbErr::ConnectionAcquire(ConnAcquireErr::Timeout));
        } else {
            // Released however the trial ends, also when its caller goes
            // away mid-call (a cancelled request drops this future): a flag
            // left set would refuse every call for good.
            let _trial = Trial(&reach.trial);
            let outcome = tokio::time::timeout(reach.trial_timeout, work).await;
            outcome.unwrap_or(Err(DbErr::ConnectionAcquire(ConnAcquireErr::Timeout)))
        };
        // Any answer, an error the database itself sent included (a refused
        // unique value, a serialization failure), proves it reachable.
        match &result {
            Err(err) if is_lost_connection(err) => self.set_down(true),
            Ok(_) | Err(_) => self.set_down(false),
        }
        result
    }

    fn set_down(&self, down: bool) {
        if self.reach.down.swap(down, Ordering::AcqRel) != down {
            if down {
                tracing::warn!("database unreachable: refusing calls until a trial connection succeeds");
            } else {
                tracing::info!("database reachable again");
            }
            self.reach.changes.send_modify(|n| *n = n.wrapping_add(1));
        }
    }
}

/// The trial in progress; dropping it lets the next call try.
struct Trial<'a>(&'a AtomicBool);

impl Drop for Trial<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

#[async_trait]
impl ConnectionTrait for Pool {
    fn get_database_backend(&self) -> DbBackend {
        self.conn.get_database_backend()
    }

    async fn execute(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        self.guard(self.conn.execute(stmt)).await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.guard(self.conn.execute_unprepared(sql)).await
    }

    async fn query_one(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        self.guard(self.conn.query_one(stmt)).await
    }

    async fn query_all(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        self.guard(self.conn.query_all(stmt)).await
    }
}
