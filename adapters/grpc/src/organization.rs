//! `gatehouse.v1.OrganizationService`: organizations, members, roles,
//! invitations and permission checks. Served to signed-in callers only
//! (their Bearer token is checked before any RPC runs, see `crate::caller`);
//! what a caller may see and do in an organization is the use cases' to
//! decide, by the caller's membership and role.

use gatehouse_application::AppError;
use gatehouse_application::organizations::{
    AcceptInvitation, AddMember, Added, CheckPermission, CreateOrganization, CreateRole, DeleteOrganization,
    DeleteRole, GetOrganization, Invitee, LeaveOrganization, ListInvitations, ListMembers, ListOrganizations,
    ListRoles, OrganizationUpdate, RemoveMember, RevokeInvitation, UpdateMember, UpdateOrganization, UpdateRole,
};
use gatehouse_domain::{EmailAddress, OrganizationId, Secret, UserId};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::caller::{acting_in, signed_in};
use crate::error::status;
use crate::fields::{Fields, parsed};
use crate::organization_fields::{
    custom_role, invitation, member, name, organization, organization_id, page_start, page_token, permission,
    permission_set, permissions_to_check, role, role_message, slug, user_id,
};
use crate::pb;

/// Longest invitation token accepted before it is hashed; real ones are 47 bytes.
const MAX_TOKEN_BYTES: usize = 256;

/// The use cases behind `OrganizationService`.
#[derive(Clone, Debug)]
pub struct OrganizationApi {
    pub create: CreateOrganization,
    pub get: GetOrganization,
    pub update: UpdateOrganization,
    pub list: ListOrganizations,
    pub delete: DeleteOrganization,
    pub add_member: AddMember,
    pub accept_invitation: AcceptInvitation,
    pub list_invitations: ListInvitations,
    pub revoke_invitation: RevokeInvitation,
    pub update_member: UpdateMember,
    pub remove_member: RemoveMember,
    pub leave: LeaveOrganization,
    pub list_members: ListMembers,
    pub create_role: CreateRole,
    pub update_role: UpdateRole,
    pub list_roles: ListRoles,
    pub delete_role: DeleteRole,
    pub check_permission: CheckPermission,
}

/// The caller and the organization a request names, which the caller's
/// token must be allowed to act in.
fn caller_and_org<T>(request: &mut Request<T>, org: impl Fn(&T) -> &str) -> Result<(UserId, OrganizationId), AppError> {
    let claims = signed_in(request)?;
    let mut fields = Fields::default();
    let org = organization_id(&mut fields, "organization_id", org(request.get_ref()));
    let (org,) = parsed!(fields, org);
    acting_in(&claims, org)?;
    Ok((claims.user_id, org))
}

impl OrganizationApi {
    async fn create_organization(
        &self,
        mut request: Request<pb::CreateOrganizationRequest>,
    ) -> Result<pb::CreateOrganizationResponse, AppError> {
        let caller = signed_in(&mut request)?.user_id;
        let req = request.into_inner();
        let mut fields = Fields::default();
        let (name, slug) = (name(&mut fields, &req.name), slug(&mut fields, &req.slug));
        let (name, slug) = parsed!(fields, name, slug);
        let org = self.create.execute(caller, name, slug).await?;
        Ok(pb::CreateOrganizationResponse { organization: Some(organization(org)) })
    }

    async fn get_organization(
        &self,
        mut request: Request<pb::GetOrganizationRequest>,
    ) -> Result<pb::GetOrganizationResponse, AppError> {
        let (caller, org) = caller_and_org(&mut request, |r| &r.organization_id)?;
        let (org, role) = self.get.execute(caller, org).await?;
        Ok(pb::GetOrganizationResponse { organization: Some(organization(org)), role: role.to_string() })
    }

    async fn update_organization(
        &self,
        mut request: Request<pb::UpdateOrganizationRequest>,
    ) -> Result<pb::UpdateOrganizationResponse, AppError> {
        let (caller, org) = caller_and_org(&mut request, |r| &r.organization_id)?;
        let req = request.into_inner();
        let mut fields = Fields::default();
        let paths = req.update_mask.map(|m| m.paths).unwrap_or_default();
        if paths.is_empty() {
            fields.violation("update_mask", "update_mask must name the fields to change (name, slug)");
        }
        let mut update = OrganizationUpdate::default();
        for path in &paths {
            match path.as_str() {
                "name" => update.name = name(&mut fields, &req.name),
                "slug" => update.slug = slug(&mut fields, &req.slug),
                other => fields.violation("update_mask", format!("unsupported path {other:?}; supported: name, slug")),
            }
        }
        fields.finish()?;
        let org = self.update.execute(caller, org, update).await?;
        Ok(pb::UpdateOrganizationResponse { organization: Some(organization(org)) })
    }

