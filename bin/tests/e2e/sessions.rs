//! Signing up, logging in, validating, refreshing and logging out.

use std::time::Duration;

use tonic::Code;
use uuid::Uuid;

use crate::harness::{Mode, TestApp, assert_error, authed, code_and_reason};
use gatehouse_grpc::pb;

crate::in_both_modes!(
    sign_up_login_validate_and_logout,
    sign_up_with_a_taken_email_looks_new_changes_nothing_and_tells_the_owner,
    without_verification_a_taken_email_is_already_exists,
    unknown_email_and_wrong_password_get_the_same_answer,
    refresh_returns_a_working_pair_and_the_old_token_is_refused,
    reused_refresh_token_revokes_the_session,
    concurrent_refreshes_with_one_token_mint_one_pair,
    logout_by_refresh_token_ends_that_session_only,
    a_stray_bearer_token_is_ignored_where_no_sign_in_is_needed,
    revocation_survives_a_restart_and_reaches_every_replica,
    health_reports_serving,
    jwks_verifies_access_tokens_locally,
    login_records_the_client_user_agent_and_address,
    first_start_generates_a_private_signing_key,
);

fn is_uuid_v7(s: &str) -> bool {
    Uuid::parse_str(s).is_ok_and(|u| u.get_version_num() == 7 && u.hyphenated().to_string() == s)
}

async fn sign_up_login_validate_and_logout(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    let user_id = app.sign_up("  Ann@Example.com ", "correct horse battery").await.unwrap();
    assert!(is_uuid_v7(&user_id), "{user_id}");
    let mail = app.last_event("email.verification_requested", "ann@example.com").await;
    app.verify_token(&mail.token).await.unwrap();

    let pair = app.login("ann@example.com", "correct horse battery").await.unwrap();
    assert_eq!(pair.token_type, "Bearer");
    assert_eq!(pair.user_id, user_id);
    assert!(is_uuid_v7(&pair.session_id));
    let access_exp = pair.access_token_expires_at.unwrap();
    let refresh_exp = pair.refresh_token_expires_at.unwrap();
    assert_eq!(refresh_exp.seconds - access_exp.seconds, 30 * 86_400 - 15 * 60);

    let claims = app.validate(&pair.access_token).await.unwrap();
    assert_eq!(claims.user_id, user_id);
    assert_eq!(claims.session_id, pair.session_id);
    assert_eq!(claims.expires_at.unwrap().seconds, access_exp.seconds);
    assert!(is_uuid_v7(&claims.token_id));

    // OWASP ASVS 5.0 V7.4.1: after logout the session's tokens are refused at once.
    app.logout_bearer(&pair.access_token).await.unwrap();
    assert_error(app.validate(&pair.access_token).await, Code::Unauthenticated, "TOKEN_REVOKED");
    assert_error(app.refresh(&pair.refresh_token).await, Code::Unauthenticated, "TOKEN_REVOKED");
    // Logout is idempotent, with either token.
    app.logout_bearer(&pair.access_token).await.unwrap();
    app.logout_refresh(&pair.refresh_token).await.unwrap();
}

/// OWASP ASVS 5.0 V6.3.8: while logins need a verified address (the
/// default), a sign-up with a taken address, in any case, is answered like a
/// new one, changes nothing, and the owner gets `email.signup_attempted`.
async fn sign_up_with_a_taken_email_looks_new_changes_nothing_and_tells_the_owner(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    let owner = app.verified_user("bob@example.com").await;
    let fresh = app.sign_up("fresh@example.com", "another password").await.unwrap();
    let taken = app.sign_up("BOB@example.com", "another password").await.unwrap();
    assert_ne!(taken, owner, "the answer names no existing account");
    assert_eq!(taken.len(), fresh.len(), "the same shape of answer");
    let notice = app.last_event("email.signup_attempted", "bob@example.com").await;
    assert_eq!(notice.user_id, owner);
    // The first password still works: the sign-up changed nothing.
    app.login("bob@example.com", "correct horse battery").await.unwrap();
    assert_error(app.login("bob@example.com", "another password").await, Code::Unauthenticated, "INVALID_CREDENTIALS");
}

