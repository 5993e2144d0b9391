//! UpdateOrganization: a new name and/or slug (the fields the mask names),
//! for members holding `organization:update`.

use gatehouse_domain::permissions::organization_update;
use gatehouse_domain::{Organization, OrganizationId, OrganizationName, Slug, UserId};

use super::create_organization::slug_taken;
use super::{lock_for, not_found};
use crate::error::AppError;
use crate::events::Audit;

/// The fields to change; `None` leaves one as it is. `slug: Some(None)`
/// removes the slug.
#[derive(Clone, Debug, Default)]
pub struct OrganizationUpdate {
    pub name: Option<OrganizationName>,
    pub slug: Option<Option<Slug>>,
}

use_case!(
    /// Updates organizations.
    UpdateOrganization
);

impl UpdateOrganization {
    /// # Errors
    /// `NOT_FOUND` for a non-member, `PERMISSION_DENIED` without
    /// `organization:update`, `ALREADY_EXISTS` for a taken slug.
    pub async fn execute(
        &self,
        caller: UserId,
        org: OrganizationId,
        update: OrganizationUpdate,
    ) -> Result<Organization, AppError> {
        let d = &self.deps;
        let now = d.clock.now();
        let mut uow = d.uow.begin().await?;
        lock_for(uow.as_ref(), org, caller).await?.require(&organization_update())?;
        let mut stored = uow.organizations().get(org).await?.ok_or_else(not_found)?;
        let kind = if update.name.as_ref().is_some_and(|n| *n != stored.name) {
            "organization.renamed"
        } else {
            "organization.updated"
        };
        if let Some(name) = update.name {
            stored.name = name;
        }
        if let Some(slug) = update.slug {
            stored.slug = slug;
        }
        stored.updated_at = now;
        let audit = Audit::by(kind, caller)
            .organization(org)
            .detail("name", stored.name.as_str())
            .detail("slug", stored.slug.as_ref().map_or("", Slug::as_str));
        uow.organizations().update(&stored).await.map_err(slug_taken)?;
        uow.add_messages(vec![d.events.audit(now, audit)]);
        uow.commit().await.map_err(slug_taken)?;
        Ok(stored)
    }
}
