//! [`OrganizationReads`] on the pool and in a unit of work, and the unit of
//! work's [`OrganizationWrites`], over `organizations`,
//! `organization_members`, `organization_roles` and
//! `organization_invitations`.
//!
//! The reads are written once, over any connection, and serve both. A
//! change to members or roles locks the organization's row first
//! ([`OrganizationWrites::lock`]: `SELECT … FOR UPDATE` on PostgreSQL; SQLite's
//! unit of work holds the database's write lock from its start), so the
//! last-owner rule is decided on a count no concurrent change can move.
//! Accepting and revoking an invitation are single guarded `UPDATE`s.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use gatehouse_application::ports::organizations::{MemberOf, OrganizationReads, OrganizationWrites};
use gatehouse_application::ports::store::StoreError;
use gatehouse_domain::{
    Invitation, Membership, Organization, OrganizationId, OrganizationName, Permission, PermissionSet, Role, RoleName,
    Slug, TokenHash, UserId,
};
use sea_orm::sea_query::{Expr, LockType};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

use crate::convert::{to_email, to_token_hash};
use crate::database::Database;
use crate::entity::{organization, organization_invitation, organization_member, organization_role};
use crate::error::store_error;
use crate::pool::Pool;
use crate::unit_of_work::SqlUnitOfWork;

/// Organizations read on the pool.
#[derive(Debug, Clone)]
pub struct SqlOrganizationRepository {
    conn: Pool,
}

impl SqlOrganizationRepository {
    /// A repository over `db`'s pool.
    #[must_use]
    pub fn new(db: &Database) -> Self {
        Self { conn: db.conn.clone() }
    }
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Internal(Box::new(DbErr::Custom(format!("stored {what} is invalid: {e}"))))
}

