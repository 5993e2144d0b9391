//! AddMember: by user id, the account becomes a member at once; by email,
//! the address is sent an invitation (`email.org_invitation`, a single-use
//! link token stored only as its hash), whether or not it has an account,
//! so the answer never tells which addresses have one (OWASP ASVS 5.0
//! V6.3.8). Invitations are limited per organization and per recipient.

use gatehouse_domain::permissions::{invitations_write, members_write};
use gatehouse_domain::{
    EmailAddress, Event, Invitation, Membership, OrganizationId, RoleChange, RoleName, Secret, UserId,
};

use super::{Access, assignable_role, lock_for, not_found};
use crate::error::AppError;
use crate::events::Audit;
use crate::ids::new_uuid_v7;
use crate::ports::organizations::OrganizationReads;
use crate::ports::store::StoreError;
use crate::secrets::{hash_secret, new_token};

/// Who is being added.
#[derive(Clone, Debug)]
pub enum Invitee {
    /// An existing account, by id: a member at once.
    User(UserId),
    /// An address: invited.
    Email(EmailAddress),
}

/// What `AddMember` did.
#[derive(Clone, Debug)]
pub enum Added {
    Member(Membership),
    Invited(Invitation),
}

use_case!(
    /// Adds members and sends invitations.
    AddMember
);

impl AddMember {
    /// # Errors
    /// `NOT_FOUND` for a non-member (and `NOT_FOUND("user")` for an unknown
    /// user id), `PERMISSION_DENIED` without `members:write` (by id) or
    /// `invitations:write` (by email) or when a non-owner gives the owner
    /// role, `INVALID_ARGUMENT` (`role`) for a role the organization does
    /// not have, `ALREADY_EXISTS` (`ALREADY_MEMBER`), `RESOURCE_EXHAUSTED`
    /// past the invitation limits.
    pub async fn execute(
        &self,
        caller: UserId,
        org: OrganizationId,
        invitee: Invitee,
        role: RoleName,
    ) -> Result<Added, AppError> {
        let d = &self.deps;
        if let Invitee::Email(email) = &invitee {
            // Only members may learn that the limit exists.
            let access = Access::of(d.organizations.as_ref(), org, caller).await?;
            access.require(&invitations_write())?;
            // A refused invitation does not spend the organization's allowance.
            may_give(d.organizations.as_ref(), &access, org, &role).await?;
            d.throttle.invitation(org, email.as_str(), caller).await?;
        }
        let now = d.clock.now();
        let mut uow = d.uow.begin().await?;
        let access = lock_for(uow.as_ref(), org, caller).await?;
        may_give(uow.organizations(), &access, org, &role).await?;
        match invitee {
            Invitee::User(user) => {
                access.require(&members_write())?;
                let membership = Membership { organization: org, user, role, joined_at: now };
                uow.organizations().add_member(&membership).await.map_err(member_conflict)?;
                let audit = Audit::of("member.added")
                    .actor(caller)
                    .subject(user)
                    .organization(org)
                    .detail("role", &membership.role);
                uow.add_messages(vec![d.events.audit(now, audit)]);
                uow.commit().await.map_err(member_conflict)?;
                Ok(Added::Member(membership))
            }
            Invitee::Email(email) => {
                access.require(&invitations_write())?;
                let organization = uow.organizations().get(org).await?.ok_or_else(not_found)?;
                let token = new_token(Invitation::TOKEN_PREFIX, d.rng.as_ref());
                let invitation = Invitation {
                    id: new_uuid_v7(now, d.rng.as_ref()),
                    organization: org,
                    email,
                    role,
                    token_hash: hash_secret(&token),
                    invited_by: caller,
                    created_at: now,
                    expires_at: now + d.settings.invitation_ttl,
                    accepted_at: None,
                    revoked_at: None,
                };
                let link = format!("{}/accept-invitation?token={token}", d.settings.public_url.trim_end_matches('/'));
                let event = Event::OrganizationInvitation {
                    user_id: caller,
                    email: invitation.email.clone(),
                    organization_id: org,
                    organization_name: organization.name.as_str().to_owned(),
                    role: invitation.role.as_str().to_owned(),
                    token: Secret::new(token),
                    link: Secret::new(link),
                    expires_at: invitation.expires_at,
                };
                let audit = Audit::by("member.invited", caller)
                    .organization(org)
                    .detail("invitation_id", invitation.id)
                    .detail("email", &invitation.email)
                    .detail("role", &invitation.role);
                uow.organizations().insert_invitation(&invitation).await?;
                uow.add_messages(vec![d.events.message(now, event), d.events.audit(now, audit)]);
                uow.commit().await?;
                Ok(Added::Invited(invitation))
            }
        }
    }
}

/// Whether the caller may give `role`: it exists, it is the owner role
/// only for owners, and it holds nothing over the organization the caller lacks.
///
/// # Errors
/// `INVALID_ARGUMENT` (`role`), `PERMISSION_DENIED` (`OWNER_ONLY`, `BEYOND_OWN_ROLE`).
async fn may_give(
    reads: &dyn OrganizationReads,
    access: &Access,
    org: OrganizationId,
    role: &RoleName,
) -> Result<(), AppError> {
    RoleChange { actor: access.role_name(), from: None, to: Some(role) }.check()?;
    access.role.may_hand_out(&assignable_role(reads, org, role).await?.permissions)?;
    Ok(())
}

/// A refused membership: the user is a member already, or has no account.
pub(super) fn member_conflict(e: StoreError) -> AppError {
    match e {
        StoreError::Conflict(_) => AppError::AlreadyExists {
            reason: "ALREADY_MEMBER",
            message: "the user is a member of this organization already",
        },
        StoreError::Gone(_) => AppError::NotFound("user"),
        other => other.into(),
    }
}