/// With verification off a sign-up could log in at once, so there is
/// nothing to conceal: a taken address is `ALREADY_EXISTS`.
async fn without_verification_a_taken_email_is_already_exists(mode: Mode) {
    let app = TestApp::spawn_with(mode, |c| c.require_verified_email = false).await;
    app.sign_up("bob@example.com", "correct horse battery").await.unwrap();
    assert_error(app.sign_up("BOB@example.com", "another password").await, Code::AlreadyExists, "EMAIL_TAKEN");
    // The first password still works: the refused sign-up changed nothing.
    app.login("bob@example.com", "correct horse battery").await.unwrap();
    assert_error(app.login("bob@example.com", "another password").await, Code::Unauthenticated, "INVALID_CREDENTIALS");
}

/// OWASP ASVS 5.0 V6.3.8: failed logins do not reveal whether the account exists.
async fn unknown_email_and_wrong_password_get_the_same_answer(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    app.verified_user("carol@example.com").await;
    let wrong = assert_error(
        app.login("carol@example.com", "wrong password").await,
        Code::Unauthenticated,
        "INVALID_CREDENTIALS",
    );
    let unknown = assert_error(
        app.login("nobody@example.com", "wrong password").await,
        Code::Unauthenticated,
        "INVALID_CREDENTIALS",
    );
    assert_eq!(wrong.message(), unknown.message());
}

async fn refresh_returns_a_working_pair_and_the_old_token_is_refused(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    let first = app.user_session("dan@example.com").await;
    let second = app.refresh(&first.refresh_token).await.unwrap();
    assert_eq!(second.session_id, first.session_id);
    assert_ne!(second.refresh_token, first.refresh_token);
    assert_ne!(second.access_token, first.access_token);
    assert_eq!(app.validate(&second.access_token).await.unwrap().session_id, first.session_id);
    let third = app.refresh(&second.refresh_token).await.unwrap();
    app.validate(&third.access_token).await.unwrap();
    // The retired token is refused.
    assert_error(app.refresh(&first.refresh_token).await, Code::Unauthenticated, "TOKEN_REVOKED");
    // A token never issued is a different error.
    let forged = format!("ghr_{}", "A".repeat(43));
    assert_error(app.refresh(&forged).await, Code::Unauthenticated, "REFRESH_TOKEN_INVALID");
}

/// RFC 9700 §4.14.2, OWASP ASVS 5.0 V10.4.5: presenting a rotated refresh
/// token revokes the whole session; its newest tokens stop working too.
async fn reused_refresh_token_revokes_the_session(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    let first = app.user_session("erin@example.com").await;
    let other_session = app.login("erin@example.com", "correct horse battery").await.unwrap();
    let second = app.refresh(&first.refresh_token).await.unwrap();
    app.validate(&second.access_token).await.unwrap();

    assert_error(app.refresh(&first.refresh_token).await, Code::Unauthenticated, "TOKEN_REVOKED");
    assert_error(app.validate(&second.access_token).await, Code::Unauthenticated, "TOKEN_REVOKED");
    assert_error(app.validate(&first.access_token).await, Code::Unauthenticated, "TOKEN_REVOKED");
    assert_error(app.refresh(&second.refresh_token).await, Code::Unauthenticated, "TOKEN_REVOKED");
    // The user's other session is untouched.
    app.validate(&other_session.access_token).await.unwrap();
    app.refresh(&other_session.refresh_token).await.unwrap();
}

async fn concurrent_refreshes_with_one_token_mint_one_pair(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    let pair = app.user_session("fay@example.com").await;
    let attempts = (0..10).map(|_| {
        let mut client = app.auth.clone();
        let token = pair.refresh_token.clone();
        tokio::spawn(async move {
            client
                .refresh_token(gatehouse_grpc::pb::RefreshTokenRequest { refresh_token: token, ..Default::default() })
                .await
        })
    });
    let mut minted = 0;
    for handle in attempts.collect::<Vec<_>>() {
        match handle.await.unwrap() {
            Ok(_) => minted += 1,
            // A loser presented a rotated token: reuse, which ends the session.
            Err(status) => {
                assert_eq!(code_and_reason(&status), (Code::Unauthenticated, "TOKEN_REVOKED".into()), "{status:?}");
            }
        }
    }
    assert_eq!(minted, 1, "exactly one concurrent refresh may mint a pair");
}