fn to_organization(row: organization::Model) -> Result<Organization, StoreError> {
    Ok(Organization {
        id: OrganizationId::from_uuid(row.id),
        name: OrganizationName::parse(&row.name).map_err(|e| corrupt("organization name", e))?,
        slug: row.slug.map(|s| Slug::parse(&s)).transpose().map_err(|e| corrupt("slug", e))?,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

fn to_membership(row: organization_member::Model) -> Membership {
    Membership {
        organization: OrganizationId::from_uuid(row.organization_id),
        user: UserId::from_uuid(row.user_id),
        role: RoleName::restore(row.role),
        joined_at: row.joined_at,
    }
}

fn to_role(row: organization_role::Model) -> Role {
    let permissions = row.permissions.split(' ').filter(|p| !p.is_empty()).map(|p| Permission::restore(p.to_owned()));
    Role::custom(RoleName::restore(row.name), PermissionSet::restore(permissions.collect()))
}

fn permissions_text(role: &Role) -> String {
    role.permissions.iter().map(Permission::as_str).collect::<Vec<_>>().join(" ")
}

fn to_invitation(row: organization_invitation::Model) -> Result<Invitation, StoreError> {
    Ok(Invitation {
        id: row.id,
        organization: OrganizationId::from_uuid(row.organization_id),
        email: to_email(&row.email).map_err(store_error)?,
        role: RoleName::restore(row.role),
        token_hash: to_token_hash(row.token_hash).map_err(store_error)?,
        invited_by: UserId::from_uuid(row.invited_by),
        created_at: row.created_at,
        expires_at: row.expires_at,
        accepted_at: row.accepted_at,
        revoked_at: row.revoked_at,
    })
}

async fn get<C: ConnectionTrait>(c: &C, id: OrganizationId, lock: bool) -> Result<Option<Organization>, StoreError> {
    let mut query = organization::Entity::find_by_id(*id.as_uuid());
    if lock {
        query = query.lock(LockType::Update);
    }
    query.one(c).await.map_err(store_error)?.map(to_organization).transpose()
}

async fn membership<C: ConnectionTrait>(
    c: &C,
    org: OrganizationId,
    user: UserId,
) -> Result<Option<Membership>, StoreError> {
    let row =
        organization_member::Entity::find_by_id((*org.as_uuid(), *user.as_uuid())).one(c).await.map_err(store_error)?;
    Ok(row.map(to_membership))
}

async fn role<C: ConnectionTrait>(c: &C, org: OrganizationId, name: &RoleName) -> Result<Option<Role>, StoreError> {
    let row = organization_role::Entity::find_by_id((*org.as_uuid(), name.as_str().to_owned()))
        .one(c)
        .await
        .map_err(store_error)?;
    Ok(row.map(to_role))
}

async fn roles<C: ConnectionTrait>(c: &C, org: OrganizationId) -> Result<Vec<Role>, StoreError> {
    let rows = organization_role::Entity::find()
        .filter(organization_role::Column::OrganizationId.eq(*org.as_uuid()))
        .order_by_asc(organization_role::Column::Name)
        .all(c)
        .await
        .map_err(store_error)?;
    Ok(rows.into_iter().map(to_role).collect())
}

async fn member_of<C: ConnectionTrait>(
    c: &C,
    user: UserId,
    after: Option<OrganizationId>,
    limit: u32,
) -> Result<Vec<MemberOf>, StoreError> {
    let mut query = organization_member::Entity::find()
        .filter(organization_member::Column::UserId.eq(*user.as_uuid()))
        .find_also_related(organization::Entity);
    if let Some(after) = after {
        query = query.filter(organization_member::Column::OrganizationId.gt(*after.as_uuid()));
    }
    let rows = query
        .order_by_asc(organization_member::Column::OrganizationId)
        .limit(u64::from(limit))
        .all(c)
        .await
        .map_err(store_error)?;
    rows.into_iter()
        .filter_map(|(m, o)| o.map(|o| (m, o)))
        .map(|(m, o)| Ok((to_organization(o)?, RoleName::restore(m.role))))
        .collect()
}

async fn members<C: ConnectionTrait>(
    c: &C,
    org: OrganizationId,
    after: Option<UserId>,
    limit: u32,
) -> Result<Vec<Membership>, StoreError> {
    let mut query =
        organization_member::Entity::find().filter(organization_member::Column::OrganizationId.eq(*org.as_uuid()));
    if let Some(after) = after {
        query = query.filter(organization_member::Column::UserId.gt(*after.as_uuid()));
    }
    let rows = query
        .order_by_asc(organization_member::Column::UserId)
        .limit(u64::from(limit))
        .all(c)
        .await
        .map_err(store_error)?;
    Ok(rows.into_iter().map(to_membership).collect())
}

async fn open_invitations<C: ConnectionTrait>(
    c: &C,
    org: OrganizationId,
    now: DateTime<Utc>,
) -> Result<Vec<Invitation>, StoreError> {
    let rows = organization_invitation::Entity::find()
        .filter(organization_invitation::Column::OrganizationId.eq(*org.as_uuid()))
        .filter(organization_invitation::Column::AcceptedAt.is_null())
        .filter(organization_invitation::Column::RevokedAt.is_null())
        .filter(organization_invitation::Column::ExpiresAt.gt(now))
        .order_by_asc(organization_invitation::Column::CreatedAt)
        .order_by_asc(organization_invitation::Column::Id)
        .all(c)
        .await
        .map_err(store_error)?;
    rows.into_iter().map(to_invitation).collect()
}

async fn invitation_by_token<C: ConnectionTrait>(c: &C, hash: &TokenHash) -> Result<Option<Invitation>, StoreError> {
    let row = organization_invitation::Entity::find()
        .filter(organization_invitation::Column::TokenHash.eq(hash.as_bytes().to_vec()))
        .one(c)
        .await
        .map_err(store_error)?;
    row.map(to_invitation).transpose()
}

/// The reads, for a type whose `$conn` field is a connection.
macro_rules! reads {
    ($ty:ty, $conn:ident) => {
        #[async_trait]
        impl OrganizationReads for $ty {
            async fn get(&self, id: OrganizationId) -> Result<Option<Organization>, StoreError> {
                get(&self.$conn, id, false).await
            }

            async fn membership(&self, org: OrganizationId, user: UserId) -> Result<Option<Membership>, StoreError> {
                membership(&self.$conn, org, user).await
            }

            async fn role(&self, org: OrganizationId, name: &RoleName) -> Result<Option<Role>, StoreError> {
                role(&self.$conn, org, name).await
            }

            async fn roles(&self, org: OrganizationId) -> Result<Vec<Role>, StoreError> {
                roles(&self.$conn, org).await
            }

            async fn member_of(
                &self,
                user: UserId,
                after: Option<OrganizationId>,
                limit: u32,
            ) -> Result<Vec<MemberOf>, StoreError> {
                member_of(&self.$conn, user, after, limit).await
            }

            async fn members(
                &self,
                org: OrganizationId,
                after: Option<UserId>,
                limit: u32,
            ) -> Result<Vec<Membership>, StoreError> {
                members(&self.$conn, org, after, limit).await
            }

            async fn open_invitations(
                &self,
                org: OrganizationId,
                now: DateTime<Utc>,
            ) -> Result<Vec<Invitation>, StoreError> {
                open_invitations(&self.$conn, org, now).await
            }

            async fn invitation_by_token(&self, hash: &TokenHash) -> Result<Option<Invitation>, StoreError> {
                invitation_by_token(&self.$conn, hash).await
            }
        }
    };
}
reads!(SqlOrganizationRepository, conn);
reads!(SqlUnitOfWork, txn);

#[async_trait]
impl OrganizationWrites for SqlUnitOfWork {
    async fn insert(&self, org: &Organization) -> Result<(), StoreError> {
        let row = organization::ActiveModel {
            id: Set(*org.id.as_uuid()),
            name: Set(org.name.as_str().to_owned()),
            slug: Set(org.slug.as_ref().map(|s| s.as_str().to_owned())),
            created_at: Set(org.created_at),
            updated_at: Set(org.updated_at),
        };
        organization::Entity::insert(row).exec_without_returning(&self.txn).await.map_err(store_error)?;
        Ok(())
    }

    async fn lock(&self, id: OrganizationId) -> Result<Option<Organization>, StoreError> {
        get(&self.txn, id, true).await
    }

    async fn update(&self, org: &Organization) -> Result<(), StoreError> {
        organization::Entity::update_many()
            .col_expr(organization::Column::Name, Expr::value(org.name.as_str()))
            .col_expr(organization::Column::Slug, Expr::value(org.slug.as_ref().map(|s| s.as_str().to_owned())))
            .col_expr(organization::Column::UpdatedAt, Expr::value(org.updated_at))
            .filter(organization::Column::Id.eq(*org.id.as_uuid()))
            .exec(&self.txn)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn delete(&self, id: OrganizationId) -> Result<(), StoreError> {
        // Members, roles and invitations go with it (foreign keys cascade,
        // on SQLite too: the pool turns them on).
        organization::Entity::delete_by_id(*id.as_uuid()).exec(&self.txn).await.map_err(store_error)?;
        Ok(())
    }

    async fn add_member(&self, m: &Membership) -> Result<(), StoreError> {
        let row = organization_member::ActiveModel {
            organization_id: Set(*m.organization.as_uuid()),
            user_id: Set(*m.user.as_uuid()),
            role: Set(m.role.as_str().to_owned()),
            joined_at: Set(m.joined_at),
        };
        organization_member::Entity::insert(row).exec_without_returning(&self.txn).await.map_err(store_error)?;
        Ok(())
    }

    async fn set_role(&self, org: OrganizationId, user: UserId, role: &RoleName) -> Result<bool, StoreError> {
        let done = organization_member::Entity::update_many()
            .col_expr(organization_member::Column::Role, Expr::value(role.as_str()))
            .filter(organization_member::Column::OrganizationId.eq(*org.as_uuid()))
            .filter(organization_member::Column::UserId.eq(*user.as_uuid()))
            .exec(&self.txn)
            .await
            .map_err(store_error)?;
        Ok(done.rows_affected > 0)
    }

    async fn remove_member(&self, org: OrganizationId, user: UserId) -> Result<bool, StoreError> {
        let done = organization_member::Entity::delete_by_id((*org.as_uuid(), *user.as_uuid()))
            .exec(&self.txn)
            .await
            .map_err(store_error)?;
        Ok(done.rows_affected > 0)
    }

    async fn count_holding(&self, org: OrganizationId, role: &RoleName) -> Result<u64, StoreError> {
        organization_member::Entity::find()
            .filter(organization_member::Column::OrganizationId.eq(*org.as_uuid()))
            .filter(organization_member::Column::Role.eq(role.as_str()))
            .count(&self.txn)
            .await
            .map_err(store_error)
    }

    async fn insert_role(&self, org: OrganizationId, role: &Role, now: DateTime<Utc>) -> Result<(), StoreError> {
        let row = organization_role::ActiveModel {
            organization_id: Set(*org.as_uuid()),
            name: Set(role.name.as_str().to_owned()),
            permissions: Set(permissions_text(role)),
            created_at: Set(now),
            updated_at: Set(now),
        };
        organization_role::Entity::insert(row).exec_without_returning(&self.txn).await.map_err(store_error)?;
        Ok(())
    }

    async fn update_role(&self, org: OrganizationId, role: &Role, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let done = organization_role::Entity::update_many()
            .col_expr(organization_role::Column::Permissions, Expr::value(permissions_text(role)))
            .col_expr(organization_role::Column::UpdatedAt, Expr::value(now))
            .filter(organization_role::Column::OrganizationId.eq(*org.as_uuid()))
            .filter(organization_role::Column::Name.eq(role.name.as_str()))
            .exec(&self.txn)
            .await
            .map_err(store_error)?;
        Ok(done.rows_affected > 0)
    }

    async fn delete_role(&self, org: OrganizationId, name: &RoleName) -> Result<bool, StoreError> {
        let done = organization_role::Entity::delete_by_id((*org.as_uuid(), name.as_str().to_owned()))
            .exec(&self.txn)
            .await
            .map_err(store_error)?;
        Ok(done.rows_affected > 0)
    }

    async fn insert_invitation(&self, inv: &Invitation) -> Result<(), StoreError> {
        let row = organization_invitation::ActiveModel {
            id: Set(inv.id),
            organization_id: Set(*inv.organization.as_uuid()),
            email: Set(inv.email.as_str().to_owned()),
            role: Set(inv.role.as_str().to_owned()),
            token_hash: Set(inv.token_hash.as_bytes().to_vec()),
            invited_by: Set(*inv.invited_by.as_uuid()),
            created_at: Set(inv.created_at),
            expires_at: Set(inv.expires_at),
            accepted_at: Set(inv.accepted_at),
            revoked_at: Set(inv.revoked_at),
        };
        organization_invitation::Entity::insert(row).exec_without_returning(&self.txn).await.map_err(store_error)?;
        Ok(())
    }

    async fn accept_invitation(&self, id: Uuid, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let done = organization_invitation::Entity::update_many()
            .col_expr(organization_invitation::Column::AcceptedAt, Expr::value(now))
            .filter(organization_invitation::Column::Id.eq(id))
            .filter(organization_invitation::Column::AcceptedAt.is_null())
            .filter(organization_invitation::Column::RevokedAt.is_null())
            .filter(organization_invitation::Column::ExpiresAt.gt(now))
            .exec(&self.txn)
            .await
            .map_err(store_error)?;
        Ok(done.rows_affected == 1)
    }

    async fn revoke_invitation(&self, org: OrganizationId, id: Uuid, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let done = organization_invitation::Entity::update_many()
            .col_expr(organization_invitation::Column::RevokedAt, Expr::value(now))
            .filter(organization_invitation::Column::Id.eq(id))
            .filter(organization_invitation::Column::OrganizationId.eq(*org.as_uuid()))
            .filter(organization_invitation::Column::AcceptedAt.is_null())
            .filter(organization_invitation::Column::RevokedAt.is_null())
            .exec(&self.txn)
            .await
            .map_err(store_error)?;
        Ok(done.rows_affected == 1)
    }
}
