//! Tests of the JWT adapter: the claims round trip, and every way a forged
//! or foreign token must be refused (OWASP ASVS 5.0 V9, RFC 8725).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::TimeDelta;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use super::*;

const ISSUER: &str = "https://auth.example.com";
const AUDIENCE: &str = "gatehouse-api";

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_750_000_000, 0).unwrap()
}

fn claims() -> AccessClaims {
    AccessClaims {
        user_id: UserId::from_uuid(Uuid::from_u128(0x0197_0000_0000_7000_8000_0000_0000_0001)),
        session_id: SessionId::from_uuid(Uuid::from_u128(0x0197_0000_0000_7000_8000_0000_0000_0002)),
        token_id: TokenId::from_uuid(Uuid::from_u128(0x0197_0000_0000_7000_8000_0000_0000_0003)),
        issued_at: now(),
        expires_at: now() + TimeDelta::minutes(15),
        organization_id: Some("acme".to_owned()),
        scopes: vec!["profile:read".to_owned(), "orders:write".to_owned()],
        role: Some("admin".to_owned()),
        permissions: vec!["members:*".to_owned(), "audit:read".to_owned()],
    }
}

fn keys_with(key: &SigningKey) -> JwtKeys {
    JwtKeys::new(key.clone(), Vec::<PublicKey>::new(), ISSUER, AUDIENCE)
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A JWS over arbitrary header and payload JSON, signed with `key`.
fn forge(header: &Value, payload: &Value, key: &SigningKey) -> String {
    let message = format!("{}.{}", b64(header.to_string()), b64(payload.to_string()));
    let signature = key.dalek().sign(message.as_bytes());
    format!("{message}.{}", b64(signature.to_bytes()))
}

fn our_header(key: &SigningKey) -> Value {
    json!({ "alg": "EdDSA", "typ": "at+jwt", "kid": key.kid() })
}

fn payload() -> Value {
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "01970000-0000-7000-8000-000000000001",
        "sid": "01970000-0000-7000-8000-000000000002",
        "jti": "01970000-0000-7000-8000-000000000003",
        "iat": now().timestamp(),
        "exp": (now() + TimeDelta::minutes(15)).timestamp(),
    })
}

fn decode_part(part: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

#[test]
fn sign_then_verify_round_trips_the_claims() {
    let keys = keys_with(&SigningKey::generate());
    let token = keys.sign(&claims()).unwrap();
    assert_eq!(keys.verify(&token, now()).unwrap(), claims());
}

/// RFC 9068 §2.1 (`typ`), RFC 7515 §4.1.4 (`kid`), RFC 8037 §3.1 (`EdDSA`).
#[test]
fn token_header_is_eddsa_at_jwt_with_the_key_id() {
    let key = SigningKey::generate();
    let token = keys_with(&key).sign(&claims()).unwrap();
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.alg, Algorithm::EdDSA);
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    assert_eq!(header.kid.as_deref(), Some(key.kid()));
}

/// RFC 9068 §2.2: iss, aud, sub, exp, iat, jti as registered claims; scope space-separated.
#[test]
fn claims_use_registered_names_and_numeric_dates() {
    let token = keys_with(&SigningKey::generate()).sign(&claims()).unwrap();
    let body = decode_part(token.split('.').nth(1).unwrap());
    assert_eq!(body["iss"], ISSUER);
    assert_eq!(body["aud"], AUDIENCE);
    assert_eq!(body["sub"], "01970000-0000-7000-8000-000000000001");
    assert_eq!(body["sid"], "01970000-0000-7000-8000-000000000002");
    assert_eq!(body["jti"], "01970000-0000-7000-8000-000000000003");
    assert_eq!(body["iat"], 1_750_000_000);
    assert_eq!(body["exp"], 1_750_000_900);
    assert_eq!(body["org"], "acme");
    assert_eq!(body["scope"], "profile:read orders:write");
    assert_eq!(body["role"], "admin");
    assert_eq!(body["perm"], json!(["members:*", "audit:read"]));
}

