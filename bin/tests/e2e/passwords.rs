//! Password strength and normalisation, end to end: every place a new
//! password is chosen refuses the easy ones, naming its field, and changes
//! nothing; a password typed with decomposed accents is the one signed up with
//! composed ones.

use gatehouse_grpc::pb;
use tonic::{Code, Status};
use tonic_types::StatusExt as _;

use crate::harness::{Mode, TestApp, assert_error, violated_fields};

crate::in_both_modes!(
    sign_up_refuses_common_passwords_and_the_email_nist_800_63b_3_1_1_2,
    change_password_refuses_a_common_new_password_and_changes_nothing_asvs_v6_2_4,
    reset_password_refuses_a_common_password_and_keeps_the_verification_asvs_v6_2_4,
    an_nfd_password_logs_in_after_an_nfc_sign_up_nist_800_63b_3_1_1_2,
);

const PASSWORD: &str = "correct horse battery";

/// The one violation's field and description.
fn violation(status: &Status) -> (String, String) {
    let bad = status.get_error_details().bad_request().cloned().expect("BadRequest details");
    assert_eq!(bad.field_violations.len(), 1, "{status:?}");
    let v = &bad.field_violations[0];
    (v.field.clone(), v.description.clone())
}

/// NIST SP 800-63B-4 §3.1.1.2 (blocklist, context-specific words); OWASP
/// ASVS 5.0 V6.2.4 (top passwords) and V6.2.11 (the account's own words).
async fn sign_up_refuses_common_passwords_and_the_email_nist_800_63b_3_1_1_2(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    let email = "annabel.lee@example.com";
    for common in ["password", "12345678", "aaaaaaaa"] {
        let status = assert_error(app.sign_up(email, common).await, Code::InvalidArgument, "INVALID_ARGUMENT");
        let (field, description) = violation(&status);
        assert_eq!(field, "password", "{common}");
        assert!(description.starts_with("password is too easy to guess: "), "{common}: {description}");
    }
    // The address itself, in any case, and its local part.
    for own in [email, "Annabel.Lee@Example.com", "annabel.lee"] {
        let status = assert_error(app.sign_up(email, own).await, Code::InvalidArgument, "INVALID_ARGUMENT");
        assert_eq!(
            violation(&status),
            (
                "password".to_owned(),
                "password must not be built from the email address, the display name or the service's name".to_owned()
            ),
            "{own}"
        );
    }
    // Nothing was stored: the address is still free, and a passphrase of
    // ordinary words (no composition rules, ASVS V6.2.5) is accepted.
    app.sign_up(email, PASSWORD).await.unwrap();
}

async fn change_password_refuses_a_common_new_password_and_changes_nothing_asvs_v6_2_4(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    let here = app.user_session("gwen.harper@example.com").await;
    let there = app.login("gwen.harper@example.com", PASSWORD).await.unwrap();
    for weak in ["password1", "qwertyuiop", "gwen.harper@example.com", "gwenharper"] {
        let status = assert_error(
            app.change_password(&here.access_token, PASSWORD, weak).await,
            Code::InvalidArgument,
            "INVALID_ARGUMENT",
        );
        assert_eq!(violated_fields(&status), ["new_password"], "{weak}");
    }
    // Nothing changed: the old password works, no session ended, nobody was notified.
    app.validate(&there.access_token).await.unwrap();
    app.login("gwen.harper@example.com", PASSWORD).await.unwrap();
    assert!(!app.outbox().await.iter().any(|r| r.event_type == "email.password_changed"));
    app.change_password(&here.access_token, PASSWORD, "mauve tractor on the hill").await.unwrap();
    app.login("gwen.harper@example.com", "mauve tractor on the hill").await.unwrap();
}

async fn reset_with(app: &TestApp, proof: pb::reset_password_request::Proof, new: &str) -> Result<(), Status> {
    let req = pb::ResetPasswordRequest { proof: Some(proof), new_password: new.into() };
    app.auth.clone().reset_password(req).await.map(|_| ())
}

async fn reset_request(app: &TestApp, email: &str) {
    let req = pb::RequestPasswordResetRequest { email: email.into() };
    app.auth.clone().request_password_reset(req).await.unwrap();
}

/// A refused password consumes neither the link nor an attempt of the code.
async fn reset_password_refuses_a_common_password_and_keeps_the_verification_asvs_v6_2_4(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    app.verified_user("hal.jordan@example.com").await;
    reset_request(&app, "hal.jordan@example.com").await;
    let mail = app.last_event("email.password_reset_requested", "hal.jordan@example.com").await;
    let token = pb::reset_password_request::Proof::Token(mail.token.clone());
    let code = pb::reset_password_request::Proof::EmailCode(pb::EmailCode {
        email: "hal.jordan@example.com".into(),
        code: mail.code.clone(),
    });
    // More refusals than the code has attempts: none of them counts as one.
    for _ in 0..3 {
        for weak in ["12345678", "hal.jordan@example.com"] {
            for proof in [&token, &code] {
                let status = assert_error(
                    reset_with(&app, proof.clone(), weak).await,
                    Code::InvalidArgument,
                    "INVALID_ARGUMENT",
                );
                assert_eq!(violated_fields(&status), ["new_password"], "{weak}");
            }
        }
    }
    app.login("hal.jordan@example.com", PASSWORD).await.unwrap();
    reset_with(&app, code, "mauve tractor on the hill").await.unwrap();
    app.login("hal.jordan@example.com", "mauve tractor on the hill").await.unwrap();
}

/// NIST SP 800-63B-4 §3.1.1.2: passwords are normalised (NFKC) before they
/// are hashed and checked, so how a keyboard composes accents does not matter.
async fn an_nfd_password_logs_in_after_an_nfc_sign_up_nist_800_63b_3_1_1_2(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    let nfc = "cr\u{e8}me br\u{fb}l\u{e9}e \u{e0} minuit";
    let nfd = "cre\u{300}me bru\u{302}le\u{301}e a\u{300} minuit";
    assert_ne!(nfc, nfd);
    app.sign_up("ines@example.com", nfc).await.unwrap();
    let mail = app.last_event("email.verification_requested", "ines@example.com").await;
    app.verify_token(&mail.token).await.unwrap();
    app.login("ines@example.com", nfd).await.unwrap();
    app.login("ines@example.com", nfc).await.unwrap();
    // Compatibility forms fold as well: full-width letters are the ASCII ones.
    app.sign_up("jun@example.com", "\u{ff4d}\u{ff41}\u{ff55}\u{ff56}\u{ff45} tractor on the hill").await.unwrap();
    let mail = app.last_event("email.verification_requested", "jun@example.com").await;
    app.verify_token(&mail.token).await.unwrap();
    app.login("jun@example.com", "mauve tractor on the hill").await.unwrap();
    assert_error(
        app.login("jun@example.com", "mauve tractor on the hil").await,
        Code::Unauthenticated,
        "INVALID_CREDENTIALS",
    );
}
