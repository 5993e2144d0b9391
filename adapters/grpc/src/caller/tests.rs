#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, TimeDelta, Utc};
use gatehouse_application::ports::clock::Clock;
use gatehouse_application::ports::denylist::{DenyEntry, DenyKey, Denylist};
use gatehouse_application::ports::tokens::{AccessTokenSigner, AccessTokenVerifier, PublicJwk};
use gatehouse_application::testing::{FakeDenylist, FakeTokens, FixedClock};
use gatehouse_domain::{SessionId, TokenId, UserId};
use tonic::{Code, Status};
use tonic_types::StatusExt;
use uuid::Uuid;

use super::*;
use crate::IpNet;

/// A handler that records the caller each request reached it with.
#[derive(Clone, Default)]
struct Handler(Arc<Mutex<Vec<Option<Caller>>>>);

impl Handler {
    fn seen(&self) -> Vec<Option<Caller>> {
        self.0.lock().unwrap().clone()
    }
}

impl Service<http::Request<()>> for Handler {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<()>) -> Self::Future {
        // Read the way a handler does: through tonic's request.
        let mut request = Request::from_http(request);
        self.0.lock().unwrap().push(Caller::take(&mut request).ok());
        std::future::ready(Ok(http::Response::new(Body::default())))
    }
}

/// The fake tokens, counting every verification.
#[derive(Default)]
struct CountingTokens {
    tokens: FakeTokens,
    verified: AtomicUsize,
}

impl std::fmt::Debug for CountingTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CountingTokens").field("verified", &self.verified).finish_non_exhaustive()
    }
}

impl AccessTokenVerifier for CountingTokens {
    fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<AccessClaims, TokenRejection> {
        self.verified.fetch_add(1, Ordering::Relaxed);
        self.tokens.verify(token, now)
    }

    fn public_keys(&self) -> Vec<PublicJwk> {
        self.tokens.public_keys()
    }
}

struct Fixture {
    tokens: Arc<CountingTokens>,
    denylist: Arc<FakeDenylist>,
    clock: Arc<FixedClock>,
    identify: Identify,
}

impl Fixture {
    fn new() -> Self {
        Self::trusting(&[])
    }

    fn trusting(proxies: &[&str]) -> Self {
        let tokens = Arc::new(CountingTokens::default());
        let denylist = Arc::new(FakeDenylist::default());
        let clock = Arc::new(FixedClock::new());
        let validate = ValidateToken::new(tokens.clone(), denylist.clone(), clock.clone());
        let policy = ClientIpPolicy::new(proxies.iter().map(|p| p.parse::<IpNet>().unwrap()).collect());
        Self { tokens, denylist, clock, identify: Identify::new(policy, validate) }
    }

    fn claims(&self) -> AccessClaims {
        let now = self.clock.now();
        AccessClaims {
            user_id: UserId::from_uuid(Uuid::from_u128(1)),
            session_id: SessionId::from_uuid(Uuid::from_u128(2)),
            token_id: TokenId::from_uuid(Uuid::from_u128(3)),
            issued_at: now,
            expires_at: now + TimeDelta::minutes(15),
            organization_id: None,
            role: None,
            permissions: Vec::new(),
            scopes: Vec::new(),
        }
    }

    fn token(&self) -> String {
        self.tokens.tokens.sign(&self.claims()).unwrap()
    }

    fn verified(&self) -> usize {
        self.tokens.verified.load(Ordering::Relaxed)
    }
}