#[test]
fn empty_scope_and_absent_org_are_omitted() {
    let keys = keys_with(&SigningKey::generate());
    let bare =
        AccessClaims { organization_id: None, scopes: Vec::new(), role: None, permissions: Vec::new(), ..claims() };
    let token = keys.sign(&bare).unwrap();
    let body = decode_part(token.split('.').nth(1).unwrap());
    assert!(body.get("scope").is_none());
    assert!(body.get("org").is_none());
    assert!(body.get("role").is_none() && body.get("perm").is_none());
    assert_eq!(keys.verify(&token, now()).unwrap(), bare);
}

#[test]
fn scope_with_a_space_is_not_signed() {
    let keys = keys_with(&SigningKey::generate());
    let bad = AccessClaims { scopes: vec!["read write".to_owned()], ..claims() };
    assert!(keys.sign(&bad).is_err());
}

/// RFC 7519 §4.1.4: not accepted on or after `exp`; no leeway.
#[test]
fn token_is_expired_at_exp_and_valid_just_before() {
    let keys = keys_with(&SigningKey::generate());
    let token = keys.sign(&claims()).unwrap();
    let exp = claims().expires_at;
    assert_eq!(keys.verify(&token, exp), Err(TokenRejection::Expired));
    assert_eq!(keys.verify(&token, exp + TimeDelta::days(1)), Err(TokenRejection::Expired));
    assert!(keys.verify(&token, exp - TimeDelta::microseconds(1)).is_ok());
}

/// OWASP ASVS 5.0 V9.2.1 (token validity time span) and RFC 7519 §4.1.5:
/// not accepted before `nbf`, even when signed with our key; no leeway.
#[test]
fn token_with_nbf_in_the_future_is_refused() {
    let key = SigningKey::generate();
    let keys = keys_with(&key);
    for ahead in [TimeDelta::seconds(1), TimeDelta::minutes(10), TimeDelta::days(365 * 100)] {
        let mut body = payload();
        body["nbf"] = json!((now() + ahead).timestamp());
        let token = forge(&our_header(&key), &body, &key);
        assert_eq!(keys.verify(&token, now()), Err(TokenRejection::NotYetValid), "{ahead}");
    }
    // Too large for a date: still a refusal, not an overflow.
    let mut body = payload();
    body["nbf"] = json!(i64::MAX);
    assert_eq!(keys.verify(&forge(&our_header(&key), &body, &key), now()), Err(TokenRejection::NotYetValid));
}

/// OWASP ASVS 5.0 V9.2.1: from `nbf` on the token is valid; `nbf` is optional.
#[test]
fn token_with_nbf_now_or_past_is_accepted() {
    let key = SigningKey::generate();
    let keys = keys_with(&key);
    let expected =
        AccessClaims { organization_id: None, scopes: Vec::new(), role: None, permissions: Vec::new(), ..claims() };
    for nbf in [now(), now() - TimeDelta::seconds(1), now() - TimeDelta::days(1)] {
        let mut body = payload();
        body["nbf"] = json!(nbf.timestamp());
        let token = forge(&our_header(&key), &body, &key);
        assert_eq!(keys.verify(&token, now()), Ok(expected.clone()), "{nbf}");
    }
    // Within the second `nbf` names, the token is valid from its start.
    let mut body = payload();
    body["nbf"] = json!(now().timestamp());
    let token = forge(&our_header(&key), &body, &key);
    assert!(keys.verify(&token, now() + TimeDelta::milliseconds(999)).is_ok());
}

/// OWASP ASVS 5.0 V9.2.1: a token claiming to be issued in the future beyond
/// clock drift between replicas is refused, whoever signed it.
#[test]
fn token_with_iat_10_minutes_ahead_is_refused() {
    let key = SigningKey::generate();
    let keys = keys_with(&key);
    let mut body = payload();
    body["iat"] = json!((now() + TimeDelta::minutes(10)).timestamp());
    body["exp"] = json!((now() + TimeDelta::minutes(25)).timestamp());
    assert_eq!(keys.verify(&forge(&our_header(&key), &body, &key), now()), Err(TokenRejection::NotYetValid));

    // One second past the allowed skew is already too far.
    let mut body = payload();
    body["iat"] = json!((now() + MAX_IAT_SKEW + TimeDelta::seconds(1)).timestamp());
    assert_eq!(keys.verify(&forge(&our_header(&key), &body, &key), now()), Err(TokenRejection::NotYetValid));
}

