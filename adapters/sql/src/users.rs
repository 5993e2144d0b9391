//! [`UserRepository`] over the `users` and `user_emails` tables.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use gatehouse_application::ports::store::{StoreError, UserCredentials, UserRepository};
use gatehouse_domain::{EmailAddress, PasswordHash, User, UserId};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, JoinType, QueryFilter, QuerySelect, RelationTrait,
    TransactionTrait,
};
use uuid::Uuid;

use crate::database::Database;
use crate::entity::{user, user_email};
use crate::error::{abandon, store_error};

/// User accounts in SQL. A user's login email lives in `user_emails`, whose
/// unique constraint makes an email belong to at most one account.
#[derive(Debug, Clone)]
pub struct SqlUserRepository {
    conn: DatabaseConnection,
}

impl SqlUserRepository {
    /// A repository over `db`'s pool.
    #[must_use]
    pub fn new(db: &Database) -> Self {
        Self { conn: db.conn.clone() }
    }
}

#[async_trait]
impl UserRepository for SqlUserRepository {
    async fn create(&self, user: &User) -> Result<(), StoreError> {
        let account = user::ActiveModel {
            id: Set(*user.id.as_uuid()),
            display_name: Set(user.display_name.as_str().to_owned()),
            password_hash: Set(user.password_hash.as_str().to_owned()),
            created_at: Set(user.created_at),
            updated_at: Set(user.created_at),
        };
        let email = user_email::ActiveModel {
            id: Set(Uuid::now_v7()),
            user_id: Set(*user.id.as_uuid()),
            email: Set(user.email.as_str().to_owned()),
            is_primary: Set(true),
            verified_at: Set(None),
            created_at: Set(user.created_at),
        };
        let txn = self.conn.begin().await.map_err(store_error)?;
        let inserted = async {
            user::Entity::insert(account).exec_without_returning(&txn).await?;
            user_email::Entity::insert(email).exec_without_returning(&txn).await
        }
        .await;
        match inserted {
            Ok(_) => txn.commit().await.map_err(store_error),
            Err(err) => Err(abandon(txn, err).await),
        }
    }

    async fn find_credentials(&self, email: &EmailAddress) -> Result<Option<UserCredentials>, StoreError> {
        let account = user::Entity::find()
            .join(JoinType::InnerJoin, user::Relation::UserEmail.def())
            .filter(user_email::Column::Email.eq(email.as_str()))
            .one(&self.conn)
            .await
            .map_err(store_error)?;
        Ok(account.map(|u| UserCredentials {
            user_id: UserId::from_uuid(u.id),
            password_hash: PasswordHash::from_phc(u.password_hash),
        }))
    }

    async fn update_password_hash(
        &self,
        user: UserId,
        hash: &PasswordHash,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        user::Entity::update_many()
            .col_expr(user::Column::PasswordHash, Expr::value(hash.as_str()))
            .col_expr(user::Column::UpdatedAt, Expr::value(now))
            .filter(user::Column::Id.eq(*user.as_uuid()))
            .exec(&self.conn)
            .await
            .map_err(store_error)?;
        Ok(())
    }
}
