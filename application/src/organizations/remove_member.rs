//! RemoveMember: a membership ends, and with it the member's sessions
//! scoped to the organization (their tokens stop validating at once, and a
//! refresh into it is refused). Only owners remove owners, and never the last.

use gatehouse_domain::permissions::members_write;
use gatehouse_domain::{OrganizationId, RoleChange, UserId, ensure_an_owner_remains};

use super::{OrganizationDeps, end_scoped_sessions, lock_for, owner};
use crate::error::AppError;
use crate::events::Audit;

/// Removes members.
#[derive(Clone, Debug)]
pub struct RemoveMember {
    deps: OrganizationDeps,
}

impl RemoveMember {
    #[must_use]
    pub const fn new(deps: OrganizationDeps) -> Self {
        Self { deps }
    }

    /// # Errors
    /// As `UpdateMember`; `REVOCATION_PENDING` when the denylist could not
    /// be written (the removal stands).
    pub async fn execute(&self, caller: UserId, org: OrganizationId, user: UserId) -> Result<(), AppError> {
        let d = &self.deps;
        let now = d.clock.now();
        let mut uow = d.uow.begin().await?;
        let access = lock_for(uow.as_ref(), org, caller).await?;
        access.require(&members_write())?;
        let target = uow.organizations().membership(org, user).await?.ok_or(AppError::NotFound("member"))?;
        let change = RoleChange { actor: access.role_name(), from: Some(&target.role), to: None };
        change.check()?;
        if change.demotes_an_owner() {
            ensure_an_owner_remains(uow.organizations().count_holding(org, &owner()).await?)?;
        }
        uow.organizations().remove_member(org, user).await?;
        let ended = end_scoped_sessions(uow.as_ref(), org, user, now).await?;
        let audit = Audit::of("member.removed")
            .actor(caller)
            .subject(user)
            .organization(org)
            .detail("role", &target.role)
            .detail("sessions_ended", ended.len());
        uow.add_messages(vec![d.events.audit(now, audit)]);
        uow.commit().await?;
        d.revoker.deny_revoked(&ended, now).await
    }
}
