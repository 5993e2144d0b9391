//! Session lifetimes and device look-ups.
//!
//! `sessions.absolute_expires_at` is the absolute end of a session, however
//! active it is: refreshing moves `expires_at` (the idle timeout) forward but
//! never past it.
//!
//! Sessions that exist when this runs get their current `expires_at` as their
//! absolute end, so no live session ends earlier than it would have. Neither
//! backend can fill a new column from another column in `ALTER TABLE … ADD
//! COLUMN`, and SQLite only accepts a constant default there, so the column
//! is added `NOT NULL DEFAULT '1970-01-01T00:00:00+00:00'` (the epoch, in the
//! text form the SQLite driver writes timestamps in, which PostgreSQL also
//! reads) and a plain `UPDATE` then copies `expires_at` into it, in the same
//! migration. The default stays in the schema on both backends, so they have
//! the same one: Gatehouse always writes the column, and a row written by
//! something that does not would have ended at the epoch — it fails closed
//! instead of living forever.
//!
//! "Has this user signed in from this device before?" looks up a user's
//! sessions by client IP (and then user agent): the index on `(user_id,
//! client_ip)` serves it, and, leading with `user_id`, every look-up the
//! single-column `idx_sessions_user_id` served, which is therefore dropped.

use sea_orm_migration::prelude::*;

/// The default that fills `absolute_expires_at` of existing rows until the
/// `UPDATE` below replaces it.
const EPOCH: &str = "1970-01-01T00:00:00+00:00";

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Sessions::Table)
                    .add_column(
                        ColumnDef::new(Sessions::AbsoluteExpiresAt)
                            .timestamp_with_time_zone()
                            .not_null()
                            .default(EPOCH),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .exec_stmt(
                Query::update()
                    .table(Sessions::Table)
                    .value(Sessions::AbsoluteExpiresAt, Expr::col(Sessions::ExpiresAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_index(
                Index::create()
                    .name("idx_sessions_user_id_client_ip")
                    .table(Sessions::Table)
                    .col(Sessions::UserId)
                    .col(Sessions::ClientIp)
                    .to_owned(),
            )
            .await?;
        manager.drop_index(Index::drop().name("idx_sessions_user_id").table(Sessions::Table).to_owned()).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create().name("idx_sessions_user_id").table(Sessions::Table).col(Sessions::UserId).to_owned(),
            )
            .await?;
        manager
            .drop_index(Index::drop().name("idx_sessions_user_id_client_ip").table(Sessions::Table).to_owned())
            .await?;
        manager
            .alter_table(Table::alter().table(Sessions::Table).drop_column(Sessions::AbsoluteExpiresAt).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    UserId,
    ExpiresAt,
    AbsoluteExpiresAt,
    ClientIp,
}
