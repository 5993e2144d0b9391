//! [`UserRepository`] over the `users` and `user_emails` tables.
//!
//! Every transaction that changes state starts with a write, for the reasons
//! given in `sessions`: SQLite then takes its write lock where the busy
//! timeout applies, and PostgreSQL locks the user's row, so two changes of
//! one account (two removals of login emails, say) run one after the other
//! and the second sees the first's result. A method that must read before it
//! decides (`remove_email`, `set_primary_email`, `delete`) first touches the
//! user's row for that purpose, and rolls back when it refuses.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use gatehouse_application::ports::events::OutboxMessage;
use gatehouse_application::ports::store::{EmailRemoval, PrimaryChange, StoreError, UserCredentials, UserRepository};
use gatehouse_domain::{
    Account, DisplayName, EmailAddress, FactorKind, LoginEmail, PasswordHash, RevokeReason, Session, SessionId, User,
    UserId, Verification,
};
use sea_orm::sea_query::{Expr, LockType};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use uuid::Uuid;

use crate::convert::to_email;
use crate::database::Database;
use crate::entity::{mfa_factor, session, user, user_email};
use crate::error::store_error;
use crate::outbox::insert_outbox;
use crate::sessions::{revoke_user_sessions, to_domain as session_to_domain};
use crate::transaction::{Decision, begin, finish};
use crate::verifications::{insert_verification, retire_verifications};

