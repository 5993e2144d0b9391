//! A readable stand-in for the token signer and verifier.

use super::*;

/// A readable stand-in for JWTs: `fake.<sub>.<sid>.<jti>.<iat>.<exp>`.
#[derive(Debug, Default)]
pub struct FakeTokens;

impl AccessTokenSigner for FakeTokens {
    fn sign(&self, c: &AccessClaims) -> Result<String, SigningError> {
        Ok(format!(
            "fake.{}.{}.{}.{}.{}",
            c.user_id,
            c.session_id,
            c.token_id,
            c.issued_at.timestamp(),
            c.expires_at.timestamp()
        ))
    }
}

impl AccessTokenVerifier for FakeTokens {
    fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<AccessClaims, TokenRejection> {
        let parts: Vec<&str> = token.split('.').collect();
        let [_, sub, sid, jti, iat, exp] = parts.as_slice() else { return Err(TokenRejection::Malformed) };
        if parts[0] != "fake" {
            return Err(TokenRejection::Malformed);
        }
        let time = |s: &str| s.parse::<i64>().ok().and_then(|t| DateTime::from_timestamp(t, 0));
        let claims = AccessClaims {
            user_id: sub.parse().map_err(|_| TokenRejection::Malformed)?,
            session_id: sid.parse().map_err(|_| TokenRejection::Malformed)?,
            token_id: jti.parse().map_err(|_| TokenRejection::Malformed)?,
            issued_at: time(iat).ok_or(TokenRejection::Malformed)?,
            expires_at: time(exp).ok_or(TokenRejection::Malformed)?,
            organization_id: None,
            role: None,
            permissions: Vec::new(),
            scopes: Vec::new(),
        };
        if claims.expires_at <= now {
            return Err(TokenRejection::Expired);
        }
        Ok(claims)
    }

    fn public_keys(&self) -> Vec<PublicJwk> {
        vec![PublicJwk {
            kid: "fake".into(),
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            x: String::new(),
            alg: "EdDSA".into(),
            usage: "sig".into(),
        }]
    }
}
