//! Second factors: the factors themselves, the short codes sent for email
//! and SMS factors, the login challenges that wait for a second factor, and
//! backup codes.
//!
//! Secrets and codes are never stored in the clear: a TOTP secret is sealed
//! with an AEAD key whose id is kept beside it (`secret_key_id`), and codes
//! and backup codes are stored as SHA-256 digests. The limits hold under
//! concurrency because the counters and markers are changed only by guarded
//! single statements: `last_totp_step` only moves forward (`… WHERE
//! last_totp_step IS NULL OR last_totp_step < step`), a code, backup code or
//! challenge is consumed by `… WHERE consumed_at IS NULL` (`used_at` for
//! backup codes), and wrong codes are counted by `… WHERE attempts <
//! max_attempts`.
//!
//! Everything belongs to a user and goes with it (ON DELETE CASCADE); codes
//! also go with their factor and with their challenge. A code whose
//! `challenge_id` is NULL was sent to confirm (enrol) its factor.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(MfaFactors::Table)
                    .col(ColumnDef::new(MfaFactors::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(MfaFactors::UserId).uuid().not_null())
                    .col(ColumnDef::new(MfaFactors::Kind).text().not_null())
                    .col(ColumnDef::new(MfaFactors::Destination).text().null())
                    .col(ColumnDef::new(MfaFactors::SecretKeyId).text().null())
                    .col(ColumnDef::new(MfaFactors::SecretData).blob().null())
                    .col(ColumnDef::new(MfaFactors::Active).boolean().not_null())
                    .col(ColumnDef::new(MfaFactors::CreatedAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(MfaFactors::ConfirmedAt).timestamp_with_time_zone().null())
                    .col(ColumnDef::new(MfaFactors::LastTotpStep).big_integer().null())
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_mfa_factors_user_id")
                            .from(MfaFactors::Table, MfaFactors::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_mfa_factors_user_id")
                    .table(MfaFactors::Table)
                    .col(MfaFactors::UserId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(MfaChallenges::Table)
                    .col(ColumnDef::new(MfaChallenges::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(MfaChallenges::UserId).uuid().not_null())
                    .col(ColumnDef::new(MfaChallenges::UserAgent).text().null())
                    .col(ColumnDef::new(MfaChallenges::ClientIp).text().null())
                    .col(ColumnDef::new(MfaChallenges::CreatedAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(MfaChallenges::ExpiresAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(MfaChallenges::Attempts).integer().not_null().default(0))
                    .col(ColumnDef::new(MfaChallenges::MaxAttempts).integer().not_null())
                    .col(ColumnDef::new(MfaChallenges::ConsumedAt).timestamp_with_time_zone().null())
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_mfa_challenges_user_id")
                            .from(MfaChallenges::Table, MfaChallenges::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // The per-account failure count: a user's challenges since a time.
        manager
            .create_index(
                Index::create()
                    .name("idx_mfa_challenges_user_id_created_at")
                    .table(MfaChallenges::Table)
                    .col(MfaChallenges::UserId)
                    .col(MfaChallenges::CreatedAt)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(MfaCodes::Table)
                    .col(ColumnDef::new(MfaCodes::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(MfaCodes::FactorId).uuid().not_null())
                    .col(ColumnDef::new(MfaCodes::ChallengeId).uuid().null())
                    .col(ColumnDef::new(MfaCodes::CodeHash).binary_len(32).not_null())
                    .col(ColumnDef::new(MfaCodes::Attempts).integer().not_null().default(0))
                    .col(ColumnDef::new(MfaCodes::MaxAttempts).integer().not_null())
                    .col(ColumnDef::new(MfaCodes::CreatedAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(MfaCodes::ExpiresAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(MfaCodes::ConsumedAt).timestamp_with_time_zone().null())
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_mfa_codes_factor_id")
                            .from(MfaCodes::Table, MfaCodes::FactorId)
                            .to(MfaFactors::Table, MfaFactors::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_mfa_codes_challenge_id")
                            .from(MfaCodes::Table, MfaCodes::ChallengeId)
                            .to(MfaChallenges::Table, MfaChallenges::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // A factor's newest code for a challenge (or for enrolment).
        manager
            .create_index(
                Index::create()
                    .name("idx_mfa_codes_factor_id_challenge_id")
                    .table(MfaCodes::Table)
                    .col(MfaCodes::FactorId)
                    .col(MfaCodes::ChallengeId)
                    .to_owned(),
            )
            .await?;
        // The cascade from a deleted challenge (deleting a user deletes all
        // of its challenges) finds that challenge's codes without a scan.
        manager
            .create_index(
                Index::create()
                    .name("idx_mfa_codes_challenge_id")
                    .table(MfaCodes::Table)
                    .col(MfaCodes::ChallengeId)
                    .to_owned(),
            )
            .await?;

        // A backup code is known by its digest within its user: the primary
        // key is the (user_id, code_hash) pair, which is also the look-up.
        manager
            .create_table(
                Table::create()
                    .table(BackupCodes::Table)
                    .col(ColumnDef::new(BackupCodes::UserId).uuid().not_null())
                    .col(ColumnDef::new(BackupCodes::CodeHash).binary_len(32).not_null())
                    .col(ColumnDef::new(BackupCodes::CreatedAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(BackupCodes::UsedAt).timestamp_with_time_zone().null())
                    .primary_key(
                        Index::create().name("pk_backup_codes").col(BackupCodes::UserId).col(BackupCodes::CodeHash),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_backup_codes_user_id")
                            .from(BackupCodes::Table, BackupCodes::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            BackupCodes::Table.into_table_ref(),
            MfaCodes::Table.into_table_ref(),
            MfaChallenges::Table.into_table_ref(),
            MfaFactors::Table.into_table_ref(),
        ] {
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
enum MfaFactors {
    Table,
    Id,
    UserId,
    Kind,
    Destination,
    SecretKeyId,
    SecretData,
    Active,
    CreatedAt,
    ConfirmedAt,
    LastTotpStep,
}

#[derive(DeriveIden)]
enum MfaChallenges {
    Table,
    Id,
    UserId,
    UserAgent,
    ClientIp,
    CreatedAt,
    ExpiresAt,
    Attempts,
    MaxAttempts,
    ConsumedAt,
}

#[derive(DeriveIden)]
enum MfaCodes {
    Table,
    Id,
    FactorId,
    ChallengeId,
    CodeHash,
    Attempts,
    MaxAttempts,
    CreatedAt,
    ExpiresAt,
    ConsumedAt,
}

#[derive(DeriveIden)]
enum BackupCodes {
    Table,
    UserId,
    CodeHash,
    CreatedAt,
    UsedAt,
}
