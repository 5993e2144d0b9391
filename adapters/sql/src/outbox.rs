//! [`OutboxStore`] over the `outbox` table, and the insert every state
//! change uses to write its events (and their audit rows) in its own
//! transaction.
//!
//! A claim is one statement: `UPDATE outbox SET available_at = <lease end>
//! WHERE id IN (SELECT id … due … ORDER BY created_at, id LIMIT n FOR UPDATE
//! SKIP LOCKED) RETURNING *`. On PostgreSQL the inner select locks the rows
//! it picks and skips rows another relay's claim has locked; once that claim
//! commits, its rows are no longer due (their `available_at` is the lease's
//! end), so a row is never handed to two relays while its lease runs.
//! SQLite has no row locks (the builder leaves the clause out) and needs
//! none: the statement holds the database's write lock from start to end.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use gatehouse_application::ports::events::{ClaimedMessage, OutboxMessage, OutboxStore};
use gatehouse_application::ports::store::StoreError;
use sea_orm::sea_query::{Expr, LockBehavior, LockType, UpdateStatement};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait, FromQueryResult,
    QueryFilter, QueryOrder, QuerySelect, QueryTrait,
};
use uuid::Uuid;

use crate::audit::insert_audit;
use crate::convert::{to_i32, to_u32};
use crate::database::Database;
use crate::entity::outbox;
use crate::error::store_error;
use crate::pool::Pool;

/// Ids bound in one statement that names many rows: SQLite bounds the
/// number of bound parameters.
const IDS_PER_STATEMENT: usize = 500;

/// The outbox in SQL, as the relay sees it.
#[derive(Debug, Clone)]
pub struct SqlOutboxStore {
    conn: Pool,
}

impl SqlOutboxStore {
    /// A store over `db`'s pool.
    #[must_use]
    pub fn new(db: &Database) -> Self {
        Self { conn: db.conn.clone() }
    }
}

#[async_trait]
impl OutboxStore for SqlOutboxStore {
    async fn claim(
        &self,
        limit: u32,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<ClaimedMessage>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let stmt = self.conn.get_database_backend().build(&claim_statement(limit, now, lease_until));
        let mut rows = outbox::Model::find_by_statement(stmt).all(&self.conn).await.map_err(store_error)?;
        // RETURNING promises no order.
        rows.sort_by_key(|r| (r.created_at, r.id));
        rows.into_iter()
            .map(|r| {
                Ok(ClaimedMessage {
                    attempts: to_u32(r.attempts)?,
                    message: OutboxMessage {
                        id: r.id,
                        event_type: r.event_type,
                        payload: r.payload,
                        occurred_at: r.occurred_at,
                        // The audit row was written with the message; the
                        // relay publishes only the message.
                        audit: None,
                    },
                })
            })
            .collect::<Result<_, DbErr>>()
            .map_err(store_error)
    }

    async fn mark_sent(&self, ids: &[Uuid], now: DateTime<Utc>) -> Result<(), StoreError> {
        for chunk in ids.chunks(IDS_PER_STATEMENT) {
            outbox::Entity::update_many()
                .col_expr(outbox::Column::SentAt, Expr::value(now))
                .filter(outbox::Column::Id.is_in(chunk.iter().copied()))
                .filter(outbox::Column::SentAt.is_null())
                .exec(&self.conn)
                .await
                .map_err(store_error)?;
        }
        Ok(())
    }

    async fn retry_later(&self, id: Uuid, attempts: u32, next_attempt_at: DateTime<Utc>) -> Result<(), StoreError> {
        let attempts = to_i32(attempts).map_err(store_error)?;
        outbox::Entity::update_many()
            .col_expr(outbox::Column::Attempts, Expr::value(attempts))
            .col_expr(outbox::Column::AvailableAt, Expr::value(next_attempt_at))
            .filter(outbox::Column::Id.eq(id))
            .filter(outbox::Column::SentAt.is_null())
            .exec(&self.conn)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn retry_now(&self, ids: &[Uuid], now: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut changed = 0;
        for chunk in ids.chunks(IDS_PER_STATEMENT) {
            let result = outbox::Entity::update_many()
                .col_expr(outbox::Column::AvailableAt, Expr::value(now))
                .filter(outbox::Column::Id.is_in(chunk.iter().copied()))
                .filter(outbox::Column::SentAt.is_null())
                .filter(outbox::Column::AvailableAt.gt(now))
                .exec(&self.conn)
                .await
                .map_err(store_error)?;
            changed += result.rows_affected;
        }
        Ok(changed)
    }

    async fn prune_sent(&self, sent_before: DateTime<Utc>) -> Result<u64, StoreError> {
        let pruned = outbox::Entity::delete_many()
            .filter(outbox::Column::SentAt.lt(sent_before))
            .exec(&self.conn)
            .await
            .map_err(store_error)?;
        Ok(pruned.rows_affected)
    }
}

/// The claim (see the module docs).
fn claim_statement(limit: u32, now: DateTime<Utc>, lease_until: DateTime<Utc>) -> UpdateStatement {
    let due = outbox::Entity::find()
        .select_only()
        .column(outbox::Column::Id)
        .filter(outbox::Column::SentAt.is_null())
        .filter(outbox::Column::AvailableAt.lte(now))
        .order_by_asc(outbox::Column::CreatedAt)
        .order_by_asc(outbox::Column::Id)
        .limit(u64::from(limit))
        .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
        .into_query();
    let mut claim = outbox::Entity::update_many()
        .col_expr(outbox::Column::AvailableAt, Expr::value(lease_until))
        .filter(outbox::Column::Id.in_subquery(due))
        .into_query();
    claim.returning_all();
    claim
}

/// Writes `messages` to the outbox inside the transaction of the change they
/// report, due at once, and the audit row of every message that carries one.
/// A row's `created_at`, which orders claims, is the event's `occurred_at`.
pub(crate) async fn insert_outbox(txn: &DatabaseTransaction, messages: &[OutboxMessage]) -> Result<(), DbErr> {
    if messages.is_empty() {
        return Ok(());
    }
    let rows = messages.iter().map(|m| outbox::ActiveModel {
        id: Set(m.id),
        event_type: Set(m.event_type.clone()),
        payload: Set(m.payload.clone()),
        occurred_at: Set(m.occurred_at),
        created_at: Set(m.occurred_at),
        available_at: Set(m.occurred_at),
        attempts: Set(0),
        sent_at: Set(None),
    });
    outbox::Entity::insert_many(rows).exec_without_returning(txn).await?;
    insert_audit(txn, messages.iter().filter_map(|m| m.audit.as_ref())).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::DbBackend;

    fn sql(backend: DbBackend) -> String {
        let t = DateTime::<Utc>::UNIX_EPOCH;
        backend.build(&claim_statement(10, t, t)).to_string()
    }

    #[test]
    fn postgres_claim_skips_rows_locked_by_another_relay() {
        let pg = sql(DbBackend::Postgres);
        assert!(pg.contains("FOR UPDATE SKIP LOCKED"), "{pg}");
        assert!(pg.contains("LIMIT 10"), "{pg}");
        assert!(pg.contains("RETURNING"), "{pg}");
    }

    #[test]
    fn sqlite_claim_has_no_row_locks() {
        let lite = sql(DbBackend::Sqlite);
        assert!(!lite.contains("FOR UPDATE"), "{lite}");
        assert!(lite.contains("RETURNING"), "{lite}");
    }
}
