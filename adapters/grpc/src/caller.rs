//! Who calls: the client's address and user agent and, on services that
//! serve signed-in users only, the claims of a validated Bearer token.
//!
//! [`Identify`] finds the [`Caller`] of every request before the handler
//! runs (and before the message is decoded): it wraps a generated service
//! in [`WithCaller`], which puts the caller in the request's extensions, or
//! answers a signed-in-only service's request without a usable token itself,
//! with the same status a handler would have sent. Handlers take the caller
//! with [`Caller::take`] or [`signed_in`]; none of them reads `authorization`
//! or the client's address on its own. (`Logout` reads the Bearer token too,
//! as the session to end rather than as an identity: a revoked token may
//! still log out.)

use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use gatehouse_application::auth::ValidateToken;
use gatehouse_application::{AppError, TokenRejection};
use gatehouse_domain::{AccessClaims, ClientInfo, OrganizationId};
use tonic::Request;
use tonic::body::Body;
use tonic::codegen::http::{self, Extensions, HeaderMap};
use tonic::codegen::{BoxFuture, Service};
use tonic::server::NamedService;
use tonic::transport::server::TcpConnectInfo;

use crate::client_ip::ClientIpPolicy;
use crate::error::status;

/// Longest access token accepted before any signature check; real ones are
/// a few hundred bytes.
pub(crate) const MAX_ACCESS_TOKEN_BYTES: usize = 8 * 1024;

/// The caller of one request, as [`Identify`] found it.
#[derive(Clone, Debug)]
pub(crate) struct Caller {
    /// Where the request came from (behind trusted proxies) and its user agent.
    pub(crate) client: ClientInfo,
    /// The signed-in user: always there on a service wrapped with
    /// [`Identify::signed_in`] (other requests never reach it), never on one
    /// wrapped with [`Identify::anonymous`].
    pub(crate) user: Option<AccessClaims>,
}

impl Caller {
    /// Takes the caller off `request`.
    ///
    /// # Errors
    /// [`AppError::Internal`] when the service was served without [`WithCaller`].
    pub(crate) fn take<T>(request: &mut Request<T>) -> Result<Self, AppError> {
        request
            .extensions_mut()
            .remove::<Self>()
            .ok_or_else(|| AppError::Internal("request reached its handler without a caller".into()))
    }

    /// The signed-in user and the client.
    ///
    /// # Errors
    /// [`AppError::Unauthenticated`] when no user signed in, which on a
    /// service not wrapped with [`Identify::signed_in`] is a wiring mistake
    /// that fails closed.
    pub(crate) fn signed_in(self) -> Result<(AccessClaims, ClientInfo), AppError> {
        let user = self.user.ok_or(AppError::Unauthenticated)?;
        Ok((user, self.client))
    }
}

/// The signed-in user of `request`, for the handlers of signed-in-only services.
///
/// # Errors
/// As [`Caller::take`] and [`Caller::signed_in`].
pub(crate) fn signed_in<T>(request: &mut Request<T>) -> Result<AccessClaims, AppError> {
    Caller::take(request)?.signed_in().map(|(user, _)| user)
}

/// Refuses a token issued for another organization than `org`, the one a
/// request acts in (see [`AccessClaims::may_act_in`]); the same answer whether
/// or not `org` exists.
///
/// # Errors
/// `PERMISSION_DENIED` (`TOKEN_FOR_ANOTHER_ORGANIZATION`).
pub(crate) fn acting_in(claims: &AccessClaims, org: OrganizationId) -> Result<(), AppError> {
    if claims.may_act_in(org) {
        Ok(())
    } else {
        Err(AppError::PermissionDenied {
            reason: "TOKEN_FOR_ANOTHER_ORGANIZATION",
            message: "this token was issued for another organization; use one issued for this one, or none",
        })
    }
}

/// Finds callers, one value for the whole server, so every service reads
/// the client's address with the same policy and checks tokens the same way.
#[derive(Clone, Debug)]
pub(crate) struct Identify(Arc<Policy>);