/// OWASP ASVS 5.0 V9.2.1: a signer's clock slightly ahead of ours (up to the
/// allowed skew) does not make its fresh tokens fail; an old `iat` is fine.
#[test]
fn token_with_iat_within_the_skew_is_accepted() {
    let key = SigningKey::generate();
    let keys = keys_with(&key);
    for iat in [now() + MAX_IAT_SKEW, now() + TimeDelta::seconds(5), now() - TimeDelta::minutes(10)] {
        let mut body = payload();
        body["iat"] = json!(iat.timestamp());
        let token = forge(&our_header(&key), &body, &key);
        let verified = keys.verify(&token, now()).unwrap();
        assert_eq!(verified.issued_at, iat, "{iat}");
    }
    // Our own signer, on a clock 30 s ahead of the verifier's.
    let ahead = AccessClaims { issued_at: now() + TimeDelta::seconds(30), ..claims() };
    let token = keys.sign(&ahead).unwrap();
    assert_eq!(keys.verify(&token, now()), Ok(ahead));
}

/// OWASP ASVS 5.0 V9.2.3: the issuer must be ours.
#[test]
fn token_from_another_issuer_is_refused() {
    let key = SigningKey::generate();
    let other = JwtKeys::new(key.clone(), Vec::<PublicKey>::new(), "https://evil.example.com", AUDIENCE);
    let token = other.sign(&claims()).unwrap();
    assert_eq!(keys_with(&key).verify(&token, now()), Err(TokenRejection::WrongIssuer));
}

/// OWASP ASVS 5.0 V9.2.4: the audience must include us.
#[test]
fn token_for_another_audience_is_refused() {
    let key = SigningKey::generate();
    let other = JwtKeys::new(key.clone(), Vec::<PublicKey>::new(), ISSUER, "billing");
    let token = other.sign(&claims()).unwrap();
    assert_eq!(keys_with(&key).verify(&token, now()), Err(TokenRejection::WrongAudience));
}

/// RFC 7519 §4.1.3: `aud` may be an array.
#[test]
fn audience_array_containing_ours_is_accepted() {
    let key = SigningKey::generate();
    let mut body = payload();
    body["aud"] = json!(["billing", AUDIENCE]);
    let token = forge(&our_header(&key), &body, &key);
    assert!(keys_with(&key).verify(&token, now()).is_ok());

    body["aud"] = json!(["billing", "reports"]);
    let token = forge(&our_header(&key), &body, &key);
    assert_eq!(keys_with(&key).verify(&token, now()), Err(TokenRejection::WrongAudience));
}

/// OWASP ASVS 5.0 V9.2.2 and RFC 8725 §3.11: only access tokens are accepted,
/// so an ID token or any other JWT signed by the same key is not.
#[test]
fn token_of_another_type_is_refused() {
    let key = SigningKey::generate();
    let keys = keys_with(&key);
    for typ in [json!("JWT"), json!("id_token+jwt"), json!(""), Value::Null] {
        let mut header = our_header(&key);
        header["typ"] = typ.clone();
        assert_eq!(keys.verify(&forge(&header, &payload(), &key), now()), Err(TokenRejection::WrongType), "{typ}");
    }
    let mut header = our_header(&key);
    header.as_object_mut().unwrap().remove("typ");
    assert_eq!(keys.verify(&forge(&header, &payload(), &key), now()), Err(TokenRejection::WrongType));
}

/// RFC 9068 §4: "at+jwt" or "application/at+jwt", compared case-insensitively (RFC 7515 §4.1.9).
#[test]
fn typ_is_compared_case_insensitively_with_or_without_application_prefix() {
    let key = SigningKey::generate();
    let keys = keys_with(&key);
    for typ in ["AT+JWT", "application/at+jwt", "Application/At+Jwt"] {
        let mut header = our_header(&key);
        header["typ"] = json!(typ);
        assert!(keys.verify(&forge(&header, &payload(), &key), now()).is_ok(), "{typ}");
    }
}

