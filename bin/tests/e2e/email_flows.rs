//! Email verification, login gating, password reset and change, and the
//! caller's login emails, end to end.

use gatehouse_grpc::pb;
use tonic::Code;

use crate::harness::{Mode, TestApp, assert_error, authed, violated_fields};

crate::in_both_modes!(
    login_before_verification_is_refused_and_after_it_accepted,
    verification_by_email_and_code,
    resend_answers_the_same_for_unknown_addresses_and_replaces_the_token,
    password_reset_by_link_replaces_the_password_and_ends_every_session,
    password_reset_by_code_and_for_unknown_addresses,
    forged_host_headers_cannot_redirect_reset_links,
    change_password_needs_the_current_one_and_ends_other_sessions,
    login_emails_add_verify_login_set_primary_remove,
    get_and_update_me,
    delete_me_needs_the_password_and_ends_every_session,
    account_rpcs_need_a_valid_bearer_token,
);

const PASSWORD: &str = "correct horse battery";

async fn login_before_verification_is_refused_and_after_it_accepted(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    app.sign_up("ann@example.com", PASSWORD).await.unwrap();
    // The password is checked first: a wrong one says nothing about verification.
    assert_error(app.login("ann@example.com", "wrong password").await, Code::Unauthenticated, "INVALID_CREDENTIALS");
    assert_error(app.login("ann@example.com", PASSWORD).await, Code::FailedPrecondition, "EMAIL_NOT_VERIFIED");
    let mail = app.last_event("email.verification_requested", "ann@example.com").await;
    assert!(mail.token.starts_with("ghv_"), "{mail:?}");
    assert_eq!(mail.link, format!("https://id.example.test/verify-email?token={}", mail.token));
    assert_eq!(mail.code.len(), 6);
    app.verify_token(&mail.token).await.unwrap();
    app.login("ann@example.com", PASSWORD).await.unwrap();
}

async fn verification_by_email_and_code(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    app.sign_up("bob@example.com", PASSWORD).await.unwrap();
    let mail = app.last_event("email.verification_requested", "bob@example.com").await;
    app.verify_code("BOB@example.com ", &mail.code).await.unwrap();
    app.login("bob@example.com", PASSWORD).await.unwrap();
}

async fn resend_answers_the_same_for_unknown_addresses_and_replaces_the_token(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    app.sign_up("cy@example.com", PASSWORD).await.unwrap();
    let first = app.last_event("email.verification_requested", "cy@example.com").await;
    let resend = |email: &str| {
        let mut client = app.auth.clone();
        let req = pb::ResendVerificationRequest { email: email.into() };
        async move { client.resend_verification(req).await.map(tonic::Response::into_inner) }
    };
    let known = resend("cy@example.com").await.unwrap();
    let unknown = resend("nobody@example.com").await.unwrap();
    assert_eq!(known, unknown, "OWASP ASVS 5.0 V6.3.8: same answer either way");
    let second = app.event_after("email.verification_requested", "cy@example.com", &first).await;
    assert_ne!(first.token, second.token);
    assert_error(app.verify_token(&first.token).await, Code::FailedPrecondition, "VERIFICATION_USED");
    app.verify_token(&second.token).await.unwrap();
    let events = app.outbox().await;
    assert!(!events.iter().any(|r| r.event.email == "nobody@example.com"), "no email to unknown addresses");
}

async fn reset_request(app: &TestApp, email: &str) {
    let req = pb::RequestPasswordResetRequest { email: email.into() };
    app.auth.clone().request_password_reset(req).await.unwrap();
}

async fn reset_with(app: &TestApp, proof: pb::reset_password_request::Proof, new: &str) -> Result<(), tonic::Status> {
    let req = pb::ResetPasswordRequest { proof: Some(proof), new_password: new.into() };
    app.auth.clone().reset_password(req).await.map(|_| ())
}

