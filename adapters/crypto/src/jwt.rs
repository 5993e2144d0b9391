//! Access tokens as Ed25519-signed JWTs (RFC 7519, RFC 8037), typed
//! `at+jwt` (RFC 9068).
//!
//! Verification follows OWASP ASVS 5.0 V9.1/V9.2: the header's `kid` only
//! selects among keys built at start-up (header-supplied `jwk`, `jku`, `x5u`
//! and `x5c` are never used), each key allows exactly one algorithm, and
//! type, issuer, audience and the validity time span (`exp`, `nbf`, `iat`,
//! V9.2.1) are all checked. It does no I/O.

use std::collections::HashMap;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};
use ed25519_dalek::Signer as _;
use gatehouse_application::TokenRejection;
use gatehouse_application::ports::tokens::{AccessTokenSigner, AccessTokenVerifier, PublicJwk, SigningError};
use gatehouse_domain::{AccessClaims, SessionId, TokenId, UserId};
use jsonwebtoken::crypto::CryptoProvider;
use jsonwebtoken::errors::{Error as JwtError, ErrorKind};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};

use crate::keys::{PublicKey, SigningKey};

/// The media type of an access token (RFC 9068 §2.1), compared case-insensitively.
const TYP: &str = "at+jwt";
const TYP_FULL: &str = "application/at+jwt";

/// How far ahead of the verifier's clock a token's `iat` may be. Tokens are
/// signed by one replica and verified by another (or by a gateway), whose
/// clocks drift apart by a few seconds even under NTP, so a fresh token
/// must not be refused for that; a token "issued" further in the future
/// than this was not made by a signer with a sane clock (OWASP ASVS 5.0
/// V9.2.1).
const MAX_IAT_SKEW: TimeDelta = TimeDelta::seconds(60);

/// Signs access tokens with the current key and verifies them with the
/// current and previous keys.
pub struct JwtKeys {
    signer: SigningKey,
    /// The base64url JOSE header of every token signed, made once.
    header_b64: String,
    issuer: String,
    audience: String,
    verifiers: HashMap<String, Verifier>,
    jwks: Vec<PublicJwk>,
    validation: Validation,
}

/// One key that verifies tokens, pinned to its one algorithm.
struct Verifier {
    key: DecodingKey,
    alg: Algorithm,
}

impl JwtKeys {
    /// Builds the signer and the verification key map.
    ///
    /// `previous` are retired keys whose tokens must still verify until they
    /// expire; only their public halves are kept. `issuer` and `audience`
    /// go into every token and are required of every token verified.
    #[must_use]
    pub fn new<I>(current: SigningKey, previous: I, issuer: &str, audience: &str) -> Self
    where
        I: IntoIterator,
        I::Item: Into<PublicKey>,
    {
        // jsonwebtoken picks its crypto backend per process; with only its
        // `rust_crypto` feature it would choose this one anyway, but another
        // crate enabling `aws_lc_rs` too would leave it undecided (a panic).
        // An error means a provider is installed already, which is fine.
        let _ = CryptoProvider::install_default(&jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER);

        let header = serde_json::json!({ "alg": "EdDSA", "typ": TYP, "kid": current.kid() });
        let header_b64 = URL_SAFE_NO_PAD.encode(header.to_string());

        let mut verifiers = HashMap::new();
        let mut jwks = Vec::new();
        let publics = std::iter::once(current.public_key().clone()).chain(previous.into_iter().map(Into::into));
        for public in publics {
            if verifiers.contains_key(public.kid()) {
                continue;
            }
            jwks.push(PublicJwk {
                kid: public.kid().to_owned(),
                kty: "OKP".to_owned(),
                crv: "Ed25519".to_owned(),
                x: public.x().to_owned(),
                alg: "EdDSA".to_owned(),
                usage: "sig".to_owned(),
            });
            let verifier = Verifier { key: DecodingKey::from_ed_der(public.as_bytes()), alg: Algorithm::EdDSA };
            verifiers.insert(public.kid().to_owned(), verifier);
        }

        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        // Expiry and not-before are checked against the caller's `now`, not
        // the system time (`to_access_claims`).
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.leeway = 0;

        Self {
            signer: current,
            header_b64,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            verifiers,
            jwks,
            validation,
        }
    }

