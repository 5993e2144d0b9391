//! Tokens that must never validate: expired, forged, tampered, confused.
//! OWASP ASVS 5.0 V9.1.1 (signature before contents), V9.1.2 (algorithm
//! allowlist, no `none`), V9.1.3 (keys only from our configuration), V9.2.1
//! (validity time span: `exp`, `nbf`, `iat`), V9.2.2 (token type), V9.2.3
//! (audience).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tonic::Code;
use tonic_types::StatusExt;
use uuid::Uuid;

use crate::harness::{Mode, TestApp, assert_error};

crate::in_both_modes!(
    expired_token_is_refused,
    not_yet_valid_token_is_refused,
    token_signed_by_another_key_is_refused,
    alg_none_token_is_refused,
    tampered_payload_is_refused,
    wrong_audience_or_issuer_is_refused,
    token_of_another_type_is_refused,
    hmac_with_the_public_key_is_refused,
    unknown_or_path_like_kid_is_refused,
    embedded_jwk_header_is_ignored,
    a_correctly_forged_token_passes_so_the_checks_above_are_real,
);

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn claims(app: &TestApp, iat: i64, exp: i64) -> Value {
    json!({
        "iss": app.config.issuer,
        "aud": app.config.audience,
        "sub": Uuid::now_v7().to_string(),
        "sid": Uuid::now_v7().to_string(),
        "jti": Uuid::now_v7().to_string(),
        "iat": iat,
        "exp": exp,
    })
}

fn header(kid: &str, typ: &str) -> Header {
    let mut h = Header::new(Algorithm::EdDSA);
    h.typ = Some(typ.into());
    h.kid = Some(kid.into());
    h
}

fn sign_with(pem: &str, header: &Header, claims: &Value) -> String {
    jsonwebtoken::encode(header, claims, &EncodingKey::from_ed_pem(pem.as_bytes()).unwrap()).unwrap()
}

fn other_key_pem() -> String {
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    let key = ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng);
    key.to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF).unwrap().to_string()
}