async fn logout_by_refresh_token_ends_that_session_only(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    let a = app.user_session("gus@example.com").await;
    let b = app.login("gus@example.com", "correct horse battery").await.unwrap();
    app.logout_refresh(&a.refresh_token).await.unwrap();
    assert_error(app.validate(&a.access_token).await, Code::Unauthenticated, "TOKEN_REVOKED");
    app.validate(&b.access_token).await.unwrap();
    let forged = format!("ghr_{}", "B".repeat(43));
    assert_error(app.logout_refresh(&forged).await, Code::Unauthenticated, "REFRESH_TOKEN_INVALID");
}

/// Only the services for signed-in users look at `authorization`: a stale
/// or broken Bearer token does not stop a login, and ValidateToken judges
/// the token in its body alone, whatever the header says.
async fn a_stray_bearer_token_is_ignored_where_no_sign_in_is_needed(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    let stale = app.user_session("eve@example.com").await;
    app.logout_bearer(&stale.access_token).await.unwrap();

    let login = pb::LoginRequest {
        email: "eve@example.com".into(),
        password: "correct horse battery".into(),
        ..Default::default()
    };
    let fresh = match app.auth.clone().login(authed(login, "garbage")).await.unwrap().into_inner().result {
        Some(pb::login_response::Result::Tokens(pair)) => pair,
        other => panic!("login returned no tokens: {other:?}"),
    };

    let body = |token: &str| pb::ValidateTokenRequest { access_token: token.into() };
    let claims = app.token.clone().validate_token(authed(body(&fresh.access_token), &stale.access_token)).await;
    assert_eq!(claims.unwrap().into_inner().session_id, fresh.session_id);
    let stale_in_body = app.token.clone().validate_token(authed(body(&stale.access_token), &fresh.access_token)).await;
    assert_error(stale_in_body, Code::Unauthenticated, "TOKEN_REVOKED");
}

/// The session row is the truth: a restarted server (empty in-process
/// denylist, or Redis that lost its keys) still refuses a revoked token, a
/// second replica refuses it the moment the first one revoked it, and a
/// Redis that lost its keys while the servers run never lets the revoked
/// token through: the missing generation marker makes validation fail closed
/// until the rebuild it triggers has run (OWASP ASVS 5.0 V7.4.1). The
/// periodic resync is set far off, so only that rebuild can restore it.
async fn revocation_survives_a_restart_and_reaches_every_replica(mode: Mode) {
    let mut app = TestApp::spawn_with(mode, |c| c.denylist_resync_interval = Duration::from_secs(3600)).await;
    let replica = app.replica().await;
    let pair = app.user_session("hal@example.com").await;
    replica.validate(&pair.access_token).await.unwrap();
    app.logout_bearer(&pair.access_token).await.unwrap();
    if mode == Mode::Production {
        // Revocation is visible on the other replica at once.
        assert_error(replica.validate(&pair.access_token).await, Code::Unauthenticated, "TOKEN_REVOKED");
        let lost = gatehouse_testkit::redis::delete_keys(&app.config.redis_key_prefix);
        assert!(lost > 0, "logout should have written denylist keys");
        revoked_never_accepted(&replica, &pair.access_token).await;
        revoked_never_accepted(&app, &pair.access_token).await;
    }
    drop(replica);
    app.stop().await;
    if mode == Mode::Production {
        // Lost again while no server runs: the start-up refill must restore it.
        let lost = gatehouse_testkit::redis::delete_keys(&app.config.redis_key_prefix);
        assert!(lost > 0, "the rebuild should have written the denylist keys again");
    }
    let app = app.restart().await;
    assert_error(app.validate(&pair.access_token).await, Code::Unauthenticated, "TOKEN_REVOKED");
}

/// Validates `access_token` until `app` refuses it as revoked: every answer
/// before that must be UNAVAILABLE (the denylist knows it is incomplete),
/// never "valid".
pub(crate) async fn revoked_never_accepted(app: &TestApp, access_token: &str) {
    gatehouse_testkit::eventually("the rebuild to restore the lost revocation", async || {
        match app.validate(access_token).await {
            Ok(claims) => panic!("a revoked token was accepted: {claims:?}"),
            Err(status) if status.code() == Code::Unavailable => false,
            Err(status) => {
                assert_error::<()>(Err(status), Code::Unauthenticated, "TOKEN_REVOKED");
                true
            }
        }
    })
    .await;
}

