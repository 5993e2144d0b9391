//! `gatehouse.v1.TokenService`: token validation and the JWKS, for gateways
//! and internal services.

use gatehouse_application::AppError;
use gatehouse_application::auth::{GetJwks, ValidateToken};
use tonic::{Request, Response, Status};

use crate::caller::MAX_ACCESS_TOKEN_BYTES;
use crate::error::status;
use crate::fields::{Fields, parsed};
use crate::pb;
use crate::timestamp;

/// The use cases behind `TokenService`.
#[derive(Clone, Debug)]
pub struct TokenApi {
    pub validate: ValidateToken,
    pub jwks: GetJwks,
}

impl TokenApi {
    async fn validate(
        &self,
        request: Request<pb::ValidateTokenRequest>,
    ) -> Result<pb::ValidateTokenResponse, AppError> {
        let req = request.into_inner();
        let mut fields = Fields::default();
        let token = fields.required("access_token", &req.access_token, MAX_ACCESS_TOKEN_BYTES);
        let (token,) = parsed!(fields, token);
        let claims = self.validate.execute(token).await?;
        Ok(pb::ValidateTokenResponse {
            user_id: claims.user_id.to_string(),
            session_id: claims.session_id.to_string(),
            organization_id: claims.organization_id.unwrap_or_default(),
            scopes: claims.scopes,
            expires_at: Some(timestamp(claims.expires_at)),
            token_id: claims.token_id.to_string(),
            issued_at: Some(timestamp(claims.issued_at)),
            role: claims.role.unwrap_or_default(),
            permissions: claims.permissions,
        })
    }
}

#[tonic::async_trait]
impl pb::token_service_server::TokenService for TokenApi {
    async fn validate_token(
        &self,
        request: Request<pb::ValidateTokenRequest>,
    ) -> Result<Response<pb::ValidateTokenResponse>, Status> {
        self.validate(request).await.map(Response::new).map_err(status)
    }

    async fn get_jwks(&self, _request: Request<pb::GetJwksRequest>) -> Result<Response<pb::GetJwksResponse>, Status> {
        let keys = self
            .jwks
            .execute()
            .into_iter()
            .map(|k| pb::Jwk { kid: k.kid, kty: k.kty, crv: k.crv, x: k.x, alg: k.alg, r#use: k.usage })
            .collect();
        Ok(Response::new(pb::GetJwksResponse { keys }))
    }
}
