//! Gatehouse schema migrations: one history that runs unchanged on PostgreSQL
//! and SQLite.
//!
//! Every migration is written with the `sea-query` schema builders (never raw
//! SQL), so the same steps produce the right DDL on both backends. Apply them
//! with [`Migrator::up`]; migrations already applied are skipped, so running
//! it at every start-up is safe.

use sea_orm_migration::prelude::*;

pub use sea_orm_migration::MigratorTrait;

mod m20261124_000001_create_auth_tables;
mod m20261124_000002_create_verifications_and_outbox;
mod m20261124_000003_create_mfa_tables;
mod m20261124_000004_session_lifetimes;
mod m20261124_000005_create_audit_events;
mod m20261202_000006_create_account_tombstones;
mod m20261202_000007_create_organizations;

/// The ordered list of Gatehouse migrations.
#[derive(Debug, Clone, Copy, Default)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261124_000001_create_auth_tables::Migration),
            Box::new(m20261124_000002_create_verifications_and_outbox::Migration),
            Box::new(m20261124_000003_create_mfa_tables::Migration),
            Box::new(m20261124_000004_session_lifetimes::Migration),
            Box::new(m20261124_000005_create_audit_events::Migration),
            Box::new(m20261202_000006_create_account_tombstones::Migration),
            Box::new(m20261202_000007_create_organizations::Migration),
        ]
    }
}
