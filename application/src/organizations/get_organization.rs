//! GetOrganization: an organization the caller is a member of, and the
//! caller's role in it.

use gatehouse_domain::{Organization, OrganizationId, RoleName, UserId};

use super::{Access, not_found};
use crate::error::AppError;

use_case!(
    /// Reads organizations.
    GetOrganization
);

impl GetOrganization {
    /// # Errors
    /// `NOT_FOUND` unless the caller is a member.
    pub async fn execute(&self, caller: UserId, org: OrganizationId) -> Result<(Organization, RoleName), AppError> {
        let reads = self.deps.organizations.as_ref();
        let access = Access::of(reads, org, caller).await?;
        let found = reads.get(org).await?.ok_or_else(not_found)?;
        Ok((found, access.membership.role))
    }
}
