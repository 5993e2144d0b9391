//! [`SessionRepository`] over the `sessions` and `refresh_tokens` tables.
//!
//! Rotation is a compare-and-swap on the presented token's row, done as the
//! transaction's first statement: `UPDATE … SET rotated_at = now WHERE
//! rotated_at IS NULL`. Writing first matters on both backends. PostgreSQL
//! makes a concurrent rotation wait on the row lock and then re-check the
//! condition, so it matches nothing and the loser reports reuse. SQLite takes
//! its write lock at that first statement, where the busy timeout still
//! applies; a transaction that read first would have to upgrade a stale read
//! snapshot and fail at once with "database is locked".

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use gatehouse_application::ports::store::{NewRefreshToken, Rotation, SessionRepository, StoreError};
use gatehouse_domain::{ClientInfo, RevokeReason, Session, SessionId, TokenHash, UserId};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait,
    FromQueryResult, JoinType, QueryFilter, QueryOrder, QuerySelect, QueryTrait, RelationTrait, TransactionTrait,
};

use crate::database::Database;
use crate::entity::{refresh_token, session};
use crate::error::{abandon, store_error};

/// Sessions and their refresh-token chains in SQL.
#[derive(Debug, Clone)]
pub struct SqlSessionRepository {
    conn: DatabaseConnection,
}

impl SqlSessionRepository {
    /// A repository over `db`'s pool.
    #[must_use]
    pub fn new(db: &Database) -> Self {
        Self { conn: db.conn.clone() }
    }
}

#[async_trait]
impl SessionRepository for SqlSessionRepository {
    async fn create(&self, session: &Session, refresh: &NewRefreshToken) -> Result<(), StoreError> {
        let row = session::ActiveModel {
            id: Set(*session.id.as_uuid()),
            user_id: Set(*session.user_id.as_uuid()),
            created_at: Set(session.created_at),
            last_used_at: Set(session.last_used_at),
            expires_at: Set(session.expires_at),
            revoked_at: Set(session.revoked_at),
            revoke_reason: Set(None),
            user_agent: Set(session.client.user_agent.clone()),
            client_ip: Set(session.client.ip.clone()),
        };
        let token = token_row(session.id, refresh);
        let txn = self.conn.begin().await.map_err(store_error)?;
        let inserted = async {
            session::Entity::insert(row).exec_without_returning(&txn).await?;
            refresh_token::Entity::insert(token).exec_without_returning(&txn).await
        }
        .await;
        match inserted {
            Ok(_) => txn.commit().await.map_err(store_error),
            Err(err) => Err(abandon(txn, err).await),
        }
    }

    async fn rotate_refresh_token(
        &self,
        presented: &TokenHash,
        next: &NewRefreshToken,
        now: DateTime<Utc>,
    ) -> Result<Rotation, StoreError> {
        let txn = self.conn.begin().await.map_err(store_error)?;
        match rotate_in(&txn, presented, next, now).await {
            Ok(rotation @ Rotation::Rotated(_)) => {
                txn.commit().await.map_err(store_error)?;
                Ok(rotation)
            }
            // Nothing may change when the token is not rotated: undo the
            // retirement of a token whose session has ended.
            Ok(other) => {
                txn.rollback().await.map_err(store_error)?;
                Ok(other)
            }
            Err(err) => Err(abandon(txn, err).await),
        }
    }

    async fn find_by_refresh_token(&self, hash: &TokenHash) -> Result<Option<Session>, StoreError> {
        session_of_token(&self.conn, hash).await.map(|s| s.map(to_domain)).map_err(store_error)
    }

