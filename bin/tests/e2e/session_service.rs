//! The caller's sessions end to end: listing, revoking one or the others,
//! idle and absolute lifetimes, where a login came from (trusted proxies),
//! and the new-device notice.

use std::time::Duration;

use gatehouse_grpc::pb;
use tonic::Code;

use crate::harness::{Mode, TestApp, assert_error, authed, sleep_past};

crate::in_both_modes!(
    list_revoke_one_and_revoke_the_others,
    another_users_session_is_not_found,
    idle_and_absolute_lifetimes_end_sessions,
    forwarded_for_is_believed_only_from_trusted_proxies,
);

const PASSWORD: &str = "correct horse battery";

async fn list(app: &TestApp, access: &str) -> Vec<pb::Session> {
    let req = authed(pb::ListSessionsRequest { page_size: 0, page_token: String::new() }, access);
    app.sessions.clone().list_sessions(req).await.unwrap().into_inner().sessions
}

async fn login_as(app: &TestApp, email: &str, agent: &str, forwarded: Option<&str>) -> pb::TokenPair {
    let mut req =
        tonic::Request::new(pb::LoginRequest { email: email.into(), password: PASSWORD.into(), ..Default::default() });
    req.metadata_mut().insert("user-agent", agent.parse().unwrap());
    if let Some(ip) = forwarded {
        req.metadata_mut().insert("x-forwarded-for", ip.parse().unwrap());
    }
    match app.auth.clone().login(req).await.unwrap().into_inner().result {
        Some(pb::login_response::Result::Tokens(pair)) => pair,
        other => panic!("no tokens: {other:?}"),
    }
}

async fn list_revoke_one_and_revoke_the_others(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    app.verified_user("ann@example.com").await;
    let laptop = login_as(&app, "ann@example.com", "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0", None).await;
    let phone = login_as(&app, "ann@example.com", "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0) Safari/604.1", None).await;
    let tablet = login_as(&app, "ann@example.com", "Mozilla/5.0 (iPad) Safari/604.1", None).await;

    let sessions = list(&app, &laptop.access_token).await;
    assert_eq!(sessions.len(), 3);
    let current: Vec<_> = sessions.iter().filter(|s| s.current).map(|s| s.session_id.clone()).collect();
    assert_eq!(current, std::slice::from_ref(&laptop.session_id));
    let laptop_row = sessions.iter().find(|s| s.session_id == laptop.session_id).unwrap();
    assert_eq!(laptop_row.device, "Firefox on Linux");
    assert_eq!(laptop_row.client_ip, "127.0.0.1");
    assert!(laptop_row.created_at.is_some() && laptop_row.last_used_at.is_some() && laptop_row.expires_at.is_some());

    let revoke = pb::RevokeSessionRequest { session_id: phone.session_id.clone() };
    app.sessions.clone().revoke_session(authed(revoke, &laptop.access_token)).await.unwrap();
    assert_error(app.validate(&phone.access_token).await, Code::Unauthenticated, "TOKEN_REVOKED");
    assert_error(app.refresh(&phone.refresh_token).await, Code::Unauthenticated, "TOKEN_REVOKED");
    assert_eq!(list(&app, &laptop.access_token).await.len(), 2);

    let mut sessions = app.sessions.clone();
    let others = sessions.revoke_other_sessions(authed(pb::RevokeOtherSessionsRequest {}, &laptop.access_token)).await;
    assert_eq!(others.unwrap().into_inner().revoked_count, 1);
    assert_error(app.validate(&tablet.access_token).await, Code::Unauthenticated, "TOKEN_REVOKED");
    let left = list(&app, &laptop.access_token).await;
    assert_eq!(left.iter().map(|s| s.session_id.clone()).collect::<Vec<_>>(), std::slice::from_ref(&laptop.session_id));
    app.validate(&laptop.access_token).await.unwrap();
}

