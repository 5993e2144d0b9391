//! Bad input gets INVALID_ARGUMENT naming every bad field, and changes nothing.

use tonic::Code;

use crate::harness::{Mode, TestApp, assert_error, violated_fields};
use gatehouse_grpc::pb;

crate::in_both_modes!(
    sign_up_names_each_bad_field_and_stores_nothing,
    empty_fields_are_named,
    oversized_values_are_refused_before_any_work,
);

async fn sign_up_names_each_bad_field_and_stores_nothing(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    let status = assert_error(app.sign_up("not-an-email", "short").await, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert_eq!(violated_fields(&status), ["email", "password"]);

    // OWASP ASVS 5.0 V6.2.1: fewer than 8 characters is refused.
    let status =
        assert_error(app.sign_up("jo@example.com", "1234567").await, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert_eq!(violated_fields(&status), ["password"]);
    // V6.2.9: 64 characters and more are allowed (up to 128).
    app.sign_up("long@example.com", &passphrase(128)).await.unwrap();
    let status = assert_error(
        app.sign_up("longer@example.com", &passphrase(129)).await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    assert_eq!(violated_fields(&status), ["password"]);

    let req = pb::SignUpRequest {
        email: "kim@example.com".into(),
        password: "correct horse battery".into(),
        display_name: "x\u{7}".into(),
    };
    let status = assert_error(app.auth.clone().sign_up(req).await, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert_eq!(violated_fields(&status), ["display_name"]);

    // Nothing was stored by the refused requests: the addresses are still free.
    app.sign_up("jo@example.com", "correct horse battery").await.unwrap();
    app.sign_up("kim@example.com", "correct horse battery").await.unwrap();
    app.sign_up("longer@example.com", "correct horse battery").await.unwrap();
}

/// A passphrase of `chars` characters that is not a repeat (zxcvbn would
/// refuse `pppp…`).
fn passphrase(chars: usize) -> String {
    const WORDS: &str = "mauve tractors drift over seven quiet hills while purple owls debate quantum gardening \
                         beneath a silver moon and nobody minds the noise";
    let text: String = WORDS.chars().take(chars).collect();
    assert_eq!(text.chars().count(), chars);
    text
}

async fn empty_fields_are_named(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    let status = assert_error(app.sign_up("", "").await, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert_eq!(violated_fields(&status), ["email", "password"]);
    let status = assert_error(app.login("", "").await, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert_eq!(violated_fields(&status), ["email", "password"]);
    let status =
        assert_error(app.login("bad email@example.com", "whatever").await, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert_eq!(violated_fields(&status), ["email"]);
    let status = assert_error(app.validate("").await, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert_eq!(violated_fields(&status), ["access_token"]);
    let status = assert_error(app.refresh("").await, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert_eq!(violated_fields(&status), ["refresh_token"]);
    let status = assert_error(app.logout_refresh("").await, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert_eq!(violated_fields(&status), ["refresh_token"]);
}

async fn oversized_values_are_refused_before_any_work(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    let status = assert_error(app.validate(&"a".repeat(9000)).await, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert_eq!(violated_fields(&status), ["access_token"]);
    let status = assert_error(app.refresh(&"a".repeat(300)).await, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert_eq!(violated_fields(&status), ["refresh_token"]);
    // A whole request over the size limit is refused by the transport.
    let status = app.login("ann@example.com", &"p".repeat(100_000)).await;
    assert_error(status, Code::ResourceExhausted, "MESSAGE_TOO_LARGE");
}
