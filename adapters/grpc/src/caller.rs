//! What a request says about its caller: the Bearer token and the client's
//! user agent and address.

use gatehouse_domain::ClientInfo;
use tonic::Request;
use tonic::metadata::MetadataMap;

/// The access token in `authorization: Bearer <token>`, if any. The scheme
/// is case-insensitive (RFC 9110 §11.1).
pub(crate) fn bearer_token(metadata: &MetadataMap) -> Option<&str> {
    let value = metadata.get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The client's user agent and IP address (the TCP peer).
pub(crate) fn client_info<T>(request: &Request<T>) -> ClientInfo {
    let user_agent = request.metadata().get("user-agent").and_then(|v| v.to_str().ok());
    let ip = request.remote_addr().map(|addr| addr.ip().to_canonical().to_string());
    ClientInfo::new(user_agent, ip)
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
