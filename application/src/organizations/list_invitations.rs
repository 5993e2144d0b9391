//! ListInvitations: the organization's open invitations (neither accepted,
//! revoked nor expired), oldest first, for holders of `invitations:read`.

use gatehouse_domain::permissions::invitations_read;
use gatehouse_domain::{Invitation, OrganizationId, UserId};

use super::Access;
use crate::error::AppError;

use_case!(
    /// Lists invitations.
    ListInvitations
);

impl ListInvitations {
    /// # Errors
    /// `NOT_FOUND` for a non-member, `PERMISSION_DENIED` without `invitations:read`.
    pub async fn execute(&self, caller: UserId, org: OrganizationId) -> Result<Vec<Invitation>, AppError> {
        let reads = self.deps.organizations.as_ref();
        Access::of(reads, org, caller).await?.require(&invitations_read())?;
        let now = self.deps.clock.now();
        Ok(reads.open_invitations(org, now).await?)
    }
}