    /// The `kid` of the key that signs new tokens.
    #[must_use]
    pub fn current_kid(&self) -> &str {
        self.signer.kid()
    }

    /// The JWK Set (RFC 7517 §5) of every key that verifies, for `/.well-known/jwks.json`.
    #[must_use]
    pub fn jwks_json(&self) -> String {
        let keys: Vec<_> = self
            .jwks
            .iter()
            .map(|k| {
                serde_json::json!({
                    "kty": k.kty, "crv": k.crv, "x": k.x, "kid": k.kid, "alg": k.alg, "use": k.usage,
                })
            })
            .collect();
        serde_json::json!({ "keys": keys }).to_string()
    }
}

impl fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtKeys")
            .field("current_kid", &self.current_kid())
            .field("verifying_kids", &self.jwks.iter().map(|k| k.kid.as_str()).collect::<Vec<_>>())
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

/// The claims as written.
#[derive(Serialize)]
struct ClaimsOut<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: String,
    sid: String,
    jti: String,
    iat: i64,
    exp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    org: Option<&'a str>,
    #[serde(skip_serializing_if = "String::is_empty")]
    scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'a str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    perm: &'a [String],
}

/// The claims as read. Everything is optional so that an absent claim is
/// reported as `MissingClaim`, not as a parse error; `iss` and `aud` are
/// checked by jsonwebtoken's `Validation`.
#[derive(Deserialize)]
struct ClaimsIn {
    sub: Option<String>,
    sid: Option<String>,
    jti: Option<String>,
    iat: Option<i64>,
    exp: Option<i64>,
    /// Optional (RFC 7519 §4.1.5); we never set it, but honour it if present.
    nbf: Option<i64>,
    org: Option<String>,
    scope: Option<String>,
    role: Option<String>,
    perm: Option<Vec<String>>,
}

impl AccessTokenSigner for JwtKeys {
    /// `iat` and `exp` are whole seconds (RFC 7519 NumericDate), rounded
    /// down, so a token never outlives `claims.expires_at`.
    fn sign(&self, claims: &AccessClaims) -> Result<String, SigningError> {
        // RFC 6749 §3.3: scope tokens are space-separated, so one holding a
        // space (or nothing) would be read back as different scopes.
        if claims.scopes.iter().any(|s| s.is_empty() || s.contains(' ')) {
            return Err(SigningError("a scope is empty or contains a space".into()));
        }
        let body = ClaimsOut {
            iss: &self.issuer,
            aud: &self.audience,
            sub: claims.user_id.to_string(),
            sid: claims.session_id.to_string(),
            jti: claims.token_id.to_string(),
            iat: claims.issued_at.timestamp(),
            exp: claims.expires_at.timestamp(),
            org: claims.organization_id.as_deref(),
            scope: claims.scopes.join(" "),
            role: claims.role.as_deref(),
            perm: &claims.permissions,
        };
        let body = serde_json::to_vec(&body).map_err(|e| SigningError(Box::new(e)))?;
        // header "." body "." and 86 characters of signature
        let mut token = String::with_capacity(self.header_b64.len() + body.len().div_ceil(3) * 4 + 88);
        token.push_str(&self.header_b64);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&body, &mut token);
        let signature = self.signer.dalek().sign(token.as_bytes());
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature.to_bytes(), &mut token);
        Ok(token)
    }
}

