//! The audit trail end to end: what a session's life leaves behind, in
//! order, with actor and address; failed logins; paging that returns every
//! row once. OWASP ASVS 5.0 V16.3.1 (authentication events logged), V16.2.5
//! (no credentials in them).

use gatehouse_grpc::pb;
use gatehouse_grpc::pb::audit_service_client::AuditServiceClient;
use tonic::Code;

use crate::harness::{Mode, TestApp, assert_error, authed};

crate::in_both_modes!(a_session_life_leaves_its_audit_trail_in_order);

/// Every page of the caller's audit trail, `size` rows at a time, newest first.
async fn all_pages(app: &TestApp, access: &str, size: i32) -> (Vec<pb::AuditEvent>, usize) {
    let mut client = AuditServiceClient::new(app.channel.clone());
    let (mut events, mut pages, mut token) = (Vec::new(), 0, String::new());
    loop {
        let req = authed(
            pb::ListAuditEventsRequest { page_size: size, page_token: token.clone(), ..Default::default() },
            access,
        );
        let page = client.list_audit_events(req).await.unwrap().into_inner();
        assert!(page.events.len() <= usize::try_from(size).unwrap());
        events.extend(page.events);
        pages += 1;
        if page.next_page_token.is_empty() {
            return (events, pages);
        }
        token = page.next_page_token;
    }
}

async fn a_session_life_leaves_its_audit_trail_in_order(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    let user_id = app.verified_user("ann@example.com").await;
    assert_error(app.login("ann@example.com", "not the password").await, Code::Unauthenticated, "INVALID_CREDENTIALS");
    let here = app.login("ann@example.com", "correct horse battery").await.unwrap();
    let there = app.login("ann@example.com", "correct horse battery").await.unwrap();
    let revoke = pb::RevokeSessionRequest { session_id: there.session_id.clone() };
    app.sessions.clone().revoke_session(authed(revoke, &here.access_token)).await.unwrap();
    let third = app.login("ann@example.com", "correct horse battery").await.unwrap();
    let others = authed(pb::RevokeOtherSessionsRequest {}, &here.access_token);
    app.sessions.clone().revoke_other_sessions(others).await.unwrap();
    app.validate(&third.access_token).await.unwrap_err();

    let (events, pages) = all_pages(&app, &here.access_token, 3).await;
    assert!(pages >= 3, "three rows a page must take several pages");
    let kinds: Vec<&str> = events.iter().rev().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "user.signed_up",
            "email.verified",
            "login.failed",
            "login.succeeded",
            "login.succeeded",
            "session.revoked",
            "login.succeeded",
            "session.revoked_others",
        ]
    );
    let ids: std::collections::HashSet<_> = events.iter().map(|e| e.event_id.clone()).collect();
    assert_eq!(ids.len(), events.len(), "paging returns every row once");
    let failed = events.iter().find(|e| e.kind == "login.failed").unwrap();
    assert_eq!(failed.outcome, "failure");
    assert_eq!(failed.subject_id, user_id);
    assert_eq!(failed.details.get("reason").map(String::as_str), Some("invalid_credentials"));
    let login = events.iter().find(|e| e.kind == "login.succeeded").unwrap();
    assert_eq!((login.actor_id.as_str(), login.client_ip.as_str()), (user_id.as_str(), "127.0.0.1"));
    let revoked = events.iter().find(|e| e.kind == "session.revoked").unwrap();
    assert_eq!(revoked.details.get("session_id"), Some(&there.session_id));
    assert_eq!((revoked.actor_id.as_str(), revoked.client_ip.as_str()), (user_id.as_str(), "127.0.0.1"));
    let others = events.iter().find(|e| e.kind == "session.revoked_others").unwrap();
    assert_eq!(others.client_ip, "127.0.0.1");
    for e in &events {
        assert!(e.details.values().all(|v| !v.contains("correct horse") && !v.contains("not the password")));
    }
}