/// A user cannot list or revoke another user's session: NOT_FOUND, no leak.
async fn another_users_session_is_not_found(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    let ann = app.user_session("ann@example.com").await;
    let bob = app.user_session("bob@example.com").await;
    assert!(list(&app, &ann.access_token).await.iter().all(|s| s.session_id != bob.session_id));
    let revoke = pb::RevokeSessionRequest { session_id: bob.session_id.clone() };
    assert_error(
        app.sessions.clone().revoke_session(authed(revoke, &ann.access_token)).await,
        Code::NotFound,
        "NOT_FOUND",
    );
    let unknown = pb::RevokeSessionRequest { session_id: uuid::Uuid::now_v7().to_string() };
    assert_error(
        app.sessions.clone().revoke_session(authed(unknown, &ann.access_token)).await,
        Code::NotFound,
        "NOT_FOUND",
    );
    app.validate(&bob.access_token).await.unwrap();
}

/// OWASP ASVS 5.0 V7.3.1 (idle timeout), V7.3.2 / V10.4.8 (absolute lifetime).
async fn idle_and_absolute_lifetimes_end_sessions(mode: Mode) {
    // Every step that must succeed has seconds to spare on a loaded machine;
    // every step that must fail waits for the expiry the server reported.
    let app = TestApp::spawn_with(mode, |c| {
        c.access_token_ttl = Duration::from_secs(3);
        c.refresh_token_ttl = Duration::from_secs(4); // the idle timeout
        c.session_lifetime = Duration::from_secs(7);
    })
    .await;
    app.verified_user("cy@example.com").await;
    let idle = app.login("cy@example.com", PASSWORD).await.unwrap();
    let mut active = app.login("cy@example.com", PASSWORD).await.unwrap();
    // Refreshed every 1.5 s, the active session outlives the 4 s idle timeout.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        active = app.refresh(&active.refresh_token).await.unwrap();
    }
    // The last refresh, 4.5 s in, would give its token 4 s more: past the
    // absolute end, so it is capped there.
    let session = list(&app, &active.access_token)
        .await
        .into_iter()
        .find(|s| s.session_id == active.session_id)
        .expect("the active session is listed");
    let (exp, end) = (active.refresh_token_expires_at.unwrap(), session.absolute_expires_at.unwrap());
    assert!(exp.seconds <= end.seconds, "refresh expiry {exp:?} must be capped at the absolute end {end:?}");
    // The idle session's refresh token has expired.
    sleep_past(idle.refresh_token_expires_at.as_ref()).await;
    assert_error(app.refresh(&idle.refresh_token).await, Code::Unauthenticated, "TOKEN_EXPIRED");
    // And the active one ends at the absolute end, however active.
    sleep_past(Some(&end)).await;
    assert_error(app.refresh(&active.refresh_token).await, Code::Unauthenticated, "TOKEN_EXPIRED");
}

async fn forwarded_for_is_believed_only_from_trusted_proxies(mode: Mode) {
    // An untrusted peer's header is ignored.
    let app = TestApp::spawn(mode).await;
    app.verified_user("di@example.com").await;
    let pair = login_as(&app, "di@example.com", "curl/8", Some("203.0.113.5")).await;
    let ip = list(&app, &pair.access_token).await[0].client_ip.clone();
    assert_eq!(ip, "127.0.0.1", "x-forwarded-for from an untrusted peer must be ignored");

    // Behind a trusted proxy (here: the test itself, on loopback) it is believed.
    let app = TestApp::spawn_with(mode, |c| c.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()]).await;
    app.verified_user("di@example.com").await;
    let pair = login_as(&app, "di@example.com", "curl/8", Some("203.0.113.5, 10.9.9.9")).await;
    let ip = list(&app, &pair.access_token).await[0].client_ip.clone();
    assert_eq!(ip, "10.9.9.9", "the rightmost untrusted hop is the client");
    let app = TestApp::spawn_with(mode, |c| {
        c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap(), "10.0.0.0/8".parse().unwrap()]
    })
    .await;
    app.verified_user("di@example.com").await;
    let pair = login_as(&app, "di@example.com", "curl/8", Some("203.0.113.5, 10.9.9.9")).await;
    assert_eq!(list(&app, &pair.access_token).await[0].client_ip, "203.0.113.5");
}
