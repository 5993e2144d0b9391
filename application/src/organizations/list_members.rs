//! ListMembers: the organization's members by user id, a page at a time,
//! for holders of `members:read` (every built-in role).

use gatehouse_domain::permissions::members_read;
use gatehouse_domain::{Membership, OrganizationId, UserId};

use super::Access;
use crate::error::AppError;
use crate::paging::page_size;

use_case!(
    /// Lists members.
    ListMembers
);

impl ListMembers {
    /// One page after `after`, and where the next starts.
    ///
    /// # Errors
    /// `NOT_FOUND` for a non-member, `PERMISSION_DENIED` without
    /// `members:read`, `INVALID_ARGUMENT` (`page_size`).
    pub async fn execute(
        &self,
        caller: UserId,
        org: OrganizationId,
        requested_size: u32,
        after: Option<UserId>,
    ) -> Result<(Vec<Membership>, Option<UserId>), AppError> {
        let reads = self.deps.organizations.as_ref();
        Access::of(reads, org, caller).await?.require(&members_read())?;
        let size = page_size(requested_size)?;
        let mut found = reads.members(org, after, size + 1).await?;
        let more = found.len() > size as usize;
        found.truncate(size as usize);
        let next = if more { found.last().map(|m| m.user) } else { None };
        Ok((found, next))
    }
}