#[track_caller]
fn assert_invalid(result: Result<gatehouse_grpc::pb::ValidateTokenResponse, tonic::Status>, cause: &str) {
    let status = assert_error(result, Code::Unauthenticated, "TOKEN_INVALID");
    let info = status.get_error_details().error_info().cloned().unwrap();
    assert_eq!(info.metadata.get("cause").map(String::as_str), Some(cause), "{status:?}");
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

async fn a_correctly_forged_token_passes_so_the_checks_above_are_real(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    let kid = app.kid().await;
    let c = claims(&app, now(), now() + 300);
    let token = sign_with(&app.signing_key_pem, &header(&kid, "at+jwt"), &c);
    let res = app.validate(&token).await.unwrap();
    assert_eq!(res.user_id, c["sub"].as_str().unwrap());
}

/// V9.2.1.
async fn expired_token_is_refused(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    let kid = app.kid().await;
    let token = sign_with(&app.signing_key_pem, &header(&kid, "at+jwt"), &claims(&app, now() - 1000, now() - 1));
    assert_error(app.validate(&token).await, Code::Unauthenticated, "TOKEN_EXPIRED");
}

/// V9.2.1: signed with the real key, but its validity has not begun: `nbf`
/// ahead, or `iat` further ahead than clock drift between replicas explains.
async fn not_yet_valid_token_is_refused(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    let kid = app.kid().await;
    let mut c = claims(&app, now(), now() + 900);
    c["nbf"] = json!(now() + 600);
    let token = sign_with(&app.signing_key_pem, &header(&kid, "at+jwt"), &c);
    assert_invalid(app.validate(&token).await, "not_yet_valid");

    let token = sign_with(&app.signing_key_pem, &header(&kid, "at+jwt"), &claims(&app, now() + 600, now() + 900));
    assert_invalid(app.validate(&token).await, "not_yet_valid");
}

/// V9.1.1.
async fn token_signed_by_another_key_is_refused(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    let kid = app.kid().await;
    let token = sign_with(&other_key_pem(), &header(&kid, "at+jwt"), &claims(&app, now(), now() + 300));
    assert_invalid(app.validate(&token).await, "bad_signature");
}

/// V9.1.2.
async fn alg_none_token_is_refused(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    let kid = app.kid().await;
    let c = claims(&app, now(), now() + 300);
    for alg in ["none", "None", "NONE"] {
        let token = format!("{}.{}.", b64(&json!({"alg": alg, "typ": "at+jwt", "kid": kid})), b64(&c));
        let status = app.validate(&token).await.unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{alg}: {status:?}");
        let reason = status.get_error_details().error_info().map(|i| i.reason.clone());
        assert_eq!(reason.as_deref(), Some("TOKEN_INVALID"), "{alg}");
    }
}

/// V9.1.1.
async fn tampered_payload_is_refused(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    let victim = app.user_session("victim@example.com").await;
    let attacker = app.user_session("attacker@example.com").await;
    let parts: Vec<&str> = attacker.access_token.split('.').collect();
    let mut payload: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    payload["sub"] = Value::String(victim.user_id.clone());
    let token = format!("{}.{}.{}", parts[0], b64(&payload), parts[2]);
    assert_invalid(app.validate(&token).await, "bad_signature");
}

/// V9.2.3 (and the issuer, which names who vouches for the token).
async fn wrong_audience_or_issuer_is_refused(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    let kid = app.kid().await;
    let mut c = claims(&app, now(), now() + 300);
    c["aud"] = json!("billing-service");
    assert_invalid(app.validate(&sign_with(&app.signing_key_pem, &header(&kid, "at+jwt"), &c)).await, "wrong_audience");
    c["aud"] = json!(app.config.audience);
    c["iss"] = json!("https://evil.example");
    assert_invalid(app.validate(&sign_with(&app.signing_key_pem, &header(&kid, "at+jwt"), &c)).await, "wrong_issuer");
}

/// V9.2.2: an ID token or any other JWT signed by the same key is no access token.
async fn token_of_another_type_is_refused(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    let kid = app.kid().await;
    let c = claims(&app, now(), now() + 300);
    assert_invalid(app.validate(&sign_with(&app.signing_key_pem, &header(&kid, "JWT"), &c)).await, "wrong_type");
    let mut no_typ = header(&kid, "x");
    no_typ.typ = None;
    assert_invalid(app.validate(&sign_with(&app.signing_key_pem, &no_typ, &c)).await, "wrong_type");
}

/// V9.1.2: the algorithm is pinned per key; the public key used as an HMAC
/// secret (the classic RS/HS confusion) does not verify.
async fn hmac_with_the_public_key_is_refused(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    let jwks = app.token.clone().get_jwks(gatehouse_grpc::pb::GetJwksRequest {}).await.unwrap().into_inner();
    let jwk = &jwks.keys[0];
    let public = URL_SAFE_NO_PAD.decode(&jwk.x).unwrap();
    let mut h = Header::new(Algorithm::HS256);
    h.typ = Some("at+jwt".into());
    h.kid = Some(jwk.kid.clone());
    for secret in [public.as_slice(), jwk.x.as_bytes()] {
        let token =
            jsonwebtoken::encode(&h, &claims(&app, now(), now() + 300), &EncodingKey::from_secret(secret)).unwrap();
        assert_invalid(app.validate(&token).await, "wrong_algorithm");
    }
}

/// V9.1.3: `kid` is only looked up, never used as a path or URL.
async fn unknown_or_path_like_kid_is_refused(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    let c = claims(&app, now(), now() + 300);
    for kid in ["other-key", "../../../etc/passwd", "signing-key.pem"] {
        let token = sign_with(&app.signing_key_pem, &header(kid, "at+jwt"), &c);
        assert_invalid(app.validate(&token).await, "unknown_key");
    }
}

/// V9.1.3: a key embedded in the header (`jwk`) or linked (`jku`) is not trusted.
async fn embedded_jwk_header_is_ignored(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    let kid = app.kid().await;
    let attacker_pem = other_key_pem();
    let attacker = ed25519_dalek::SigningKey::from_bytes(
        &<ed25519_dalek::SigningKey as ed25519_dalek::pkcs8::DecodePrivateKey>::from_pkcs8_pem(&attacker_pem)
            .unwrap()
            .to_bytes(),
    );
    let x = URL_SAFE_NO_PAD.encode(attacker.verifying_key().as_bytes());
    let c = claims(&app, now(), now() + 300);
    let header_json = json!({
        "alg": "EdDSA", "typ": "at+jwt", "kid": kid,
        "jku": "https://evil.example/jwks.json",
        "jwk": {"kty": "OKP", "crv": "Ed25519", "x": x},
    });
    let signing_input = format!("{}.{}", b64(&header_json), b64(&c));
    let signature = ed25519_dalek::Signer::sign(&attacker, signing_input.as_bytes());
    let token = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()));
    assert_invalid(app.validate(&token).await, "bad_signature");
}