/// OWASP ASVS 5.0 V9.1.2: only allow-listed algorithms; `none` is never accepted.
#[test]
fn alg_none_token_is_refused() {
    let key = SigningKey::generate();
    let header = json!({ "alg": "none", "typ": "at+jwt", "kid": key.kid() });
    let unsigned = format!("{}.{}.", b64(header.to_string()), b64(payload().to_string()));
    assert_eq!(keys_with(&key).verify(&unsigned, now()), Err(TokenRejection::Malformed));
    // Even with our real signature appended.
    let signed = forge(&header, &payload(), &key);
    assert_eq!(keys_with(&key).verify(&signed, now()), Err(TokenRejection::Malformed));
}

/// OWASP ASVS 5.0 V9.1.2 / RFC 8725 §2.1: the algorithm is pinned per key, so
/// an HMAC token keyed with our *public* key (the classic key-confusion
/// attack) is refused before any MAC is computed.
#[test]
fn hs256_token_keyed_with_the_public_key_is_refused() {
    let key = SigningKey::generate();
    let keys = keys_with(&key);
    let mut header = jsonwebtoken::Header::new(Algorithm::HS256);
    header.typ = Some("at+jwt".to_owned());
    header.kid = Some(key.kid().to_owned());
    let spki_pem = {
        use ed25519_dalek::pkcs8::EncodePublicKey as _;
        let pem = key.dalek().verifying_key().to_public_key_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF);
        pem.unwrap()
    };
    let secrets: [&[u8]; 3] = [key.public_key().as_bytes(), key.public_key().x().as_bytes(), spki_pem.as_bytes()];
    for secret in secrets {
        let token = jsonwebtoken::encode(&header, &payload(), &jsonwebtoken::EncodingKey::from_secret(secret)).unwrap();
        assert_eq!(keys.verify(&token, now()), Err(TokenRejection::WrongAlgorithm));
    }
}

#[test]
fn other_asymmetric_algorithms_are_refused() {
    let key = SigningKey::generate();
    let keys = keys_with(&key);
    for alg in ["RS256", "ES256", "PS256"] {
        let mut header = our_header(&key);
        header["alg"] = json!(alg);
        assert_eq!(keys.verify(&forge(&header, &payload(), &key), now()), Err(TokenRejection::WrongAlgorithm));
    }
}

/// OWASP ASVS 5.0 V9.1.1: the signature is checked with our key, whatever the header claims.
#[test]
fn token_signed_by_another_key_with_our_kid_is_refused() {
    let ours = SigningKey::generate();
    let attacker = SigningKey::generate();
    let token = forge(&our_header(&ours), &payload(), &attacker);
    assert_eq!(keys_with(&ours).verify(&token, now()), Err(TokenRejection::BadSignature));
}

#[test]
fn unknown_or_missing_kid_is_refused() {
    let key = SigningKey::generate();
    let keys = keys_with(&key);
    let stranger = SigningKey::generate();
    let token = keys_with(&stranger).sign(&claims()).unwrap();
    assert_eq!(keys.verify(&token, now()), Err(TokenRejection::UnknownKey));

    let mut header = our_header(&key);
    header.as_object_mut().unwrap().remove("kid");
    assert_eq!(keys.verify(&forge(&header, &payload(), &key), now()), Err(TokenRejection::UnknownKey));
}

#[test]
fn tampered_payload_is_refused() {
    let keys = keys_with(&SigningKey::generate());
    let token = keys.sign(&claims()).unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let mut body = decode_part(parts[1]);
    body["sub"] = json!("01970000-0000-7000-8000-00000000bad0");
    body["exp"] = json!(4_102_444_800_i64);
    let tampered = format!("{}.{}.{}", parts[0], b64(body.to_string()), parts[2]);
    assert_eq!(keys.verify(&tampered, now()), Err(TokenRejection::BadSignature));
}

