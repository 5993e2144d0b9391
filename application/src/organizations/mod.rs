//! Organizations: the `OrganizationService` use cases, one file each, named
//! after its RPC, and what they share: who the caller is in an organization
//! ([`Access`]) and how the domain's refusals read to a caller.
//!
//! Isolation: to a caller who is not a member, an organization and
//! everything in it (members, roles, invitations, audit trail) does not
//! exist: every such request is `NOT_FOUND("organization")`, the same answer
//! as for an id that was never issued, so nothing tells whether it exists.
//! A member without the permission an action needs gets `PERMISSION_DENIED`.

/// A use case: a struct holding the organization ports, built with `new`.
macro_rules! use_case {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug)]
        pub struct $name {
            deps: $crate::organizations::OrganizationDeps,
        }

        impl $name {
            #[must_use]
            pub const fn new(deps: $crate::organizations::OrganizationDeps) -> Self {
                Self { deps }
            }
        }
    };
}

mod accept_invitation;
mod add_member;
mod check_permission;
mod create_organization;
mod create_role;
mod delete_organization;
mod delete_role;
mod get_organization;
mod leave_organization;
mod list_audit_events;
mod list_invitations;
mod list_members;
mod list_organizations;
mod list_roles;
mod remove_member;
mod revoke_invitation;
mod update_member;
mod update_organization;
mod update_role;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use gatehouse_domain::permissions::members_write;
use gatehouse_domain::{
    BuiltinRole, InvitationClosed, Membership, OrganizationId, OrganizationRuleError, Permission, RevokeReason, Role,
    RoleChange, RoleName, Session, UserId, ensure_an_owner_remains, revoke_all,
};

pub use accept_invitation::AcceptInvitation;
pub use add_member::{AddMember, Added, Invitee};
pub use check_permission::{CheckPermission, PermissionAnswer};
pub use create_organization::CreateOrganization;
pub use create_role::CreateRole;
pub use delete_organization::DeleteOrganization;
pub use delete_role::DeleteRole;
pub use get_organization::GetOrganization;
pub use leave_organization::LeaveOrganization;
pub use list_audit_events::ListOrganizationAuditEvents;
pub use list_invitations::ListInvitations;
pub use list_members::ListMembers;
pub use list_organizations::ListOrganizations;
pub use list_roles::ListRoles;
pub use remove_member::RemoveMember;
pub use revoke_invitation::RevokeInvitation;
pub use update_member::UpdateMember;
pub use update_organization::{OrganizationUpdate, UpdateOrganization};
pub use update_role::UpdateRole;

use crate::auth::SessionRevoker;
use crate::error::{AppError, FieldViolation};
use crate::events::{Audit, EventFactory};
use crate::ports::audit::AuditLog;
use crate::ports::clock::Clock;
use crate::ports::organizations::OrganizationReads;
use crate::ports::random::RandomSource;
use crate::ports::store::UserRepository;
use crate::ports::unit_of_work::{UnitOfWork, UnitOfWorkFactory};
use crate::settings::OrganizationSettings;
use crate::throttle::Throttle;

/// What the organization use cases need.
#[derive(Clone, Debug)]
pub struct OrganizationDeps {
    pub organizations: Arc<dyn OrganizationReads>,
    pub users: Arc<dyn UserRepository>,
    pub audit: Arc<dyn AuditLog>,
    pub uow: Arc<dyn UnitOfWorkFactory>,
    pub events: EventFactory,
    pub revoker: SessionRevoker,
    pub throttle: Throttle,
    pub clock: Arc<dyn Clock>,
    pub rng: Arc<dyn RandomSource>,
    pub settings: OrganizationSettings,
}

/// The role `user` holds in `org`: what an organization-scoped token carries.
///
/// # Errors
/// `NOT_FOUND` (`organization`) unless `user` is a member.
pub async fn member_role(reads: &dyn OrganizationReads, org: OrganizationId, user: UserId) -> Result<Role, AppError> {
    Ok(Access::of(reads, org, user).await?.role)
}

/// The role `name` stands for in `org`: a built-in one, or the
/// organization's custom role of that name.
///
/// # Errors
/// Storage failures.
pub async fn resolve_role(
    reads: &dyn OrganizationReads,
    org: OrganizationId,
    name: &RoleName,
) -> Result<Option<Role>, AppError> {
    match name.builtin() {
        Some(builtin) => Ok(Some(Role::builtin(builtin))),
        None => Ok(reads.role(org, name).await?),
    }
}

/// A role a request names for a member: it must exist in the organization.
///
/// # Errors
/// `INVALID_ARGUMENT` naming `role` for a role the organization does not have.
async fn assignable_role(
    reads: &dyn OrganizationReads,
    org: OrganizationId,
    name: &RoleName,
) -> Result<Role, AppError> {
    resolve_role(reads, org, name).await?.ok_or_else(|| {
        AppError::InvalidArgument(vec![FieldViolation::new("role", "the organization has no such role")])
    })
}

/// What isolation answers for anything of an organization the caller is not in.
pub(crate) const fn not_found() -> AppError {
    AppError::NotFound("organization")
}

/// The caller's place in an organization.
#[derive(Debug, Clone)]
pub(crate) struct Access {
    pub(crate) membership: Membership,
    pub(crate) role: Role,
}

