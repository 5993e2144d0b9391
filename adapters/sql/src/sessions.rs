//! [`SessionRepository`] and the unit of work's [`SessionWrites`] over the
//! `sessions` and `refresh_tokens` tables.
//!
//! A refresh retires the presented token with a compare-and-swap on its row:
//! `UPDATE … SET rotated_at = now WHERE rotated_at IS NULL`. PostgreSQL makes
//! a concurrent refresh with the same token wait on the row lock and then
//! re-check the condition, so it matches nothing and the loser reports
//! reuse; SQLite's unit of work holds the write lock from its start. The
//! session row is then read under a lock, the domain decides whether and
//! until when it goes on ([`Session::rotate`]), and the result is stored with
//! the next token; a refusal drops the unit of work, which undoes the
//! retirement. New sessions and revocations are written in a unit of work
//! too, which locks the rows it reads; pruning is a single statement.
//!
//! [`SessionWrites`]: gatehouse_application::ports::unit_of_work::SessionWrites
//! [`Session::rotate`]: gatehouse_domain::Session::rotate

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use gatehouse_application::ports::store::{NewRefreshToken, Retirement, SessionRepository, StoreError, Tombstone};
use gatehouse_application::ports::unit_of_work::SessionWrites;
use gatehouse_domain::{ClientInfo, RevokeReason, Session, SessionId, TokenHash, UserId};
use sea_orm::sea_query::{Expr, LockType, UpdateStatement};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait, FromQueryResult, JoinType,
    QueryFilter, QueryOrder, QuerySelect, QueryTrait, RelationTrait,
};
use uuid::Uuid;

use crate::database::Database;
use crate::entity::{account_tombstone, refresh_token, session};
use crate::error::store_error;
use crate::pool::Pool;
use crate::unit_of_work::SqlUnitOfWork;

/// Sessions and their refresh-token chains in SQL.
#[derive(Debug, Clone)]
pub struct SqlSessionRepository {
    conn: Pool,
}

impl SqlSessionRepository {
    /// A repository over `db`'s pool.
    #[must_use]
    pub fn new(db: &Database) -> Self {
        Self { conn: db.conn.clone() }
    }
}

#[async_trait]
impl SessionWrites for SqlUnitOfWork {
    async fn insert(&self, session: &Session, refresh: &NewRefreshToken) -> Result<(), StoreError> {
        let row = session::ActiveModel {
            id: Set(*session.id().as_uuid()),
            user_id: Set(*session.user_id().as_uuid()),
            created_at: Set(session.created_at()),
            last_used_at: Set(session.last_used_at()),
            expires_at: Set(session.expires_at()),
            absolute_expires_at: Set(session.absolute_expires_at()),
            revoked_at: Set(session.revoked_at()),
            revoke_reason: Set(None),
            user_agent: Set(session.client().user_agent.clone()),
            client_ip: Set(session.client().ip.clone()),
        };
        let token = token_row(session.id(), refresh, refresh.expires_at);
        session::Entity::insert(row).exec_without_returning(&self.txn).await.map_err(store_error)?;
        refresh_token::Entity::insert(token).exec_without_returning(&self.txn).await.map_err(store_error)?;
        Ok(())
    }

    async fn get(&self, id: SessionId) -> Result<Option<Session>, StoreError> {
        let found = session::Entity::find_by_id(*id.as_uuid())
            .lock(LockType::Update)
            .one(&self.txn)
            .await
            .map_err(store_error)?;
        Ok(found.map(to_domain))
    }

    async fn unrevoked(&self, user: UserId) -> Result<Vec<Session>, StoreError> {
        let rows = session::Entity::find()
            .filter(session::Column::UserId.eq(*user.as_uuid()))
            .filter(session::Column::RevokedAt.is_null())
            .order_by_asc(session::Column::CreatedAt)
            .order_by_asc(session::Column::Id)
            .lock(LockType::Update)
            .all(&self.txn)
            .await
            .map_err(store_error)?;
        Ok(rows.into_iter().map(to_domain).collect())
    }

