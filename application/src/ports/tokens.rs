//! Access-token signing and verification (JWT in production).

use chrono::{DateTime, Utc};
use gatehouse_domain::AccessClaims;

use crate::error::TokenRejection;
use crate::ports::BoxError;

/// Signing failed: a key problem no caller can fix.
#[derive(Debug, thiserror::Error)]
#[error("token signing failed")]
pub struct SigningError(#[source] pub BoxError);

/// Signs access tokens with the current key. Signing is CPU-only and takes
/// microseconds, so the port is synchronous.
pub trait AccessTokenSigner: std::fmt::Debug + Send + Sync {
    /// Encodes and signs `claims`, adding issuer, audience and key id.
    fn sign(&self, claims: &AccessClaims) -> Result<String, SigningError>;
}

/// One public key in JWK form (RFC 7517), as published in the JWKS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicJwk {
    pub kid: String,
    pub kty: String,
    pub crv: String,
    pub x: String,
    pub alg: String,
    pub usage: String,
}

/// Verifies access tokens. This is the hot path of every gateway request:
/// implementations must not touch storage.
pub trait AccessTokenVerifier: std::fmt::Debug + Send + Sync {
    /// Checks type, key, algorithm, signature, issuer, audience and expiry
    /// (against `now`) and returns the claims. Does not consult the denylist.
    ///
    /// # Errors
    /// The first check that failed.
    fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<AccessClaims, TokenRejection>;

    /// The public keys that verify tokens: the current one and still-valid previous ones.
    fn public_keys(&self) -> Vec<PublicJwk>;
}
