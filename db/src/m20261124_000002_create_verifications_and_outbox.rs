//! One-time verifications (email verification, password reset) and the
//! transactional outbox of events.
//!
//! A verification stores only the SHA-256 digests of its link token and its
//! short code; the token digest is unique, so a link finds exactly one row.
//! Its attempt counter and `consumed_at` are changed only by guarded single
//! statements (`… WHERE attempts < max_attempts`, `… WHERE consumed_at IS
//! NULL`), which is what makes the limits hold under concurrency.
//!
//! An outbox row is written in the transaction of the change it reports.
//! `available_at` is when the row is next due: a relay that claims a row
//! moves it to the end of its lease, a failed publish moves it to the next
//! retry, and `sent_at` marks a confirmed publish. Rows have no foreign key
//! to the user: an event about a deleted account must still go out.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Verifications::Table)
                    .col(ColumnDef::new(Verifications::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Verifications::UserId).uuid().not_null())
                    .col(ColumnDef::new(Verifications::Email).text().not_null())
                    .col(ColumnDef::new(Verifications::Purpose).text().not_null())
                    .col(ColumnDef::new(Verifications::TokenHash).binary_len(32).not_null().unique_key())
                    .col(ColumnDef::new(Verifications::CodeHash).binary_len(32).not_null())
                    .col(ColumnDef::new(Verifications::Attempts).integer().not_null().default(0))
                    .col(ColumnDef::new(Verifications::MaxAttempts).integer().not_null())
                    .col(ColumnDef::new(Verifications::CreatedAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(Verifications::ExpiresAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(Verifications::ConsumedAt).timestamp_with_time_zone().null())
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_verifications_user_id")
                            .from(Verifications::Table, Verifications::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_verifications_email_purpose")
                    .table(Verifications::Table)
                    .col(Verifications::Email)
                    .col(Verifications::Purpose)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_verifications_user_id")
                    .table(Verifications::Table)
                    .col(Verifications::UserId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Outbox::Table)
                    .col(ColumnDef::new(Outbox::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Outbox::EventType).text().not_null())
                    .col(ColumnDef::new(Outbox::Payload).blob().not_null())
                    .col(ColumnDef::new(Outbox::OccurredAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(Outbox::CreatedAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(Outbox::AvailableAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(Outbox::Attempts).integer().not_null().default(0))
                    .col(ColumnDef::new(Outbox::SentAt).timestamp_with_time_zone().null())
                    .to_owned(),
            )
            .await?;
        // The relay's claim: unsent rows that are due. Partial, so it holds
        // only the (few) pending rows however many sent ones await pruning.
        manager
            .create_index(
                Index::create()
                    .name("idx_outbox_pending")
                    .table(Outbox::Table)
                    .col(Outbox::AvailableAt)
                    .col(Outbox::CreatedAt)
                    .and_where(Expr::col(Outbox::SentAt).is_null())
                    .to_owned(),
            )
            .await?;
        // Pruning of sent rows.
        manager
            .create_index(
                Index::create().name("idx_outbox_sent_at").table(Outbox::Table).col(Outbox::SentAt).to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [Outbox::Table.into_table_ref(), Verifications::Table.into_table_ref()] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Verifications {
    Table,
    Id,
    UserId,
    Email,
    Purpose,
    TokenHash,
    CodeHash,
    Attempts,
    MaxAttempts,
    CreatedAt,
    ExpiresAt,
    ConsumedAt,
}

#[derive(DeriveIden)]
enum Outbox {
    Table,
    Id,
    EventType,
    Payload,
    OccurredAt,
    CreatedAt,
    AvailableAt,
    Attempts,
    SentAt,
}
