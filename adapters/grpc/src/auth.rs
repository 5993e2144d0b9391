//! `gatehouse.v1.AuthService`: sign-up, login, refresh, logout.

use gatehouse_application::AppError;
use gatehouse_application::auth::{
    Login, LoginCommand, Logout, LogoutTarget, RefreshTokens, SignUp, SignUpCommand, ValidateToken,
};
use gatehouse_domain::{DisplayName, EmailAddress, Password, RefreshToken, TokenPair};
use tonic::{Request, Response, Status};

use crate::caller::{bearer_token, client_info};
use crate::error::status;
use crate::fields::{Fields, parsed};
use crate::pb;
use crate::timestamp;

/// Longest refresh token accepted before any look-up.
const MAX_REFRESH_TOKEN_BYTES: usize = 256;

/// The use cases behind `AuthService`.
#[derive(Clone, Debug)]
pub struct AuthApi {
    pub sign_up: SignUp,
    pub login: Login,
    pub refresh: RefreshTokens,
    pub logout: Logout,
    pub validate: ValidateToken,
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
    async fn sign_up(&self, request: Request<pb::SignUpRequest>) -> Result<pb::SignUpResponse, AppError> {
        let req = request.into_inner();
        let mut fields = Fields::default();
        let email = fields.check("email", EmailAddress::parse(&req.email));
        let password = fields.check("password", Password::new(req.password));
        let display_name = fields.check("display_name", DisplayName::parse(&req.display_name));
        let (email, password, display_name) = parsed!(fields, email, password, display_name);
        let user_id = self.sign_up.execute(SignUpCommand { email, password, display_name }).await?;
        Ok(pb::SignUpResponse { user_id: user_id.to_string() })
    }

    async fn login(&self, request: Request<pb::LoginRequest>) -> Result<pb::LoginResponse, AppError> {
        let client = client_info(&request);
        let req = request.into_inner();
        let mut fields = Fields::default();
        let email = fields.check("email", EmailAddress::parse(&req.email));
        let password = fields.check("password", Password::candidate(req.password));
        let (email, password) = parsed!(fields, email, password);
        let pair = self.login.execute(LoginCommand { email, password, client }).await?;
        Ok(pb::LoginResponse { result: Some(pb::login_response::Result::Tokens(token_pair(pair))) })
    }

    async fn refresh(&self, request: Request<pb::RefreshTokenRequest>) -> Result<pb::RefreshTokenResponse, AppError> {
        let req = request.into_inner();
        let mut fields = Fields::default();
        let token = fields.required("refresh_token", &req.refresh_token, MAX_REFRESH_TOKEN_BYTES);
        let (token,) = parsed!(fields, token);
        let pair = self.refresh.execute(&RefreshToken::new(token.to_owned())).await?;
        Ok(pb::RefreshTokenResponse { tokens: Some(token_pair(pair)) })
    }

    async fn logout(&self, request: Request<pb::LogoutRequest>) -> Result<pb::LogoutResponse, AppError> {
        let target = if let Some(access_token) = bearer_token(request.metadata()) {
            LogoutTarget::Caller(self.validate.execute(access_token).await?)
        } else {
            let req = request.into_inner();
            let mut fields = Fields::default();
            let token = fields.required("refresh_token", &req.refresh_token, MAX_REFRESH_TOKEN_BYTES);
            let (token,) = parsed!(fields, token);
            LogoutTarget::RefreshToken(RefreshToken::new(token.to_owned()))
        };
        self.logout.execute(target).await?;
        Ok(pb::LogoutResponse {})
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

    async fn refresh_token(
        &self,
        request: Request<pb::RefreshTokenRequest>,
    ) -> Result<Response<pb::RefreshTokenResponse>, Status> {
        self.refresh(request).await.map(Response::new).map_err(status)
    }

    async fn logout(&self, request: Request<pb::LogoutRequest>) -> Result<Response<pb::LogoutResponse>, Status> {
        Self::logout(self, request).await.map(Response::new).map_err(status)
    }
}
