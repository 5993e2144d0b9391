//! `gatehouse.v1.AuthService`: sign-up, login (and its second-factor
//! challenge), refresh, logout, email verification and password reset.

use gatehouse_application::AppError;
use gatehouse_application::auth::{
    self, Login, LoginCommand, LoginOutcome, Logout, LogoutTarget, RequestPasswordReset, ResendVerification,
    ResetPassword, SignUp, SignUpCommand, VerifyEmail,
};
use gatehouse_application::mfa::{SendMfaCode, VerifyMfa};
use gatehouse_domain::{DisplayName, EmailAddress, OrganizationId, Password, RefreshToken, Secret, TokenPair};
use tonic::{Request, Response, Status};

use crate::caller::{Caller, bearer_token, short_enough};
use crate::error::status;
use crate::factors::{challenge, mfa_proof};
use crate::fields::{Fields, parsed};
use crate::pb;
use crate::proof::parse_proof;
use crate::timestamp;

/// Longest refresh token accepted before any look-up.
const MAX_REFRESH_TOKEN_BYTES: usize = 256;

/// The use cases behind `AuthService`.
#[derive(Clone, Debug)]
pub struct AuthApi {
    pub sign_up: SignUp,
    pub login: Login,
    pub send_mfa_code: SendMfaCode,
    pub verify_mfa: VerifyMfa,
    pub refresh_token: auth::RefreshToken,
    pub logout: Logout,
    pub verify_email: VerifyEmail,
    pub resend_verification: ResendVerification,
    pub request_password_reset: RequestPasswordReset,
    pub reset_password: ResetPassword,
}

fn token_pair(pair: TokenPair) -> pb::TokenPair {
    pb::TokenPair {
        access_token: pair.access_token.expose().clone(),
        refresh_token: pair.refresh_token.expose().to_owned(),
        token_type: "Bearer".to_owned(),
        access_token_expires_at: Some(timestamp(pair.access_token_expires_at)),
        refresh_token_expires_at: Some(timestamp(pair.refresh_token_expires_at)),
        session_id: pair.session_id.to_string(),
        user_id: pair.user_id.to_string(),
    }
}

impl AuthApi {
    async fn sign_up(&self, mut request: Request<pb::SignUpRequest>) -> Result<pb::SignUpResponse, AppError> {
        let client = Caller::take(&mut request)?.client;
        let req = request.into_inner();
        let mut fields = Fields::default();
        let email = fields.check("email", EmailAddress::parse(&req.email));
        let password = fields.check("password", Password::new(req.password));
        let display_name = fields.check("display_name", DisplayName::parse(&req.display_name));
        let (email, password, display_name) = parsed!(fields, email, password, display_name);
        let user_id = self.sign_up.execute(SignUpCommand { email, password, display_name, client }).await?;
        Ok(pb::SignUpResponse { user_id: user_id.to_string() })
    }

    async fn login(&self, mut request: Request<pb::LoginRequest>) -> Result<pb::LoginResponse, AppError> {
        let client = Caller::take(&mut request)?.client;
        let req = request.into_inner();
        let mut fields = Fields::default();
        let email = fields.check("email", EmailAddress::parse(&req.email));
        let password = fields.check("password", Password::candidate(req.password));
        let organization = optional_organization(&mut fields, &req.organization_id);
        let (email, password, organization) = parsed!(fields, email, password, organization);
        let result = match self.login.execute(LoginCommand { email, password, client, organization }).await? {
            LoginOutcome::Tokens(pair) => pb::login_response::Result::Tokens(token_pair(pair)),
            LoginOutcome::MfaRequired(view) => pb::login_response::Result::MfaRequired(challenge(view)),
        };
        Ok(pb::LoginResponse { result: Some(result) })
    }