    async fn owner_of_refresh_token(&self, presented: &TokenHash) -> Result<Option<UserId>, StoreError> {
        let session = session_of_token(&self.txn, presented).await.map_err(store_error)?;
        Ok(session.map(|s| UserId::from_uuid(s.user_id)))
    }

    async fn retire_refresh_token(&self, presented: &TokenHash, now: DateTime<Utc>) -> Result<Retirement, StoreError> {
        let presented_bytes = presented.as_bytes().to_vec();
        // The compare-and-swap (see the module docs).
        let retire = refresh_token::Entity::update_many()
            .col_expr(refresh_token::Column::RotatedAt, Expr::value(now))
            .filter(refresh_token::Column::TokenHash.eq(presented_bytes.clone()))
            .filter(refresh_token::Column::RotatedAt.is_null())
            .filter(refresh_token::Column::ExpiresAt.gt(now))
            .into_query();
        let retired = returning::<refresh_token::Model>(&self.txn, retire).await.map_err(store_error)?;
        if let Some(retired) = retired.first() {
            return Ok(Retirement::Retired { session_id: SessionId::from_uuid(retired.session_id) });
        }
        let row = refresh_token::Entity::find_by_id(presented_bytes).one(&self.txn).await.map_err(store_error)?;
        Ok(match row {
            None => Retirement::Unknown,
            Some(r) if r.rotated_at.is_some() => Retirement::Reused { session_id: SessionId::from_uuid(r.session_id) },
            Some(r) if r.expires_at <= now => Retirement::Expired,
            Some(_) => Retirement::Unknown,
        })
    }

    async fn save_rotation(&self, session: &Session, next: &NewRefreshToken) -> Result<(), StoreError> {
        session::Entity::update_many()
            .col_expr(session::Column::LastUsedAt, Expr::value(session.last_used_at()))
            .col_expr(session::Column::ExpiresAt, Expr::value(session.expires_at()))
            .col_expr(session::Column::ClientIp, Expr::value(session.client().ip.clone()))
            .col_expr(session::Column::UserAgent, Expr::value(session.client().user_agent.clone()))
            .filter(session::Column::Id.eq(*session.id().as_uuid()))
            .exec(&self.txn)
            .await
            .map_err(store_error)?;
        refresh_token::Entity::insert(token_row(session.id(), next, next.expires_at))
            .exec_without_returning(&self.txn)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn save_revocations(&self, sessions: &[Session], reason: RevokeReason) -> Result<(), StoreError> {
        for s in sessions {
            session::Entity::update_many()
                .col_expr(session::Column::RevokedAt, Expr::value(s.revoked_at()))
                .col_expr(session::Column::RevokeReason, Expr::value(reason.as_str()))
                .filter(session::Column::Id.eq(*s.id().as_uuid()))
                .exec(&self.txn)
                .await
                .map_err(store_error)?;
        }
        Ok(())
    }
}

#[async_trait]
impl SessionRepository for SqlSessionRepository {
    async fn find_by_refresh_token(&self, hash: &TokenHash) -> Result<Option<Session>, StoreError> {
        session_of_token(&self.conn, hash).await.map(|s| s.map(to_domain)).map_err(store_error)
    }

    async fn get(&self, id: SessionId) -> Result<Option<Session>, StoreError> {
        let found = session::Entity::find_by_id(*id.as_uuid()).one(&self.conn).await.map_err(store_error)?;
        Ok(found.map(to_domain))
    }

    async fn list_live(&self, user: UserId, now: DateTime<Utc>) -> Result<Vec<Session>, StoreError> {
        let rows = session::Entity::find()
            .filter(session::Column::UserId.eq(*user.as_uuid()))
            .filter(session::Column::RevokedAt.is_null())
            .filter(session::Column::ExpiresAt.gt(now))
            .order_by_desc(session::Column::CreatedAt)
            .order_by_desc(session::Column::Id)
            .all(&self.conn)
            .await
            .map_err(store_error)?;
        Ok(rows.into_iter().map(to_domain).collect())
    }

