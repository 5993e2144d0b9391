//! DeleteOrganization (owners only): the organization goes with its
//! memberships, roles and invitations, and every session scoped to it ends
//! (its access tokens stop validating at once).

use gatehouse_domain::permissions::organization_delete;
use gatehouse_domain::{OrganizationId, OrganizationRuleError, UserId};

use super::{end_scoped_sessions, lock_for};
use crate::error::AppError;
use crate::events::Audit;

use_case!(
    /// Deletes organizations.
    DeleteOrganization
);

impl DeleteOrganization {
    /// # Errors
    /// `NOT_FOUND` for a non-member, `PERMISSION_DENIED` for anyone but an
    /// owner; `REVOCATION_PENDING` when the denylist could not be written
    /// (the deletion stands).
    pub async fn execute(&self, caller: UserId, org: OrganizationId) -> Result<(), AppError> {
        let d = &self.deps;
        let now = d.clock.now();
        let mut uow = d.uow.begin().await?;
        let access = lock_for(uow.as_ref(), org, caller).await?;
        access.require(&organization_delete())?;
        // A custom role an owner wrote with `organization:*` does not make
        // its holders owners: deleting is the owners' alone.
        if !access.role_name().is_owner() {
            return Err(OrganizationRuleError::OwnerOnly.into());
        }
        let mut ended = Vec::new();
        for member in uow.organizations().members(org, None, u32::MAX).await? {
            ended.extend(end_scoped_sessions(uow.as_ref(), org, member.user, now).await?);
        }
        uow.organizations().delete(org).await?;
        let audit = Audit::by("organization.deleted", caller).organization(org).detail("sessions_ended", ended.len());
        uow.add_messages(vec![d.events.audit(now, audit)]);
        uow.commit().await?;
        tracing::info!(organization_id = %org, user_id = %caller, "organization deleted");
        d.revoker.deny_revoked(&ended, now).await
    }
}
