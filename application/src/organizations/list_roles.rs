//! ListRoles: the built-in roles and the organization's custom ones, with
//! their permissions, for holders of `roles:read` (every built-in role).

use gatehouse_domain::permissions::roles_read;
use gatehouse_domain::{BuiltinRole, OrganizationId, Role, UserId};

use super::Access;
use crate::error::AppError;

use_case!(
    /// Lists roles.
    ListRoles
);

impl ListRoles {
    /// Built-in roles first (owner, admin, member), then custom ones by name.
    ///
    /// # Errors
    /// `NOT_FOUND` for a non-member, `PERMISSION_DENIED` without `roles:read`.
    pub async fn execute(&self, caller: UserId, org: OrganizationId) -> Result<Vec<Role>, AppError> {
        let reads = self.deps.organizations.as_ref();
        Access::of(reads, org, caller).await?.require(&roles_read())?;
        let mut roles: Vec<Role> = BuiltinRole::ALL.into_iter().map(Role::builtin).collect();
        roles.extend(reads.roles(org).await?);
        Ok(roles)
    }
}
