//! DeleteRole: a custom role goes, refused while a member holds it.

use gatehouse_domain::permissions::roles_write;
use gatehouse_domain::{OrganizationId, RoleName, UserId};

use super::lock_for;
use super::update_role::refuse_builtin;
use crate::error::AppError;
use crate::events::Audit;

use_case!(
    /// Deletes roles.
    DeleteRole
);

impl DeleteRole {
    /// # Errors
    /// As `UpdateRole`, and `FAILED_PRECONDITION` (`ROLE_IN_USE`).
    pub async fn execute(&self, caller: UserId, org: OrganizationId, name: RoleName) -> Result<(), AppError> {
        refuse_builtin(&name)?;
        let d = &self.deps;
        let now = d.clock.now();
        let mut uow = d.uow.begin().await?;
        lock_for(uow.as_ref(), org, caller).await?.require(&roles_write())?;
        if uow.organizations().count_holding(org, &name).await? > 0 {
            return Err(AppError::FailedPrecondition {
                reason: "ROLE_IN_USE",
                message: "members hold this role; give them another first",
            });
        }
        if !uow.organizations().delete_role(org, &name).await? {
            return Err(AppError::NotFound("role"));
        }
        let audit = Audit::by("role.deleted", caller).organization(org).detail("role", &name);
        uow.add_messages(vec![d.events.audit(now, audit)]);
        Ok(uow.commit().await?)
    }
}