impl AccessTokenVerifier for JwtKeys {
    fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<AccessClaims, TokenRejection> {
        // `alg: none` and other unknown algorithms fail here: the header
        // does not parse into jsonwebtoken's closed `Algorithm` enum.
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenRejection::Malformed)?;
        match header.typ.as_deref() {
            Some(typ) if typ.eq_ignore_ascii_case(TYP) || typ.eq_ignore_ascii_case(TYP_FULL) => {}
            _ => return Err(TokenRejection::WrongType),
        }
        // RFC 7515 §4.1.11: we understand no extensions, so any `crit` is refused.
        if header.crit.is_some() {
            return Err(TokenRejection::Malformed);
        }
        let kid = header.kid.as_deref().ok_or(TokenRejection::UnknownKey)?;
        let verifier = self.verifiers.get(kid).ok_or(TokenRejection::UnknownKey)?;
        if header.alg != verifier.alg {
            return Err(TokenRejection::WrongAlgorithm);
        }
        let data =
            jsonwebtoken::decode::<ClaimsIn>(token, &verifier.key, &self.validation).map_err(|e| rejection(&e))?;
        to_access_claims(data.claims, now)
    }

    fn public_keys(&self) -> Vec<PublicJwk> {
        self.jwks.clone()
    }
}

fn to_access_claims(claims: ClaimsIn, now: DateTime<Utc>) -> Result<AccessClaims, TokenRejection> {
    let (Some(sub), Some(sid), Some(jti), Some(iat), Some(exp)) =
        (claims.sub, claims.sid, claims.jti, claims.iat, claims.exp)
    else {
        return Err(TokenRejection::MissingClaim);
    };
    let expires_at = DateTime::from_timestamp(exp, 0).ok_or(TokenRejection::Malformed)?;
    let issued_at = DateTime::from_timestamp(iat, 0).ok_or(TokenRejection::Malformed)?;
    if now >= expires_at {
        return Err(TokenRejection::Expired);
    }
    // OWASP ASVS 5.0 V9.2.1: the token must also have started its validity
    // time span. `nbf` is compared exactly, as `exp` is: we never set it, so
    // one that is present was put there on purpose by the key holder. It is
    // compared as whole seconds, so any value, however large, is a refusal
    // and never an overflow.
    if claims.nbf.is_some_and(|nbf| nbf > now.timestamp()) {
        return Err(TokenRejection::NotYetValid);
    }
    // `iat` is the signer's clock, not ours: allow for drift, no more.
    if issued_at.signed_duration_since(now) > MAX_IAT_SKEW {
        return Err(TokenRejection::NotYetValid);
    }
    Ok(AccessClaims {
        user_id: sub.parse::<UserId>().map_err(|_| TokenRejection::Malformed)?,
        session_id: sid.parse::<SessionId>().map_err(|_| TokenRejection::Malformed)?,
        token_id: jti.parse::<TokenId>().map_err(|_| TokenRejection::Malformed)?,
        issued_at,
        expires_at,
        organization_id: claims.org,
        scopes: claims
            .scope
            .map(|s| s.split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect())
            .unwrap_or_default(),
        role: claims.role,
        permissions: claims.perm.unwrap_or_default(),
    })
}

/// What a jsonwebtoken failure means to a caller. The type, key and
/// algorithm were checked before, so most of these are the signature or
/// the claims.
fn rejection(e: &JwtError) -> TokenRejection {
    match e.kind() {
        ErrorKind::InvalidSignature => TokenRejection::BadSignature,
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm | ErrorKind::UnsupportedAlgorithm => {
            TokenRejection::WrongAlgorithm
        }
        ErrorKind::InvalidIssuer => TokenRejection::WrongIssuer,
        ErrorKind::InvalidAudience => TokenRejection::WrongAudience,
        ErrorKind::MissingRequiredClaim(_) => TokenRejection::MissingClaim,
        ErrorKind::ExpiredSignature => TokenRejection::Expired,
        ErrorKind::InvalidEddsaKey | ErrorKind::InvalidKeyFormat | ErrorKind::Provider(_) => {
            // Our own key is unusable: a bug, never the caller's fault. Fail closed.
            tracing::error!(error = %e, "access-token verification key is unusable");
            TokenRejection::BadSignature
        }
        // InvalidToken, Base64, Json, Utf8, InvalidClaimFormat and whatever
        // jsonwebtoken adds later: the token is not what we issue.
        _ => TokenRejection::Malformed,
    }
}

#[cfg(test)]
#[path = "jwt_tests.rs"]
mod tests;
