//! [`MfaRepository`] and the unit of work's [`FactorWrites`] over the `mfa_factors`, `mfa_codes`, `mfa_challenges`
//! and `backup_codes` tables.
//!
//! Each limit is one guarded statement, so it holds under concurrency the way
//! the verification limits do (see `verifications`): a TOTP step is accepted
//! by `UPDATE mfa_factors SET last_totp_step = step WHERE … (last_totp_step IS
//! NULL OR last_totp_step < step)`, a backup code, code or challenge is used by
//! `UPDATE … SET used_at/consumed_at = now WHERE … IS NULL`, and a wrong code
//! is counted by `UPDATE … SET attempts = attempts + 1 WHERE attempts <
//! max_attempts`. PostgreSQL makes a concurrent statement on the same row wait
//! for the row lock and then re-check its condition; SQLite runs writers one
//! at a time. Either way, of twenty parallel uses exactly one succeeds.
//!
//! Enrolling, confirming and removing factors and backup codes run in a
//! unit of work ([`FactorWrites`]), after the use case locked the account.
//! So do the checks of a login's second factor ([`ChallengeWrites`] and the
//! same guarded statements on `FactorWrites`): the account's recent failures
//! are counted, the code checked and a failure recorded in one transaction.
//!
//! [`FactorWrites`]: gatehouse_application::ports::unit_of_work::FactorWrites
//! [`ChallengeWrites`]: gatehouse_application::ports::unit_of_work::ChallengeWrites

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use gatehouse_application::ports::mfa::{FactorCode, MfaRepository};
use gatehouse_application::ports::store::StoreError;
use gatehouse_application::ports::unit_of_work::{ChallengeWrites, FactorWrites};
use gatehouse_domain::{ClientInfo, Factor, FactorKind, MfaChallenge, SealedSecret, TokenHash, UserId};
use sea_orm::sea_query::{Condition, Expr, Func, SimpleExpr};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, QueryTrait,
};
use uuid::Uuid;

use crate::convert::{to_i32, to_u32};
use crate::database::Database;
use crate::entity::{backup_code, mfa_challenge, mfa_code, mfa_factor};
use crate::error::store_error;
use crate::pool::Pool;
use crate::transaction::{begin, finish};
use crate::unit_of_work::SqlUnitOfWork;

/// Second factors, their codes, backup codes and login challenges in SQL.
#[derive(Debug, Clone)]
pub struct SqlMfaRepository {
    conn: Pool,
}

impl SqlMfaRepository {
    /// A repository over `db`'s pool.
    #[must_use]
    pub fn new(db: &Database) -> Self {
        Self { conn: db.conn.clone() }
    }
}

#[async_trait]
impl FactorWrites for SqlUnitOfWork {
    async fn list(&self, user: UserId) -> Result<Vec<Factor>, StoreError> {
        list_factors(&self.txn, user).await.map_err(store_error)
    }

    async fn insert(&self, factor: &Factor) -> Result<(), StoreError> {
        mfa_factor::Entity::insert(factor_row(factor)).exec_without_returning(&self.txn).await.map_err(store_error)?;
        Ok(())
    }

