//! A stolen access token must not take over the account (OWASP ASVS 5.0
//! V7.5.1: re-authentication before changing what authentication and
//! recovery rely on). With the token alone, the chain AddLoginEmail →
//! VerifyEmail → SetPrimaryEmail → RemoveLoginEmail (then a password reset
//! to the new address) and enrolling a factor the thief controls are refused
//! at their first step; with a fresh proof they work, and wrong proofs count
//! toward the account's limit.

use gatehouse_grpc::pb;
use tonic::Code;
use tonic_types::StatusExt;

use crate::harness::{Mode, PASSWORD, TestApp, assert_error, authed, violated_fields};
use crate::mfa::authenticator;
use crate::password_proof;

crate::in_both_modes!(
    the_email_takeover_chain_needs_a_fresh_proof_at_its_first_step,
    enrolling_a_factor_needs_a_fresh_proof,
    wrong_proofs_count_toward_the_account_limit,
    pending_enrolments_are_bounded,
    an_address_added_but_never_verified_does_not_block_its_owner,
);

const THIEF: &str = "thief@evil.example";

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The addresses of the caller's account, in the order listed.
async fn login_emails(app: &TestApp, token: &str) -> Vec<(String, bool, bool)> {
    let req = authed(pb::ListLoginEmailsRequest {}, token);
    let emails = app.user.clone().list_login_emails(req).await.unwrap().into_inner().emails;
    emails.into_iter().map(|e| (e.email, e.primary, e.verified)).collect()
}

/// Whether anything was ever committed to be sent to `recipient`.
async fn anything_sent_to(app: &TestApp, recipient: &str) -> bool {
    app.outbox().await.iter().any(|r| r.event.email == recipient)
}

