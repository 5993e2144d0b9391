//! The `audit_events` table: the audit trail.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub kind: String,
    pub occurred_at: DateTimeUtc,
    pub actor_id: Option<Uuid>,
    pub subject_id: Option<Uuid>,
    pub organization_id: Option<String>,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    pub outcome: String,
    /// The details as a JSON object of strings, in order.
    pub details: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
