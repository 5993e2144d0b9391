//! CreateOrganization: a new organization whose first member, and owner, is the caller.

use gatehouse_domain::{Membership, Organization, OrganizationId, OrganizationName, Slug, UserId};

use super::owner;
use crate::error::AppError;
use crate::events::Audit;
use crate::ids::new_uuid_v7;
use crate::ports::store::StoreError;

use_case!(
    /// Creates organizations.
    CreateOrganization
);

impl CreateOrganization {
    /// # Errors
    /// `ALREADY_EXISTS` (`SLUG_TAKEN`) when another organization has the slug.
    pub async fn execute(
        &self,
        caller: UserId,
        name: OrganizationName,
        slug: Option<Slug>,
    ) -> Result<Organization, AppError> {
        let d = &self.deps;
        let now = d.clock.now();
        let org = Organization {
            id: OrganizationId::from_uuid(new_uuid_v7(now, d.rng.as_ref())),
            name,
            slug,
            created_at: now,
            updated_at: now,
        };
        let audit = Audit::by("organization.created", caller).organization(org.id).detail("name", org.name.as_str());
        let mut uow = d.uow.begin().await?;
        uow.organizations().insert(&org).await.map_err(slug_taken)?;
        let membership = Membership { organization: org.id, user: caller, role: owner(), joined_at: now };
        uow.organizations().add_member(&membership).await?;
        uow.add_messages(vec![d.events.audit(now, audit)]);
        uow.commit().await.map_err(slug_taken)?;
        tracing::info!(organization_id = %org.id, user_id = %caller, "organization created");
        Ok(org)
    }
}

/// A refused unique value of `organizations` is its slug.
pub(super) fn slug_taken(e: StoreError) -> AppError {
    match e {
        StoreError::Conflict(_) => {
            AppError::AlreadyExists { reason: "SLUG_TAKEN", message: "another organization has this slug" }
        }
        other => other.into(),
    }
}
