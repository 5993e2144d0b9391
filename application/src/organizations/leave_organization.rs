//! LeaveOrganization: the caller's membership ends (never the last owner's),
//! with the caller's sessions scoped to the organization.

use gatehouse_domain::{OrganizationId, UserId, ensure_an_owner_remains};

use super::{end_scoped_sessions, lock_for, owner};
use crate::error::AppError;
use crate::events::Audit;

use_case!(
    /// Leaves organizations.
    LeaveOrganization
);

impl LeaveOrganization {
    /// # Errors
    /// `NOT_FOUND` for a non-member, `FAILED_PRECONDITION` (`LAST_OWNER`).
    pub async fn execute(&self, caller: UserId, org: OrganizationId) -> Result<(), AppError> {
        let d = &self.deps;
        let now = d.clock.now();
        let mut uow = d.uow.begin().await?;
        let access = lock_for(uow.as_ref(), org, caller).await?;
        if access.role_name().is_owner() {
            ensure_an_owner_remains(uow.organizations().count_holding(org, &owner()).await?)?;
        }
        uow.organizations().remove_member(org, caller).await?;
        let ended = end_scoped_sessions(uow.as_ref(), org, caller, now).await?;
        let audit = Audit::by("member.left", caller).organization(org).detail("role", access.role_name());
        uow.add_messages(vec![d.events.audit(now, audit)]);
        uow.commit().await?;
        d.revoker.deny_revoked(&ended, now).await
    }
}