    async fn send_mfa_code(
        &self,
        request: Request<pb::SendMfaCodeRequest>,
    ) -> Result<pb::SendMfaCodeResponse, AppError> {
        let req = request.into_inner();
        let mut fields = Fields::default();
        let challenge_id = fields.uuid("challenge_id", &req.challenge_id);
        let factor_id = fields.uuid("factor_id", &req.factor_id);
        let (challenge_id, factor_id) = parsed!(fields, challenge_id, factor_id);
        self.send_mfa_code.execute(challenge_id, factor_id).await?;
        Ok(pb::SendMfaCodeResponse {})
    }

    async fn verify_mfa(&self, request: Request<pb::VerifyMfaRequest>) -> Result<pb::VerifyMfaResponse, AppError> {
        let req = request.into_inner();
        let mut fields = Fields::default();
        let challenge_id = fields.uuid("challenge_id", &req.challenge_id);
        let proof = mfa_proof(&mut fields, &req.factor_id, &req.code);
        let organization = optional_organization(&mut fields, &req.organization_id);
        let (challenge_id, proof, organization) = parsed!(fields, challenge_id, proof, organization);
        let passed = self.verify_mfa.execute_for(challenge_id, proof, organization).await?;
        Ok(pb::VerifyMfaResponse {
            tokens: Some(token_pair(passed.tokens)),
            backup_codes_remaining: passed.backup_codes_remaining.map(|n| i32::try_from(n).unwrap_or(i32::MAX)),
        })
    }

    async fn refresh(
        &self,
        mut request: Request<pb::RefreshTokenRequest>,
    ) -> Result<pb::RefreshTokenResponse, AppError> {
        let client = Caller::take(&mut request)?.client;
        let req = request.into_inner();
        let mut fields = Fields::default();
        let token = fields.required("refresh_token", &req.refresh_token, MAX_REFRESH_TOKEN_BYTES);
        let organization = optional_organization(&mut fields, &req.organization_id);
        let (token, organization) = parsed!(fields, token, organization);
        let pair = self.refresh_token.execute_for(&RefreshToken::new(token.to_owned()), &client, organization).await?;
        Ok(pb::RefreshTokenResponse { tokens: Some(token_pair(pair)) })
    }

    async fn logout(&self, mut request: Request<pb::LogoutRequest>) -> Result<pb::LogoutResponse, AppError> {
        let client = Caller::take(&mut request)?.client;
        // The Bearer token names the session to end, not a signed-in caller:
        // it is not validated first, since a revoked one may log out again.
        let target = if let Some(access_token) = bearer_token(request.metadata().as_ref()) {
            LogoutTarget::AccessToken(Secret::new(short_enough(access_token)?.to_owned()))
        } else {
            let req = request.into_inner();
            let mut fields = Fields::default();
            let token = fields.required("refresh_token", &req.refresh_token, MAX_REFRESH_TOKEN_BYTES);
            let (token,) = parsed!(fields, token);
            LogoutTarget::RefreshToken(RefreshToken::new(token.to_owned()))
        };
        self.logout.execute(target, &client).await?;
        Ok(pb::LogoutResponse {})
    }

    async fn verify_email(
        &self,
        request: Request<pb::VerifyEmailRequest>,
    ) -> Result<pb::VerifyEmailResponse, AppError> {
        let req = request.into_inner();
        let mut fields = Fields::default();
        let proof = parse_proof(&mut fields, req.proof.map(Into::into));
        let (proof,) = parsed!(fields, proof);
        self.verify_email.execute(proof).await?;
        Ok(pb::VerifyEmailResponse {})
    }

    async fn resend_verification(
        &self,
        request: Request<pb::ResendVerificationRequest>,
    ) -> Result<pb::ResendVerificationResponse, AppError> {
        let req = request.into_inner();
        let mut fields = Fields::default();
        let email = fields.check("email", EmailAddress::parse(&req.email));
        let (email,) = parsed!(fields, email);
        self.resend_verification.execute(&email).await?;
        Ok(pb::ResendVerificationResponse {})
    }

