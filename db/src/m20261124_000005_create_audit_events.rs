//! The audit trail: security-relevant facts, who did what to whom, when,
//! from where, and with what outcome.
//!
//! A fact that comes with a state change is written in that change's
//! transaction (it rides on the change's outbox message); one with no change
//! to go with (a failed login) is written on its own. Rows have no foreign
//! key to the user: the trail must outlive the account it is about.
//!
//! `details` holds the fact's small plain details as a JSON object of
//! strings, in their order (`{"reason":"invalid_credentials"}`).
//!
//! A user's trail is read newest first by actor or by subject, paged by
//! `(occurred_at, id)`: one index for each, ending in that key.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AuditEvents::Table)
                    .col(ColumnDef::new(AuditEvents::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(AuditEvents::Kind).text().not_null())
                    .col(ColumnDef::new(AuditEvents::OccurredAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(AuditEvents::ActorId).uuid().null())
                    .col(ColumnDef::new(AuditEvents::SubjectId).uuid().null())
                    .col(ColumnDef::new(AuditEvents::OrganizationId).text().null())
                    .col(ColumnDef::new(AuditEvents::ClientIp).text().null())
                    .col(ColumnDef::new(AuditEvents::UserAgent).text().null())
                    .col(ColumnDef::new(AuditEvents::Outcome).text().not_null())
                    .col(ColumnDef::new(AuditEvents::Details).text().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_audit_events_subject_id")
                    .table(AuditEvents::Table)
                    .col(AuditEvents::SubjectId)
                    .col(AuditEvents::OccurredAt)
                    .col(AuditEvents::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_audit_events_actor_id")
                    .table(AuditEvents::Table)
                    .col(AuditEvents::ActorId)
                    .col(AuditEvents::OccurredAt)
                    .col(AuditEvents::Id)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(AuditEvents::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    Id,
    Kind,
    OccurredAt,
    ActorId,
    SubjectId,
    OrganizationId,
    ClientIp,
    UserAgent,
    Outcome,
    Details,
}
