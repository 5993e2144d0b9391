//! One-time tokens and codes: expiry, single use, attempt limits, the right
//! kind, and all of it holding under parallel requests.
//! OWASP ASVS 5.0 V6.5.1 (usable once), V6.3.1 / V6.6.3 (brute force limits).

use std::time::Duration;

use gatehouse_grpc::pb;
use sea_orm::ConnectionTrait;
use tonic::Code;

use crate::harness::{Mode, TestApp, assert_error, code_and_reason, sleep_past};

crate::in_both_modes!(
    expired_verification_is_refused,
    used_token_is_refused,
    sixth_wrong_code_is_refused_and_kills_the_code,
    code_for_another_email_is_refused,
    token_of_the_other_kind_is_refused,
    parallel_redemptions_of_one_token_succeed_once,
    twenty_parallel_wrong_codes_stop_at_the_limit,
    a_real_and_an_unknown_address_answer_every_wrong_reset_code_alike,
);

const PASSWORD: &str = "correct horse battery";

fn wrong(code: &str) -> String {
    let n: u32 = code.parse().unwrap();
    format!("{:06}", (n + 1) % 1_000_000)
}

async fn expired_verification_is_refused(mode: Mode) {
    let app = TestApp::spawn_with(mode, |c| c.verify_email_ttl = Duration::from_secs(1)).await;
    app.sign_up("ann@example.com", PASSWORD).await.unwrap();
    let mail = app.last_event("email.verification_requested", "ann@example.com").await;
    sleep_past(mail.expires_at.as_ref()).await;
    assert_error(app.verify_token(&mail.token).await, Code::FailedPrecondition, "VERIFICATION_EXPIRED");
    // The email + code path answers an expired code like a wrong one: an
    // expired verification exists only for a real account (OWASP ASVS 5.0
    // V6.3.8).
    assert_error(app.verify_code("ann@example.com", &mail.code).await, Code::InvalidArgument, "CODE_INVALID");
}

async fn used_token_is_refused(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    app.sign_up("bo@example.com", PASSWORD).await.unwrap();
    let mail = app.last_event("email.verification_requested", "bo@example.com").await;
    app.verify_token(&mail.token).await.unwrap();
    assert_error(app.verify_token(&mail.token).await, Code::FailedPrecondition, "VERIFICATION_USED");
    let never = format!("ghv_{}", "Q".repeat(43));
    assert_error(app.verify_token(&never).await, Code::InvalidArgument, "VERIFICATION_INVALID");
}

async fn sixth_wrong_code_is_refused_and_kills_the_code(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    app.sign_up("cat@example.com", PASSWORD).await.unwrap();
    let mail = app.last_event("email.verification_requested", "cat@example.com").await;
    for _ in 0..5 {
        assert_error(
            app.verify_code("cat@example.com", &wrong(&mail.code)).await,
            Code::InvalidArgument,
            "CODE_INVALID",
        );
    }
    // The sixth answers like the others (an exhausted code exists only for a
    // real account), and even the right code, and the link, are dead now.
    assert_error(app.verify_code("cat@example.com", &wrong(&mail.code)).await, Code::InvalidArgument, "CODE_INVALID");
    assert_error(app.verify_code("cat@example.com", &mail.code).await, Code::InvalidArgument, "CODE_INVALID");
    assert_error(app.verify_token(&mail.token).await, Code::ResourceExhausted, "ATTEMPTS_EXHAUSTED");
}

async fn code_for_another_email_is_refused(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    app.sign_up("dan@example.com", PASSWORD).await.unwrap();
    app.sign_up("dora@example.com", PASSWORD).await.unwrap();
    let dan = app.last_event("email.verification_requested", "dan@example.com").await;
    let mut dora = app.last_event("email.verification_requested", "dora@example.com").await;
    if dora.code == dan.code {
        // Six random digits collide once in a million runs; a new code does not.
        let resend = pb::ResendVerificationRequest { email: "dora@example.com".into() };
        app.auth.clone().resend_verification(resend).await.unwrap();
        dora = app.event_after("email.verification_requested", "dora@example.com", &dora).await;
    }
    assert_ne!(dan.code, dora.code);
    assert_error(app.verify_code("dora@example.com", &dan.code).await, Code::InvalidArgument, "CODE_INVALID");
    assert_error(app.verify_code("nobody@example.com", &dan.code).await, Code::InvalidArgument, "CODE_INVALID");
    assert_error(app.login("dora@example.com", PASSWORD).await, Code::FailedPrecondition, "EMAIL_NOT_VERIFIED");
}

async fn token_of_the_other_kind_is_refused(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    app.sign_up("eli@example.com", PASSWORD).await.unwrap();
    let verify = app.last_event("email.verification_requested", "eli@example.com").await;
    // A verification token is no reset token.
    let req = pb::ResetPasswordRequest {
        proof: Some(pb::reset_password_request::Proof::Token(verify.token.clone())),
        new_password: "a brand new password".into(),
    };
    assert_error(app.auth.clone().reset_password(req).await, Code::InvalidArgument, "VERIFICATION_INVALID");
    app.verify_token(&verify.token).await.unwrap();
    // And a reset token verifies nothing.
    app.auth
        .clone()
        .request_password_reset(pb::RequestPasswordResetRequest { email: "eli@example.com".into() })
        .await
        .unwrap();
    let reset = app.last_event("email.password_reset_requested", "eli@example.com").await;
    assert_error(app.verify_token(&reset.token).await, Code::InvalidArgument, "VERIFICATION_INVALID");
}

