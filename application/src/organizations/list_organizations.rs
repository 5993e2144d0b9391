//! ListOrganizations: the organizations the caller is a member of, with the
//! caller's role in each, by id, a page at a time.

use gatehouse_domain::{OrganizationId, UserId};

use crate::error::AppError;
use crate::paging::page_size;
use crate::ports::organizations::MemberOf;

use_case!(
    /// Lists the caller's organizations.
    ListOrganizations
);

impl ListOrganizations {
    /// One page after `after`, and where the next starts (`None` on the last).
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` (`page_size`) above the maximum.
    pub async fn execute(
        &self,
        caller: UserId,
        requested_size: u32,
        after: Option<OrganizationId>,
    ) -> Result<(Vec<MemberOf>, Option<OrganizationId>), AppError> {
        let size = page_size(requested_size)?;
        // One more than asked tells whether another page follows.
        let mut found = self.deps.organizations.member_of(caller, after, size + 1).await?;
        let more = found.len() > size as usize;
        found.truncate(size as usize);
        let next = if more { found.last().map(|(o, _)| o.id) } else { None };
        Ok((found, next))
    }
}