    async fn seen_device(&self, user: UserId, client: &ClientInfo) -> Result<bool, StoreError> {
        // NULL-safe equality, spelled out: a missing value matches only a
        // missing value (`=` would match nothing against NULL).
        let same_ip = match &client.ip {
            Some(ip) => session::Column::ClientIp.eq(ip.as_str()),
            None => session::Column::ClientIp.is_null(),
        };
        let same_agent = match &client.user_agent {
            Some(ua) => session::Column::UserAgent.eq(ua.as_str()),
            None => session::Column::UserAgent.is_null(),
        };
        let found: Option<Uuid> = session::Entity::find()
            .select_only()
            .column(session::Column::Id)
            .filter(session::Column::UserId.eq(*user.as_uuid()))
            .filter(same_ip)
            .filter(same_agent)
            .limit(1)
            .into_tuple()
            .one(&self.conn)
            .await
            .map_err(store_error)?;
        Ok(found.is_some())
    }

    async fn revoked_since(&self, since: DateTime<Utc>) -> Result<Vec<Session>, StoreError> {
        let rows = session::Entity::find()
            .filter(session::Column::RevokedAt.gte(since))
            .order_by_asc(session::Column::RevokedAt)
            .all(&self.conn)
            .await
            .map_err(store_error)?;
        Ok(rows.into_iter().map(to_domain).collect())
    }

    async fn tombstones(&self, now: DateTime<Utc>) -> Result<Vec<Tombstone>, StoreError> {
        let rows = account_tombstone::Entity::find()
            .filter(account_tombstone::Column::Until.gt(now))
            .order_by_asc(account_tombstone::Column::Until)
            .order_by_asc(account_tombstone::Column::UserId)
            .all(&self.conn)
            .await
            .map_err(store_error)?;
        Ok(rows.into_iter().map(|r| Tombstone { user: UserId::from_uuid(r.user_id), until: r.until }).collect())
    }

    async fn prune(&self, ended_before: DateTime<Utc>) -> Result<u64, StoreError> {
        // One statement each; the refresh tokens go with their sessions (ON DELETE CASCADE).
        let pruned = session::Entity::delete_many()
            .filter(session::Column::ExpiresAt.lt(ended_before).or(session::Column::RevokedAt.lt(ended_before)))
            .exec(&self.conn)
            .await
            .map_err(store_error)?;
        let tombstones = account_tombstone::Entity::delete_many()
            .filter(account_tombstone::Column::Until.lt(ended_before))
            .exec(&self.conn)
            .await
            .map_err(store_error)?;
        Ok(pruned.rows_affected + tombstones.rows_affected)
    }
}

/// Runs `update` with `RETURNING *` and reads back the rows it changed, as
/// they are after the change (in no particular order).
async fn returning<M: FromQueryResult>(
    txn: &DatabaseTransaction,
    mut update: UpdateStatement,
) -> Result<Vec<M>, DbErr> {
    update.returning_all();
    M::find_by_statement(txn.get_database_backend().build(&update)).all(txn).await
}

async fn session_of_token<C: ConnectionTrait>(conn: &C, hash: &TokenHash) -> Result<Option<session::Model>, DbErr> {
    session::Entity::find()
        .join(JoinType::InnerJoin, session::Relation::RefreshToken.def())
        .filter(refresh_token::Column::TokenHash.eq(hash.as_bytes().to_vec()))
        .one(conn)
        .await
}

/// The row of `token`, stored with `expires_at` (the token's own expiry, or
/// the session's end where that comes first).
fn token_row(session: SessionId, token: &NewRefreshToken, expires_at: DateTime<Utc>) -> refresh_token::ActiveModel {
    refresh_token::ActiveModel {
        token_hash: Set(token.hash.as_bytes().to_vec()),
        session_id: Set(*session.as_uuid()),
        issued_at: Set(token.issued_at),
        expires_at: Set(expires_at),
        rotated_at: Set(None),
    }
}

pub(crate) fn to_domain(row: session::Model) -> Session {
    Session::restore(
        SessionId::from_uuid(row.id),
        UserId::from_uuid(row.user_id),
        row.created_at,
        row.last_used_at,
        row.expires_at,
        row.absolute_expires_at,
        row.revoked_at,
        ClientInfo { user_agent: row.user_agent, ip: row.client_ip },
    )
}
