//! AcceptInvitation: the signed-in invitee, one of whose verified login
//! emails is the invited address, becomes a member with the invited role.
//! The link token is single use (a guarded statement: of two parallel
//! acceptances one wins), expires, and dies when revoked.

use gatehouse_domain::permissions::invitations_write;
use gatehouse_domain::{Invitation, Membership, Role, RoleChange, Secret, UserId};

use super::add_member::member_conflict;
use super::{Access, resolve_role};
use crate::error::{AppError, FieldViolation};
use crate::events::Audit;
use crate::ports::unit_of_work::UnitOfWork;
use crate::secrets::{has_token_shape, hash_secret};

use_case!(
    /// Accepts invitations.
    AcceptInvitation
);

fn invalid() -> AppError {
    AppError::InvalidArgument(vec![FieldViolation::new("token", "this is not an invitation link token")])
}

/// An invitation speaks for its inviter: it holds only while the inviter
/// could still send it, a member with `invitations:write` whose role may
/// give the invited one (an owner demoted or an admin removed since leaves
/// no open door behind).
///
/// # Errors
/// `FAILED_PRECONDITION` (`INVITER_LOST_RIGHT`).
async fn inviter_still_may(uow: &dyn UnitOfWork, invitation: &Invitation, role: &Role) -> Result<(), AppError> {
    let lost = || AppError::FailedPrecondition {
        reason: "INVITER_LOST_RIGHT",
        message: "whoever sent the invitation may no longer give this role; ask for a new invitation",
    };
    let inviter = match Access::of(uow.organizations(), invitation.organization, invitation.invited_by).await {
        Ok(access) => access,
        Err(AppError::NotFound(_)) => return Err(lost()),
        Err(other) => return Err(other),
    };
    let may = inviter.require(&invitations_write()).is_ok()
        && RoleChange { actor: inviter.role_name(), from: None, to: Some(&invitation.role) }.check().is_ok()
        && inviter.role.may_hand_out(&role.permissions).is_ok();
    if may { Ok(()) } else { Err(lost()) }
}

impl AcceptInvitation {
    /// # Errors
    /// `INVALID_ARGUMENT` (`token`) for a token never issued;
    /// `FAILED_PRECONDITION` (`INVITATION_USED`, `INVITATION_REVOKED`,
    /// `INVITATION_EXPIRED`); `PERMISSION_DENIED`
    /// (`INVITATION_FOR_ANOTHER_ADDRESS`) when the caller has no verified
    /// login email that is the invited address; `ALREADY_EXISTS` for a member;
    /// `FAILED_PRECONDITION` (`INVITER_LOST_RIGHT`) when the inviter may no
    /// longer give the role.
    pub async fn execute(&self, caller: UserId, token: &Secret<String>) -> Result<Membership, AppError> {
        let d = &self.deps;
        if !has_token_shape(token.expose(), Invitation::TOKEN_PREFIX) {
            return Err(invalid());
        }
        let now = d.clock.now();
        let invitation =
            d.organizations.invitation_by_token(&hash_secret(token.expose())).await?.ok_or_else(invalid)?;
        invitation.acceptable(now)?;
        let account = d.users.get(caller).await?.ok_or(AppError::NotFound("user"))?;
        let owns_address = account.emails().iter().any(|e| e.email == invitation.email && e.verified_at.is_some());
        if !owns_address {
            return Err(AppError::PermissionDenied {
                reason: "INVITATION_FOR_ANOTHER_ADDRESS",
                message: "the invitation was sent to an address that is not one of your verified emails",
            });
        }
        let org = invitation.organization;
        let mut uow = d.uow.begin().await?;
        uow.organizations().lock(org).await?.ok_or_else(invalid)?;
        let Some(role) = resolve_role(uow.organizations(), org, &invitation.role).await? else {
            return Err(AppError::FailedPrecondition {
                reason: "ROLE_GONE",
                message: "the role of this invitation no longer exists; ask for a new invitation",
            });
        };
        inviter_still_may(uow.as_ref(), &invitation, &role).await?;
        if !uow.organizations().accept_invitation(invitation.id, now).await? {
            // A parallel acceptance or a revocation came first.
            return Err(AppError::FailedPrecondition {
                reason: "INVITATION_USED",
                message: "the invitation is no longer open",
            });
        }
        let membership = Membership { organization: org, user: caller, role: invitation.role.clone(), joined_at: now };
        uow.organizations().add_member(&membership).await.map_err(member_conflict)?;
        let audit = Audit::by("invitation.accepted", caller)
            .organization(org)
            .detail("invitation_id", invitation.id)
            .detail("role", &membership.role);
        uow.add_messages(vec![d.events.audit(now, audit)]);
        uow.commit().await.map_err(member_conflict)?;
        Ok(membership)
    }
}