#[test]
fn tampered_or_truncated_signature_is_refused() {
    let keys = keys_with(&SigningKey::generate());
    let token = keys.sign(&claims()).unwrap();
    let (message, signature) = token.rsplit_once('.').unwrap();
    let mut sig = URL_SAFE_NO_PAD.decode(signature).unwrap();
    sig[0] ^= 1;
    assert_eq!(keys.verify(&format!("{message}.{}", b64(&sig)), now()), Err(TokenRejection::BadSignature));
    assert_eq!(keys.verify(&format!("{message}.{}", b64(&sig[..32])), now()), Err(TokenRejection::BadSignature));
    assert_eq!(keys.verify(&format!("{message}."), now()), Err(TokenRejection::BadSignature));
}

/// OWASP ASVS 5.0 V9.1.3 / RFC 8725 §3.10: key material named in the token
/// (`jwk`, `jku`, `x5u`, `x5c`) is never trusted.
#[test]
fn header_supplied_keys_and_key_urls_are_ignored() {
    let ours = SigningKey::generate();
    let attacker = SigningKey::generate();
    let keys = keys_with(&ours);
    let mut header = our_header(&ours);
    header["jku"] = json!("https://evil.example.com/jwks.json");
    header["x5u"] = json!("https://evil.example.com/cert.pem");
    header["jwk"] = json!({ "kty": "OKP", "crv": "Ed25519", "x": attacker.public_key().x() });

    // Signed by the attacker's embedded key: still checked against ours.
    assert_eq!(keys.verify(&forge(&header, &payload(), &attacker), now()), Err(TokenRejection::BadSignature));
    // Signed by us: the extra headers change nothing.
    assert!(keys.verify(&forge(&header, &payload(), &ours), now()).is_ok());
}

/// RFC 7515 §4.1.11: a `crit` extension we do not understand makes the token invalid.
#[test]
fn critical_header_extension_is_refused() {
    let key = SigningKey::generate();
    let mut header = our_header(&key);
    header["crit"] = json!(["exp"]);
    header["exp"] = json!(0);
    assert_eq!(keys_with(&key).verify(&forge(&header, &payload(), &key), now()), Err(TokenRejection::Malformed));
}

#[test]
fn each_required_claim_is_required() {
    let key = SigningKey::generate();
    let keys = keys_with(&key);
    for claim in ["iss", "aud", "sub", "sid", "jti", "iat", "exp"] {
        let mut body = payload();
        body.as_object_mut().unwrap().remove(claim);
        assert_eq!(
            keys.verify(&forge(&our_header(&key), &body, &key), now()),
            Err(TokenRejection::MissingClaim),
            "{claim}"
        );
    }
}

#[test]
fn malformed_ids_and_claim_types_are_refused() {
    let key = SigningKey::generate();
    let keys = keys_with(&key);
    for (claim, value) in [
        ("sub", json!("not-a-uuid")),
        ("sid", json!("0197000000007000800000000000002")),
        ("jti", json!(42)),
        ("exp", json!("tomorrow")),
        ("iat", json!(i64::MAX)),
        ("scope", json!(["a", "b"])),
    ] {
        let mut body = payload();
        body[claim] = value;
        assert_eq!(
            keys.verify(&forge(&our_header(&key), &body, &key), now()),
            Err(TokenRejection::Malformed),
            "{claim}"
        );
    }
}

#[test]
fn garbage_is_malformed() {
    let keys = keys_with(&SigningKey::generate());
    for token in ["", "abc", "a.b", "a.b.c", "a.b.c.d", "!!!.@@@.###"] {
        assert_eq!(keys.verify(token, now()), Err(TokenRejection::Malformed), "{token}");
    }
}