async fn health_reports_serving(mode: Mode) {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;

    let app = TestApp::spawn(mode).await;
    let mut health = HealthClient::new(app.channel.clone());
    for service in ["", "gatehouse.v1.AuthService", "gatehouse.v1.TokenService"] {
        let res = health.check(HealthCheckRequest { service: service.into() }).await.unwrap().into_inner();
        assert_eq!(res.status, 1, "{service:?} should be SERVING");
    }
}

/// A gateway can verify access tokens itself with the published JWKS.
async fn jwks_verifies_access_tokens_locally(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    let pair = app.user_session("ivy@example.com").await;
    let jwks = app.token.clone().get_jwks(gatehouse_grpc::pb::GetJwksRequest {}).await.unwrap().into_inner();
    assert_eq!(jwks.keys.len(), 1);
    let jwk = &jwks.keys[0];
    assert_eq!(
        (jwk.kty.as_str(), jwk.crv.as_str(), jwk.alg.as_str(), jwk.r#use.as_str()),
        ("OKP", "Ed25519", "EdDSA", "sig")
    );
    let header = jsonwebtoken::decode_header(&pair.access_token).unwrap();
    assert_eq!(header.kid.as_deref(), Some(jwk.kid.as_str()));
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let key = jsonwebtoken::DecodingKey::from_ed_components(&jwk.x).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_audience(&[app.config.audience.as_str()]);
    validation.set_issuer(&[app.config.issuer.as_str()]);
    let data = jsonwebtoken::decode::<serde_json::Value>(&pair.access_token, &key, &validation).unwrap();
    assert_eq!(data.claims["sub"], pair.user_id.as_str());
    assert_eq!(data.claims["sid"], pair.session_id.as_str());
    for claim in ["jti", "iat", "exp", "iss", "aud"] {
        assert!(data.claims.get(claim).is_some(), "missing {claim}");
    }
}

/// The session keeps where the login came from (the TCP peer and the
/// client's user agent), for the user's session list and the audit trail.
async fn login_records_the_client_user_agent_and_address(mode: Mode) {
    use sea_orm::ConnectionTrait;

    let app = TestApp::spawn(mode).await;
    app.verified_user("ua@example.com").await;
    let mut req = tonic::Request::new(gatehouse_grpc::pb::LoginRequest {
        email: "ua@example.com".into(),
        password: "correct horse battery".into(),
        ..Default::default()
    });
    req.metadata_mut().insert("user-agent", "ExampleBrowser/7.1".parse().unwrap());
    let res = app.auth.clone().login(req).await.unwrap().into_inner();
    let Some(gatehouse_grpc::pb::login_response::Result::Tokens(pair)) = res.result else { panic!("no tokens") };
    let db = sea_orm::Database::connect(app.config.effective_database_url()).await.unwrap();
    let row = db
        .query_one(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT id, user_agent, client_ip FROM sessions ORDER BY created_at DESC",
        ))
        .await
        .unwrap()
        .unwrap();
    let id: uuid::Uuid = row.try_get("", "id").unwrap();
    let agent: String = row.try_get("", "user_agent").unwrap();
    let ip: String = row.try_get("", "client_ip").unwrap();
    assert_eq!(id.to_string(), pair.session_id);
    assert!(agent.starts_with("ExampleBrowser/7.1"), "{agent}");
    assert_eq!(ip, "127.0.0.1");
}

/// `make run` has no key configured: the first start generates one, owner-only,
/// and tokens it signs validate.
async fn first_start_generates_a_private_signing_key(mode: Mode) {
    use std::os::unix::fs::PermissionsExt as _;

    if mode == Mode::Production {
        // Replicas must share a configured key: generating one is refused.
        let app = TestApp::spawn(mode).await;
        let mut config = app.config.clone();
        config.signing_key_file = None;
        let err = gatehouse::wiring::build(&config).await.unwrap_err().to_string();
        assert!(err.contains("GATEHOUSE_SIGNING_KEY_FILE"), "{err}");
        return;
    }
    let app = TestApp::spawn_with(mode, |c| {
        c.signing_key_file = None;
        c.data_dir = c.data_dir.join("fresh"); // the server creates it
    })
    .await;
    let key = app.config.data_dir.join("signing-key.pem");
    let mode_bits = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode_bits, 0o600, "the key file must be private");
    let dir_bits = std::fs::metadata(&app.config.data_dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(dir_bits & 0o077, 0, "the data directory must not be open to others: {dir_bits:o}");
    let pair = app.user_session("keyless@example.com").await;
    app.validate(&pair.access_token).await.unwrap();
}
