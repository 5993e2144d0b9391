//! UpdateMember: a member gets another role. Only owners give or take the
//! owner role, and the last owner cannot be demoted; the organization is
//! locked while this is decided, so two owners demoting each other at once
//! leave one.

use gatehouse_domain::permissions::members_write;
use gatehouse_domain::{Membership, OrganizationId, RoleChange, RoleName, UserId, ensure_an_owner_remains};

use super::{OrganizationDeps, assignable_role, lock_for, owner};
use crate::error::AppError;
use crate::events::Audit;

/// Changes members' roles.
#[derive(Clone, Debug)]
pub struct UpdateMember {
    deps: OrganizationDeps,
}

impl UpdateMember {
    #[must_use]
    pub const fn new(deps: OrganizationDeps) -> Self {
        Self { deps }
    }

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
        let access = lock_for(uow.as_ref(), org, caller).await?;
        access.require(&members_write())?;
        let target = uow.organizations().membership(org, user).await?.ok_or(AppError::NotFound("member"))?;
        let change = RoleChange { actor: access.role_name(), from: Some(&target.role), to: Some(&role) };
        change.check()?;
        assignable_role(uow.organizations(), org, &role).await?;
        if change.demotes_an_owner() {
            ensure_an_owner_remains(uow.organizations().count_holding(org, &owner()).await?)?;
        }
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