/// OWASP ASVS 5.0 V7.4.3: a reset ends every session, at once.
async fn password_reset_by_link_replaces_the_password_and_ends_every_session(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    let session = app.user_session("dee@example.com").await;
    reset_request(&app, "dee@example.com").await;
    let mail = app.last_event("email.password_reset_requested", "dee@example.com").await;
    assert!(mail.token.starts_with("ghp_"));
    assert_eq!(mail.link, format!("https://id.example.test/reset-password?token={}", mail.token));
    let token = pb::reset_password_request::Proof::Token(mail.token.clone());
    // The new password must meet the policy.
    let status =
        assert_error(reset_with(&app, token.clone(), "short").await, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert_eq!(violated_fields(&status), ["new_password"]);
    reset_with(&app, token.clone(), "a brand new password").await.unwrap();

    assert_error(app.validate(&session.access_token).await, Code::Unauthenticated, "TOKEN_REVOKED");
    assert_error(app.refresh(&session.refresh_token).await, Code::Unauthenticated, "TOKEN_REVOKED");
    assert_error(app.login("dee@example.com", PASSWORD).await, Code::Unauthenticated, "INVALID_CREDENTIALS");
    app.login("dee@example.com", "a brand new password").await.unwrap();
    let changed = app.last_event("email.password_changed", "dee@example.com").await;
    assert!(!changed.event_id.is_empty());
    // Single use.
    assert_error(reset_with(&app, token, "yet another password").await, Code::FailedPrecondition, "VERIFICATION_USED");
}

async fn password_reset_by_code_and_for_unknown_addresses(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    app.verified_user("eve@example.com").await;
    reset_request(&app, "eve@example.com").await;
    reset_request(&app, "nobody@example.com").await;
    let first = app.last_event("email.password_reset_requested", "eve@example.com").await;
    reset_request(&app, "eve@example.com").await;
    let second = app.event_after("email.password_reset_requested", "eve@example.com", &first).await;
    // A newer request retires the older one.
    let old = pb::reset_password_request::Proof::Token(first.token);
    assert_error(reset_with(&app, old, "a brand new password").await, Code::FailedPrecondition, "VERIFICATION_USED");
    let code = pb::reset_password_request::Proof::EmailCode(pb::EmailCode {
        email: "eve@example.com".into(),
        code: second.code.clone(),
    });
    reset_with(&app, code, "a brand new password").await.unwrap();
    app.login("eve@example.com", "a brand new password").await.unwrap();
    let events = app.outbox().await;
    assert!(!events.iter().any(|r| r.event.email == "nobody@example.com"));
}

/// OWASP ASVS 5.0 V7.4.3: other sessions end after a password change.
async fn change_password_needs_the_current_one_and_ends_other_sessions(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    let here = app.user_session("fin@example.com").await;
    let there = app.login("fin@example.com", PASSWORD).await.unwrap();
    let status = assert_error(
        app.change_password(&here.access_token, "not my password", "the new password").await,
        Code::InvalidArgument,
        "INVALID_CREDENTIALS",
    );
    assert_eq!(violated_fields(&status), ["current_password"]);
    app.change_password(&here.access_token, PASSWORD, "the new password").await.unwrap();
    app.validate(&here.access_token).await.unwrap();
    assert_error(app.validate(&there.access_token).await, Code::Unauthenticated, "TOKEN_REVOKED");
    assert_error(app.login("fin@example.com", PASSWORD).await, Code::Unauthenticated, "INVALID_CREDENTIALS");
    app.login("fin@example.com", "the new password").await.unwrap();
    app.last_event("email.password_changed", "fin@example.com").await;
}

async fn login_emails_add_verify_login_set_primary_remove(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    let pair = app.user_session("gil@example.com").await;
    let token = pair.access_token.as_str();
    let mut user = app.user.clone();

    user.add_login_email(authed(
        pb::AddLoginEmailRequest {
            email: "gil@work.example".into(),
            proof: crate::password_proof!(add_login_email_request),
        },
        token,
    ))
    .await
    .unwrap();
    let taken = user
        .add_login_email(authed(
            pb::AddLoginEmailRequest {
                email: "GIL@example.com".into(),
                proof: crate::password_proof!(add_login_email_request),
            },
            token,
        ))
        .await;
    assert_error(taken, Code::AlreadyExists, "EMAIL_TAKEN");
    let unverified = user
        .set_primary_email(authed(
            pb::SetPrimaryEmailRequest {
                email: "gil@work.example".into(),
                proof: crate::password_proof!(set_primary_email_request),
            },
            token,
        ))
        .await;
    assert_error(unverified, Code::FailedPrecondition, "EMAIL_NOT_VERIFIED");
    assert_error(app.login("gil@work.example", PASSWORD).await, Code::FailedPrecondition, "EMAIL_NOT_VERIFIED");

    let mail = app.last_event("email.verification_requested", "gil@work.example").await;
    app.verify_token(&mail.token).await.unwrap();
    app.login("gil@work.example", PASSWORD).await.unwrap();

    user.set_primary_email(authed(
        pb::SetPrimaryEmailRequest {
            email: "gil@work.example".into(),
            proof: crate::password_proof!(set_primary_email_request),
        },
        token,
    ))
    .await
    .unwrap();
    let notice = app.last_event("email.changed", "gil@example.com").await;
    assert_eq!(notice.new_email, "gil@work.example");

    let emails =
        user.list_login_emails(authed(pb::ListLoginEmailsRequest {}, token)).await.unwrap().into_inner().emails;
    let listed: Vec<_> = emails.iter().map(|e| (e.email.as_str(), e.primary, e.verified)).collect();
    assert_eq!(listed, [("gil@work.example", true, true), ("gil@example.com", false, true)]);

    let primary = user
        .remove_login_email(authed(
            pb::RemoveLoginEmailRequest {
                email: "gil@work.example".into(),
                proof: crate::password_proof!(remove_login_email_request),
            },
            token,
        ))
        .await;
    assert_error(primary, Code::FailedPrecondition, "EMAIL_IS_PRIMARY");
    let missing = user
        .remove_login_email(authed(
            pb::RemoveLoginEmailRequest {
                email: "zed@example.com".into(),
                proof: crate::password_proof!(remove_login_email_request),
            },
            token,
        ))
        .await;
    assert_error(missing, Code::NotFound, "NOT_FOUND");
    user.remove_login_email(authed(
        pb::RemoveLoginEmailRequest {
            email: "gil@example.com".into(),
            proof: crate::password_proof!(remove_login_email_request),
        },
        token,
    ))
    .await
    .unwrap();
    assert_error(app.login("gil@example.com", PASSWORD).await, Code::Unauthenticated, "INVALID_CREDENTIALS");
}

async fn get_and_update_me(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    let pair = app.user_session("hana@example.com").await;
    let token = pair.access_token.as_str();
    let mut user = app.user.clone();
    let me = user.get_me(authed(pb::GetMeRequest {}, token)).await.unwrap().into_inner().user.unwrap();
    assert_eq!(me.id, pair.user_id);
    assert_eq!(me.primary_email, "hana@example.com");

    let update = |paths: Vec<&str>, name: &str| {
        authed(
            pb::UpdateMeRequest {
                user: Some(pb::User { display_name: name.into(), ..pb::User::default() }),
                update_mask: Some(prost_types::FieldMask { paths: paths.into_iter().map(String::from).collect() }),
            },
            token,
        )
    };
    let updated = user.update_me(update(vec!["display_name"], " Hana K ")).await.unwrap().into_inner().user.unwrap();
    assert_eq!(updated.display_name, "Hana K");
    let status = assert_error(user.update_me(update(vec!["id"], "x")).await, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert_eq!(violated_fields(&status), ["update_mask"]);
    let me = user.get_me(authed(pb::GetMeRequest {}, token)).await.unwrap().into_inner().user.unwrap();
    assert_eq!((me.display_name.as_str(), me.id.as_str()), ("Hana K", pair.user_id.as_str()));
}

async fn delete_me_needs_the_password_and_ends_every_session(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    let pair = app.user_session("ike@example.com").await;
    let mut user = app.user.clone();
    let wrong =
        user.delete_me(authed(pb::DeleteMeRequest { password: "not it at all".into() }, &pair.access_token)).await;
    assert_error(wrong, Code::InvalidArgument, "INVALID_CREDENTIALS");
    user.delete_me(authed(pb::DeleteMeRequest { password: PASSWORD.into() }, &pair.access_token)).await.unwrap();
    assert_error(app.validate(&pair.access_token).await, Code::Unauthenticated, "TOKEN_REVOKED");
    assert_error(app.login("ike@example.com", PASSWORD).await, Code::Unauthenticated, "INVALID_CREDENTIALS");
    // The address is free again.
    app.sign_up("ike@example.com", PASSWORD).await.unwrap();
}

async fn account_rpcs_need_a_valid_bearer_token(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    let mut user = app.user.clone();
    let status = user.get_me(pb::GetMeRequest {}).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_error(user.get_me(authed(pb::GetMeRequest {}, "garbage")).await, Code::Unauthenticated, "TOKEN_INVALID");
    let pair = app.user_session("jo@example.com").await;
    app.logout_bearer(&pair.access_token).await.unwrap();
    assert_error(
        user.get_me(authed(pb::GetMeRequest {}, &pair.access_token)).await,
        Code::Unauthenticated,
        "TOKEN_REVOKED",
    );
}

/// Links come from GATEHOUSE_PUBLIC_URL only: a forged Host or
/// X-Forwarded-Host cannot send a reset link to an attacker's domain.
async fn forged_host_headers_cannot_redirect_reset_links(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    app.verified_user("kay@example.com").await;
    let mut req = tonic::Request::new(pb::RequestPasswordResetRequest { email: "kay@example.com".into() });
    for (name, value) in
        [("x-forwarded-host", "evil.example"), ("x-forwarded-proto", "http"), ("forwarded", "host=evil.example")]
    {
        req.metadata_mut().insert(name, value.parse().unwrap());
    }
    app.auth.clone().request_password_reset(req).await.unwrap();
    let mail = app.last_event("email.password_reset_requested", "kay@example.com").await;
    assert!(mail.link.starts_with("https://id.example.test/reset-password?token=ghp_"), "{}", mail.link);
    assert!(!mail.link.contains("evil"));
}