/// OWASP ASVS 5.0 V7.5.1.
async fn the_email_takeover_chain_needs_a_fresh_proof_at_its_first_step(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    let pair = app.user_session("vic@example.com").await;
    let token = pair.access_token.as_str();
    let mut user = app.user.clone();

    // The token alone: refused at the first step, naming the missing proof.
    let add = pb::AddLoginEmailRequest { email: THIEF.into(), proof: None };
    let status =
        assert_error(user.add_login_email(authed(add, token)).await, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert_eq!(violated_fields(&status), ["proof"]);
    // A guessed password is the existing wrong-password answer.
    let add = pb::AddLoginEmailRequest {
        email: THIEF.into(),
        proof: password_proof!(add_login_email_request, "guessed password"),
    };
    let status =
        assert_error(user.add_login_email(authed(add, token)).await, Code::InvalidArgument, "INVALID_CREDENTIALS");
    assert_eq!(violated_fields(&status), ["password"]);
    // A guessed authenticator code, for a factor the account does not have.
    let add = pb::AddLoginEmailRequest {
        email: THIEF.into(),
        proof: Some(pb::add_login_email_request::Proof::TotpCode(pb::ProofCode {
            factor_id: uuid::Uuid::now_v7().to_string(),
            code: "123456".into(),
        })),
    };
    let status =
        assert_error(user.add_login_email(authed(add, token)).await, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert_eq!(violated_fields(&status), ["totp_code.factor_id"]);
    // The later steps are refused the same way, each naming the proof.
    let set = pb::SetPrimaryEmailRequest { email: "vic@example.com".into(), proof: None };
    let status =
        assert_error(user.set_primary_email(authed(set, token)).await, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert_eq!(violated_fields(&status), ["proof"]);
    let remove = pb::RemoveLoginEmailRequest { email: "vic@example.com".into(), proof: None };
    let status =
        assert_error(user.remove_login_email(authed(remove, token)).await, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert_eq!(violated_fields(&status), ["proof"]);
    // Nothing changed: no new address, and nothing went to the thief.
    assert_eq!(login_emails(&app, token).await, [("vic@example.com".to_owned(), true, true)]);
    assert!(!anything_sent_to(&app, THIEF).await, "no verification went to the thief's address");

    // With a fresh proof, the owner can do each step of the same chain.
    let add =
        pb::AddLoginEmailRequest { email: "vic@new.example".into(), proof: password_proof!(add_login_email_request) };
    user.add_login_email(authed(add, token)).await.unwrap();
    let mail = app.last_event("email.verification_requested", "vic@new.example").await;
    app.verify_token(&mail.token).await.unwrap();
    let set = pb::SetPrimaryEmailRequest {
        email: "vic@new.example".into(),
        proof: password_proof!(set_primary_email_request),
    };
    user.set_primary_email(authed(set, token)).await.unwrap();
    assert_eq!(app.last_event("email.changed", "vic@example.com").await.new_email, "vic@new.example");
    let remove = pb::RemoveLoginEmailRequest {
        email: "vic@example.com".into(),
        proof: password_proof!(remove_login_email_request),
    };
    user.remove_login_email(authed(remove, token)).await.unwrap();
    assert_eq!(login_emails(&app, token).await, [("vic@new.example".to_owned(), true, true)]);
    app.login("vic@new.example", PASSWORD).await.unwrap();
}

/// OWASP ASVS 5.0 V7.5.1 and NIST SP 800-63B-4 §4.1.2 (binding another
/// authenticator needs the subscriber authenticated, not just a session).
async fn enrolling_a_factor_needs_a_fresh_proof(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    let pair = app.user_session("fay@example.com").await;
    let token = pair.access_token.as_str();
    let mut mfa = app.mfa.clone();

    // The token alone cannot enrol any kind of factor.
    let totp = pb::EnrollTotpRequest { proof: None };
    let status = assert_error(mfa.enroll_totp(authed(totp, token)).await, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert_eq!(violated_fields(&status), ["proof"]);
    let email = pb::EnrollEmailFactorRequest { email: "fay@example.com".into(), proof: None };
    let status =
        assert_error(mfa.enroll_email_factor(authed(email, token)).await, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert_eq!(violated_fields(&status), ["proof"]);
    let phone = pb::EnrollPhoneFactorRequest { phone_number: "+447700900666".into(), proof: None };
    let status =
        assert_error(mfa.enroll_phone_factor(authed(phone, token)).await, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert_eq!(violated_fields(&status), ["proof"]);
    let phone = pb::EnrollPhoneFactorRequest {
        phone_number: "+447700900666".into(),
        proof: password_proof!(enroll_phone_factor_request, "guessed password"),
    };
    let status =
        assert_error(mfa.enroll_phone_factor(authed(phone, token)).await, Code::InvalidArgument, "INVALID_CREDENTIALS");
    assert_eq!(violated_fields(&status), ["password"]);
    // Both bad parts of a request are named at once.
    let phone = pb::EnrollPhoneFactorRequest { phone_number: "07700".into(), proof: None };
    let status =
        assert_error(mfa.enroll_phone_factor(authed(phone, token)).await, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert_eq!(violated_fields(&status), ["phone_number", "proof"]);
    assert!(!anything_sent_to(&app, "+447700900666").await, "no code went to the thief's phone");
    let list = pb::ListFactorsRequest { proof: password_proof!(list_factors_request) };
    assert!(mfa.list_factors(authed(list, token)).await.unwrap().into_inner().factors.is_empty());

    // With the password, the owner enrols an authenticator app.
    let totp = pb::EnrollTotpRequest { proof: password_proof!(enroll_totp_request) };
    let enrolment = mfa.enroll_totp(authed(totp, token)).await.unwrap().into_inner();
    let confirm = pb::ConfirmFactorRequest {
        factor_id: enrolment.factor_id.clone(),
        code: authenticator(&enrolment.secret, now()),
    };
    mfa.confirm_factor(authed(confirm, token)).await.unwrap();
    // Now a current authenticator code is a proof too; a wrong one is
    // answered against the field it came in.
    let next = authenticator(&enrolment.secret, now() + 30);
    let code_proof = |code: &str| {
        Some(pb::enroll_phone_factor_request::Proof::TotpCode(pb::ProofCode {
            factor_id: enrolment.factor_id.clone(),
            code: code.into(),
        }))
    };
    let wrong = format!("{:06}", (next.parse::<u32>().unwrap() + 1) % 1_000_000);
    let phone = pb::EnrollPhoneFactorRequest { phone_number: "+447700900123".into(), proof: code_proof(&wrong) };
    let status =
        assert_error(mfa.enroll_phone_factor(authed(phone, token)).await, Code::InvalidArgument, "CODE_INVALID");
    assert_eq!(violated_fields(&status), ["totp_code.code"]);
    let phone = pb::EnrollPhoneFactorRequest { phone_number: "+447700900123".into(), proof: code_proof(&next) };
    let sms = mfa.enroll_phone_factor(authed(phone, token)).await.unwrap().into_inner().factor_id;
    let sent = app.last_event("sms.mfa_code", "+447700900123").await;
    mfa.confirm_factor(authed(pb::ConfirmFactorRequest { factor_id: sms, code: sent.code }, token)).await.unwrap();
    let email = pb::EnrollEmailFactorRequest {
        email: "fay@example.com".into(),
        proof: password_proof!(enroll_email_factor_request),
    };
    mfa.enroll_email_factor(authed(email, token)).await.unwrap();
    app.last_event("email.mfa_code", "fay@example.com").await;

    let list = pb::ListFactorsRequest { proof: password_proof!(list_factors_request) };
    let factors = mfa.list_factors(authed(list, token)).await.unwrap().into_inner().factors;
    let listed: Vec<_> = factors.iter().map(|f| (f.r#type(), f.active)).collect();
    assert_eq!(
        listed,
        [(pb::MfaFactorType::Totp, true), (pb::MfaFactorType::Sms, true), (pb::MfaFactorType::Email, false)]
    );
}

/// OWASP ASVS 5.0 V6.3.1 and NIST SP 800-63B-4 §3.2.2 (rate limiting): a
/// stolen token cannot guess the password or an authenticator code through
/// the fresh proof; wrong proofs on any RPC share the account's limit, and
/// past it even the right proof waits.
async fn wrong_proofs_count_toward_the_account_limit(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    let pair = app.user_session("gus@example.com").await;
    let token = pair.access_token.as_str();
    let (mut user, mut mfa) = (app.user.clone(), app.mfa.clone());
    for i in 0..10 {
        let guess = format!("guess number {i}");
        let status = if i % 2 == 0 {
            let add = pb::AddLoginEmailRequest {
                email: THIEF.into(),
                proof: password_proof!(add_login_email_request, &guess),
            };
            user.add_login_email(authed(add, token)).await.map(|_| ())
        } else {
            let totp = pb::EnrollTotpRequest { proof: password_proof!(enroll_totp_request, &guess) };
            mfa.enroll_totp(authed(totp, token)).await.map(|_| ())
        };
        assert_error(status, Code::InvalidArgument, "INVALID_CREDENTIALS");
    }
    let add =
        pb::AddLoginEmailRequest { email: "gus@new.example".into(), proof: password_proof!(add_login_email_request) };
    let status = assert_error(user.add_login_email(authed(add, token)).await, Code::ResourceExhausted, "RATE_LIMITED");
    let retry = status.get_error_details().retry_info().and_then(|r| r.retry_delay);
    assert!(retry.is_some_and(|d| d.as_secs() > 0), "{status:?}");
    assert_eq!(login_emails(&app, token).await, [("gus@example.com".to_owned(), true, true)], "nothing changed");
    assert!(!anything_sent_to(&app, "gus@new.example").await);
}

/// OWASP ASVS 5.0 V6.4.1: however often a token holder with the proof
/// enrols, one pending factor per kind is kept (the newest), and only the
/// newest secret confirms.
async fn pending_enrolments_are_bounded(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    let pair = app.user_session("hal@example.com").await;
    let token = pair.access_token.as_str();
    let mut mfa = app.mfa.clone();
    let mut enrolments = Vec::new();
    for _ in 0..6 {
        let totp = pb::EnrollTotpRequest { proof: password_proof!(enroll_totp_request) };
        enrolments.push(mfa.enroll_totp(authed(totp, token)).await.unwrap().into_inner());
    }
    let list = pb::ListFactorsRequest { proof: password_proof!(list_factors_request) };
    let factors = mfa.list_factors(authed(list, token)).await.unwrap().into_inner().factors;
    let newest = enrolments.last().unwrap();
    let listed: Vec<_> = factors.iter().map(|f| (f.factor_id.as_str(), f.active)).collect();
    assert_eq!(listed, [(newest.factor_id.as_str(), false)]);

    let first = &enrolments[0];
    let confirm =
        pb::ConfirmFactorRequest { factor_id: first.factor_id.clone(), code: authenticator(&first.secret, now()) };
    let status =
        assert_error(mfa.confirm_factor(authed(confirm, token)).await, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert_eq!(violated_fields(&status), ["factor_id"], "a replaced enrolment is gone");
    let confirm =
        pb::ConfirmFactorRequest { factor_id: newest.factor_id.clone(), code: authenticator(&newest.secret, now()) };
    mfa.confirm_factor(authed(confirm, token)).await.unwrap();
}

/// An account that adds someone else's address, and never verifies it,
/// must not keep the address's owner from signing up (squatting): the
/// unverified claim gives way, and the owner signs up, verifies and logs in.
async fn an_address_added_but_never_verified_does_not_block_its_owner(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    let squatter = app.user_session("squatter@evil.example").await;
    let add =
        pb::AddLoginEmailRequest { email: "owner@example.com".into(), proof: password_proof!(add_login_email_request) };
    app.user.clone().add_login_email(authed(add, &squatter.access_token)).await.unwrap();

    let owner = app.verified_user("owner@example.com").await;
    app.login("owner@example.com", PASSWORD).await.unwrap();
    let me = app.user.clone().get_me(authed(pb::GetMeRequest {}, &squatter.access_token)).await.unwrap();
    let emails: Vec<String> = me.into_inner().user.unwrap().emails.into_iter().map(|e| e.email).collect();
    assert_eq!(emails, ["squatter@evil.example"], "the unverified claim was dropped");
    assert_ne!(owner, squatter.user_id);
}