async fn parallel_redemptions_of_one_token_succeed_once(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    app.sign_up("fay@example.com", PASSWORD).await.unwrap();
    let mail = app.last_event("email.verification_requested", "fay@example.com").await;
    let verifications: Vec<_> = (0..10)
        .map(|_| {
            let mut client = app.auth.clone();
            let req =
                pb::VerifyEmailRequest { proof: Some(pb::verify_email_request::Proof::Token(mail.token.clone())) };
            tokio::spawn(async move { client.verify_email(req).await })
        })
        .collect();
    let mut ok = 0;
    for v in verifications {
        match v.await.unwrap() {
            Ok(_) => ok += 1,
            Err(s) => assert_eq!(code_and_reason(&s), (Code::FailedPrecondition, "VERIFICATION_USED".into()), "{s:?}"),
        }
    }
    assert_eq!(ok, 1, "one verification token, one success");

    app.auth
        .clone()
        .request_password_reset(pb::RequestPasswordResetRequest { email: "fay@example.com".into() })
        .await
        .unwrap();
    let reset = app.last_event("email.password_reset_requested", "fay@example.com").await;
    let resets: Vec<_> = (0..10)
        .map(|i| {
            let mut client = app.auth.clone();
            let req = pb::ResetPasswordRequest {
                proof: Some(pb::reset_password_request::Proof::Token(reset.token.clone())),
                new_password: format!("new password number {i}"),
            };
            tokio::spawn(async move { client.reset_password(req).await })
        })
        .collect();
    let mut ok = 0;
    for r in resets {
        match r.await.unwrap() {
            Ok(_) => ok += 1,
            Err(s) => assert_eq!(code_and_reason(&s), (Code::FailedPrecondition, "VERIFICATION_USED".into()), "{s:?}"),
        }
    }
    assert_eq!(ok, 1, "one reset token, one success");
    assert_eq!(app.outbox().await.iter().filter(|r| r.event_type == "email.password_changed").count(), 1);
}

async fn twenty_parallel_wrong_codes_stop_at_the_limit(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    app.sign_up("gus@example.com", PASSWORD).await.unwrap();
    let mail = app.last_event("email.verification_requested", "gus@example.com").await;
    let guesses: Vec<_> = (0..20)
        .map(|_| {
            let mut client = app.auth.clone();
            let proof = pb::verify_email_request::Proof::EmailCode(pb::EmailCode {
                email: "gus@example.com".into(),
                code: wrong(&mail.code),
            });
            tokio::spawn(async move { client.verify_email(pb::VerifyEmailRequest { proof: Some(proof) }).await })
        })
        .collect();
    // Every guess is answered as wrong; the stored counter shows how many
    // were counted.
    for g in guesses {
        let status = g.await.unwrap().unwrap_err();
        assert_eq!(code_and_reason(&status), (Code::InvalidArgument, "CODE_INVALID".to_owned()), "{status:?}");
    }
    let db = sea_orm::Database::connect(app.config.effective_database_url()).await.unwrap();
    let row = db
        .query_one(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT attempts FROM verifications WHERE email = 'gus@example.com'",
        ))
        .await
        .unwrap()
        .unwrap();
    let attempts: i32 = row.try_get("", "attempts").unwrap();
    assert_eq!(attempts, 5, "the counter stops at the limit");
    assert_error(app.verify_code("gus@example.com", &mail.code).await, Code::InvalidArgument, "CODE_INVALID");
    assert_error(app.verify_token(&mail.token).await, Code::ResourceExhausted, "ATTEMPTS_EXHAUSTED");
}

/// OWASP ASVS 5.0 V6.3.8: an attacker who asks for a reset of an address
/// and then guesses codes learns nothing about whether it has an account:
/// every wrong code, the sixth and later included, gets the same code and
/// reason for a real address as for an unknown one.
async fn a_real_and_an_unknown_address_answer_every_wrong_reset_code_alike(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    app.verified_user("hal@example.com").await;
    let answers = |email: &'static str| {
        let app = &app;
        async move {
            let req = pb::RequestPasswordResetRequest { email: email.into() };
            app.auth.clone().request_password_reset(req).await.unwrap();
            let mut seen = Vec::new();
            for n in 0..7 {
                let proof = pb::reset_password_request::Proof::EmailCode(pb::EmailCode {
                    email: email.into(),
                    code: format!("{:06}", 111_111 * (n % 9 + 1)),
                });
                let req = pb::ResetPasswordRequest { proof: Some(proof), new_password: "a new pass phrase".into() };
                let status = app.auth.clone().reset_password(req).await.unwrap_err();
                seen.push(code_and_reason(&status));
            }
            seen
        }
    };
    let real = answers("hal@example.com").await;
    let unknown = answers("nobody@example.com").await;
    assert_eq!(real, unknown);
    assert!(real.iter().all(|a| *a == (Code::InvalidArgument, "CODE_INVALID".to_owned())), "{real:?}");
}
