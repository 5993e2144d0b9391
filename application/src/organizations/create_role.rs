//! CreateRole: a custom role of the organization, a bounded set of
//! `resource:action` permissions (the domain checked the grammar and the
//! bound when the request was parsed).

use gatehouse_domain::permissions::roles_write;
use gatehouse_domain::{OrganizationId, PermissionSet, Role, RoleName, UserId};

use super::{lock_for, role_audit};
use crate::error::AppError;
use crate::ports::store::StoreError;

/// Most custom roles one organization may define.
pub const MAX_CUSTOM_ROLES: usize = 100;

use_case!(
    /// Creates roles.
    CreateRole
);

impl CreateRole {
    /// # Errors
    /// `NOT_FOUND` for a non-member, `PERMISSION_DENIED` without
    /// `roles:write`, `ALREADY_EXISTS` (`ROLE_EXISTS`), `FAILED_PRECONDITION`
    /// (`TOO_MANY_ROLES`); `PERMISSION_DENIED` (`BEYOND_OWN_ROLE`) for
    /// permissions over the organization the caller does not hold.
    pub async fn execute(
        &self,
        caller: UserId,
        org: OrganizationId,
        name: RoleName,
        permissions: PermissionSet,
    ) -> Result<Role, AppError> {
        let d = &self.deps;
        let now = d.clock.now();
        let mut uow = d.uow.begin().await?;
        let access = lock_for(uow.as_ref(), org, caller).await?;
        access.require(&roles_write())?;
        access.role.may_hand_out(permissions.as_slice())?;
        if uow.organizations().roles(org).await?.len() >= MAX_CUSTOM_ROLES {
            return Err(AppError::FailedPrecondition {
                reason: "TOO_MANY_ROLES",
                message: "the organization has as many custom roles as it may have",
            });
        }
        let role = Role::custom(name, permissions);
        uow.organizations().insert_role(org, &role, now).await.map_err(|e| match e {
            StoreError::Conflict(_) => {
                AppError::AlreadyExists { reason: "ROLE_EXISTS", message: "the organization has a role of this name" }
            }
            other => other.into(),
        })?;
        let audit = role_audit("role.created", caller, org, &role);
        uow.add_messages(vec![d.events.audit(now, audit)]);
        uow.commit().await?;
        Ok(role)
    }
}
