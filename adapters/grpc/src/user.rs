//! `gatehouse.v1.UserService`: the caller's own account. Served to signed-in
//! callers only (their Bearer token is checked before any RPC runs, see
//! `crate::caller`); every RPC acts on that user only.

use gatehouse_application::AppError;
use gatehouse_application::account::{
    AddLoginEmail, ChangePassword, DeleteMe, GetMe, RemoveLoginEmail, SetPrimaryEmail, UpdateMe,
};
use gatehouse_application::mfa::FreshProof;
use gatehouse_domain::{EmailAddress, Password};
use tonic::{Request, Response, Status};

use crate::caller::signed_in;
use crate::error::status;
use crate::factors::{FreshProofField, fresh_proof};
use crate::fields::{Fields, parsed};
use crate::pb;
use crate::profile::{display_name_change, login_email, user};

/// The use cases behind `UserService`.
#[derive(Clone, Debug)]
pub struct UserApi {
    /// Serves both `GetMe` and `ListLoginEmails`.
    pub get_me: GetMe,
    pub update_me: UpdateMe,
    pub change_password: ChangePassword,
    pub add_login_email: AddLoginEmail,
    pub remove_login_email: RemoveLoginEmail,
    pub set_primary_email: SetPrimaryEmail,
    pub delete_me: DeleteMe,
}

/// The `email` and `proof` fields of the login-email requests, with every
/// bad part named at once.
fn email_and_proof(address: &str, proof: Option<FreshProofField>) -> Result<(EmailAddress, FreshProof), AppError> {
    let mut fields = Fields::default();
    let email = fields.check("email", EmailAddress::parse(address));
    let proof = fresh_proof(&mut fields, proof);
    let (email, proof) = parsed!(fields, email, proof);
    Ok((email, proof))
}

impl UserApi {
    async fn get_me(&self, mut request: Request<pb::GetMeRequest>) -> Result<pb::GetMeResponse, AppError> {
        let caller = signed_in(&mut request)?;
        let account = self.get_me.execute(caller.user_id).await?;
        Ok(pb::GetMeResponse { user: Some(user(account)) })
    }

    async fn update_me(&self, mut request: Request<pb::UpdateMeRequest>) -> Result<pb::UpdateMeResponse, AppError> {
        let caller = signed_in(&mut request)?;
        let req = request.into_inner();
        let mut fields = Fields::default();
        let display_name = display_name_change(&mut fields, req.user, req.update_mask);
        let (display_name,) = parsed!(fields, display_name);
        let account = self.update_me.execute(caller.user_id, Some(display_name)).await?;
        Ok(pb::UpdateMeResponse { user: Some(user(account)) })
    }

    async fn change_password(
        &self,
        mut request: Request<pb::ChangePasswordRequest>,
    ) -> Result<pb::ChangePasswordResponse, AppError> {
        let caller = signed_in(&mut request)?;
        let req = request.into_inner();
        let mut fields = Fields::default();
        let current = fields.check("current_password", Password::candidate(req.current_password));
        let new = fields.check("new_password", Password::new(req.new_password));
        let (current, new) = parsed!(fields, current, new);
        self.change_password.execute(&caller, &current, &new).await?;
        Ok(pb::ChangePasswordResponse {})
    }

    async fn list_login_emails(
        &self,
        mut request: Request<pb::ListLoginEmailsRequest>,
    ) -> Result<pb::ListLoginEmailsResponse, AppError> {
        let caller = signed_in(&mut request)?;
        let account = self.get_me.execute(caller.user_id).await?;
        Ok(pb::ListLoginEmailsResponse { emails: account.emails().iter().cloned().map(login_email).collect() })
    }

    async fn add_login_email(
        &self,
        mut request: Request<pb::AddLoginEmailRequest>,
    ) -> Result<pb::AddLoginEmailResponse, AppError> {
        let caller = signed_in(&mut request)?;
        let req = request.into_inner();
        let (email, proof) = email_and_proof(&req.email, req.proof.map(Into::into))?;
        self.add_login_email.execute(caller.user_id, &email, &proof).await?;
        Ok(pb::AddLoginEmailResponse {})
    }

    async fn remove_login_email(
        &self,
        mut request: Request<pb::RemoveLoginEmailRequest>,
    ) -> Result<pb::RemoveLoginEmailResponse, AppError> {
        let caller = signed_in(&mut request)?;
        let req = request.into_inner();
        let (email, proof) = email_and_proof(&req.email, req.proof.map(Into::into))?;
        self.remove_login_email.execute(caller.user_id, &email, &proof).await?;
        Ok(pb::RemoveLoginEmailResponse {})
    }

    async fn set_primary_email(
        &self,
        mut request: Request<pb::SetPrimaryEmailRequest>,
    ) -> Result<pb::SetPrimaryEmailResponse, AppError> {
        let caller = signed_in(&mut request)?;
        let req = request.into_inner();
        let (email, proof) = email_and_proof(&req.email, req.proof.map(Into::into))?;
        self.set_primary_email.execute(caller.user_id, &email, &proof).await?;
        Ok(pb::SetPrimaryEmailResponse {})
    }

    async fn delete_me(&self, mut request: Request<pb::DeleteMeRequest>) -> Result<pb::DeleteMeResponse, AppError> {
        let caller = signed_in(&mut request)?;
        let req = request.into_inner();
        let mut fields = Fields::default();
        let password = fields.check("password", Password::candidate(req.password));
        let (password,) = parsed!(fields, password);
        self.delete_me.execute(caller.user_id, &password).await?;
        Ok(pb::DeleteMeResponse {})
    }
}

#[tonic::async_trait]
impl pb::user_service_server::UserService for UserApi {
    async fn get_me(&self, request: Request<pb::GetMeRequest>) -> Result<Response<pb::GetMeResponse>, Status> {
        Self::get_me(self, request).await.map(Response::new).map_err(status)
    }

    async fn update_me(&self, request: Request<pb::UpdateMeRequest>) -> Result<Response<pb::UpdateMeResponse>, Status> {
        Self::update_me(self, request).await.map(Response::new).map_err(status)
    }

    async fn change_password(
        &self,
        request: Request<pb::ChangePasswordRequest>,
    ) -> Result<Response<pb::ChangePasswordResponse>, Status> {
        Self::change_password(self, request).await.map(Response::new).map_err(status)
    }

    async fn list_login_emails(
        &self,
        request: Request<pb::ListLoginEmailsRequest>,
    ) -> Result<Response<pb::ListLoginEmailsResponse>, Status> {
        Self::list_login_emails(self, request).await.map(Response::new).map_err(status)
    }

    async fn add_login_email(
        &self,
        request: Request<pb::AddLoginEmailRequest>,
    ) -> Result<Response<pb::AddLoginEmailResponse>, Status> {
        Self::add_login_email(self, request).await.map(Response::new).map_err(status)
    }

    async fn remove_login_email(
        &self,
        request: Request<pb::RemoveLoginEmailRequest>,
    ) -> Result<Response<pb::RemoveLoginEmailResponse>, Status> {
        Self::remove_login_email(self, request).await.map(Response::new).map_err(status)
    }

    async fn set_primary_email(
        &self,
        request: Request<pb::SetPrimaryEmailRequest>,
    ) -> Result<Response<pb::SetPrimaryEmailResponse>, Status> {
        Self::set_primary_email(self, request).await.map(Response::new).map_err(status)
    }

    async fn delete_me(&self, request: Request<pb::DeleteMeRequest>) -> Result<Response<pb::DeleteMeResponse>, Status> {
        Self::delete_me(self, request).await.map(Response::new).map_err(status)
    }
}
