//! [`UnitOfWorkFactory`] over sea-orm transactions: one transaction per unit
//! of work, the outbox (and the audit rows its messages carry) written at
//! commit, everything rolled back when it is dropped uncommitted.
//!
//! SQLite: `begin` takes the database's write lock at once, with a write
//! that changes nothing. A transaction that read first would have to upgrade
//! a read snapshot later and, if another writer went first, fail at once
//! with "database is locked" instead of waiting out the busy timeout; and
//! with the lock held from the start, units of work run one after the other,
//! so what one read is still true when it writes.
//!
//! PostgreSQL: units of work on different accounts run in parallel; those
//! on one account meet at [`AccountWrites::lock`] (`SELECT … FOR UPDATE` on
//! the user's row), which every read-then-decide use case takes first. The
//! user's row is always locked before any of its sessions or factors, so
//! these transactions cannot deadlock each other.
//!
//! [`AccountWrites::lock`]: gatehouse_application::ports::unit_of_work::AccountWrites::lock

use async_trait::async_trait;
use gatehouse_application::ports::events::OutboxMessage;
use gatehouse_application::ports::store::StoreError;
use gatehouse_application::ports::unit_of_work::{
    AccountWrites, ChallengeWrites, FactorWrites, SessionWrites, UnitOfWork, UnitOfWorkFactory, VerificationWrites,
};
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseTransaction};

use crate::database::Database;
use crate::error::store_error;
use crate::outbox::insert_outbox;
use crate::pool::Pool;

/// Opens units of work on the database's pool.
#[derive(Debug, Clone)]
pub struct SqlUnitOfWorkFactory {
    conn: Pool,
}

impl SqlUnitOfWorkFactory {
    /// Units of work over `db`'s pool.
    #[must_use]
    pub fn new(db: &Database) -> Self {
        Self { conn: db.conn.clone() }
    }
}

#[async_trait]
impl UnitOfWorkFactory for SqlUnitOfWorkFactory {
    async fn begin(&self) -> Result<Box<dyn UnitOfWork>, StoreError> {
        let txn = self.conn.begin().await.map_err(store_error)?;
        if txn.get_database_backend() == DatabaseBackend::Sqlite {
            txn.execute_unprepared("UPDATE users SET id = id WHERE 1 = 0").await.map_err(store_error)?;
        }
        Ok(Box::new(SqlUnitOfWork { txn, messages: Vec::new() }))
    }
}

/// One open transaction; the repositories of the unit of work run in it.
#[derive(Debug)]
pub(crate) struct SqlUnitOfWork {
    pub(crate) txn: DatabaseTransaction,
    messages: Vec<OutboxMessage>,
}

#[async_trait]
impl UnitOfWork for SqlUnitOfWork {
    fn accounts(&self) -> &dyn AccountWrites {
        self
    }

    fn sessions(&self) -> &dyn SessionWrites {
        self
    }

    fn verifications(&self) -> &dyn VerificationWrites {
        self
    }

    fn factors(&self) -> &dyn FactorWrites {
        self
    }

    fn challenges(&self) -> &dyn ChallengeWrites {
        self
    }

    fn add_messages(&mut self, messages: Vec<OutboxMessage>) {
        self.messages.extend(messages);
    }

    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        let Self { txn, messages } = *self;
        insert_outbox(&txn, &messages).await.map_err(store_error)?;
        txn.commit().await.map_err(store_error)
    }
}