impl Access {
    /// The caller's membership and role.
    ///
    /// # Errors
    /// [`not_found`] when the caller is not a member (or there is no such organization).
    pub(crate) async fn of(
        reads: &dyn OrganizationReads,
        org: OrganizationId,
        caller: UserId,
    ) -> Result<Self, AppError> {
        let membership = reads.membership(org, caller).await?.ok_or_else(not_found)?;
        let role = resolve_role(reads, org, &membership.role)
            .await?
            .ok_or_else(|| AppError::internal(format!("member holds the unknown role {}", membership.role)))?;
        Ok(Self { membership, role })
    }

    /// Refuses unless the caller's role grants `wanted`.
    ///
    /// # Errors
    /// `PERMISSION_DENIED`.
    pub(crate) fn require(&self, wanted: &Permission) -> Result<(), AppError> {
        if self.role.allows(wanted) {
            Ok(())
        } else {
            Err(AppError::PermissionDenied {
                reason: "PERMISSION_DENIED",
                message: "your role in this organization does not allow this",
            })
        }
    }

    pub(crate) const fn role_name(&self) -> &RoleName {
        &self.membership.role
    }
}

/// Locks the organization in `uow` and returns the caller's access in it.
///
/// # Errors
/// [`not_found`] when the organization is gone or the caller is not a member.
pub(crate) async fn lock_for(uow: &dyn UnitOfWork, org: OrganizationId, caller: UserId) -> Result<Access, AppError> {
    uow.organizations().lock(org).await?.ok_or_else(not_found)?;
    Access::of(uow.organizations(), org, caller).await
}

/// Decides, in `uow` with the organization locked, whether the caller may
/// change `user`'s role from what it is to `to` (`None`: remove them): the
/// caller needs `members:write`, only owners touch the owner role, and the
/// last owner keeps it. Returns the member as they are now.
///
/// # Errors
/// `NOT_FOUND` (`organization`, `member`), `PERMISSION_DENIED`,
/// `FAILED_PRECONDITION` (`LAST_OWNER`).
pub(crate) async fn decide_role_change(
    uow: &dyn UnitOfWork,
    org: OrganizationId,
    caller: UserId,
    user: UserId,
    to: Option<&RoleName>,
) -> Result<Membership, AppError> {
    let access = lock_for(uow, org, caller).await?;
    access.require(&members_write())?;
    let target = uow.organizations().membership(org, user).await?.ok_or(AppError::NotFound("member"))?;
    let change = RoleChange { actor: access.role_name(), from: Some(&target.role), to };
    change.check()?;
    // Nobody manages a member whose role is above their own, nor gives one.
    if let Some(held) = resolve_role(uow.organizations(), org, &target.role).await? {
        access.role.may_hand_out(&held.permissions)?;
    }
    if let Some(role) = to {
        access.role.may_hand_out(&assignable_role(uow.organizations(), org, role).await?.permissions)?;
    }
    if change.demotes_an_owner() {
        ensure_an_owner_remains(uow.organizations().count_holding(org, &owner()).await?)?;
    }
    Ok(target)
}

/// The audit fact of a custom role written (`role.created`, `role.changed`).
pub(crate) fn role_audit(kind: &'static str, caller: UserId, org: OrganizationId, role: &Role) -> Audit {
    let permissions: Vec<String> = role.permissions.iter().map(ToString::to_string).collect();
    Audit::by(kind, caller).organization(org).detail("role", &role.name).detail("permissions", permissions.join(" "))
}

/// Ends, in `uow`, every unrevoked session of `user` scoped to `org` (the
/// user leaves it); returns them for [`SessionRevoker::deny_revoked`] once
/// `uow` is committed.
///
/// # Errors
/// Storage failures.
pub(crate) async fn end_scoped_sessions(
    uow: &dyn UnitOfWork,
    org: OrganizationId,
    user: UserId,
    now: DateTime<Utc>,
) -> Result<Vec<Session>, AppError> {
    let scoped: Vec<Session> =
        uow.sessions().unrevoked(user).await?.into_iter().filter(|s| s.organization() == Some(org)).collect();
    let ended = revoke_all(scoped, None, now);
    uow.sessions().save_revocations(&ended, RevokeReason::OrganizationLeft).await?;
    Ok(ended)
}

impl From<OrganizationRuleError> for AppError {
    fn from(e: OrganizationRuleError) -> Self {
        match e {
            OrganizationRuleError::LastOwner => Self::FailedPrecondition {
                reason: "LAST_OWNER",
                message: "an organization must keep at least one owner",
            },
            OrganizationRuleError::OwnerOnly => Self::PermissionDenied {
                reason: "OWNER_ONLY",
                message: "only an owner may give, change or take away the owner role",
            },
            OrganizationRuleError::BeyondOwnRole => Self::PermissionDenied {
                reason: "BEYOND_OWN_ROLE",
                message: "the role holds permissions over the organization that your role does not",
            },
        }
    }
}

impl From<InvitationClosed> for AppError {
    fn from(e: InvitationClosed) -> Self {
        match e {
            InvitationClosed::Accepted => {
                Self::FailedPrecondition { reason: "INVITATION_USED", message: "the invitation was already accepted" }
            }
            InvitationClosed::Revoked => {
                Self::FailedPrecondition { reason: "INVITATION_REVOKED", message: "the invitation was revoked" }
            }
            InvitationClosed::Expired => {
                Self::FailedPrecondition { reason: "INVITATION_EXPIRED", message: "the invitation has expired" }
            }
        }
    }
}

/// The owner role's name.
pub(crate) fn owner() -> RoleName {
    RoleName::of(BuiltinRole::Owner)
}

#[cfg(test)]
mod tests;
