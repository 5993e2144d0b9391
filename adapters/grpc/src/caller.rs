//! What a request says about its caller: the Bearer token and the user it
//! authenticates. (The client's address is [`crate::ClientIpPolicy`]'s.)

use gatehouse_application::auth::ValidateToken;
use gatehouse_application::{AppError, TokenRejection};
use gatehouse_domain::AccessClaims;
use tonic::Request;
use tonic::metadata::MetadataMap;

/// Longest access token accepted before any signature check; real ones are
/// a few hundred bytes.
pub(crate) const MAX_ACCESS_TOKEN_BYTES: usize = 8 * 1024;

/// The caller of a request that needs a signed-in user: the claims of its
/// Bearer access token, validated (signature, expiry, revocation).
///
/// # Errors
/// [`AppError::Unauthenticated`] when there is no usable Bearer token, else
/// whatever [`ValidateToken::execute`] refuses the token with.
pub(crate) async fn authenticate<T>(validate: &ValidateToken, request: &Request<T>) -> Result<AccessClaims, AppError> {
    let token = bearer_token(request.metadata()).ok_or(AppError::Unauthenticated)?;
    validate.execute(short_enough(token)?).await
}

/// `token`, unless it is too long to be a genuine access token.
///
/// # Errors
/// [`AppError::InvalidToken`] (malformed) for a token over [`MAX_ACCESS_TOKEN_BYTES`].
pub(crate) fn short_enough(token: &str) -> Result<&str, AppError> {
    if token.len() > MAX_ACCESS_TOKEN_BYTES {
        Err(AppError::InvalidToken(TokenRejection::Malformed))
    } else {
        Ok(token)
    }
}

/// The access token in `authorization: Bearer <token>`, if any. The scheme
/// is case-insensitive (RFC 9110 §11.1).
pub(crate) fn bearer_token(metadata: &MetadataMap) -> Option<&str> {
    let value = metadata.get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_auth(value: &str) -> MetadataMap {
        let mut m = MetadataMap::new();
        if let Ok(v) = value.parse() {
            m.insert("authorization", v);
        }
        m
    }

    #[test]
    fn bearer_scheme_is_case_insensitive_and_required() {
        assert_eq!(bearer_token(&with_auth("Bearer abc")), Some("abc"));
        assert_eq!(bearer_token(&with_auth("bearer abc")), Some("abc"));
        assert_eq!(bearer_token(&with_auth("Basic abc")), None);
        assert_eq!(bearer_token(&with_auth("Bearer ")), None);
        assert_eq!(bearer_token(&MetadataMap::new()), None);
    }
}
