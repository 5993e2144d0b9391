//! [`VerificationRepository`] over the `verifications` table.
//!
//! The limits hold under concurrency because each is one guarded statement:
//! a wrong code is counted by `UPDATE … SET attempts = attempts + 1 WHERE
//! attempts < max_attempts AND consumed_at IS NULL`, and a verification is
//! consumed by `UPDATE … SET consumed_at = now WHERE consumed_at IS NULL AND
//! …` as the first statement of the transaction that applies its effect.
//! PostgreSQL makes a concurrent statement on the same row wait for the row
//! lock and then re-check its condition; SQLite runs writers one at a time.
//! Either way twenty parallel guesses stop at the limit, and of twenty
//! parallel redemptions exactly one finds the row unconsumed.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use gatehouse_application::ports::events::OutboxMessage;
use gatehouse_application::ports::store::StoreError;
use gatehouse_application::ports::verifications::{Consumed, Effect, RecentActivity, VerificationRepository};
use gatehouse_domain::{EmailAddress, Purpose, RevokeReason, TokenHash, UserId, Verification};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait,
    FromQueryResult, QueryFilter, QueryOrder, QueryTrait,
};
use uuid::Uuid;

use crate::convert::{to_email, to_i32, to_token_hash, to_u32};
use crate::database::Database;
use crate::entity::verification;
use crate::error::store_error;
use crate::outbox::insert_outbox;
use crate::sessions::revoke_user_sessions;
use crate::transaction::{Decision, begin, finish};
use crate::users::{set_password_hash, verify_email};

/// One-time verifications in SQL.
#[derive(Debug, Clone)]
pub struct SqlVerificationRepository {
    conn: DatabaseConnection,
}

impl SqlVerificationRepository {
    /// A repository over `db`'s pool.
    #[must_use]
    pub fn new(db: &Database) -> Self {
        Self { conn: db.conn.clone() }
    }
}

/// Consumes every live verification of `user` (for `email`, or any address;
/// of `purpose`, or any purpose), so none of them can be redeemed any more.
pub(crate) async fn retire_verifications<C: ConnectionTrait>(
    conn: &C,
    user: UserId,
    email: Option<&EmailAddress>,
    purpose: Option<Purpose>,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let mut update = verification::Entity::update_many()
        .col_expr(verification::Column::ConsumedAt, Expr::value(now))
        .filter(verification::Column::UserId.eq(*user.as_uuid()))
        .filter(verification::Column::ConsumedAt.is_null());
    if let Some(email) = email {
        update = update.filter(verification::Column::Email.eq(email.as_str()));
    }
    if let Some(purpose) = purpose {
        update = update.filter(verification::Column::Purpose.eq(purpose.as_str()));
    }
    update.exec(conn).await?;
    Ok(())
}

#[async_trait]
impl VerificationRepository for SqlVerificationRepository {
    async fn replace(&self, verification: &Verification, outbox: &[OutboxMessage]) -> Result<(), StoreError> {
        let txn = begin(&self.conn).await?;
        let outcome = async {
            let v = verification;
            // A new reset retires every older reset of the account, whatever
            // address it went to; a new email verification only its address's.
            let address = (v.purpose == Purpose::VerifyEmail).then_some(&v.email);
            retire_verifications(&txn, v.user_id, address, Some(v.purpose), v.created_at).await?;
            insert_verification(&txn, verification).await?;
            insert_outbox(&txn, outbox).await?;
            Ok(Decision::Commit(()))
        }
        .await;
        finish(txn, outcome).await
    }

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

    async fn consume(
        &self,
        id: Uuid,
        effect: &Effect,
        outbox: &[OutboxMessage],
        now: DateTime<Utc>,
    ) -> Result<Consumed, StoreError> {
        let txn = begin(&self.conn).await?;
        let outcome = consume_in(&txn, id, effect, outbox, now).await;
        finish(txn, outcome).await
    }
}

/// The steps of `consume`, inside `txn`; the caller commits only an
/// applied consumption.
async fn consume_in(
    txn: &DatabaseTransaction,
    id: Uuid,
    effect: &Effect,
    outbox: &[OutboxMessage],
    now: DateTime<Utc>,
) -> Result<Decision<Consumed>, DbErr> {
    // The compare-and-swap, and the transaction's first statement.
    let mut claim = verification::Entity::update_many()
        .col_expr(verification::Column::ConsumedAt, Expr::value(now))
        .filter(verification::Column::Id.eq(id))
        .filter(verification::Column::ConsumedAt.is_null())
        .filter(verification::Column::ExpiresAt.gt(now))
        .filter(Expr::col(verification::Column::Attempts).lt(Expr::col(verification::Column::MaxAttempts)))
        .into_query();
    claim.returning_all();
    let stmt = txn.get_database_backend().build(&claim);
    let Some(consumed) = verification::Model::find_by_statement(stmt).one(txn).await? else {
        return Ok(Decision::Rollback(Consumed::Unavailable));
    };
    let revoked = match effect {
        Effect::VerifyEmail => {
            verify_email(txn, consumed.user_id, &consumed.email, now).await?;
            Vec::new()
        }
        Effect::ResetPassword { hash } => {
            let user = UserId::from_uuid(consumed.user_id);
            set_password_hash(txn, user, hash, now).await?;
            verify_email(txn, consumed.user_id, &consumed.email, now).await?;
            retire_verifications(txn, user, None, Some(Purpose::ResetPassword), now).await?;
            revoke_user_sessions(txn, user, None, RevokeReason::PasswordReset, now).await?
        }
    };
    insert_outbox(txn, outbox).await?;
    Ok(Decision::Commit(Consumed::Applied { revoked }))
}

/// Stores a new verification, inside the caller's transaction.
pub(crate) async fn insert_verification(txn: &DatabaseTransaction, v: &Verification) -> Result<(), DbErr> {
    let row = verification::ActiveModel {
        id: Set(v.id),
        user_id: Set(*v.user_id.as_uuid()),
        email: Set(v.email.as_str().to_owned()),
        purpose: Set(v.purpose.as_str().to_owned()),
        token_hash: Set(v.token_hash.as_bytes().to_vec()),
        code_hash: Set(v.code_hash.as_bytes().to_vec()),
        attempts: Set(to_i32(v.attempts)?),
        max_attempts: Set(to_i32(v.max_attempts)?),
        created_at: Set(v.created_at),
        expires_at: Set(v.expires_at),
        consumed_at: Set(v.consumed_at),
    };
    verification::Entity::insert(row).exec_without_returning(txn).await?;
    Ok(())
}

fn to_domain(row: verification::Model) -> Result<Verification, DbErr> {
    let purpose = Purpose::parse(&row.purpose)
        .ok_or_else(|| DbErr::Custom(format!("stored verification purpose {:?} is unknown", row.purpose)))?;
    Ok(Verification {
        id: row.id,
        user_id: UserId::from_uuid(row.user_id),
        email: to_email(&row.email)?,
        purpose,
        token_hash: to_token_hash(row.token_hash)?,
        code_hash: to_token_hash(row.code_hash)?,
        attempts: to_u32(row.attempts)?,
        max_attempts: to_u32(row.max_attempts)?,
        created_at: row.created_at,
        expires_at: row.expires_at,
        consumed_at: row.consumed_at,
    })
}
