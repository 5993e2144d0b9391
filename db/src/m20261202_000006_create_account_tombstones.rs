//! Tombstones of deleted accounts: the account's rows are gone, but access
//! tokens minted before the deletion live until they expire, and the
//! denylist is a cache rebuilt from SQL. So deleting an account leaves one
//! row, the user id and the instant its last access token expires, which
//! every rebuild re-denies; the session-prune task deletes it afterwards.
//!
//! No foreign key to `users`: the row outlives it by design.
//! `idx_account_tombstones_until` serves both the rebuild (`until > now`)
//! and the prune (`until < cutoff`).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AccountTombstones::Table)
                    .col(ColumnDef::new(AccountTombstones::UserId).uuid().not_null().primary_key())
                    .col(ColumnDef::new(AccountTombstones::Until).timestamp_with_time_zone().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_account_tombstones_until")
                    .table(AccountTombstones::Table)
                    .col(AccountTombstones::Until)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(AccountTombstones::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum AccountTombstones {
    Table,
    UserId,
    Until,
}