    async fn list_organizations(
        &self,
        mut request: Request<pb::ListOrganizationsRequest>,
    ) -> Result<pb::ListOrganizationsResponse, AppError> {
        let caller = signed_in(&mut request)?.user_id;
        let req = request.into_inner();
        let mut fields = Fields::default();
        let (size, start) = (fields.page_size(req.page_size), page_start(&mut fields, &req.page_token));
        let (size, start) = parsed!(fields, size, start);
        let (found, next) = self.list.execute(caller, size, start.map(OrganizationId::from_uuid)).await?;
        Ok(pb::ListOrganizationsResponse {
            organizations: found
                .into_iter()
                .map(|(o, role)| pb::OrganizationMembership {
                    organization: Some(organization(o)),
                    role: role.to_string(),
                })
                .collect(),
            next_page_token: next.map(|id| page_token(*id.as_uuid())).unwrap_or_default(),
        })
    }

    async fn delete_organization(
        &self,
        mut request: Request<pb::DeleteOrganizationRequest>,
    ) -> Result<pb::DeleteOrganizationResponse, AppError> {
        let (caller, org) = caller_and_org(&mut request, |r| &r.organization_id)?;
        self.delete.execute(caller, org).await?;
        Ok(pb::DeleteOrganizationResponse {})
    }

    async fn add_member(&self, mut request: Request<pb::AddMemberRequest>) -> Result<pb::AddMemberResponse, AppError> {
        let (caller, org) = caller_and_org(&mut request, |r| &r.organization_id)?;
        let req = request.into_inner();
        let mut fields = Fields::default();
        let invitee = match &req.invitee {
            Some(pb::add_member_request::Invitee::UserId(id)) => user_id(&mut fields, "user_id", id).map(Invitee::User),
            Some(pb::add_member_request::Invitee::Email(email)) => {
                fields.check("email", EmailAddress::parse(email)).map(Invitee::Email)
            }
            None => {
                fields.violation("invitee", "user_id or email is required");
                None
            }
        };
        let role = role(&mut fields, "role", &req.role);
        let (invitee, role) = parsed!(fields, invitee, role);
        Ok(match self.add_member.execute(caller, org, invitee, role).await? {
            Added::Member(m) => pb::AddMemberResponse { member: Some(member(m)), invitation: None },
            Added::Invited(i) => pb::AddMemberResponse { member: None, invitation: Some(invitation(i)) },
        })
    }

    async fn accept_invitation(
        &self,
        mut request: Request<pb::AcceptInvitationRequest>,
    ) -> Result<pb::AcceptInvitationResponse, AppError> {
        let caller = signed_in(&mut request)?.user_id;
        let req = request.into_inner();
        let mut fields = Fields::default();
        let token = fields.required("token", &req.token, MAX_TOKEN_BYTES).map(|t| Secret::new(t.to_owned()));
        let (token,) = parsed!(fields, token);
        let m = self.accept_invitation.execute(caller, &token).await?;
        Ok(pb::AcceptInvitationResponse { organization_id: m.organization.to_string(), member: Some(member(m)) })
    }

    async fn list_invitations(
        &self,
        mut request: Request<pb::ListInvitationsRequest>,
    ) -> Result<pb::ListInvitationsResponse, AppError> {
        let (caller, org) = caller_and_org(&mut request, |r| &r.organization_id)?;
        let found = self.list_invitations.execute(caller, org).await?;
        Ok(pb::ListInvitationsResponse { invitations: found.into_iter().map(invitation).collect() })
    }

    async fn revoke_invitation(
        &self,
        mut request: Request<pb::RevokeInvitationRequest>,
    ) -> Result<pb::RevokeInvitationResponse, AppError> {
        let (caller, org) = caller_and_org(&mut request, |r| &r.organization_id)?;
        let mut fields = Fields::default();
        let id: Option<Uuid> = fields.uuid("invitation_id", &request.get_ref().invitation_id);
        let (id,) = parsed!(fields, id);
        self.revoke_invitation.execute(caller, org, id).await?;
        Ok(pb::RevokeInvitationResponse {})
    }