#[derive(Debug)]
struct Policy {
    client_ip: ClientIpPolicy,
    validate: ValidateToken,
}

/// What a wrapped service needs to know of its callers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Need {
    /// The client only; `authorization` is left alone (no token is checked).
    Client,
    /// A signed-in user: a valid Bearer access token.
    User,
}

impl Identify {
    /// Reads client addresses with `client_ip` and checks Bearer tokens with `validate`.
    pub(crate) fn new(client_ip: ClientIpPolicy, validate: ValidateToken) -> Self {
        Self(Arc::new(Policy { client_ip, validate }))
    }

    /// `service`, told each request's client. Tokens are not looked at, so
    /// its requests never wait for a validation.
    pub(crate) fn anonymous<S>(&self, service: S) -> WithCaller<S> {
        WithCaller { inner: service, identify: self.clone(), need: Need::Client }
    }

    /// `service`, for signed-in users only: a request without a valid Bearer
    /// token is refused before it reaches the service.
    pub(crate) fn signed_in<S>(&self, service: S) -> WithCaller<S> {
        WithCaller { inner: service, identify: self.clone(), need: Need::User }
    }

    /// The caller of a request from `peer` with `headers`. The token is
    /// checked first, so a refused request costs no client look-up.
    ///
    /// # Errors
    /// When `need` is [`Need::User`]: [`AppError::Unauthenticated`] without a
    /// Bearer token, [`AppError::InvalidToken`] (malformed) for one over
    /// [`MAX_ACCESS_TOKEN_BYTES`], else whatever [`ValidateToken::execute`]
    /// refuses the token with.
    async fn caller(&self, need: Need, peer: Option<IpAddr>, headers: &HeaderMap) -> Result<Caller, AppError> {
        let user = match need {
            Need::Client => None,
            Need::User => {
                let token = bearer_token(headers).ok_or(AppError::Unauthenticated)?;
                Some(self.0.validate.execute(short_enough(token)?).await?)
            }
        };
        Ok(Caller { client: self.0.client_ip.client_info(peer, headers), user })
    }
}

/// A service whose requests carry their [`Caller`]; made by [`Identify`].
#[derive(Clone, Debug)]
pub(crate) struct WithCaller<S> {
    inner: S,
    identify: Identify,
    need: Need,
}

/// Served under the wrapped service's own name, so routing and health see
/// no difference.
impl<S: NamedService> NamedService for WithCaller<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> Service<http::Request<B>> for WithCaller<S>
where
    S: Service<http::Request<B>, Response = http::Response<Body>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        // The service readied by `poll_ready` serves this request; the clone
        // left behind is readied for the next one (tower's usual rule).
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let identify = self.identify.clone();
        let need = self.need;
        Box::pin(async move {
            let peer = remote_ip(request.extensions());
            let caller = identify.caller(need, peer, request.headers()).await;
            match caller {
                Ok(caller) => {
                    request.extensions_mut().insert(caller);
                    inner.call(request).await
                }
                Err(error) => Ok(status(error).into_http()),
            }
        })
    }
}

/// The TCP peer's address, which the transport records on every request.
fn remote_ip(extensions: &Extensions) -> Option<IpAddr> {
    extensions.get::<TcpConnectInfo>().and_then(TcpConnectInfo::remote_addr).map(|a| a.ip())
}

/// `token`, unless it is too long to be a genuine access token.
///
/// # Errors
/// [`AppError::InvalidToken`] (malformed) for a token over [`MAX_ACCESS_TOKEN_BYTES`].
pub(crate) fn short_enough(token: &str) -> Result<&str, AppError> {
    if token.len() > MAX_ACCESS_TOKEN_BYTES {
        Err(AppError::InvalidToken(TokenRejection::Malformed))
    } else {
        Ok(token)
    }
}

/// The access token in `authorization: Bearer <token>`, if any. The scheme
/// is case-insensitive (RFC 9110 §11.1).
pub(crate) fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests;
