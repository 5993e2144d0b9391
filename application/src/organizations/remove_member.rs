//! RemoveMember: a membership ends, and with it the member's sessions
//! scoped to the organization (their tokens stop validating at once, and a
//! refresh into it is refused). Only owners remove owners, and never the last.

use gatehouse_domain::{OrganizationId, UserId};

use super::{decide_role_change, end_scoped_sessions};
use crate::error::AppError;
use crate::events::Audit;

use_case!(
    /// Removes members.
    RemoveMember
);

impl RemoveMember {
    /// # Errors
    /// As `UpdateMember`; `REVOCATION_PENDING` when the denylist could not
    /// be written (the removal stands).
    pub async fn execute(&self, caller: UserId, org: OrganizationId, user: UserId) -> Result<(), AppError> {
        let d = &self.deps;
        let now = d.clock.now();
        let mut uow = d.uow.begin().await?;
        let target = decide_role_change(uow.as_ref(), org, caller, user, None).await?;
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
