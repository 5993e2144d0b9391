//! [`UserRepository`] and the unit of work's [`AccountWrites`] over the
//! `users` and `user_emails` tables. They store what the domain decided
//! ([`Account`] holds the rules of login emails); the use case locks the
//! account first ([`AccountWrites::lock`]), so two changes of one account run
//! one after the other and the second sees the first's result.
//!
//! [`AccountWrites`]: gatehouse_application::ports::unit_of_work::AccountWrites
//! [`AccountWrites::lock`]: gatehouse_application::ports::unit_of_work::AccountWrites::lock

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use gatehouse_application::ports::store::{StoreError, UserCredentials, UserRepository};
use gatehouse_application::ports::unit_of_work::AccountWrites;
use gatehouse_domain::{Account, DisplayName, EmailAddress, LoginEmail, PasswordHash, User, UserId};
use sea_orm::sea_query::{Expr, LockType};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

use crate::convert::to_email;
use crate::database::Database;
use crate::entity::{account_tombstone, user, user_email};
use crate::error::store_error;
use crate::pool::Pool;
use crate::unit_of_work::SqlUnitOfWork;

/// User accounts in SQL. A user's login emails live in `user_emails`, whose
/// unique constraint makes an email belong to at most one account.
#[derive(Debug, Clone)]
pub struct SqlUserRepository {
    conn: Pool,
}

impl SqlUserRepository {
    /// A repository over `db`'s pool.
    #[must_use]
    pub fn new(db: &Database) -> Self {
        Self { conn: db.conn.clone() }
    }
}

#[async_trait]
impl AccountWrites for SqlUnitOfWork {
    async fn insert(&self, user: &User) -> Result<(), StoreError> {
        let account = user::ActiveModel {
            id: Set(*user.id().as_uuid()),
            display_name: Set(user.display_name().as_str().to_owned()),
            password_hash: Set(user.password_hash().as_str().to_owned()),
            created_at: Set(user.created_at()),
            updated_at: Set(user.created_at()),
        };
        user::Entity::insert(account).exec_without_returning(&self.txn).await.map_err(store_error)?;
        let email = email_row(user.id(), user.email(), true, user.created_at());
        user_email::Entity::insert(email).exec_without_returning(&self.txn).await.map_err(store_error)?;
        Ok(())
    }

    async fn lock(&self, user: UserId) -> Result<Option<Account>, StoreError> {
        read_account(&self.txn, user, true).await
    }

    async fn add_email(&self, user: UserId, email: &EmailAddress, now: DateTime<Utc>) -> Result<(), StoreError> {
        let row = email_row(user, email, false, now);
        user_email::Entity::insert(row).exec_without_returning(&self.txn).await.map_err(store_error)?;
        Ok(())
    }

    async fn release_unverified_claim(&self, email: &EmailAddress) -> Result<Option<UserId>, StoreError> {
        let claim = user_email::Entity::find()
            .filter(user_email::Column::Email.eq(email.as_str()))
            .filter(user_email::Column::VerifiedAt.is_null())
            .filter(user_email::Column::IsPrimary.eq(false))
            .one(&self.txn)
            .await
            .map_err(store_error)?;
        let Some(claim) = claim else { return Ok(None) };
        // Guarded again: a verification committed since the read keeps it.
        let deleted = user_email::Entity::delete_many()
            .filter(user_email::Column::Id.eq(claim.id))
            .filter(user_email::Column::VerifiedAt.is_null())
            .filter(user_email::Column::IsPrimary.eq(false))
            .exec(&self.txn)
            .await
            .map_err(store_error)?;
        Ok((deleted.rows_affected == 1).then(|| UserId::from_uuid(claim.user_id)))
    }