    async fn revoke(
        &self,
        id: SessionId,
        reason: RevokeReason,
        now: DateTime<Utc>,
    ) -> Result<Option<Session>, StoreError> {
        // Only a live session is stamped, so an earlier revocation keeps its time.
        session::Entity::update_many()
            .col_expr(session::Column::RevokedAt, Expr::value(now))
            .col_expr(session::Column::RevokeReason, Expr::value(reason.as_str()))
            .filter(session::Column::Id.eq(*id.as_uuid()))
            .filter(session::Column::RevokedAt.is_null())
            .exec(&self.conn)
            .await
            .map_err(store_error)?;
        let found = session::Entity::find_by_id(*id.as_uuid()).one(&self.conn).await.map_err(store_error)?;
        Ok(found.map(to_domain))
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
}

/// The rotation steps, inside `txn`; the caller commits only on `Rotated`.
async fn rotate_in(
    txn: &DatabaseTransaction,
    presented: &TokenHash,
    next: &NewRefreshToken,
    now: DateTime<Utc>,
) -> Result<Rotation, DbErr> {
    let presented_bytes = presented.as_bytes().to_vec();
    // The compare-and-swap, and the transaction's first statement (see the module docs).
    let retired = refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::RotatedAt, Expr::value(now))
        .filter(refresh_token::Column::TokenHash.eq(presented_bytes.clone()))
        .filter(refresh_token::Column::RotatedAt.is_null())
        .filter(refresh_token::Column::ExpiresAt.gt(now))
        .exec(txn)
        .await?;
    if retired.rows_affected != 1 {
        let row = refresh_token::Entity::find_by_id(presented_bytes).one(txn).await?;
        return Ok(match row {
            None => Rotation::Unknown,
            Some(r) if r.rotated_at.is_some() => Rotation::Reused { session_id: SessionId::from_uuid(r.session_id) },
            Some(r) if r.expires_at <= now => Rotation::Expired,
            Some(_) => Rotation::Unknown,
        });
    }

    let Some(row) = session_of_token(txn, presented).await? else { return Ok(Rotation::Unknown) };
    let mut session = to_domain(row);
    if !session.is_active(now) {
        return Ok(Rotation::SessionEnded);
    }
    // Guarded again in the write, so a revocation committed since the read
    // above still ends the session instead of being overtaken.
    let extended = session::Entity::update_many()
        .col_expr(session::Column::LastUsedAt, Expr::value(now))
        .col_expr(session::Column::ExpiresAt, Expr::value(next.expires_at))
        .filter(session::Column::Id.eq(*session.id.as_uuid()))
        .filter(session::Column::RevokedAt.is_null())
        .filter(session::Column::ExpiresAt.gt(now))
        .exec(txn)
        .await?;
    if extended.rows_affected != 1 {
        return Ok(Rotation::SessionEnded);
    }
    refresh_token::Entity::insert(token_row(session.id, next)).exec_without_returning(txn).await?;
    session.last_used_at = now;
    session.expires_at = next.expires_at;
    Ok(Rotation::Rotated(session))
}

/// Revokes every unrevoked session of `user` but `keep`, in one statement,
/// and returns them as they are now (revoked), oldest first.
pub(crate) async fn revoke_user_sessions(
    txn: &DatabaseTransaction,
    user: UserId,
    keep: Option<SessionId>,
    reason: RevokeReason,
    now: DateTime<Utc>,
) -> Result<Vec<Session>, DbErr> {
    let mut revoke = session::Entity::update_many()
        .col_expr(session::Column::RevokedAt, Expr::value(now))
        .col_expr(session::Column::RevokeReason, Expr::value(reason.as_str()))
        .filter(session::Column::UserId.eq(*user.as_uuid()))
        .filter(session::Column::RevokedAt.is_null());
    if let Some(keep) = keep {
        revoke = revoke.filter(session::Column::Id.ne(*keep.as_uuid()));
    }
    let mut query = revoke.into_query();
    query.returning_all();
    let rows = session::Model::find_by_statement(txn.get_database_backend().build(&query)).all(txn).await?;
    let mut revoked: Vec<Session> = rows.into_iter().map(to_domain).collect();
    revoked.sort_by_key(|s| (s.created_at, s.id));
    Ok(revoked)
}

async fn session_of_token<C: ConnectionTrait>(conn: &C, hash: &TokenHash) -> Result<Option<session::Model>, DbErr> {
    session::Entity::find()
        .join(JoinType::InnerJoin, session::Relation::RefreshToken.def())
        .filter(refresh_token::Column::TokenHash.eq(hash.as_bytes().to_vec()))
        .one(conn)
        .await
}

fn token_row(session: SessionId, token: &NewRefreshToken) -> refresh_token::ActiveModel {
    refresh_token::ActiveModel {
        token_hash: Set(token.hash.as_bytes().to_vec()),
        session_id: Set(*session.as_uuid()),
        issued_at: Set(token.issued_at),
        expires_at: Set(token.expires_at),
        rotated_at: Set(None),
    }
}

pub(crate) fn to_domain(row: session::Model) -> Session {
    Session {
        id: SessionId::from_uuid(row.id),
        user_id: UserId::from_uuid(row.user_id),
        created_at: row.created_at,
        last_used_at: row.last_used_at,
        expires_at: row.expires_at,
        revoked_at: row.revoked_at,
        client: ClientInfo { user_agent: row.user_agent, ip: row.client_ip },
    }
}
