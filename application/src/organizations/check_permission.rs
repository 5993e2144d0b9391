//! CheckPermission(s): does `subject` hold `permission` in the organization,
//! and through which role? What internal services ask. Decided on the
//! stored membership and role, so a role change or removal counts at once.
//! A caller may ask about itself, or about anyone with `members:read`.

use gatehouse_domain::permissions::members_read;
use gatehouse_domain::{OrganizationId, Permission, RoleName, UserId};

use super::{Access, resolve_role};
use crate::error::AppError;

/// One answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PermissionAnswer {
    pub allowed: bool,
    /// The role that granted it; `None` when not allowed.
    pub role: Option<RoleName>,
}

use_case!(
    /// Checks permissions.
    CheckPermission
);

impl CheckPermission {
    /// One answer per permission, in order.
    ///
    /// # Errors
    /// `NOT_FOUND` for a non-member caller, `PERMISSION_DENIED` when asking
    /// about someone else without `members:read`.
    pub async fn execute(
        &self,
        caller: UserId,
        org: OrganizationId,
        subject: UserId,
        permissions: &[Permission],
    ) -> Result<Vec<PermissionAnswer>, AppError> {
        let reads = self.deps.organizations.as_ref();
        let access = Access::of(reads, org, caller).await?;
        if subject != caller {
            access.require(&members_read())?;
        }
        let role = if subject == caller {
            Some(access.role)
        } else {
            match reads.membership(org, subject).await? {
                Some(m) => resolve_role(reads, org, &m.role).await?,
                None => None,
            }
        };
        Ok(permissions
            .iter()
            .map(|p| match &role {
                Some(r) if r.allows(p) => PermissionAnswer { allowed: true, role: Some(r.name.clone()) },
                _ => PermissionAnswer { allowed: false, role: None },
            })
            .collect())
    }
}
