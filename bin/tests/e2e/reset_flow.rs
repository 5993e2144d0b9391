//! The scripted flow that once in four runs saw a fresh reset token refused
//! (`VERIFICATION_INVALID`), repeated so that a race in it shows up: sign
//! up, verify by link, verify a second user by code after five wrong codes
//! and a resend, ask a reset for an unknown address and then for the first
//! user, try the used verification token as a reset token (the wrong kind),
//! then reset with the token the broker delivered. OWASP ASVS 5.0 V6.4.1
//! (reset secrets single use, and a working one works).

use gatehouse_grpc::pb;
use gatehouse_testkit::rabbitmq::TestConsumer;
use tonic::Code;

use crate::harness::{Mail, Mode, TestApp, assert_error};

/// Rounds of the flow, each with new accounts.
const ROUNDS: usize = 4;

const PASSWORD: &str = "correct horse battery";

async fn next_mail(consumer: &mut TestConsumer, event_type: &str, email: &str) -> Mail {
    let what = format!("{event_type} for {email}");
    let d = consumer
        .next_matching(&what, |d| {
            d.routing_key.as_str() == event_type && Mail::decode(d.routing_key.as_str(), &d.data).email == email
        })
        .await;
    Mail::decode(d.routing_key.as_str(), &d.data)
}

async fn reset(app: &TestApp, token: &str) -> Result<(), tonic::Status> {
    let proof = pb::reset_password_request::Proof::Token(token.into());
    let req = pb::ResetPasswordRequest { proof: Some(proof), new_password: "a brand new passphrase".into() };
    app.auth.clone().reset_password(req).await.map(|_| ())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reset_token_from_the_broker_works_in_every_round_of_the_scripted_flow() {
    let app = TestApp::spawn(Mode::Production).await;
    // Like the script's consumer: everything the exchange carries.
    let mut consumer = TestConsumer::bind_keys(&app.config.amqp_exchange, &["#"]).await;
    for round in 0..ROUNDS {
        let (first, second) = (format!("first{round}@example.com"), format!("second{round}@example.com"));
        app.sign_up(&first, PASSWORD).await.unwrap();
        let link = next_mail(&mut consumer, "email.verification_requested", &first).await;
        app.verify_token(&link.token).await.unwrap();

        app.sign_up(&second, PASSWORD).await.unwrap();
        let coded = next_mail(&mut consumer, "email.verification_requested", &second).await;
        app.verify_code(&second, &coded.code).await.unwrap();
        for _ in 0..5 {
            let wrong = if coded.code == "000000" { "111111" } else { "000000" };
            assert!(app.verify_code(&second, wrong).await.is_err());
        }
        let req = pb::ResendVerificationRequest { email: second.clone() };
        app.auth.clone().resend_verification(req).await.unwrap();

        let unknown = pb::RequestPasswordResetRequest { email: format!("nobody{round}@example.com") };
        app.auth.clone().request_password_reset(unknown).await.unwrap();
        let known = pb::RequestPasswordResetRequest { email: first.clone() };
        app.auth.clone().request_password_reset(known).await.unwrap();
        let mail = next_mail(&mut consumer, "email.password_reset_requested", &first).await;

        assert_error(reset(&app, &link.token).await, Code::InvalidArgument, "VERIFICATION_INVALID");
        reset(&app, &mail.token)
            .await
            .unwrap_or_else(|s| panic!("round {round}: the fresh reset token was refused: {s:?}"));
    }
}
