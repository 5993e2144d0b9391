//! RevokeInvitation: an open invitation's link stops working.

use gatehouse_domain::permissions::invitations_write;
use gatehouse_domain::{OrganizationId, UserId};
use uuid::Uuid;

use super::lock_for;
use crate::error::AppError;
use crate::events::Audit;

use_case!(
    /// Revokes invitations.
    RevokeInvitation
);

impl RevokeInvitation {
    /// # Errors
    /// `NOT_FOUND` for a non-member, or when the organization has no such
    /// open invitation; `PERMISSION_DENIED` without `invitations:write`.
    pub async fn execute(&self, caller: UserId, org: OrganizationId, invitation: Uuid) -> Result<(), AppError> {
        let d = &self.deps;
        let now = d.clock.now();
        let mut uow = d.uow.begin().await?;
        lock_for(uow.as_ref(), org, caller).await?.require(&invitations_write())?;
        if !uow.organizations().revoke_invitation(org, invitation, now).await? {
            return Err(AppError::NotFound("invitation"));
        }
        let audit = Audit::by("invitation.revoked", caller).organization(org).detail("invitation_id", invitation);
        uow.add_messages(vec![d.events.audit(now, audit)]);
        Ok(uow.commit().await?)
    }
}