    async fn update_member(
        &self,
        mut request: Request<pb::UpdateMemberRequest>,
    ) -> Result<pb::UpdateMemberResponse, AppError> {
        let (caller, org) = caller_and_org(&mut request, |r| &r.organization_id)?;
        let req = request.into_inner();
        let mut fields = Fields::default();
        let (user, role) = (user_id(&mut fields, "user_id", &req.user_id), role(&mut fields, "role", &req.role));
        let (user, role) = parsed!(fields, user, role);
        let m = self.update_member.execute(caller, org, user, role).await?;
        Ok(pb::UpdateMemberResponse { member: Some(member(m)) })
    }

    async fn remove_member(
        &self,
        mut request: Request<pb::RemoveMemberRequest>,
    ) -> Result<pb::RemoveMemberResponse, AppError> {
        let (caller, org) = caller_and_org(&mut request, |r| &r.organization_id)?;
        let mut fields = Fields::default();
        let user = user_id(&mut fields, "user_id", &request.get_ref().user_id);
        let (user,) = parsed!(fields, user);
        self.remove_member.execute(caller, org, user).await?;
        Ok(pb::RemoveMemberResponse {})
    }

    async fn leave_organization(
        &self,
        mut request: Request<pb::LeaveOrganizationRequest>,
    ) -> Result<pb::LeaveOrganizationResponse, AppError> {
        let (caller, org) = caller_and_org(&mut request, |r| &r.organization_id)?;
        self.leave.execute(caller, org).await?;
        Ok(pb::LeaveOrganizationResponse {})
    }

    async fn list_members(
        &self,
        mut request: Request<pb::ListMembersRequest>,
    ) -> Result<pb::ListMembersResponse, AppError> {
        let (caller, org) = caller_and_org(&mut request, |r| &r.organization_id)?;
        let req = request.into_inner();
        let mut fields = Fields::default();
        let (size, start) = (fields.page_size(req.page_size), page_start(&mut fields, &req.page_token));
        let (size, start) = parsed!(fields, size, start);
        let (found, next) = self.list_members.execute(caller, org, size, start.map(UserId::from_uuid)).await?;
        Ok(pb::ListMembersResponse {
            members: found.into_iter().map(member).collect(),
            next_page_token: next.map(|id| page_token(*id.as_uuid())).unwrap_or_default(),
        })
    }

    async fn create_role(
        &self,
        mut request: Request<pb::CreateRoleRequest>,
    ) -> Result<pb::CreateRoleResponse, AppError> {
        let (caller, org) = caller_and_org(&mut request, |r| &r.organization_id)?;
        let req = request.into_inner();
        let mut fields = Fields::default();
        let (name, set) = (custom_role(&mut fields, &req.name), permission_set(&mut fields, &req.permissions));
        let (name, set) = parsed!(fields, name, set);
        let r = self.create_role.execute(caller, org, name, set).await?;
        Ok(pb::CreateRoleResponse { role: Some(role_message(r)) })
    }

    async fn update_role(
        &self,
        mut request: Request<pb::UpdateRoleRequest>,
    ) -> Result<pb::UpdateRoleResponse, AppError> {
        let (caller, org) = caller_and_org(&mut request, |r| &r.organization_id)?;
        let req = request.into_inner();
        let mut fields = Fields::default();
        let (name, set) = (role(&mut fields, "name", &req.name), permission_set(&mut fields, &req.permissions));
        let (name, set) = parsed!(fields, name, set);
        let r = self.update_role.execute(caller, org, name, set).await?;
        Ok(pb::UpdateRoleResponse { role: Some(role_message(r)) })
    }

    async fn list_roles(&self, mut request: Request<pb::ListRolesRequest>) -> Result<pb::ListRolesResponse, AppError> {
        let (caller, org) = caller_and_org(&mut request, |r| &r.organization_id)?;
        let roles = self.list_roles.execute(caller, org).await?;
        Ok(pb::ListRolesResponse { roles: roles.into_iter().map(role_message).collect() })
    }

