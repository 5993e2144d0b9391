//! Storage of organizations, their members, custom roles and invitations.
//!
//! Reads that decide nothing (a `GetOrganization`, a `CheckPermission`) go
//! through [`OrganizationReads`] on the pool; every change goes through
//! the unit of work's [`OrganizationWrites`], which reads the same way inside
//! the transaction. A change to members or roles locks the organization's
//! row first ([`OrganizationWrites::lock`]), so two owners demoting or
//! removing each other at the same moment are decided one after the other
//! and the second sees that only one owner is left.
//!
//! The repositories store what the domain decided: none holds a rule.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use gatehouse_domain::{Invitation, Membership, Organization, OrganizationId, Role, RoleName, TokenHash, UserId};
use uuid::Uuid;

use crate::ports::store::StoreError;

/// A page of a user's organizations: each with the role the user holds.
pub type MemberOf = (Organization, RoleName);

/// What both the pool and a unit of work can read.
#[async_trait]
pub trait OrganizationReads: std::fmt::Debug + Send + Sync {
    /// One organization.
    async fn get(&self, id: OrganizationId) -> Result<Option<Organization>, StoreError>;

    /// The user's membership of the organization, if any.
    async fn membership(&self, org: OrganizationId, user: UserId) -> Result<Option<Membership>, StoreError>;

    /// One custom role of the organization (built-in roles are not stored).
    async fn role(&self, org: OrganizationId, name: &RoleName) -> Result<Option<Role>, StoreError>;

    /// The organization's custom roles, by name.
    async fn roles(&self, org: OrganizationId) -> Result<Vec<Role>, StoreError>;

    /// The organizations `user` is a member of, by id, after `after`, at most `limit`.
    async fn member_of(
        &self,
        user: UserId,
        after: Option<OrganizationId>,
        limit: u32,
    ) -> Result<Vec<MemberOf>, StoreError>;

    /// The organization's members, by user id, after `after`, at most `limit`.
    async fn members(
        &self,
        org: OrganizationId,
        after: Option<UserId>,
        limit: u32,
    ) -> Result<Vec<Membership>, StoreError>;

    /// The organization's invitations that were neither accepted nor revoked
    /// and are still valid at `now`, oldest first. Expired ones stay stored
    /// (they explain a refused link) but are never read here, so the list
    /// is bounded by the invitation limit over one invitation lifetime
    /// rather than growing with the organization's age.
    async fn open_invitations(&self, org: OrganizationId, now: DateTime<Utc>) -> Result<Vec<Invitation>, StoreError>;

    /// The invitation whose link token hashes to `hash`, in any state.
    async fn invitation_by_token(&self, hash: &TokenHash) -> Result<Option<Invitation>, StoreError>;
}

/// Organizations inside a unit of work.
#[async_trait]
pub trait OrganizationWrites: OrganizationReads {
    /// Stores a new organization.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when its slug is taken.
    async fn insert(&self, org: &Organization) -> Result<(), StoreError>;

    /// The organization, locked against concurrent changes to it, its
    /// members and roles until this unit of work ends.
    async fn lock(&self, id: OrganizationId) -> Result<Option<Organization>, StoreError>;

    /// Stores a new name, slug and update time.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the slug is taken.
    async fn update(&self, org: &Organization) -> Result<(), StoreError>;

    /// Deletes the organization with its members, roles and invitations.
    async fn delete(&self, id: OrganizationId) -> Result<(), StoreError>;

    /// Stores a new membership.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the user is a member already;
    /// [`StoreError::Gone`] when the user does not exist.
    async fn add_member(&self, membership: &Membership) -> Result<(), StoreError>;

    /// Gives a member another role; `false` when not a member.
    async fn set_role(&self, org: OrganizationId, user: UserId, role: &RoleName) -> Result<bool, StoreError>;

    /// Ends a membership; `false` when not a member.
    async fn remove_member(&self, org: OrganizationId, user: UserId) -> Result<bool, StoreError>;

    /// How many members hold `role`.
    async fn count_holding(&self, org: OrganizationId, role: &RoleName) -> Result<u64, StoreError>;

    /// Stores a new custom role.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the organization has a role of that name.
    async fn insert_role(&self, org: OrganizationId, role: &Role, now: DateTime<Utc>) -> Result<(), StoreError>;

    /// Replaces a custom role's permissions; `false` when there is none.
    async fn update_role(&self, org: OrganizationId, role: &Role, now: DateTime<Utc>) -> Result<bool, StoreError>;

    /// Deletes a custom role; `false` when there is none.
    async fn delete_role(&self, org: OrganizationId, name: &RoleName) -> Result<bool, StoreError>;

    /// Stores a new invitation.
    async fn insert_invitation(&self, invitation: &Invitation) -> Result<(), StoreError>;

    /// Marks the invitation accepted at `now` if it is neither accepted nor
    /// revoked and unexpired: one guarded statement, so of two parallel
    /// acceptances exactly one sees `true`.
    async fn accept_invitation(&self, id: Uuid, now: DateTime<Utc>) -> Result<bool, StoreError>;

    /// Marks the organization's invitation revoked at `now` if it is neither
    /// accepted nor revoked; `false` otherwise.
    async fn revoke_invitation(&self, org: OrganizationId, id: Uuid, now: DateTime<Utc>) -> Result<bool, StoreError>;
}
