//! The verified-token cache seen from outside: a token answered from the
//! cache is refused on the very next call once revoked, by `ValidateToken`
//! and by the caller layer of every authenticated RPC alike (OWASP ASVS 5.0
//! V7.4.1: revocation takes effect at once), and turning the cache off
//! changes no answer.

use tonic::Code;

use crate::harness::{Mode, TestApp, assert_error, authed};
use gatehouse_grpc::pb;

crate::in_both_modes!(asvs_7_4_1_a_cached_token_is_refused_on_the_call_after_its_logout);

async fn asvs_7_4_1_a_cached_token_is_refused_on_the_call_after_its_logout(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    let pair = app.user_session("cached@example.com").await;
    let first = app.validate(&pair.access_token).await.unwrap();
    // Answered from the cache this time, with the same claims.
    assert_eq!(app.validate(&pair.access_token).await.unwrap(), first);
    app.user.clone().get_me(authed(pb::GetMeRequest {}, &pair.access_token)).await.unwrap();

    app.logout_bearer(&pair.access_token).await.unwrap();
    assert_error(app.validate(&pair.access_token).await, Code::Unauthenticated, "TOKEN_REVOKED");
    let refused = app.user.clone().get_me(authed(pb::GetMeRequest {}, &pair.access_token)).await;
    assert_error(refused, Code::Unauthenticated, "TOKEN_REVOKED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_cache_off_tokens_validate_and_revoke_as_before() {
    let app = TestApp::spawn_with(Mode::Embedded, |c| c.token_cache_size = 0).await;
    let pair = app.user_session("uncached@example.com").await;
    app.validate(&pair.access_token).await.unwrap();
    app.validate(&pair.access_token).await.unwrap();
    app.logout_bearer(&pair.access_token).await.unwrap();
    assert_error(app.validate(&pair.access_token).await, Code::Unauthenticated, "TOKEN_REVOKED");
}