    async fn delete_role(
        &self,
        mut request: Request<pb::DeleteRoleRequest>,
    ) -> Result<pb::DeleteRoleResponse, AppError> {
        let (caller, org) = caller_and_org(&mut request, |r| &r.organization_id)?;
        let mut fields = Fields::default();
        let name = role(&mut fields, "name", &request.get_ref().name);
        let (name,) = parsed!(fields, name);
        self.delete_role.execute(caller, org, name).await?;
        Ok(pb::DeleteRoleResponse {})
    }

    async fn check_permission(
        &self,
        mut request: Request<pb::CheckPermissionRequest>,
    ) -> Result<pb::CheckPermissionResponse, AppError> {
        let (caller, org) = caller_and_org(&mut request, |r| &r.organization_id)?;
        let req = request.into_inner();
        let mut fields = Fields::default();
        let subject = user_id(&mut fields, "subject", &req.subject);
        let wanted = permission(&mut fields, "permission", &req.permission);
        let (subject, wanted) = parsed!(fields, subject, wanted);
        let answers = self.check_permission.execute(caller, org, subject, std::slice::from_ref(&wanted)).await?;
        let answer = answers.into_iter().next().ok_or_else(|| AppError::internal("no answer to one permission"))?;
        Ok(pb::CheckPermissionResponse {
            allowed: answer.allowed,
            role: answer.role.map(|r| r.to_string()).unwrap_or_default(),
        })
    }

    async fn check_permissions(
        &self,
        mut request: Request<pb::CheckPermissionsRequest>,
    ) -> Result<pb::CheckPermissionsResponse, AppError> {
        let (caller, org) = caller_and_org(&mut request, |r| &r.organization_id)?;
        let req = request.into_inner();
        let mut fields = Fields::default();
        let subject = user_id(&mut fields, "subject", &req.subject);
        let wanted = permissions_to_check(&mut fields, &req.permissions);
        let (subject, wanted) = parsed!(fields, subject, wanted);
        let answers = self.check_permission.execute(caller, org, subject, &wanted).await?;
        Ok(pb::CheckPermissionsResponse {
            results: wanted
                .iter()
                .zip(answers)
                .map(|(p, a)| pb::PermissionResult {
                    permission: p.to_string(),
                    allowed: a.allowed,
                    role: a.role.map(|r| r.to_string()).unwrap_or_default(),
                })
                .collect(),
        })
    }
}

/// The tonic service: each RPC calls its handler above and maps its error once.
macro_rules! rpcs {
    ($($name:ident($req:ident) -> $resp:ident;)+) => {
        #[tonic::async_trait]
        impl pb::organization_service_server::OrganizationService for OrganizationApi {
            $(
                async fn $name(&self, request: Request<pb::$req>) -> Result<Response<pb::$resp>, Status> {
                    Self::$name(self, request).await.map(Response::new).map_err(status)
                }
            )+
        }
    };
}

rpcs! {
    create_organization(CreateOrganizationRequest) -> CreateOrganizationResponse;
    get_organization(GetOrganizationRequest) -> GetOrganizationResponse;
    update_organization(UpdateOrganizationRequest) -> UpdateOrganizationResponse;
    list_organizations(ListOrganizationsRequest) -> ListOrganizationsResponse;
    delete_organization(DeleteOrganizationRequest) -> DeleteOrganizationResponse;
    add_member(AddMemberRequest) -> AddMemberResponse;
    accept_invitation(AcceptInvitationRequest) -> AcceptInvitationResponse;
    list_invitations(ListInvitationsRequest) -> ListInvitationsResponse;
    revoke_invitation(RevokeInvitationRequest) -> RevokeInvitationResponse;
    update_member(UpdateMemberRequest) -> UpdateMemberResponse;
    remove_member(RemoveMemberRequest) -> RemoveMemberResponse;
    leave_organization(LeaveOrganizationRequest) -> LeaveOrganizationResponse;
    list_members(ListMembersRequest) -> ListMembersResponse;
    create_role(CreateRoleRequest) -> CreateRoleResponse;
    update_role(UpdateRoleRequest) -> UpdateRoleResponse;
    list_roles(ListRolesRequest) -> ListRolesResponse;
    delete_role(DeleteRoleRequest) -> DeleteRoleResponse;
    check_permission(CheckPermissionRequest) -> CheckPermissionResponse;
    check_permissions(CheckPermissionsRequest) -> CheckPermissionsResponse;
}
