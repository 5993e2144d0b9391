//! The `mfa_factors` table: second factors, pending or active, with the
//! sealed TOTP secret (key id and sealed bytes) where there is one.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "mfa_factors")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    pub kind: String,
    pub destination: Option<String>,
    pub secret_key_id: Option<String>,
    pub secret_data: Option<Vec<u8>>,
    pub active: bool,
    pub created_at: DateTimeUtc,
    pub confirmed_at: Option<DateTimeUtc>,
    pub last_totp_step: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::user::Entity",
        from = "Column::UserId",
        to = "super::user::Column::Id",
        on_delete = "Cascade"
    )]
    User,
    #[sea_orm(has_many = "super::mfa_code::Entity")]
    MfaCode,
}

impl Related<super::user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::User.def()
    }
}

impl Related<super::mfa_code::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::MfaCode.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