    async fn remove_email(&self, user: UserId, email: &EmailAddress) -> Result<(), StoreError> {
        user_email::Entity::delete_many()
            .filter(user_email::Column::UserId.eq(*user.as_uuid()))
            .filter(user_email::Column::Email.eq(email.as_str()))
            .exec(&self.txn)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn set_primary_email(
        &self,
        user: UserId,
        email: &EmailAddress,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        // The old primary first: the partial unique index allows one primary per account.
        user_email::Entity::update_many()
            .col_expr(user_email::Column::IsPrimary, Expr::value(false))
            .filter(user_email::Column::UserId.eq(*user.as_uuid()))
            .filter(user_email::Column::IsPrimary.eq(true))
            .filter(user_email::Column::Email.ne(email.as_str()))
            .exec(&self.txn)
            .await
            .map_err(store_error)?;
        user_email::Entity::update_many()
            .col_expr(user_email::Column::IsPrimary, Expr::value(true))
            .filter(user_email::Column::UserId.eq(*user.as_uuid()))
            .filter(user_email::Column::Email.eq(email.as_str()))
            .exec(&self.txn)
            .await
            .map_err(store_error)?;
        touch_user(&self.txn, user, now).await.map_err(store_error)?;
        Ok(())
    }

    async fn mark_email_verified(
        &self,
        user: UserId,
        email: &EmailAddress,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        verify_email(&self.txn, *user.as_uuid(), email.as_str(), now).await.map_err(store_error)
    }

    async fn set_password_hash(
        &self,
        user: UserId,
        hash: &PasswordHash,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        set_password_hash(&self.txn, user, hash, now).await.map_err(store_error)
    }

    async fn delete(&self, user: UserId, tombstone_until: DateTime<Utc>) -> Result<(), StoreError> {
        // Emails, sessions, refresh tokens, verifications and factors go with
        // it (ON DELETE CASCADE); its audit rows, which have no foreign key
        // to it, stay, and so does its tombstone, written in this transaction.
        user::Entity::delete_by_id(*user.as_uuid()).exec(&self.txn).await.map_err(store_error)?;
        let tombstone = account_tombstone::ActiveModel {
            user_id: sea_orm::ActiveValue::Set(*user.as_uuid()),
            until: sea_orm::ActiveValue::Set(tombstone_until),
        };
        account_tombstone::Entity::insert(tombstone).exec(&self.txn).await.map_err(store_error)?;
        Ok(())
    }
}

/// The account with its login emails; with `lock`, its row is locked until
/// the transaction ends (PostgreSQL: `FOR UPDATE`, which also makes a
/// concurrent login's new session wait, since that insert's foreign-key
/// check needs the row; SQLite already holds the write lock).
async fn read_account<C: ConnectionTrait>(conn: &C, user: UserId, lock: bool) -> Result<Option<Account>, StoreError> {
    let mut query = user::Entity::find_by_id(*user.as_uuid());
    if lock {
        query = query.lock(LockType::Update);
    }
    let Some(account) = query.one(conn).await.map_err(store_error)? else {
        return Ok(None);
    };
    let rows = user_email::Entity::find()
        .filter(user_email::Column::UserId.eq(account.id))
        .order_by_desc(user_email::Column::IsPrimary)
        .order_by_asc(user_email::Column::CreatedAt)
        .order_by_asc(user_email::Column::Id)
        .all(conn)
        .await
        .map_err(store_error)?;
    let emails = rows
        .into_iter()
        .map(|e| {
            Ok(LoginEmail {
                email: to_email(&e.email)?,
                primary: e.is_primary,
                verified_at: e.verified_at,
                created_at: e.created_at,
            })
        })
        .collect::<Result<Vec<_>, DbErr>>()
        .map_err(store_error)?;
    let display_name = DisplayName::parse(&account.display_name).map_err(|e| StoreError::Internal(Box::new(e)))?;
    Ok(Some(Account::restore(
        UserId::from_uuid(account.id),
        display_name,
        account.created_at,
        account.updated_at,
        emails,
    )))
}

#[async_trait]
impl UserRepository for SqlUserRepository {
    async fn find_credentials(&self, email: &EmailAddress) -> Result<Option<UserCredentials>, StoreError> {
        let found = user_email::Entity::find()
            .find_also_related(user::Entity)
            .filter(user_email::Column::Email.eq(email.as_str()))
            .one(&self.conn)
            .await
            .map_err(store_error)?;
        Ok(found.and_then(|(login, account)| {
            account.map(|u| UserCredentials {
                user_id: UserId::from_uuid(u.id),
                password_hash: PasswordHash::from_phc(u.password_hash),
                email_verified: login.verified_at.is_some(),
            })
        }))
    }

    async fn password_hash(&self, user: UserId) -> Result<Option<PasswordHash>, StoreError> {
        let found = user::Entity::find_by_id(*user.as_uuid()).one(&self.conn).await.map_err(store_error)?;
        Ok(found.map(|u| PasswordHash::from_phc(u.password_hash)))
    }

    async fn update_password_hash(
        &self,
        user: UserId,
        hash: &PasswordHash,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        set_password_hash(&self.conn, user, hash, now).await.map_err(store_error)?;
        Ok(())
    }

    async fn get(&self, user: UserId) -> Result<Option<Account>, StoreError> {
        read_account(&self.conn, user, false).await
    }

    async fn update_display_name(
        &self,
        user: UserId,
        name: &DisplayName,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let updated = user::Entity::update_many()
            .col_expr(user::Column::DisplayName, Expr::value(name.as_str()))
            .col_expr(user::Column::UpdatedAt, Expr::value(now))
            .filter(user::Column::Id.eq(*user.as_uuid()))
            .exec(&self.conn)
            .await
            .map_err(store_error)?;
        Ok(updated.rows_affected > 0)
    }
}

/// Marks `email` of `user` verified (keeping an earlier verification time).
async fn verify_email(txn: &DatabaseTransaction, user: Uuid, email: &str, now: DateTime<Utc>) -> Result<(), DbErr> {
    user_email::Entity::update_many()
        .col_expr(user_email::Column::VerifiedAt, Expr::value(now))
        .filter(user_email::Column::UserId.eq(user))
        .filter(user_email::Column::Email.eq(email))
        .filter(user_email::Column::VerifiedAt.is_null())
        .exec(txn)
        .await?;
    Ok(())
}

/// Replaces a user's password hash; `false` when there is no such user.
async fn set_password_hash<C: sea_orm::ConnectionTrait>(
    conn: &C,
    user: UserId,
    hash: &PasswordHash,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let updated = user::Entity::update_many()
        .col_expr(user::Column::PasswordHash, Expr::value(hash.as_str()))
        .col_expr(user::Column::UpdatedAt, Expr::value(now))
        .filter(user::Column::Id.eq(*user.as_uuid()))
        .exec(conn)
        .await?;
    Ok(updated.rows_affected > 0)
}

/// Sets the account's `updated_at`.
async fn touch_user(txn: &DatabaseTransaction, user: UserId, now: DateTime<Utc>) -> Result<(), DbErr> {
    user::Entity::update_many()
        .col_expr(user::Column::UpdatedAt, Expr::value(now))
        .filter(user::Column::Id.eq(*user.as_uuid()))
        .exec(txn)
        .await?;
    Ok(())
}

fn email_row(user: UserId, email: &EmailAddress, primary: bool, now: DateTime<Utc>) -> user_email::ActiveModel {
    user_email::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(*user.as_uuid()),
        email: Set(email.as_str().to_owned()),
        is_primary: Set(primary),
        verified_at: Set(None),
        created_at: Set(now),
    }
}
