//! The `outbox` table: events waiting to be published.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "outbox")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub event_type: String,
    pub payload: Vec<u8>,
    pub occurred_at: DateTimeUtc,
    pub created_at: DateTimeUtc,
    /// When the row is next due: its creation, the end of a relay's lease,
    /// or the next retry after a failed publish.
    pub available_at: DateTimeUtc,
    pub attempts: i32,
    pub sent_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
