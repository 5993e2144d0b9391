//! UpdateRole: a custom role's permissions are replaced. Members holding it
//! have the new permissions in `CheckPermission` at once, and in their
//! tokens from their next refresh. Built-in roles cannot change.

use gatehouse_domain::permissions::roles_write;
use gatehouse_domain::{OrganizationId, PermissionSet, Role, RoleName, UserId};

use super::{lock_for, role_audit};
use crate::error::{AppError, FieldViolation};

use_case!(
    /// Changes roles.
    UpdateRole
);

/// Built-in roles are the same everywhere and documented: never changed or deleted.
pub(super) fn refuse_builtin(name: &RoleName) -> Result<(), AppError> {
    if name.builtin().is_some() {
        return Err(AppError::InvalidArgument(vec![FieldViolation::new(
            "name",
            "built-in roles cannot be changed or deleted",
        )]));
    }
    Ok(())
}

impl UpdateRole {
    /// # Errors
    /// `NOT_FOUND` for a non-member or an unknown role, `PERMISSION_DENIED`
    /// without `roles:write` or (`BEYOND_OWN_ROLE`) when the role, before or
    /// after, holds permissions over the organization the caller does not,
    /// `INVALID_ARGUMENT` (`name`) for a built-in role.
    pub async fn execute(
        &self,
        caller: UserId,
        org: OrganizationId,
        name: RoleName,
        permissions: PermissionSet,
    ) -> Result<Role, AppError> {
        refuse_builtin(&name)?;
        let d = &self.deps;
        let now = d.clock.now();
        let mut uow = d.uow.begin().await?;
        let access = lock_for(uow.as_ref(), org, caller).await?;
        access.require(&roles_write())?;
        // Neither widened past, nor taken from, what the caller holds.
        access.role.may_hand_out(permissions.as_slice())?;
        let current = uow.organizations().role(org, &name).await?.ok_or(AppError::NotFound("role"))?;
        access.role.may_hand_out(&current.permissions)?;
        let role = Role::custom(name, permissions);
        if !uow.organizations().update_role(org, &role, now).await? {
            return Err(AppError::NotFound("role"));
        }
        let audit = role_audit("role.changed", caller, org, &role);
        uow.add_messages(vec![d.events.audit(now, audit)]);
        uow.commit().await?;
        Ok(role)
    }
}