/// User accounts in SQL. A user's login emails live in `user_emails`, whose
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
    async fn create(
        &self,
        user: &User,
        verification: &Verification,
        outbox: &[OutboxMessage],
    ) -> Result<(), StoreError> {
        let account = user::ActiveModel {
            id: Set(*user.id.as_uuid()),
            display_name: Set(user.display_name.as_str().to_owned()),
            password_hash: Set(user.password_hash.as_str().to_owned()),
            created_at: Set(user.created_at),
            updated_at: Set(user.created_at),
        };
        let email = email_row(user.id, &user.email, true, user.created_at);
        let txn = begin(&self.conn).await?;
        let outcome = async {
            user::Entity::insert(account).exec_without_returning(&txn).await?;
            user_email::Entity::insert(email).exec_without_returning(&txn).await?;
            insert_verification(&txn, verification).await?;
            insert_outbox(&txn, outbox).await?;
            Ok(Decision::Commit(()))
        }
        .await;
        finish(txn, outcome).await
    }

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
        let Some(account) = user::Entity::find_by_id(*user.as_uuid()).one(&self.conn).await.map_err(store_error)?
        else {
            return Ok(None);
        };
        let rows = user_email::Entity::find()
            .filter(user_email::Column::UserId.eq(account.id))
            .order_by_desc(user_email::Column::IsPrimary)
            .order_by_asc(user_email::Column::CreatedAt)
            .order_by_asc(user_email::Column::Id)
            .all(&self.conn)
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
        Ok(Some(Account {
            id: UserId::from_uuid(account.id),
            display_name,
            created_at: account.created_at,
            updated_at: account.updated_at,
            emails,
        }))
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

    async fn change_password(
        &self,
        user: UserId,
        hash: &PasswordHash,
        keep: Option<SessionId>,
        outbox: &[OutboxMessage],
        now: DateTime<Utc>,
    ) -> Result<Vec<Session>, StoreError> {
        let txn = begin(&self.conn).await?;
        let outcome = async {
            if !set_password_hash(&txn, user, hash, now).await? {
                return Ok(Decision::Rollback(Vec::new()));
            }
            let revoked = revoke_user_sessions(&txn, user, keep, RevokeReason::PasswordChanged, now).await?;
            insert_outbox(&txn, outbox).await?;
            Ok(Decision::Commit(revoked))
        }
        .await;
        finish(txn, outcome).await
    }

    async fn add_email(
        &self,
        user: UserId,
        email: &EmailAddress,
        verification: &Verification,
        outbox: &[OutboxMessage],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let row = email_row(user, email, false, now);
        let txn = begin(&self.conn).await?;
        let outcome = async {
            user_email::Entity::insert(row).exec_without_returning(&txn).await?;
            insert_verification(&txn, verification).await?;
            insert_outbox(&txn, outbox).await?;
            Ok(Decision::Commit(()))
        }
        .await;
        finish(txn, outcome).await
    }

    async fn remove_email(
        &self,
        user: UserId,
        email: &EmailAddress,
        outbox: &[OutboxMessage],
        now: DateTime<Utc>,
    ) -> Result<EmailRemoval, StoreError> {
        let txn = begin(&self.conn).await?;
        let outcome = async {
            if !touch_user(&txn, user, None).await? {
                return Ok(Decision::Rollback(EmailRemoval::NotFound));
            }
            let emails =
                user_email::Entity::find().filter(user_email::Column::UserId.eq(*user.as_uuid())).all(&txn).await?;
            let Some(target) = emails.iter().find(|e| e.email == email.as_str()) else {
                return Ok(Decision::Rollback(EmailRemoval::NotFound));
            };
            if target.is_primary {
                return Ok(Decision::Rollback(EmailRemoval::IsPrimary));
            }
            let verified = emails.iter().filter(|e| e.verified_at.is_some()).count();
            if target.verified_at.is_some() && verified <= 1 {
                return Ok(Decision::Rollback(EmailRemoval::LastVerified));
            }
            user_email::Entity::delete_by_id(target.id).exec(&txn).await?;
            retire_verifications(&txn, user, Some(email), None, now).await?;
            // A second factor that sends codes to the address goes with it:
            // the address may belong to someone else tomorrow.
            mfa_factor::Entity::delete_many()
                .filter(mfa_factor::Column::UserId.eq(*user.as_uuid()))
                .filter(mfa_factor::Column::Kind.eq(FactorKind::Email.as_str()))
                .filter(mfa_factor::Column::Destination.eq(email.as_str()))
                .exec(&txn)
                .await?;
            insert_outbox(&txn, outbox).await?;
            Ok(Decision::Commit(EmailRemoval::Removed))
        }
        .await;
        finish(txn, outcome).await
    }

    async fn set_primary_email(
        &self,
        user: UserId,
        email: &EmailAddress,
        outbox: &[OutboxMessage],
        now: DateTime<Utc>,
    ) -> Result<PrimaryChange, StoreError> {
        let txn = begin(&self.conn).await?;
        let outcome = async {
            if !touch_user(&txn, user, Some(now)).await? {
                return Ok(Decision::Rollback(PrimaryChange::NotFound));
            }
            let target = user_email::Entity::find()
                .filter(user_email::Column::UserId.eq(*user.as_uuid()))
                .filter(user_email::Column::Email.eq(email.as_str()))
                .one(&txn)
                .await?;
            let Some(target) = target else { return Ok(Decision::Rollback(PrimaryChange::NotFound)) };
            if target.verified_at.is_none() {
                return Ok(Decision::Rollback(PrimaryChange::NotVerified));
            }
            user_email::Entity::update_many()
                .col_expr(user_email::Column::IsPrimary, Expr::value(false))
                .filter(user_email::Column::UserId.eq(*user.as_uuid()))
                .filter(user_email::Column::IsPrimary.eq(true))
                .filter(user_email::Column::Id.ne(target.id))
                .exec(&txn)
                .await?;
            user_email::Entity::update_many()
                .col_expr(user_email::Column::IsPrimary, Expr::value(true))
                .filter(user_email::Column::Id.eq(target.id))
                .exec(&txn)
                .await?;
            insert_outbox(&txn, outbox).await?;
            Ok(Decision::Commit(PrimaryChange::Changed))
        }
        .await;
        finish(txn, outcome).await
    }

    async fn delete(
        &self,
        user: UserId,
        outbox: &[OutboxMessage],
        now: DateTime<Utc>,
    ) -> Result<Vec<Session>, StoreError> {
        let txn = begin(&self.conn).await?;
        let outcome = async {
            if !touch_user(&txn, user, Some(now)).await? {
                return Ok(Decision::Rollback(Vec::new()));
            }
            // PostgreSQL: the touch above takes a row lock that still lets a
            // concurrent login insert a session (its foreign-key check only
            // needs FOR KEY SHARE); FOR UPDATE makes such an insert wait, so
            // no session appears between the read below and the delete and
            // escapes the list. (SQLite has no row locks; its write lock,
            // already held, serializes everything.)
            user::Entity::find_by_id(*user.as_uuid()).lock(LockType::Update).one(&txn).await?;
            let live = session::Entity::find()
                .filter(session::Column::UserId.eq(*user.as_uuid()))
                .filter(session::Column::RevokedAt.is_null())
                .filter(session::Column::ExpiresAt.gt(now))
                .order_by_asc(session::Column::CreatedAt)
                .order_by_asc(session::Column::Id)
                .all(&txn)
                .await?;
            // Emails, sessions, refresh tokens and verifications go with it
            // (ON DELETE CASCADE); its audit rows, which have no foreign
            // key to it, stay.
            user::Entity::delete_by_id(*user.as_uuid()).exec(&txn).await?;
            insert_outbox(&txn, outbox).await?;
            Ok(Decision::Commit(live.into_iter().map(session_to_domain).collect()))
        }
        .await;
        finish(txn, outcome).await
    }
}

/// Marks `email` of `user` verified (keeping an earlier verification time).
pub(crate) async fn verify_email(
    txn: &DatabaseTransaction,
    user: Uuid,
    email: &str,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
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
pub(crate) async fn set_password_hash<C: sea_orm::ConnectionTrait>(
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

/// The write that opens a read-then-decide transaction (see the module
/// docs): sets `updated_at` to `now`, or leaves it as it is. `false` when
/// there is no such user.
pub(crate) async fn touch_user(
    txn: &DatabaseTransaction,
    user: UserId,
    now: Option<DateTime<Utc>>,
) -> Result<bool, DbErr> {
    let updated_at = match now {
        Some(now) => Expr::value(now),
        None => Expr::col(user::Column::UpdatedAt).into(),
    };
    let touched = user::Entity::update_many()
        .col_expr(user::Column::UpdatedAt, updated_at)
        .filter(user::Column::Id.eq(*user.as_uuid()))
        .exec(txn)
        .await?;
    Ok(touched.rows_affected > 0)
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