    async fn request_password_reset(
        &self,
        request: Request<pb::RequestPasswordResetRequest>,
    ) -> Result<pb::RequestPasswordResetResponse, AppError> {
        let req = request.into_inner();
        let mut fields = Fields::default();
        let email = fields.check("email", EmailAddress::parse(&req.email));
        let (email,) = parsed!(fields, email);
        self.request_password_reset.execute(&email).await?;
        Ok(pb::RequestPasswordResetResponse {})
    }

    async fn reset_password(
        &self,
        request: Request<pb::ResetPasswordRequest>,
    ) -> Result<pb::ResetPasswordResponse, AppError> {
        let req = request.into_inner();
        let mut fields = Fields::default();
        let proof = parse_proof(&mut fields, req.proof.map(Into::into));
        let password = fields.check("new_password", Password::new(req.new_password));
        let (proof, password) = parsed!(fields, proof, password);
        self.reset_password.execute(proof, password).await?;
        Ok(pb::ResetPasswordResponse {})
    }
}

/// An optional `organization_id`: empty is none.
fn optional_organization(fields: &mut Fields, value: &str) -> Option<Option<OrganizationId>> {
    if value.is_empty() {
        Some(None)
    } else {
        fields.uuid("organization_id", value).map(|id| Some(OrganizationId::from_uuid(id)))
    }
}

#[tonic::async_trait]
impl pb::auth_service_server::AuthService for AuthApi {
    async fn sign_up(&self, request: Request<pb::SignUpRequest>) -> Result<Response<pb::SignUpResponse>, Status> {
        Self::sign_up(self, request).await.map(Response::new).map_err(status)
    }

    async fn login(&self, request: Request<pb::LoginRequest>) -> Result<Response<pb::LoginResponse>, Status> {
        Self::login(self, request).await.map(Response::new).map_err(status)
    }

    async fn send_mfa_code(
        &self,
        request: Request<pb::SendMfaCodeRequest>,
    ) -> Result<Response<pb::SendMfaCodeResponse>, Status> {
        Self::send_mfa_code(self, request).await.map(Response::new).map_err(status)
    }

    async fn verify_mfa(
        &self,
        request: Request<pb::VerifyMfaRequest>,
    ) -> Result<Response<pb::VerifyMfaResponse>, Status> {
        Self::verify_mfa(self, request).await.map(Response::new).map_err(status)
    }

    async fn refresh_token(
        &self,
        request: Request<pb::RefreshTokenRequest>,
    ) -> Result<Response<pb::RefreshTokenResponse>, Status> {
        self.refresh(request).await.map(Response::new).map_err(status)
    }

    async fn logout(&self, request: Request<pb::LogoutRequest>) -> Result<Response<pb::LogoutResponse>, Status> {
        Self::logout(self, request).await.map(Response::new).map_err(status)
    }

    async fn verify_email(
        &self,
        request: Request<pb::VerifyEmailRequest>,
    ) -> Result<Response<pb::VerifyEmailResponse>, Status> {
        Self::verify_email(self, request).await.map(Response::new).map_err(status)
    }

    async fn resend_verification(
        &self,
        request: Request<pb::ResendVerificationRequest>,
    ) -> Result<Response<pb::ResendVerificationResponse>, Status> {
        Self::resend_verification(self, request).await.map(Response::new).map_err(status)
    }

    async fn request_password_reset(
        &self,
        request: Request<pb::RequestPasswordResetRequest>,
    ) -> Result<Response<pb::RequestPasswordResetResponse>, Status> {
        Self::request_password_reset(self, request).await.map(Response::new).map_err(status)
    }

    async fn reset_password(
        &self,
        request: Request<pb::ResetPasswordRequest>,
    ) -> Result<Response<pb::ResetPasswordResponse>, Status> {
        Self::reset_password(self, request).await.map(Response::new).map_err(status)
    }
}
