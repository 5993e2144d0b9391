//! Organizations (tenants), their members, custom roles and invitations,
//! and the organization a session's tokens are scoped to.
//!
//! - `organizations.slug` is optional and unique (several organizations may
//!   have none: NULLs never collide in a unique index, on either backend).
//! - `organization_members` has one row per member, keyed by (organization,
//!   user); a member holds one role, by name: a built-in one (`owner`,
//!   `admin`, `member`, which need no row) or a custom role of
//!   `organization_roles`. `idx_organization_members_user_id` lists a user's
//!   organizations. Rows go with their organization and with their user.
//! - `organization_roles.permissions` holds the role's permissions separated
//!   by single spaces (a permission never contains one).
//! - `organization_invitations.token_hash` is the SHA-256 of the link token
//!   (unique: the token is looked up by it); `invited_by` has no foreign key,
//!   so an invitation outlives the account of whoever sent it.
//! - `sessions.organization_id` (nullable, no foreign key: deleting an
//!   organization revokes its sessions, and the revoked rows keep saying
//!   where they were scoped) is the organization a refresh re-checks.
//! - `idx_audit_events_organization_id` serves an organization's audit
//!   trail, newest first, paged by `(occurred_at, id)`.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Organizations::Table)
                    .col(ColumnDef::new(Organizations::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Organizations::Name).text().not_null())
                    .col(ColumnDef::new(Organizations::Slug).text().null().unique_key())
                    .col(ColumnDef::new(Organizations::CreatedAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(Organizations::UpdatedAt).timestamp_with_time_zone().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(OrganizationMembers::Table)
                    .col(ColumnDef::new(OrganizationMembers::OrganizationId).uuid().not_null())
                    .col(ColumnDef::new(OrganizationMembers::UserId).uuid().not_null())
                    .col(ColumnDef::new(OrganizationMembers::Role).text().not_null())
                    .col(ColumnDef::new(OrganizationMembers::JoinedAt).timestamp_with_time_zone().not_null())
                    .primary_key(
                        Index::create().col(OrganizationMembers::OrganizationId).col(OrganizationMembers::UserId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_organization_members_organization_id")
                            .from(OrganizationMembers::Table, OrganizationMembers::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_organization_members_user_id")
                            .from(OrganizationMembers::Table, OrganizationMembers::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_organization_members_user_id")
                    .table(OrganizationMembers::Table)
                    .col(OrganizationMembers::UserId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(OrganizationRoles::Table)
                    .col(ColumnDef::new(OrganizationRoles::OrganizationId).uuid().not_null())
                    .col(ColumnDef::new(OrganizationRoles::Name).text().not_null())
                    .col(ColumnDef::new(OrganizationRoles::Permissions).text().not_null())
                    .col(ColumnDef::new(OrganizationRoles::CreatedAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(OrganizationRoles::UpdatedAt).timestamp_with_time_zone().not_null())
                    .primary_key(Index::create().col(OrganizationRoles::OrganizationId).col(OrganizationRoles::Name))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_organization_roles_organization_id")
                            .from(OrganizationRoles::Table, OrganizationRoles::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(OrganizationInvitations::Table)
                    .col(ColumnDef::new(OrganizationInvitations::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(OrganizationInvitations::OrganizationId).uuid().not_null())
                    .col(ColumnDef::new(OrganizationInvitations::Email).text().not_null())
                    .col(ColumnDef::new(OrganizationInvitations::Role).text().not_null())
                    .col(ColumnDef::new(OrganizationInvitations::TokenHash).binary_len(32).not_null().unique_key())
                    .col(ColumnDef::new(OrganizationInvitations::InvitedBy).uuid().not_null())
                    .col(ColumnDef::new(OrganizationInvitations::CreatedAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(OrganizationInvitations::ExpiresAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(OrganizationInvitations::AcceptedAt).timestamp_with_time_zone().null())
                    .col(ColumnDef::new(OrganizationInvitations::RevokedAt).timestamp_with_time_zone().null())
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_organization_invitations_organization_id")
                            .from(OrganizationInvitations::Table, OrganizationInvitations::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_organization_invitations_organization_id")
                    .table(OrganizationInvitations::Table)
                    .col(OrganizationInvitations::OrganizationId)
                    .col(OrganizationInvitations::CreatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_audit_events_organization_id")
                    .table(AuditEvents::Table)
                    .col(AuditEvents::OrganizationId)
                    .col(AuditEvents::OccurredAt)
                    .col(AuditEvents::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Sessions::Table)
                    .add_column(ColumnDef::new(Sessions::OrganizationId).uuid().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(Table::alter().table(Sessions::Table).drop_column(Sessions::OrganizationId).to_owned())
            .await?;
        manager
            .drop_index(Index::drop().name("idx_audit_events_organization_id").table(AuditEvents::Table).to_owned())
            .await?;
        for table in [
            OrganizationInvitations::Table.into_iden(),
            OrganizationRoles::Table.into_iden(),
            OrganizationMembers::Table.into_iden(),
            Organizations::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
    Name,
    Slug,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum OrganizationMembers {
    Table,
    OrganizationId,
    UserId,
    Role,
    JoinedAt,
}

#[derive(DeriveIden)]
enum OrganizationRoles {
    Table,
    OrganizationId,
    Name,
    Permissions,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum OrganizationInvitations {
    Table,
    Id,
    OrganizationId,
    Email,
    Role,
    TokenHash,
    InvitedBy,
    CreatedAt,
    ExpiresAt,
    AcceptedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    Id,
    OrganizationId,
    OccurredAt,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    OrganizationId,
}
