//! [`VerificationRepository`] and the unit of work's [`VerificationWrites`]
//! over the `verifications` table.
//!
//! The limits hold under concurrency because each is one guarded statement:
//! a wrong code is counted by `UPDATE … SET attempts = attempts + 1 WHERE
//! attempts < max_attempts AND consumed_at IS NULL`, and a verification is
//! consumed by `UPDATE … SET consumed_at = now WHERE consumed_at IS NULL AND
//! …` in the unit of work that applies its effect.
//! PostgreSQL makes a concurrent statement on the same row wait for the row
//! lock and then re-check its condition; SQLite runs writers one at a time.
//! Either way twenty parallel guesses stop at the limit, and of twenty
//! parallel redemptions exactly one finds the row unconsumed.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use gatehouse_application::ports::store::StoreError;
use gatehouse_application::ports::unit_of_work::VerificationWrites;
use gatehouse_application::ports::verifications::{RecentActivity, VerificationRepository};
use gatehouse_domain::{EmailAddress, Purpose, TokenHash, UserId, Verification};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QueryTrait,
};
use uuid::Uuid;

use crate::convert::{to_email, to_i32, to_token_hash, to_u32};
use crate::database::Database;
use crate::entity::verification;
use crate::error::store_error;
use crate::pool::Pool;
use crate::unit_of_work::SqlUnitOfWork;

/// One-time verifications in SQL.
#[derive(Debug, Clone)]
pub struct SqlVerificationRepository {
    conn: Pool,
}

impl SqlVerificationRepository {
    /// A repository over `db`'s pool.
    #[must_use]
    pub fn new(db: &Database) -> Self {
        Self { conn: db.conn.clone() }
    }
}

#[async_trait]
impl VerificationRepository for SqlVerificationRepository {
    async fn find_by_token(
        &self,
        purpose: Purpose,
        token_hash: &TokenHash,
    ) -> Result<Option<Verification>, StoreError> {
        let row = verification::Entity::find()
            .filter(verification::Column::TokenHash.eq(token_hash.as_bytes().to_vec()))
            .filter(verification::Column::Purpose.eq(purpose.as_str()))
            .one(&self.conn)
            .await
            .map_err(store_error)?;
        row.map(to_domain).transpose().map_err(store_error)
    }

    async fn find_latest(&self, purpose: Purpose, email: &EmailAddress) -> Result<Option<Verification>, StoreError> {
        let row = verification::Entity::find()
            .filter(verification::Column::Purpose.eq(purpose.as_str()))
            .filter(verification::Column::Email.eq(email.as_str()))
            .filter(verification::Column::ConsumedAt.is_null())
            .order_by_desc(verification::Column::CreatedAt)
            .order_by_desc(verification::Column::Id)
            .one(&self.conn)
            .await
            .map_err(store_error)?;
        row.map(to_domain).transpose().map_err(store_error)
    }

    async fn recent_activity(
        &self,
        user: UserId,
        purpose: Purpose,
        since: DateTime<Utc>,
    ) -> Result<RecentActivity, StoreError> {
        let rows = verification::Entity::find()
            .filter(verification::Column::UserId.eq(*user.as_uuid()))
            .filter(verification::Column::Purpose.eq(purpose.as_str()))
            .filter(verification::Column::CreatedAt.gte(since))
            .all(&self.conn)
            .await
            .map_err(store_error)?;
        let issued = u32::try_from(rows.len()).unwrap_or(u32::MAX);
        let failures = rows.iter().map(|r| to_u32(r.attempts).unwrap_or(0)).fold(0_u32, u32::saturating_add);
        Ok(RecentActivity { issued, failures })
    }

    async fn record_failed_attempt(&self, id: Uuid) -> Result<Option<u32>, StoreError> {
        let mut count = verification::Entity::update_many()
            .col_expr(verification::Column::Attempts, Expr::col(verification::Column::Attempts).add(1))
            .filter(verification::Column::Id.eq(id))
            .filter(verification::Column::ConsumedAt.is_null())
            .filter(Expr::col(verification::Column::Attempts).lt(Expr::col(verification::Column::MaxAttempts)))
            .into_query();
        // The count this statement produced, not a later read that a
        // concurrent attempt may already have moved on.
        count.returning_col(verification::Column::Attempts);
        let stmt = self.conn.get_database_backend().build(&count);
        let Some(row) = self.conn.query_one(stmt).await.map_err(store_error)? else { return Ok(None) };
        let attempts: i32 = row.try_get("", "attempts").map_err(store_error)?;
        to_u32(attempts).map(Some).map_err(store_error)
    }
}

#[async_trait]
impl VerificationWrites for SqlUnitOfWork {
    async fn insert(&self, verification: &Verification) -> Result<(), StoreError> {
        insert_verification(&self.txn, verification).await.map_err(store_error)
    }

    async fn retire(
        &self,
        user: UserId,
        purpose: Purpose,
        email: Option<&EmailAddress>,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let mut update = verification::Entity::update_many()
            .col_expr(verification::Column::ConsumedAt, Expr::value(now))
            .filter(verification::Column::UserId.eq(*user.as_uuid()))
            .filter(verification::Column::Purpose.eq(purpose.as_str()))
            .filter(verification::Column::ConsumedAt.is_null());
        if let Some(email) = email {
            update = update.filter(verification::Column::Email.eq(email.as_str()));
        }
        Ok(update.exec(&self.txn).await.map_err(store_error)?.rows_affected)
    }

    async fn consume(&self, id: Uuid, now: DateTime<Utc>) -> Result<bool, StoreError> {
        // The compare-and-swap.
        let consumed = verification::Entity::update_many()
            .col_expr(verification::Column::ConsumedAt, Expr::value(now))
            .filter(verification::Column::Id.eq(id))
            .filter(verification::Column::ConsumedAt.is_null())
            .filter(verification::Column::ExpiresAt.gt(now))
            .filter(Expr::col(verification::Column::Attempts).lt(Expr::col(verification::Column::MaxAttempts)))
            .exec(&self.txn)
            .await
            .map_err(store_error)?;
        Ok(consumed.rows_affected == 1)
    }
}

/// Stores a new verification, inside the caller's transaction.
async fn insert_verification(txn: &DatabaseTransaction, v: &Verification) -> Result<(), DbErr> {
    let row = verification::ActiveModel {
        id: Set(v.id()),
        user_id: Set(*v.user_id().as_uuid()),
        email: Set(v.email().as_str().to_owned()),
        purpose: Set(v.purpose().as_str().to_owned()),
        token_hash: Set(v.token_hash().as_bytes().to_vec()),
        code_hash: Set(v.code_hash().as_bytes().to_vec()),
        attempts: Set(to_i32(v.attempts())?),
        max_attempts: Set(to_i32(v.max_attempts())?),
        created_at: Set(v.created_at()),
        expires_at: Set(v.expires_at()),
        consumed_at: Set(v.consumed_at()),
    };
    verification::Entity::insert(row).exec_without_returning(txn).await?;
    Ok(())
}

fn to_domain(row: verification::Model) -> Result<Verification, DbErr> {
    let purpose = Purpose::parse(&row.purpose)
        .ok_or_else(|| DbErr::Custom(format!("stored verification purpose {:?} is unknown", row.purpose)))?;
    Ok(Verification::restore(
        row.id,
        UserId::from_uuid(row.user_id),
        to_email(&row.email)?,
        purpose,
        to_token_hash(row.token_hash)?,
        to_token_hash(row.code_hash)?,
        to_u32(row.attempts)?,
        to_u32(row.max_attempts)?,
        row.created_at,
        row.expires_at,
        row.consumed_at,
    ))
}
