//! Second factors end to end: TOTP (the test is the authenticator app),
//! email and SMS codes through their events, backup codes, the challenge's
//! expiry and attempt limit, replay and races.
//! OWASP ASVS 5.0 V6.5.1 (single use), V6.5.5 (code lifetimes), V6.3.1 (limits).

use std::time::Duration;

use gatehouse_grpc::pb;
use gatehouse_grpc::pb::login_response::Result as LoginResult;
use tonic::Code;

use crate::harness::{Mode, TestApp, assert_error, authed, code_and_reason, sleep_past, violated_fields};

crate::in_both_modes!(
    totp_enrol_confirm_and_log_in_with_a_challenge,
    email_factor_codes_travel_in_events,
    sms_factor_codes_travel_in_events,
    a_backup_code_works_once,
    an_expired_challenge_is_refused,
    the_sixth_wrong_code_kills_the_challenge,
    removing_a_factor_needs_a_fresh_proof,
    a_wrong_authenticator_code_names_the_field_it_came_in,
    parallel_verifications_with_one_code_succeed_once,
    parallel_wrong_codes_across_challenges_stay_within_the_account_limit,
    a_password_reset_does_not_skip_the_second_factor,
    bad_mfa_input_names_the_field,
    a_second_factor_login_into_an_organization_is_scoped_to_it,
);

const PASSWORD: &str = "correct horse battery";

fn base32_decode(text: &str) -> Vec<u8> {
    let (mut out, mut buffer, mut bits) = (Vec::new(), 0_u32, 0_u32);
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => continue,
        };
        buffer = (buffer << 5) | u32::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(((buffer >> bits) & 0xff) as u8);
        }
    }
    out
}

/// What an authenticator app shows for `secret` (base32) at unix time `at`.
pub fn authenticator(secret: &str, at: i64) -> String {
    totp_rs::Builder::new()
        .with_algorithm(totp_rs::Algorithm::SHA1)
        .with_digits(6)
        .with_step_duration(30)
        .with_secret(base32_decode(secret))
        .build_noncompliant()
        .generate(u64::try_from(at).unwrap())
        .to_string()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn wrong(code: &str) -> String {
    format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000)
}

