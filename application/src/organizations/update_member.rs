//! UpdateMember: a member gets another role. Only owners give or take the
//! owner role, and the last owner cannot be demoted; the organization is
//! locked while this is decided, so two owners demoting each other at once
//! leave one.

use gatehouse_domain::{Membership, OrganizationId, RoleName, UserId};

use super::decide_role_change;
use crate::error::AppError;
use crate::events::Audit;

use_case!(
    /// Changes members' roles.
    UpdateMember
);

impl UpdateMember {
    /// # Errors
    /// `NOT_FOUND` for a non-member caller or target (`member`),
    /// `PERMISSION_DENIED` without `members:write` or for the owner role by a
    /// non-owner, `INVALID_ARGUMENT` (`role`) for an unknown role,
    /// `FAILED_PRECONDITION` (`LAST_OWNER`).
    pub async fn execute(
        &self,
        caller: UserId,
        org: OrganizationId,
        user: UserId,
        role: RoleName,
    ) -> Result<Membership, AppError> {
        let d = &self.deps;
        let now = d.clock.now();
        let mut uow = d.uow.begin().await?;
        let target = decide_role_change(uow.as_ref(), org, caller, user, Some(&role)).await?;
        uow.organizations().set_role(org, user, &role).await?;
        let audit = Audit::of("member.role_changed")
            .actor(caller)
            .subject(user)
            .organization(org)
            .detail("from", &target.role)
            .detail("to", &role);
        uow.add_messages(vec![d.events.audit(now, audit)]);
        uow.commit().await?;
        Ok(Membership { role, ..target })
    }
}
