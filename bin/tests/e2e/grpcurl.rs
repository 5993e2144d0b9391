//! The happy path driven by the real `grpcurl` binary, with nothing but
//! server reflection to learn the API: what a person debugging Gatehouse does.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use crate::harness::{Mode, TestApp};

fn grpcurl_binary() -> PathBuf {
    let path = std::env::var_os("GRPCURL")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.tools/bin/grpcurl"));
    assert!(
        path.is_file(),
        "grpcurl not found at {}: `make test` installs it (scripts/install-grpcurl.sh), or set GRPCURL",
        path.display()
    );
    path
}

/// Runs grpcurl; returns (success, stdout, stderr).
async fn grpcurl(args: Vec<String>) -> (bool, String, String) {
    let bin = grpcurl_binary();
    tokio::task::spawn_blocking(move || {
        let out = Command::new(bin).args(&args).output().expect("grpcurl runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

async fn call(app: &TestApp, method: &str, body: &Value, bearer: Option<&str>) -> (bool, String, String) {
    let mut args = vec!["-plaintext".to_owned()];
    if let Some(token) = bearer {
        args.extend(["-H".to_owned(), format!("authorization: Bearer {token}")]);
    }
    args.extend(["-d".to_owned(), body.to_string(), app.addr.to_string(), method.to_owned()]);
    grpcurl(args).await
}

async fn ok_json(app: &TestApp, method: &str, body: &Value, bearer: Option<&str>) -> Value {
    let (ok, stdout, stderr) = call(app, method, body, bearer).await;
    assert!(ok, "{method} failed: {stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{method} printed no JSON ({e}): {stdout}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcurl_happy_path_with_reflection_only() {
    let app = TestApp::spawn(Mode::Embedded).await;

    let (ok, services, stderr) = grpcurl(vec!["-plaintext".into(), app.addr.to_string(), "list".into()]).await;
    assert!(ok, "{stderr}");
    for service in
        ["gatehouse.v1.AuthService", "gatehouse.v1.TokenService", "gatehouse.v1.UserService", "grpc.health.v1.Health"]
    {
        assert!(services.lines().any(|l| l == service), "{service} missing from:\n{services}");
    }

    let body =
        serde_json::json!({"email": "grpcurl@example.com", "password": "correct horse battery", "displayName": "Curl"});
    let signed_up = ok_json(&app, "gatehouse.v1.AuthService/SignUp", &body, None).await;
    let user_id = signed_up["userId"].as_str().unwrap().to_owned();

    // The verification link token travels in the sign-up's event.
    let mail = app.last_event("email.verification_requested", "grpcurl@example.com").await;
    let body = serde_json::json!({"token": mail.token});
    ok_json(&app, "gatehouse.v1.AuthService/VerifyEmail", &body, None).await;

    let body = serde_json::json!({"email": "grpcurl@example.com", "password": "correct horse battery"});
    let login = ok_json(&app, "gatehouse.v1.AuthService/Login", &body, None).await;
    let access = login["tokens"]["accessToken"].as_str().unwrap().to_owned();
    assert_eq!(login["tokens"]["tokenType"], "Bearer");
    assert_eq!(login["tokens"]["userId"], user_id.as_str());

    let body = serde_json::json!({"accessToken": access});
    let claims = ok_json(&app, "gatehouse.v1.TokenService/ValidateToken", &body, None).await;
    assert_eq!(claims["userId"], user_id.as_str());
    assert_eq!(claims["sessionId"], login["tokens"]["sessionId"]);

    // An account change takes its fresh proof as README shows it (OWASP
    // ASVS 5.0 V7.5.1): without one, grpcurl shows the missing field.
    let add = serde_json::json!({"email": "curl@work.example"});
    let (ok, _, stderr) = call(&app, "gatehouse.v1.UserService/AddLoginEmail", &add, Some(&access)).await;
    assert!(!ok && stderr.contains("InvalidArgument") && stderr.contains(r#""field":"proof""#), "{stderr}");
    let add = serde_json::json!({"email": "curl@work.example", "password": "correct horse battery"});
    ok_json(&app, "gatehouse.v1.UserService/AddLoginEmail", &add, Some(&access)).await;
    app.last_event("email.verification_requested", "curl@work.example").await;

    ok_json(&app, "gatehouse.v1.AuthService/Logout", &serde_json::json!({}), Some(&access)).await;

    let (ok, _, stderr) = call(&app, "gatehouse.v1.TokenService/ValidateToken", &body, None).await;
    assert!(!ok, "a revoked token must not validate");
    assert!(stderr.contains("Unauthenticated") && stderr.contains(r#""reason":"TOKEN_REVOKED""#), "{stderr}");

    // Reflection also serves the google.rpc error details, so grpcurl shows
    // which fields were wrong.
    let body = serde_json::json!({"email": "not-an-email", "password": "short"});
    let (ok, _, stderr) = call(&app, "gatehouse.v1.AuthService/SignUp", &body, None).await;
    assert!(!ok);
    assert!(stderr.contains("InvalidArgument"), "{stderr}");
    assert!(stderr.contains(r#""field":"email""#) && stderr.contains(r#""field":"password""#), "{stderr}");
}
