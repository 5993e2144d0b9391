//! Tokens: the claims of an access token, the opaque refresh token and the
//! pair handed to a client after login.

use chrono::{DateTime, Utc};

use crate::ids::{OrganizationId, SessionId, TokenId, UserId};
use crate::secret::Secret;

/// What an access token says, independent of its encoding (JWT) and of the
/// issuer/audience the signer adds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessClaims {
    /// `sub`: the user.
    pub user_id: UserId,
    /// `sid`: the session the token belongs to.
    pub session_id: SessionId,
    /// `jti`: this token.
    pub token_id: TokenId,
    /// `iat`.
    pub issued_at: DateTime<Utc>,
    /// `exp`.
    pub expires_at: DateTime<Utc>,
    /// `org`: the organization the token was issued for, if any.
    pub organization_id: Option<String>,
    /// `scope`: the scopes granted.
    pub scopes: Vec<String>,
    /// `role`: the member's role in `organization_id` when the token was issued.
    pub role: Option<String>,
    /// `perm`: the permissions of that role, as of issue (a role change
    /// reaches tokens at their next refresh).
    pub permissions: Vec<String>,
}

impl AccessClaims {
    /// Whether the token may act in `org`: an unscoped one wherever its user
    /// may, one issued for an organization in that one only, so a token
    /// handed to one tenant's services does not reach into another tenant
    /// its user also belongs to.
    #[must_use]
    pub fn may_act_in(&self, org: OrganizationId) -> bool {
        self.organization_id.as_deref().is_none_or(|scoped| scoped == org.to_string())
    }
}

/// An opaque refresh token as handed to the client. Only its hash is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefreshToken(Secret<String>);

impl RefreshToken {
    /// Prefix that marks the string as a Gatehouse refresh token, so secret
    /// scanners can recognise a leaked one.
    pub const PREFIX: &'static str = "ghr_";

    /// Wraps a token string.
    #[must_use]
    pub const fn new(value: String) -> Self {
        Self(Secret::new(value))
    }

    /// The token text, to hand to the client or to hash.
    #[must_use]
    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

/// SHA-256 of a high-entropy secret (refresh token, later one-time tokens and
/// API keys). A fast hash is right here: the secret has 256 bits of entropy,
/// so there is nothing to brute-force, and look-up by hash stays an index hit.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    /// Wraps a digest.
    #[must_use]
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The digest bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenHash(..)")
    }
}

/// What a successful login or refresh returns.
#[derive(Clone, Debug)]
pub struct TokenPair {
    pub access_token: Secret<String>,
    pub access_token_expires_at: DateTime<Utc>,
    pub refresh_token: RefreshToken,
    pub refresh_token_expires_at: DateTime<Utc>,
    pub session_id: SessionId,
    pub user_id: UserId,
}

#[cfg(test)]
mod scope_tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_token_issued_for_an_organization_acts_in_that_one_only() {
        let (a, b) =
            (OrganizationId::from_uuid(uuid::Uuid::from_u128(1)), OrganizationId::from_uuid(uuid::Uuid::from_u128(2)));
        let at = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let claims = |org: Option<OrganizationId>| AccessClaims {
            user_id: UserId::from_uuid(uuid::Uuid::from_u128(3)),
            session_id: SessionId::from_uuid(uuid::Uuid::from_u128(4)),
            token_id: TokenId::from_uuid(uuid::Uuid::from_u128(5)),
            issued_at: at,
            expires_at: at,
            organization_id: org.map(|o| o.to_string()),
            scopes: vec![],
            role: None,
            permissions: vec![],
        };
        assert!(claims(None).may_act_in(a) && claims(None).may_act_in(b));
        assert!(claims(Some(a)).may_act_in(a));
        assert!(!claims(Some(a)).may_act_in(b));
    }
}
