//! AcceptInvitation: the signed-in invitee, one of whose verified login
//! emails is the invited address, becomes a member with the invited role.
//! The link token is single use (a guarded statement: of two parallel
//! acceptances one wins), expires, and dies when revoked.

use gatehouse_domain::{Invitation, Membership, Secret, UserId};

use super::add_member::member_conflict;
use super::resolve_role;
use crate::error::{AppError, FieldViolation};
use crate::events::Audit;
use crate::secrets::{has_token_shape, hash_secret};

use_case!(
    /// Accepts invitations.
    AcceptInvitation
);

fn invalid() -> AppError {
    AppError::InvalidArgument(vec![FieldViolation::new("token", "this is not an invitation link token")])
}

impl AcceptInvitation {
    /// # Errors
    /// `INVALID_ARGUMENT` (`token`) for a token never issued;
    /// `FAILED_PRECONDITION` (`INVITATION_USED`, `INVITATION_REVOKED`,
    /// `INVITATION_EXPIRED`); `PERMISSION_DENIED`
    /// (`INVITATION_FOR_ANOTHER_ADDRESS`) when the caller has no verified
    /// login email that is the invited address; `ALREADY_EXISTS` for a member.
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
        if resolve_role(uow.organizations(), org, &invitation.role).await?.is_none() {
            return Err(AppError::FailedPrecondition {
                reason: "ROLE_GONE",
                message: "the role of this invitation no longer exists; ask for a new invitation",
            });
        }
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
