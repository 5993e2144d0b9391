//! `ListAuditEvents` with an `organization_id`: the organization's trail,
//! newest first, for holders of `audit:read`.

use gatehouse_domain::permissions::audit_read;
use gatehouse_domain::{OrganizationId, UserId};

use super::Access;
use crate::audit::{AuditPage, page_of};
use crate::error::AppError;
use crate::ports::audit::AuditCursor;

use_case!(
    /// Lists an organization's audit trail.
    ListOrganizationAuditEvents
);

impl ListOrganizationAuditEvents {
    /// # Errors
    /// `NOT_FOUND` for a non-member, `PERMISSION_DENIED` without
    /// `audit:read`, `INVALID_ARGUMENT` (`page_size`).
    pub async fn execute(
        &self,
        caller: UserId,
        org: OrganizationId,
        page_size: u32,
        page: Option<AuditCursor>,
    ) -> Result<AuditPage, AppError> {
        Access::of(self.deps.organizations.as_ref(), org, caller).await?.require(&audit_read())?;
        let log = self.deps.audit.clone();
        page_of(page_size, |limit| async move { log.list_organization(org, page, limit).await }).await
    }
}