/// Key rotation: tokens signed with a retired key verify until they expire.
#[test]
fn token_signed_with_a_previous_key_still_verifies() {
    let old = SigningKey::generate();
    let new = SigningKey::generate();
    let token = keys_with(&old).sign(&claims()).unwrap();

    let rotated = JwtKeys::new(new.clone(), vec![old.clone()], ISSUER, AUDIENCE);
    assert_eq!(rotated.verify(&token, now()).unwrap(), claims());
    assert_eq!(rotated.current_kid(), new.kid());
    let fresh = rotated.sign(&claims()).unwrap();
    assert_eq!(jwt_kid(&fresh), new.kid());

    let kids: Vec<String> = rotated.public_keys().into_iter().map(|k| k.kid).collect();
    assert_eq!(kids, [new.kid(), old.kid()]);
    assert_eq!(keys_with(&new).verify(&token, now()), Err(TokenRejection::UnknownKey));
}

fn jwt_kid(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

#[test]
fn previous_public_key_from_pem_verifies() {
    use ed25519_dalek::pkcs8::EncodePublicKey as _;
    let old = SigningKey::generate();
    let token = keys_with(&old).sign(&claims()).unwrap();
    let pem =
        old.dalek().verifying_key().to_public_key_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF).unwrap();
    let rotated = JwtKeys::new(SigningKey::generate(), [PublicKey::from_pem(&pem).unwrap()], ISSUER, AUDIENCE);
    assert!(rotated.verify(&token, now()).is_ok());
}

/// RFC 8037 §2 (OKP JWK), RFC 7638 (kid = thumbprint).
#[test]
fn public_keys_are_okp_ed25519_jwks_named_by_thumbprint() {
    let key = SigningKey::generate();
    let keys = JwtKeys::new(key.clone(), vec![key.clone()], ISSUER, AUDIENCE);
    let jwks = keys.public_keys();
    assert_eq!(jwks.len(), 1, "a previous key equal to the current one is listed once");
    let jwk = &jwks[0];
    let x = b64(key.dalek().verifying_key().as_bytes());
    let thumbprint = b64(Sha256::digest(format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#)));
    assert_eq!(
        jwk,
        &PublicJwk {
            kid: thumbprint,
            kty: "OKP".to_owned(),
            crv: "Ed25519".to_owned(),
            x,
            alg: "EdDSA".to_owned(),
            usage: "sig".to_owned(),
        }
    );
}

/// A gateway that knows only the JWKS (here jsonwebtoken's own JWK support)
/// can verify our tokens.
#[test]
fn jwks_json_lets_a_third_party_verify_tokens() {
    let keys = keys_with(&SigningKey::generate());
    let token = keys.sign(&claims()).unwrap();
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_str(&keys.jwks_json()).unwrap();
    let jwk = set.find(keys.current_kid()).unwrap();
    let raw: Value = serde_json::from_str(&keys.jwks_json()).unwrap();
    assert_eq!(raw["keys"][0]["use"], "sig");

    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(&[AUDIENCE]);
    validation.validate_exp = false;
    let decoded = jsonwebtoken::decode::<Value>(&token, &DecodingKey::from_jwk(jwk).unwrap(), &validation).unwrap();
    assert_eq!(decoded.claims["sub"], "01970000-0000-7000-8000-000000000001");
}

/// Our PEM works as a jsonwebtoken `EncodingKey`, and what it signs we verify.
#[test]
fn token_encoded_by_jsonwebtoken_with_our_pem_verifies() {
    let key = SigningKey::generate();
    let encoding = jsonwebtoken::EncodingKey::from_ed_pem(key.to_pem().unwrap().as_bytes()).unwrap();
    let mut header = jsonwebtoken::Header::new(Algorithm::EdDSA);
    header.typ = Some("at+jwt".to_owned());
    header.kid = Some(key.kid().to_owned());
    let token = jsonwebtoken::encode(&header, &payload(), &encoding).unwrap();
    assert_eq!(keys_with(&key).verify(&token, now()).unwrap().user_id, claims().user_id);
}

#[test]
fn debug_output_names_kids_not_key_material() {
    let key = SigningKey::generate();
    let debug = format!("{:?}", keys_with(&key));
    assert!(debug.contains(key.kid()));
    assert!(!debug.contains(&b64(key.dalek().to_bytes())));
}