    async fn activate(&self, factor: Uuid, now: DateTime<Utc>) -> Result<(), StoreError> {
        mfa_factor::Entity::update_many()
            .col_expr(mfa_factor::Column::Active, Expr::value(true))
            .col_expr(mfa_factor::Column::ConfirmedAt, Expr::value(now))
            .filter(mfa_factor::Column::Id.eq(factor))
            .exec(&self.txn)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn delete(&self, factors: &[Uuid]) -> Result<(), StoreError> {
        if factors.is_empty() {
            return Ok(());
        }
        // Their codes go with them (ON DELETE CASCADE).
        mfa_factor::Entity::delete_many()
            .filter(mfa_factor::Column::Id.is_in(factors.iter().copied()))
            .exec(&self.txn)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn insert_code(&self, code: &FactorCode) -> Result<(), StoreError> {
        let row = code_row(code).map_err(store_error)?;
        // The codes it replaces are retired as of its creation.
        mfa_code::Entity::update_many()
            .col_expr(mfa_code::Column::ConsumedAt, Expr::value(code.created_at))
            .filter(mfa_code::Column::FactorId.eq(code.factor_id))
            .filter(same_challenge(code.challenge_id))
            .filter(mfa_code::Column::ConsumedAt.is_null())
            .exec(&self.txn)
            .await
            .map_err(store_error)?;
        mfa_code::Entity::insert(row).exec_without_returning(&self.txn).await.map_err(store_error)?;
        Ok(())
    }

    async fn replace_backup_codes(
        &self,
        user: UserId,
        hashes: &[TokenHash],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        store_backup_codes(&self.txn, user, hashes, now).await.map_err(store_error)
    }

    async fn use_backup_code(
        &self,
        user: UserId,
        hash: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<Option<u32>, StoreError> {
        // The compare-and-swap: of parallel uses of one code exactly one
        // finds it unused.
        let used = backup_code::Entity::update_many()
            .col_expr(backup_code::Column::UsedAt, Expr::value(now))
            .filter(backup_code::Column::UserId.eq(*user.as_uuid()))
            .filter(backup_code::Column::CodeHash.eq(hash.as_bytes().to_vec()))
            .filter(backup_code::Column::UsedAt.is_null())
            .exec(&self.txn)
            .await
            .map_err(store_error)?;
        if used.rows_affected != 1 {
            return Ok(None);
        }
        let remaining = backup_code::Entity::find()
            .filter(backup_code::Column::UserId.eq(*user.as_uuid()))
            .filter(backup_code::Column::UsedAt.is_null())
            .count(&self.txn)
            .await
            .map_err(store_error)?;
        u32::try_from(remaining)
            .map(Some)
            .map_err(|_| StoreError::Internal(format!("{remaining} backup codes do not fit a u32").into()))
    }

    async fn advance_totp_step(&self, factor: Uuid, step: i64) -> Result<bool, StoreError> {
        advance_totp_step(&self.txn, factor, step).await.map_err(store_error)
    }

    async fn use_code(
        &self,
        factor: Uuid,
        challenge: Option<Uuid>,
        hash: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        use_code(&self.txn, factor, challenge, hash, now).await.map_err(store_error)
    }
}

#[async_trait]
impl MfaRepository for SqlMfaRepository {
    async fn factors(&self, user: UserId) -> Result<Vec<Factor>, StoreError> {
        list_factors(&self.conn, user).await.map_err(store_error)
    }

    async fn advance_totp_step(&self, factor: Uuid, step: i64) -> Result<bool, StoreError> {
        advance_totp_step(&self.conn, factor, step).await.map_err(store_error)
    }

    async fn use_code(
        &self,
        factor: Uuid,
        challenge: Option<Uuid>,
        hash: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let txn = begin(&self.conn).await?;
        let outcome = use_code(&txn, factor, challenge, hash, now).await;
        finish(txn, outcome).await
    }

    async fn create_challenge(&self, challenge: &MfaChallenge) -> Result<(), StoreError> {
        insert_challenge(&self.conn, challenge).await
    }

    async fn challenge(&self, id: Uuid) -> Result<Option<MfaChallenge>, StoreError> {
        let row = mfa_challenge::Entity::find_by_id(id).one(&self.conn).await.map_err(store_error)?;
        row.map(challenge_to_domain).transpose().map_err(store_error)
    }

    async fn failures_since(&self, user: UserId, since: DateTime<Utc>) -> Result<u32, StoreError> {
        failures_since(&self.conn, user, since).await
    }
}

#[async_trait]
impl ChallengeWrites for SqlUnitOfWork {
    async fn get(&self, id: Uuid) -> Result<Option<MfaChallenge>, StoreError> {
        let row = mfa_challenge::Entity::find_by_id(id).one(&self.txn).await.map_err(store_error)?;
        row.map(challenge_to_domain).transpose().map_err(store_error)
    }

    async fn insert(&self, challenge: &MfaChallenge) -> Result<(), StoreError> {
        insert_challenge(&self.txn, challenge).await
    }

    async fn delete(&self, id: Uuid) -> Result<(), StoreError> {
        // Its codes go with it (ON DELETE CASCADE).
        mfa_challenge::Entity::delete_by_id(id).exec(&self.txn).await.map_err(store_error)?;
        Ok(())
    }

    async fn failures_since(&self, user: UserId, since: DateTime<Utc>) -> Result<u32, StoreError> {
        failures_since(&self.txn, user, since).await
    }

    async fn record_failure(&self, id: Uuid) -> Result<Option<u32>, StoreError> {
        record_challenge_failure(&self.txn, id).await
    }

    async fn pass(&self, id: Uuid, now: DateTime<Utc>) -> Result<bool, StoreError> {
        pass_challenge(&self.txn, id, now).await.map_err(store_error)
    }
}

/// The TOTP compare-and-set: one statement, so of parallel requests with the
/// same step exactly one finds the stored step still older.
async fn advance_totp_step<C: ConnectionTrait>(conn: &C, factor: Uuid, step: i64) -> Result<bool, DbErr> {
    let advanced = mfa_factor::Entity::update_many()
        .col_expr(mfa_factor::Column::LastTotpStep, Expr::value(step))
        .filter(mfa_factor::Column::Id.eq(factor))
        .filter(
            Condition::any()
                .add(mfa_factor::Column::LastTotpStep.is_null())
                .add(mfa_factor::Column::LastTotpStep.lt(step)),
        )
        .exec(conn)
        .await?;
    Ok(advanced.rows_affected == 1)
}

/// Uses or counts a code, in a transaction the caller holds.
async fn use_code<C: ConnectionTrait>(
    txn: &C,
    factor: Uuid,
    challenge: Option<Uuid>,
    hash: &TokenHash,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    // The consumption, first: it matches only when the newest unused
    // code has this digest and may still be used.
    let consumed = mfa_code::Entity::update_many()
        .col_expr(mfa_code::Column::ConsumedAt, Expr::value(now))
        .filter(mfa_code::Column::Id.in_subquery(newest_unused_code(factor, challenge)))
        .filter(mfa_code::Column::CodeHash.eq(hash.as_bytes().to_vec()))
        .filter(usable_code(now))
        .exec(txn)
        .await?;
    if consumed.rows_affected == 1 {
        return Ok(true);
    }
    // Otherwise a wrong code on a usable one counts; nothing counts
    // once the code is used, expired or out of attempts.
    mfa_code::Entity::update_many()
        .col_expr(mfa_code::Column::Attempts, Expr::col(mfa_code::Column::Attempts).add(1))
        .filter(mfa_code::Column::Id.in_subquery(newest_unused_code(factor, challenge)))
        .filter(usable_code(now))
        .exec(txn)
        .await?;
    Ok(false)
}

async fn insert_challenge<C: ConnectionTrait>(conn: &C, challenge: &MfaChallenge) -> Result<(), StoreError> {
    let row = mfa_challenge::ActiveModel {
        id: Set(challenge.id()),
        user_id: Set(*challenge.user_id().as_uuid()),
        user_agent: Set(challenge.client().user_agent.clone()),
        client_ip: Set(challenge.client().ip.clone()),
        created_at: Set(challenge.created_at()),
        expires_at: Set(challenge.expires_at()),
        attempts: Set(to_i32(challenge.attempts()).map_err(store_error)?),
        max_attempts: Set(to_i32(challenge.max_attempts()).map_err(store_error)?),
        consumed_at: Set(challenge.consumed_at()),
    };
    mfa_challenge::Entity::insert(row).exec_without_returning(conn).await.map_err(store_error)?;
    Ok(())
}

async fn record_challenge_failure<C: ConnectionTrait>(conn: &C, id: Uuid) -> Result<Option<u32>, StoreError> {
    let mut count = mfa_challenge::Entity::update_many()
        .col_expr(mfa_challenge::Column::Attempts, Expr::col(mfa_challenge::Column::Attempts).add(1))
        .filter(mfa_challenge::Column::Id.eq(id))
        .filter(mfa_challenge::Column::ConsumedAt.is_null())
        .filter(Expr::col(mfa_challenge::Column::Attempts).lt(Expr::col(mfa_challenge::Column::MaxAttempts)))
        .into_query();
    // The count this statement produced, not a later read that a
    // concurrent failure may already have moved on.
    count.returning_col(mfa_challenge::Column::Attempts);
    let stmt = conn.get_database_backend().build(&count);
    let Some(row) = conn.query_one(stmt).await.map_err(store_error)? else { return Ok(None) };
    let attempts: i32 = row.try_get("", "attempts").map_err(store_error)?;
    to_u32(attempts).map(Some).map_err(store_error)
}

async fn pass_challenge<C: ConnectionTrait>(conn: &C, id: Uuid, now: DateTime<Utc>) -> Result<bool, DbErr> {
    let consumed = mfa_challenge::Entity::update_many()
        .col_expr(mfa_challenge::Column::ConsumedAt, Expr::value(now))
        .filter(mfa_challenge::Column::Id.eq(id))
        .filter(mfa_challenge::Column::ConsumedAt.is_null())
        .filter(mfa_challenge::Column::ExpiresAt.gt(now))
        .exec(conn)
        .await?;
    Ok(consumed.rows_affected == 1)
}

async fn failures_since<C: ConnectionTrait>(conn: &C, user: UserId, since: DateTime<Utc>) -> Result<u32, StoreError> {
    // SUM is NULL over no rows; PostgreSQL sums integers as bigint.
    let total = Func::coalesce([Expr::col(mfa_challenge::Column::Attempts).sum(), Expr::value(0_i64)]);
    let sum: Option<i64> = mfa_challenge::Entity::find()
        .select_only()
        .column_as(Expr::expr(total), "total")
        .filter(mfa_challenge::Column::UserId.eq(*user.as_uuid()))
        .filter(mfa_challenge::Column::CreatedAt.gte(since))
        .into_tuple()
        .one(conn)
        .await
        .map_err(store_error)?;
    let sum = sum.unwrap_or(0);
    u32::try_from(sum).map_err(|_| StoreError::Internal(format!("failure count {sum} does not fit a u32").into()))
}

/// The user's factors, oldest first.
async fn list_factors<C: ConnectionTrait>(conn: &C, user: UserId) -> Result<Vec<Factor>, DbErr> {
    let rows = mfa_factor::Entity::find()
        .filter(mfa_factor::Column::UserId.eq(*user.as_uuid()))
        .order_by_asc(mfa_factor::Column::CreatedAt)
        .order_by_asc(mfa_factor::Column::Id)
        .all(conn)
        .await?;
    rows.into_iter().map(factor_to_domain).collect()
}

/// Replaces `user`'s backup codes with `hashes`, all unused, inside `txn`.
async fn store_backup_codes(
    txn: &DatabaseTransaction,
    user: UserId,
    hashes: &[TokenHash],
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    delete_backup_codes(txn, user).await?;
    if hashes.is_empty() {
        return Ok(());
    }
    let rows = hashes.iter().map(|h| backup_code::ActiveModel {
        user_id: Set(*user.as_uuid()),
        code_hash: Set(h.as_bytes().to_vec()),
        created_at: Set(now),
        used_at: Set(None),
    });
    backup_code::Entity::insert_many(rows).exec_without_returning(txn).await?;
    Ok(())
}

async fn delete_backup_codes(txn: &DatabaseTransaction, user: UserId) -> Result<(), DbErr> {
    backup_code::Entity::delete_many().filter(backup_code::Column::UserId.eq(*user.as_uuid())).exec(txn).await?;
    Ok(())
}

/// Codes for `challenge`, or enrolment codes (`challenge_id IS NULL`) when
/// there is none: a plain `=` would never match NULL.
fn same_challenge(challenge: Option<Uuid>) -> SimpleExpr {
    match challenge {
        Some(id) => mfa_code::Column::ChallengeId.eq(id),
        None => mfa_code::Column::ChallengeId.is_null(),
    }
}

/// The id of the newest unused code of `factor` for `challenge` (at most one row).
fn newest_unused_code(factor: Uuid, challenge: Option<Uuid>) -> sea_orm::sea_query::SelectStatement {
    mfa_code::Entity::find()
        .select_only()
        .column(mfa_code::Column::Id)
        .filter(mfa_code::Column::FactorId.eq(factor))
        .filter(same_challenge(challenge))
        .filter(mfa_code::Column::ConsumedAt.is_null())
        .order_by_desc(mfa_code::Column::CreatedAt)
        .order_by_desc(mfa_code::Column::Id)
        .limit(1)
        .into_query()
}

/// A code that may still be tried at `now`: unused, unexpired, within its attempts.
/// Re-checked on the row itself, so a concurrent use or count is seen.
fn usable_code(now: DateTime<Utc>) -> Condition {
    Condition::all()
        .add(mfa_code::Column::ConsumedAt.is_null())
        .add(mfa_code::Column::ExpiresAt.gt(now))
        .add(Expr::col(mfa_code::Column::Attempts).lt(Expr::col(mfa_code::Column::MaxAttempts)))
}

fn factor_row(f: &Factor) -> mfa_factor::ActiveModel {
    mfa_factor::ActiveModel {
        id: Set(f.id()),
        user_id: Set(*f.user_id().as_uuid()),
        kind: Set(f.kind().as_str().to_owned()),
        destination: Set(f.destination().map(str::to_owned)),
        secret_key_id: Set(f.secret().map(|s| s.key_id.clone())),
        secret_data: Set(f.secret().map(|s| s.data.clone())),
        active: Set(f.active()),
        created_at: Set(f.created_at()),
        confirmed_at: Set(f.confirmed_at()),
        last_totp_step: Set(f.last_totp_step()),
    }
}

fn code_row(c: &FactorCode) -> Result<mfa_code::ActiveModel, DbErr> {
    Ok(mfa_code::ActiveModel {
        id: Set(c.id),
        factor_id: Set(c.factor_id),
        challenge_id: Set(c.challenge_id),
        code_hash: Set(c.code_hash.as_bytes().to_vec()),
        attempts: Set(to_i32(c.attempts)?),
        max_attempts: Set(to_i32(c.max_attempts)?),
        created_at: Set(c.created_at),
        expires_at: Set(c.expires_at),
        consumed_at: Set(None),
    })
}

fn factor_to_domain(row: mfa_factor::Model) -> Result<Factor, DbErr> {
    let kind = FactorKind::parse(&row.kind)
        .ok_or_else(|| DbErr::Custom(format!("stored factor kind {:?} is unknown", row.kind)))?;
    let secret = match (row.secret_key_id, row.secret_data) {
        (Some(key_id), Some(data)) => Some(SealedSecret { key_id, data }),
        (None, None) => None,
        _ => return Err(DbErr::Custom(format!("factor {} has half a sealed secret", row.id))),
    };
    Ok(Factor::restore(
        row.id,
        UserId::from_uuid(row.user_id),
        kind,
        row.destination,
        secret,
        row.active,
        row.created_at,
        row.confirmed_at,
        row.last_totp_step,
    ))
}

fn challenge_to_domain(row: mfa_challenge::Model) -> Result<MfaChallenge, DbErr> {
    Ok(MfaChallenge::restore(
        row.id,
        UserId::from_uuid(row.user_id),
        ClientInfo { user_agent: row.user_agent, ip: row.client_ip },
        row.created_at,
        row.expires_at,
        to_u32(row.attempts)?,
        to_u32(row.max_attempts)?,
        row.consumed_at,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::DbBackend;

    #[test]
    fn enrolment_codes_are_matched_null_safely() {
        let pg = DbBackend::Postgres.build(&newest_unused_code(Uuid::nil(), None)).to_string();
        assert!(pg.contains(r#""challenge_id" IS NULL"#), "{pg}");
        let scoped = DbBackend::Postgres.build(&newest_unused_code(Uuid::nil(), Some(Uuid::max()))).to_string();
        assert!(scoped.contains(r#""challenge_id" = "#), "{scoped}");
    }
}
