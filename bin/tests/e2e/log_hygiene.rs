//! No password, token or code ever reaches the server's log (OWASP ASVS 5.0
//! V16.2.5): the real binary runs in production mode with debug logging,
//! every flow that handles a secret is driven, and the captured output is
//! searched for each secret the test used.

use gatehouse_grpc::pb;
use gatehouse_grpc::pb::auth_service_client::AuthServiceClient;
use gatehouse_grpc::pb::mfa_service_client::MfaServiceClient;
use gatehouse_grpc::pb::token_service_client::TokenServiceClient;
use gatehouse_grpc::pb::user_service_client::UserServiceClient;
use gatehouse_testkit::eventually;
use tonic::Code;

use crate::harness::{Mode, TestApp, assert_error, authed};
use crate::process::ServerProcess;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_the_log() {
    // The harness makes the database, Redis prefix, exchange and key; the
    // in-process server it starts is stopped and the real binary serves.
    let mut app = TestApp::spawn(Mode::Production).await;
    app.stop().await;
    let c = &app.config;
    // A queue for every event, so the relay can send them all (an event no
    // queue is bound for stays in the outbox).
    let _everything = gatehouse_testkit::rabbitmq::TestConsumer::bind(&c.amqp_exchange).await;
    let server = ServerProcess::start(c, &[("RUST_LOG", "debug")]).await;
    let channel = server.channel.clone();
    let channel_for_mfa = channel.clone();
    let mut auth = AuthServiceClient::new(channel.clone());
    let mut user = UserServiceClient::new(channel.clone());
    let mut token = TokenServiceClient::new(channel);

    let mut secrets: Vec<String> = Vec::new();
    let (p1, p2, p3, wrong) = ("first Secret pass 1", "second Secret pass 2", "third Secret pass 3", "Wrong guess 4");
    secrets.extend([p1, p2, p3, wrong].map(String::from));

    let email = "hygiene@example.com";
    auth.sign_up(pb::SignUpRequest { email: email.into(), password: p1.into(), display_name: "H".into() })
        .await
        .unwrap();
    let verify = app.last_event("email.verification_requested", email).await;
    secrets.extend([verify.token.clone(), verify.link.clone()]);
    let wrong_code = format!("{:06}", (verify.code.parse::<u32>().unwrap() + 1) % 1_000_000);
    let bad =
        pb::verify_email_request::Proof::EmailCode(pb::EmailCode { email: email.into(), code: wrong_code.clone() });
    assert_error(
        auth.verify_email(pb::VerifyEmailRequest { proof: Some(bad) }).await,
        Code::InvalidArgument,
        "CODE_INVALID",
    );
    auth.verify_email(pb::VerifyEmailRequest {
        proof: Some(pb::verify_email_request::Proof::Token(verify.token.clone())),
    })
    .await
    .unwrap();
    assert_error(
        auth.login(pb::LoginRequest { email: email.into(), password: wrong.into() }).await,
        Code::Unauthenticated,
        "INVALID_CREDENTIALS",
    );
    let login = auth.login(pb::LoginRequest { email: email.into(), password: p1.into() }).await.unwrap().into_inner();
    let Some(pb::login_response::Result::Tokens(pair)) = login.result else { panic!("no tokens") };
    secrets.extend([pair.access_token.clone(), pair.refresh_token.clone()]);
    token.validate_token(pb::ValidateTokenRequest { access_token: pair.access_token.clone() }).await.unwrap();
    let refreshed =
        auth.refresh_token(pb::RefreshTokenRequest { refresh_token: pair.refresh_token.clone() }).await.unwrap();
    let pair = refreshed.into_inner().tokens.unwrap();
    secrets.extend([pair.access_token.clone(), pair.refresh_token.clone()]);

    let change = pb::ChangePasswordRequest { current_password: p1.into(), new_password: p2.into() };
    user.change_password(authed(change, &pair.access_token)).await.unwrap();
    auth.request_password_reset(pb::RequestPasswordResetRequest { email: email.into() }).await.unwrap();
    let reset = app.last_event("email.password_reset_requested", email).await;
    secrets.extend([reset.token.clone(), reset.link.clone()]);
    let proof =
        pb::reset_password_request::Proof::EmailCode(pb::EmailCode { email: email.into(), code: reset.code.clone() });
    auth.reset_password(pb::ResetPasswordRequest { proof: Some(proof), new_password: p3.into() }).await.unwrap();
    // Second factors: a TOTP secret and codes, an email code, backup codes.
    let login = auth.login(pb::LoginRequest { email: email.into(), password: p3.into() }).await.unwrap().into_inner();
    let Some(pb::login_response::Result::Tokens(pair)) = login.result else { panic!("no tokens") };
    let mut mfa = MfaServiceClient::new(channel_for_mfa.clone());
    let enrolment = mfa
        .enroll_totp(authed(
            pb::EnrollTotpRequest { proof: crate::password_proof!(enroll_totp_request, p3) },
            &pair.access_token,
        ))
        .await
        .unwrap()
        .into_inner();
    secrets.push(enrolment.secret.clone());
    let totp = crate::mfa::authenticator(&enrolment.secret, chrono::Utc::now().timestamp());
    let confirm = pb::ConfirmFactorRequest { factor_id: enrolment.factor_id.clone(), code: totp.clone() };
    let backup = mfa.confirm_factor(authed(confirm, &pair.access_token)).await.unwrap().into_inner().backup_codes;
    secrets.extend(backup.iter().cloned());
    let enrol_email = pb::EnrollEmailFactorRequest {
        email: email.into(),
        proof: crate::password_proof!(enroll_email_factor_request, p3),
    };
    mfa.enroll_email_factor(authed(enrol_email, &pair.access_token)).await.unwrap();
    let mfa_mail = app.last_event("email.mfa_code", email).await;
    let challenge = match auth
        .login(pb::LoginRequest { email: email.into(), password: p3.into() })
        .await
        .unwrap()
        .into_inner()
        .result
    {
        Some(pb::login_response::Result::MfaRequired(c)) => c,
        other => panic!("expected a challenge: {other:?}"),
    };
    let req = pb::VerifyMfaRequest {
        challenge_id: challenge.challenge_id,
        factor_id: String::new(),
        code: backup[0].clone(),
    };
    let passed = auth.verify_mfa(req).await.unwrap().into_inner().tokens.unwrap();
    secrets.extend([passed.access_token, passed.refresh_token]);

    // Codes are six digits and could appear by chance inside an id or a
    // timestamp; they are searched for as whole JSON values below.
    let codes = [verify.code.clone(), wrong_code, reset.code.clone(), totp, mfa_mail.code];

    // Let the relay publish (its log lines are searched too), then stop the server.
    eventually("the relay to publish every event", async || app.outbox().await.iter().all(|r| r.sent)).await;
    let log = server.terminate();

    // The log was captured: the flows above are in it.
    for expected in ["user signed up", "email verified", "login succeeded", "password changed", "password reset"] {
        assert!(log.contains(expected), "the log should mention {expected:?}; captured:\n{log}");
    }
    for secret in &secrets {
        assert!(!log.contains(secret.as_str()), "a secret reached the log: {secret:?}");
    }
    for code in &codes {
        assert!(
            !log.contains(&format!("\"{code}\"")) && !log.contains(&format!("={code}")),
            "a code reached the log: {code}"
        );
    }
}