fn request(peer: &str, headers: &[(&'static str, &str)]) -> http::Request<()> {
    let mut request = http::Request::new(());
    for (name, value) in headers {
        request.headers_mut().append(*name, value.parse().unwrap());
    }
    let remote_addr = Some(SocketAddr::new(peer.parse().unwrap(), 50_000));
    request.extensions_mut().insert(TcpConnectInfo { local_addr: None, remote_addr });
    request
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// Sends `request` through `service` the way the transport does.
async fn send(service: &mut WithCaller<Handler>, request: http::Request<()>) -> http::Response<Body> {
    std::future::poll_fn(|cx| service.poll_ready(cx)).await.unwrap();
    service.call(request).await.unwrap()
}

/// The status of a refused request, which the handler never saw.
#[track_caller]
fn refused(response: &http::Response<Body>, reason: &str) -> Status {
    let status = Status::from_header_map(response.headers()).expect("a gRPC status");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert_eq!(status.get_error_details().error_info().unwrap().reason, reason, "{status:?}");
    status
}

fn cause(status: &Status) -> String {
    status.get_error_details().error_info().unwrap().metadata["cause"].clone()
}

#[test]
fn bearer_scheme_is_case_insensitive_and_required() {
    let with_auth = |value: &str| {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", value.parse().unwrap());
        headers
    };
    assert_eq!(bearer_token(&with_auth("Bearer abc")), Some("abc"));
    assert_eq!(bearer_token(&with_auth("bearer abc")), Some("abc"));
    assert_eq!(bearer_token(&with_auth("Basic abc")), None);
    assert_eq!(bearer_token(&with_auth("Bearer ")), None);
    assert_eq!(bearer_token(&HeaderMap::new()), None);
}

#[tokio::test]
async fn a_request_without_a_token_has_an_anonymous_caller() {
    let f = Fixture::new();
    let handler = Handler::default();
    let mut service = f.identify.anonymous(handler.clone());
    let headers = [("user-agent", "grpcurl/1.9")];
    assert_eq!(send(&mut service, request("203.0.113.9", &headers)).await.status(), http::StatusCode::OK);
    let caller = handler.seen().pop().flatten().expect("the handler sees its caller");
    assert!(caller.user.is_none());
    assert_eq!(caller.client, ClientInfo::new(Some("grpcurl/1.9"), Some("203.0.113.9".into())));
}

/// `Logout` takes a revoked Bearer token, and nothing else on such a service
/// needs one: the token is neither checked nor refused there.
#[tokio::test]
async fn an_anonymous_service_never_validates_a_token() {
    let f = Fixture::new();
    f.denylist.set_down(true);
    let handler = Handler::default();
    let mut service = f.identify.anonymous(handler.clone());
    for token in [f.token(), "garbage".to_owned(), "x".repeat(MAX_ACCESS_TOKEN_BYTES + 1)] {
        let response = send(&mut service, request("203.0.113.9", &[("authorization", &bearer(&token))])).await;
        assert_eq!(response.status(), http::StatusCode::OK);
    }
    let seen = handler.seen();
    assert_eq!(seen.len(), 3);
    assert!(seen.iter().all(|caller| caller.as_ref().is_some_and(|c| c.user.is_none())), "{seen:?}");
    assert_eq!(f.verified(), 0, "no token is checked");
}

#[tokio::test]
async fn a_valid_token_names_the_signed_in_user() {
    let f = Fixture::new();
    let handler = Handler::default();
    let mut service = f.identify.signed_in(handler.clone());
    let auth = bearer(&f.token());
    send(&mut service, request("203.0.113.9", &[("authorization", &auth)])).await;
    let caller = handler.seen().pop().flatten().expect("the handler sees its caller");
    assert_eq!(caller.client.ip.as_deref(), Some("203.0.113.9"));
    let (user, _) = caller.signed_in().unwrap();
    assert_eq!(user, f.claims());
    assert_eq!(f.verified(), 1, "one check per request");
}

#[tokio::test]
async fn a_signed_in_service_refuses_a_request_without_a_bearer_token() {
    let f = Fixture::new();
    let handler = Handler::default();
    let mut service = f.identify.signed_in(handler.clone());
    refused(&send(&mut service, request("203.0.113.9", &[])).await, "UNAUTHENTICATED");
    let basic = [("authorization", "Basic YW5uOmh1bnRlcjI=")];
    refused(&send(&mut service, request("203.0.113.9", &basic)).await, "UNAUTHENTICATED");
    assert!(handler.seen().is_empty(), "a refused request never reaches the handler");
}

#[tokio::test]
async fn too_long_or_malformed_tokens_are_refused_as_malformed() {
    let f = Fixture::new();
    let handler = Handler::default();
    let mut service = f.identify.signed_in(handler.clone());
    let long = "x".repeat(MAX_ACCESS_TOKEN_BYTES + 1);
    let response = send(&mut service, request("203.0.113.9", &[("authorization", &bearer(&long))])).await;
    assert_eq!(cause(&refused(&response, "TOKEN_INVALID")), "malformed");
    assert_eq!(f.verified(), 0, "a token too long to be genuine is refused before any check");

    let response = send(&mut service, request("203.0.113.9", &[("authorization", "Bearer garbage")])).await;
    assert_eq!(cause(&refused(&response, "TOKEN_INVALID")), "malformed");
    assert_eq!(f.verified(), 1);
    assert!(handler.seen().is_empty());
}

#[tokio::test]
async fn revoked_and_expired_tokens_are_refused_and_an_outage_fails_closed() {
    let f = Fixture::new();
    let handler = Handler::default();
    let mut service = f.identify.signed_in(handler.clone());
    let auth = bearer(&f.token());

    f.denylist.set_down(true);
    let response = send(&mut service, request("203.0.113.9", &[("authorization", &auth)])).await;
    let status = Status::from_header_map(response.headers()).unwrap();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    f.denylist.set_down(false);
    // After an outage the denylist answers only once it has been rebuilt.
    f.denylist.mark_rebuilt();

    let until = f.clock.now() + TimeDelta::hours(1);
    f.denylist.deny(&[DenyEntry { key: DenyKey::Session(f.claims().session_id), until }], f.clock.now()).await.unwrap();
    refused(&send(&mut service, request("203.0.113.9", &[("authorization", &auth)])).await, "TOKEN_REVOKED");

    f.denylist.clear();
    f.clock.advance(TimeDelta::hours(1));
    refused(&send(&mut service, request("203.0.113.9", &[("authorization", &auth)])).await, "TOKEN_EXPIRED");
    assert!(handler.seen().is_empty());
}

#[tokio::test]
async fn forwarded_for_is_believed_only_from_trusted_proxies() {
    let f = Fixture::trusting(&["10.0.0.0/8"]);
    let handler = Handler::default();
    let mut service = f.identify.anonymous(handler.clone());
    let forwarded = [("x-forwarded-for", "198.51.100.1, 10.0.0.3")];
    send(&mut service, request("10.0.0.2", &forwarded)).await;
    send(&mut service, request("203.0.113.9", &forwarded)).await;
    let ips: Vec<_> = handler.seen().into_iter().map(|c| c.unwrap().client.ip).collect();
    assert_eq!(ips, [Some("198.51.100.1".to_owned()), Some("203.0.113.9".to_owned())]);
}

#[test]
fn a_request_that_skipped_the_layer_has_no_caller() {
    let mut request = Request::new(());
    assert!(matches!(Caller::take(&mut request), Err(AppError::Internal(_))));
    let anonymous = Caller { client: ClientInfo::default(), user: None };
    assert!(matches!(anonymous.signed_in(), Err(AppError::Unauthenticated)));
}

#[test]
fn a_wrapped_service_keeps_its_name() {
    use crate::pb::user_service_server::UserServiceServer;
    assert_eq!(<WithCaller<UserServiceServer<crate::UserApi>> as NamedService>::NAME, "gatehouse.v1.UserService");
}
