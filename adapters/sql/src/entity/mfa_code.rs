//! The `mfa_codes` table: digests of the short codes sent for email and SMS
//! factors, for enrolment (`challenge_id` NULL) or for a login challenge.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "mfa_codes")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub factor_id: Uuid,
    pub challenge_id: Option<Uuid>,
    pub code_hash: Vec<u8>,
    pub attempts: i32,
    pub max_attempts: i32,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
    pub consumed_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::mfa_factor::Entity",
        from = "Column::FactorId",
        to = "super::mfa_factor::Column::Id",
        on_delete = "Cascade"
    )]
    MfaFactor,
    #[sea_orm(
        belongs_to = "super::mfa_challenge::Entity",
        from = "Column::ChallengeId",
        to = "super::mfa_challenge::Column::Id",
        on_delete = "Cascade"
    )]
    MfaChallenge,
}

impl Related<super::mfa_factor::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::MfaFactor.def()
    }
}

impl Related<super::mfa_challenge::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::MfaChallenge.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