/// A verified user with an active TOTP factor: (access token, factor id, secret, backup codes).
async fn user_with_totp(app: &TestApp, email: &str) -> (String, String, String, Vec<String>) {
    let pair = app.user_session(email).await;
    let mut mfa = app.mfa.clone();
    let enrolment = mfa
        .enroll_totp(authed(
            pb::EnrollTotpRequest { proof: crate::password_proof!(enroll_totp_request) },
            &pair.access_token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(enrolment.otpauth_uri.starts_with("otpauth://totp/"), "{}", enrolment.otpauth_uri);
    assert!(enrolment.otpauth_uri.contains(&enrolment.secret));
    assert!(enrolment.qr_code_png.starts_with(b"\x89PNG"));
    let confirm = pb::ConfirmFactorRequest {
        factor_id: enrolment.factor_id.clone(),
        code: authenticator(&enrolment.secret, now()),
    };
    let codes = mfa.confirm_factor(authed(confirm, &pair.access_token)).await.unwrap().into_inner().backup_codes;
    assert_eq!(codes.len(), 10);
    (pair.access_token, enrolment.factor_id, enrolment.secret, codes)
}

async fn challenge(app: &TestApp, email: &str) -> pb::MfaChallenge {
    match app.login_outcome(email, PASSWORD).await.unwrap() {
        LoginResult::MfaRequired(c) => c,
        LoginResult::Tokens(_) => panic!("a user with a factor must get a challenge"),
    }
}

async fn verify(
    app: &TestApp,
    challenge: &str,
    factor: &str,
    code: &str,
) -> Result<pb::VerifyMfaResponse, tonic::Status> {
    let req = pb::VerifyMfaRequest {
        challenge_id: challenge.into(),
        factor_id: factor.into(),
        code: code.into(),
        ..Default::default()
    };
    app.auth.clone().verify_mfa(req).await.map(tonic::Response::into_inner)
}

async fn totp_enrol_confirm_and_log_in_with_a_challenge(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    let (access, factor, secret, _) = user_with_totp(&app, "ann@example.com").await;
    app.logout_bearer(&access).await.unwrap();

    let c = challenge(&app, "ann@example.com").await;
    assert_eq!(c.factors.len(), 1);
    assert_eq!(c.factors[0].factor_id, factor);
    assert_eq!(c.factors[0].r#type, pb::MfaFactorType::Totp as i32);
    assert!(c.expires_at.is_some());
    // The confirming code (this step's) is spent. An authenticator whose clock
    // runs a little ahead shows the next step's code, which the one-step
    // window accepts.
    let next = authenticator(&secret, now() + 30);
    assert_error(verify(&app, &c.challenge_id, &factor, &wrong(&next)).await, Code::InvalidArgument, "CODE_INVALID");
    let tokens = verify(&app, &c.challenge_id, &factor, &next).await.unwrap().tokens.unwrap();
    app.validate(&tokens.access_token).await.unwrap();
    // The same code is never accepted twice, nor an older one.
    let again = challenge(&app, "ann@example.com").await;
    assert_error(verify(&app, &again.challenge_id, &factor, &next).await, Code::InvalidArgument, "CODE_INVALID");
    let older = authenticator(&secret, now());
    assert_error(verify(&app, &again.challenge_id, &factor, &older).await, Code::InvalidArgument, "CODE_INVALID");
}

async fn code_factor(
    app: &TestApp,
    email: &str,
    event_type: &str,
    enrol: pb::mfa_service_client::MfaServiceClient<tonic::transport::Channel>,
    sms: bool,
) -> (String, String) {
    let pair = app.user_session(email).await;
    let mut mfa = enrol;
    let (factor, recipient) = if sms {
        let req = pb::EnrollPhoneFactorRequest {
            phone_number: "+44 7700 900112".into(),
            proof: crate::password_proof!(enroll_phone_factor_request),
        };
        (
            mfa.enroll_phone_factor(authed(req, &pair.access_token)).await.unwrap().into_inner().factor_id,
            "+447700900112".to_owned(),
        )
    } else {
        let req = pb::EnrollEmailFactorRequest {
            email: email.into(),
            proof: crate::password_proof!(enroll_email_factor_request),
        };
        (
            mfa.enroll_email_factor(authed(req, &pair.access_token)).await.unwrap().into_inner().factor_id,
            email.to_owned(),
        )
    };
    let sent = app.last_event(event_type, &recipient).await;
    let confirm = pb::ConfirmFactorRequest { factor_id: factor.clone(), code: sent.code };
    mfa.confirm_factor(authed(confirm, &pair.access_token)).await.unwrap();
    (factor, recipient)
}

async fn email_factor_codes_travel_in_events(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    let (factor, recipient) = code_factor(&app, "bo@example.com", "email.mfa_code", app.mfa.clone(), false).await;
    let c = challenge(&app, "bo@example.com").await;
    assert_eq!(c.factors[0].hint, "b***@example.com");
    app.auth
        .clone()
        .send_mfa_code(pb::SendMfaCodeRequest { challenge_id: c.challenge_id.clone(), factor_id: factor.clone() })
        .await
        .unwrap();
    let sent = app.last_event("email.mfa_code", &recipient).await;
    let tokens = verify(&app, &c.challenge_id, &factor, &sent.code).await.unwrap().tokens.unwrap();
    app.validate(&tokens.access_token).await.unwrap();
}

async fn sms_factor_codes_travel_in_events(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    let (factor, recipient) = code_factor(&app, "cy@example.com", "sms.mfa_code", app.mfa.clone(), true).await;
    let c = challenge(&app, "cy@example.com").await;
    assert_eq!(c.factors[0].hint, "+44 **** **12");
    app.auth
        .clone()
        .send_mfa_code(pb::SendMfaCodeRequest { challenge_id: c.challenge_id.clone(), factor_id: factor.clone() })
        .await
        .unwrap();
    let sent = app.last_event("sms.mfa_code", &recipient).await;
    verify(&app, &c.challenge_id, &factor, &sent.code).await.unwrap();
}

async fn a_backup_code_works_once(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    let (_, _, _, codes) = user_with_totp(&app, "di@example.com").await;
    let c = challenge(&app, "di@example.com").await;
    let passed = verify(&app, &c.challenge_id, "", &codes[0]).await.unwrap();
    assert_eq!(passed.backup_codes_remaining, Some(9));
    assert!(passed.tokens.is_some());
    let again = challenge(&app, "di@example.com").await;
    assert_error(verify(&app, &again.challenge_id, "", &codes[0]).await, Code::InvalidArgument, "CODE_INVALID");
    let notice = app.last_event("audit.backup_code_used", "di@example.com").await;
    assert_eq!(notice.code, "9", "the notice tells how many remain");
}

async fn an_expired_challenge_is_refused(mode: Mode) {
    let app = TestApp::spawn_with(mode, |c| c.mfa_challenge_ttl = Duration::from_secs(1)).await;
    let (_, factor, secret, _) = user_with_totp(&app, "ed@example.com").await;
    let c = challenge(&app, "ed@example.com").await;
    sleep_past(c.expires_at.as_ref()).await;
    let r = verify(&app, &c.challenge_id, &factor, &authenticator(&secret, now())).await;
    assert_error(r, Code::FailedPrecondition, "CHALLENGE_EXPIRED");
}

async fn the_sixth_wrong_code_kills_the_challenge(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    let (_, factor, secret, codes) = user_with_totp(&app, "fi@example.com").await;
    let c = challenge(&app, "fi@example.com").await;
    let bad = wrong(&authenticator(&secret, now()));
    let bad = if bad == authenticator(&secret, now() - 30) || bad == authenticator(&secret, now() + 30) {
        wrong(&bad)
    } else {
        bad
    };
    for _ in 0..5 {
        assert_error(verify(&app, &c.challenge_id, &factor, &bad).await, Code::InvalidArgument, "CODE_INVALID");
    }
    assert_error(verify(&app, &c.challenge_id, &factor, &bad).await, Code::ResourceExhausted, "ATTEMPTS_EXHAUSTED");
    assert_error(verify(&app, &c.challenge_id, "", &codes[0]).await, Code::ResourceExhausted, "ATTEMPTS_EXHAUSTED");
}

async fn removing_a_factor_needs_a_fresh_proof(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    let (access, factor, _, _) = user_with_totp(&app, "gu@example.com").await;
    let mut mfa = app.mfa.clone();
    let without = pb::RemoveFactorRequest { factor_id: factor.clone(), proof: None };
    let status =
        assert_error(mfa.remove_factor(authed(without, &access)).await, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert_eq!(violated_fields(&status), ["proof"]);
    let wrong_password = pb::RemoveFactorRequest {
        factor_id: factor.clone(),
        proof: Some(pb::remove_factor_request::Proof::Password("not my password".into())),
    };
    assert_error(
        mfa.remove_factor(authed(wrong_password, &access)).await,
        Code::InvalidArgument,
        "INVALID_CREDENTIALS",
    );
    let status = assert_error(
        mfa.list_factors(authed(pb::ListFactorsRequest { proof: None }, &access)).await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    assert_eq!(violated_fields(&status), ["proof"], "listing needs a fresh proof too");
    let with_password =
        pb::ListFactorsRequest { proof: Some(pb::list_factors_request::Proof::Password(PASSWORD.into())) };
    let listed = mfa.list_factors(authed(with_password, &access)).await.unwrap().into_inner().factors;
    assert_eq!(listed.len(), 1);
    assert!(listed[0].active);
    let right = pb::RemoveFactorRequest {
        factor_id: factor,
        proof: Some(pb::remove_factor_request::Proof::Password(PASSWORD.into())),
    };
    mfa.remove_factor(authed(right, &access)).await.unwrap();
    // Without factors the login gives tokens directly.
    assert!(matches!(app.login_outcome("gu@example.com", PASSWORD).await.unwrap(), LoginResult::Tokens(_)));
}

/// A wrong code in a fresh proof is reported against the field the request
/// carried it in (`totp_code.code`), for every RPC that takes the proof:
/// ListFactors used to name `email_code.code`, a field it does not have.
async fn a_wrong_authenticator_code_names_the_field_it_came_in(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    let (access, factor, secret, _) = user_with_totp(&app, "hu@example.com").await;
    let mut mfa = app.mfa.clone();
    let proof = || pb::ProofCode { factor_id: factor.clone(), code: wrong(&authenticator(&secret, now())) };
    let list = pb::ListFactorsRequest { proof: Some(pb::list_factors_request::Proof::TotpCode(proof())) };
    let status = assert_error(mfa.list_factors(authed(list, &access)).await, Code::InvalidArgument, "CODE_INVALID");
    assert_eq!(violated_fields(&status), ["totp_code.code"]);
    let remove = pb::RemoveFactorRequest {
        factor_id: factor.clone(),
        proof: Some(pb::remove_factor_request::Proof::TotpCode(proof())),
    };
    let status = assert_error(mfa.remove_factor(authed(remove, &access)).await, Code::InvalidArgument, "CODE_INVALID");
    assert_eq!(violated_fields(&status), ["totp_code.code"]);
}

async fn parallel_verifications_with_one_code_succeed_once(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    let (_, factor, secret, _) = user_with_totp(&app, "hu@example.com").await;
    let c = challenge(&app, "hu@example.com").await;
    let code = authenticator(&secret, now() + 30);
    let attempts: Vec<_> = (0..20)
        .map(|_| {
            let mut client = app.auth.clone();
            let req = pb::VerifyMfaRequest {
                challenge_id: c.challenge_id.clone(),
                factor_id: factor.clone(),
                code: code.clone(),
                ..Default::default()
            };
            tokio::spawn(async move { client.verify_mfa(req).await })
        })
        .collect();
    let mut passed = 0;
    for a in attempts {
        match a.await.unwrap() {
            Ok(_) => passed += 1,
            // A loser finds the challenge answered or the code's time step
            // used (a wrong guess, which counts, so the later ones find the
            // guesses spent); any other refusal would be a bug.
            Err(status) => assert!(
                [
                    (Code::FailedPrecondition, "CHALLENGE_USED".to_owned()),
                    (Code::InvalidArgument, "CODE_INVALID".to_owned()),
                    (Code::ResourceExhausted, "ATTEMPTS_EXHAUSTED".to_owned()),
                ]
                .contains(&code_and_reason(&status)),
                "{status:?}"
            ),
        }
    }
    assert_eq!(passed, 1, "one code, one challenge: exactly one session");
    // And the code cannot pass another challenge either.
    let again = challenge(&app, "hu@example.com").await;
    assert_error(verify(&app, &again.challenge_id, &factor, &code).await, Code::InvalidArgument, "CODE_INVALID");
}

/// OWASP ASVS 5.0 V6.3.1, NIST SP 800-63B-4 §3.2.2 (rate limiting): 100
/// wrong codes sent at once over 20 challenges of one account are checked
/// no more often than the account's limit (10 per window) allows; the rest
/// are refused without a check, and exactly the checked ones are recorded.
async fn parallel_wrong_codes_across_challenges_stay_within_the_account_limit(mode: Mode) {
    use sea_orm::ConnectionTrait as _;

    let app = TestApp::spawn(mode).await;
    let (_, factor, secret, _) = user_with_totp(&app, "race@example.com").await;
    let mut challenges = Vec::new();
    for _ in 0..20 {
        challenges.push(challenge(&app, "race@example.com").await.challenge_id);
    }
    // A code no step within the skew accepts, however the clock turns meanwhile.
    let t = now();
    let near: Vec<String> = (-2..=3).map(|k| authenticator(&secret, t + 30 * k)).collect();
    let mut bad = wrong(&near[2]);
    while near.contains(&bad) {
        bad = wrong(&bad);
    }
    let guesses: Vec<_> = (0..100)
        .map(|n| {
            let mut client = app.auth.clone();
            let req = pb::VerifyMfaRequest {
                challenge_id: challenges[n % 20].clone(),
                factor_id: factor.clone(),
                code: bad.clone(),
                ..Default::default()
            };
            tokio::spawn(async move { client.verify_mfa(req).await })
        })
        .collect();
    let (mut checked, mut limited, mut exhausted) = (0, 0, 0);
    for guess in guesses {
        let status = guess.await.unwrap().expect_err("a wrong code never passes");
        match code_and_reason(&status) {
            (Code::InvalidArgument, reason) if reason == "CODE_INVALID" => checked += 1,
            (Code::ResourceExhausted, reason) if reason == "RATE_LIMITED" => limited += 1,
            (Code::ResourceExhausted, reason) if reason == "ATTEMPTS_EXHAUSTED" => exhausted += 1,
            other => panic!("unexpected answer {other:?}: {status:?}"),
        }
    }
    assert_eq!(checked, 10, "checked {checked}, rate limited {limited}, challenge exhausted {exhausted}");
    assert_eq!(limited + exhausted, 90);
    let db = sea_orm::Database::connect(app.config.effective_database_url()).await.unwrap();
    let row = db
        .query_one(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT CAST(COALESCE(SUM(attempts), 0) AS INTEGER) AS failures FROM mfa_challenges",
        ))
        .await
        .unwrap()
        .unwrap();
    let failures: i32 = row.try_get("", "failures").unwrap();
    assert_eq!(failures, 10, "the failures recorded are the codes checked");
    let _ = db.close().await;
}

async fn a_password_reset_does_not_skip_the_second_factor(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    user_with_totp(&app, "ivy@example.com").await;
    app.auth
        .clone()
        .request_password_reset(pb::RequestPasswordResetRequest { email: "ivy@example.com".into() })
        .await
        .unwrap();
    let mail = app.last_event("email.password_reset_requested", "ivy@example.com").await;
    let req = pb::ResetPasswordRequest {
        proof: Some(pb::reset_password_request::Proof::Token(mail.token)),
        new_password: "a brand new password".into(),
    };
    let response = app.auth.clone().reset_password(req).await.unwrap().into_inner();
    assert_eq!(response, pb::ResetPasswordResponse {}, "a reset returns no tokens");
    let outcome = app.login_outcome("ivy@example.com", "a brand new password").await.unwrap();
    assert!(matches!(outcome, LoginResult::MfaRequired(_)), "the second factor is still required");
}

async fn bad_mfa_input_names_the_field(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    let pair = app.user_session("jo@example.com").await;
    let mut mfa = app.mfa.clone();
    for phone in ["07700 900112", "+0 12", "+44 77OO 900112"] {
        let req = pb::EnrollPhoneFactorRequest {
            phone_number: phone.into(),
            proof: crate::password_proof!(enroll_phone_factor_request),
        };
        let status = assert_error(
            mfa.enroll_phone_factor(authed(req, &pair.access_token)).await,
            Code::InvalidArgument,
            "INVALID_ARGUMENT",
        );
        assert_eq!(violated_fields(&status), ["phone_number"], "{phone}");
    }
    let unknown = pb::ConfirmFactorRequest { factor_id: uuid::Uuid::now_v7().to_string(), code: "123456".into() };
    let status = assert_error(
        mfa.confirm_factor(authed(unknown, &pair.access_token)).await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    assert_eq!(violated_fields(&status), ["factor_id"]);
    let (_, factor, _, _) = user_with_totp(&app, "kim@example.com").await;
    let c = challenge(&app, "kim@example.com").await;
    for code in ["12345", "1234567", "12a456"] {
        let status =
            assert_error(verify(&app, &c.challenge_id, &factor, code).await, Code::InvalidArgument, "INVALID_ARGUMENT");
        assert_eq!(violated_fields(&status), ["code"], "{code}");
    }
    let status = assert_error(
        verify(&app, &c.challenge_id, &uuid::Uuid::now_v7().to_string(), "123456").await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    assert_eq!(violated_fields(&status), ["factor_id"]);
    let status =
        assert_error(verify(&app, "not-a-uuid", &factor, "123456").await, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert_eq!(violated_fields(&status), ["challenge_id"]);
}

/// A login into an organization passes the second factor like any other,
/// and the tokens carry the organization and the member's role; a
/// non-member is refused before the code is spent.
async fn a_second_factor_login_into_an_organization_is_scoped_to_it(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    let (access, _, _, codes) = user_with_totp(&app, "oz@example.com").await;
    let create = pb::CreateOrganizationRequest { name: "Oz".into(), slug: String::new() };
    let mut orgs = gatehouse_grpc::pb::organization_service_client::OrganizationServiceClient::new(app.channel.clone());
    let org = orgs.create_organization(authed(create, &access)).await.unwrap().into_inner().organization.unwrap().id;
    let scoped = |challenge: &str, organization: &str| pb::VerifyMfaRequest {
        challenge_id: challenge.into(),
        factor_id: String::new(),
        code: codes[0].clone(),
        organization_id: organization.into(),
    };
    let c = challenge(&app, "oz@example.com").await;
    let elsewhere = scoped(&c.challenge_id, "01930000-0000-7000-8000-000000000001");
    assert_error(app.auth.clone().verify_mfa(elsewhere).await, Code::NotFound, "NOT_FOUND");
    let passed = app.auth.clone().verify_mfa(scoped(&c.challenge_id, &org)).await.unwrap().into_inner();
    assert_eq!(passed.backup_codes_remaining, Some(9), "the refused attempt spent nothing");
    let claims = app.validate(&passed.tokens.unwrap().access_token).await.unwrap();
    assert_eq!((claims.organization_id.as_str(), claims.role.as_str()), (org.as_str(), "owner"));
}
