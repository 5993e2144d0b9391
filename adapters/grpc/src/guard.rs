//! The limits every request passes before any service sees it: the
//! process-wide count of requests in flight, the time a request may take,
//! and the size of each request message. Each refusal is a gRPC status with
//! an `ErrorInfo` reason, like every other Gatehouse error.
//!
//! [`Guard`] wraps the routed services once per connection, so it also
//! counts the connection's open streams (its idle timer, `connection.rs`)
//! and hands the services the connection's addresses.

use std::collections::HashMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;
use tonic::codegen::http::{HeaderMap, Request, Response};
use tonic::codegen::{BoxFuture, Service};
use tonic::transport::server::TcpConnectInfo;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::error::ERROR_DOMAIN;

/// Boxed errors, as hyper and tonic pass them between bodies.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The per-request limits of one connection, around the routed services `S`.
#[derive(Clone, Debug)]
pub(crate) struct Guard<S> {
    inner: S,
    /// Shared by every connection: the permits of requests in flight.
    requests: Arc<Semaphore>,
    timeout: Duration,
    max_message_bytes: usize,
    streams: Arc<Streams>,
    connect_info: TcpConnectInfo,
}

impl<S> Guard<S> {
    pub(crate) const fn new(
        inner: S,
        requests: Arc<Semaphore>,
        timeout: Duration,
        max_message_bytes: usize,
        streams: Arc<Streams>,
        connect_info: TcpConnectInfo,
    ) -> Self {
        Self { inner, requests, timeout, max_message_bytes, streams, connect_info }
    }
}

impl<S, B> Service<Request<B>> for Guard<S>
where
    S: Service<Request<Limited<B>>, Response = Response<tonic::body::Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Body<Data = Bytes> + Unpin + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<Tracked>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Readiness is checked on the clone that serves each call, below.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let stream = self.streams.open();
        // Refused at once rather than queued: a queue only moves the memory,
        // and a client told to retry can go to another replica.
        let Ok(permit) = Arc::clone(&self.requests).try_acquire_owned() else {
            tracing::debug!("request refused: too many requests in flight");
            return Box::pin(std::future::ready(Ok(answer(busy(), stream))));
        };
        let deadline = client_timeout(request.headers()).map_or(self.timeout, |t| t.min(self.timeout));
        let mut request = request.map(|body| Limited::new(body, self.max_message_bytes));
        request.extensions_mut().insert(self.connect_info.clone());
        let mut inner = self.inner.clone();
        Box::pin(async move {
            let call = async move {
                std::future::poll_fn(|cx| inner.poll_ready(cx)).await?;
                inner.call(request).await
            };
            let response = match tokio::time::timeout(deadline, call).await {
                Ok(Ok(response)) => response,
                Ok(Err(never)) => match never {},
                Err(_) => {
                    tracing::debug!(?deadline, "request timed out");
                    timed_out().into_http()
                }
            };
            drop(permit);
            Ok(response.map(|body| Tracked { body, _stream: stream }))
        })
    }
}

fn answer(status: Status, stream: OpenStream) -> Response<Tracked> {
    status.into_http::<tonic::body::Body>().map(|body| Tracked { body, _stream: stream })
}

fn refusal(
    code: Code,
    message: &str,
    reason: &str,
    metadata: HashMap<String, String>,
    retry: Option<Duration>,
) -> Status {
    let mut details = ErrorDetails::new();
    details.set_error_info(reason, ERROR_DOMAIN, metadata);
    if retry.is_some() {
        details.set_retry_info(retry);
    }
    Status::with_error_details(code, message, details)
}

/// Every permit taken: `RESOURCE_EXHAUSTED`, try again in a second.
fn busy() -> Status {
    refusal(Code::ResourceExhausted, "the server is busy", "SERVER_BUSY", HashMap::new(), Some(Duration::from_secs(1)))
}

/// The request outlived the server's timeout or the client's deadline.
fn timed_out() -> Status {
    refusal(Code::DeadlineExceeded, "the request took too long", "DEADLINE_EXCEEDED", HashMap::new(), None)
}

/// A request message longer than the limit.
fn too_large(limit: usize) -> Status {
    let metadata = HashMap::from([("max_bytes".to_owned(), limit.to_string())]);
    refusal(Code::ResourceExhausted, "the request message is too large", "MESSAGE_TOO_LARGE", metadata, None)
}

/// The client's `grpc-timeout` header (digits and a unit), if it sent a
/// usable one; a malformed one is ignored, as the server's own timeout still
/// bounds the request.
fn client_timeout(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get("grpc-timeout")?.to_str().ok()?;
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// The open streams of one connection and when the last one ended.
#[derive(Debug)]
pub(crate) struct Streams {
    state: Mutex<(usize, Instant)>,
    changed: Notify,
}

impl Streams {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self { state: Mutex::new((0, Instant::now())), changed: Notify::new() })
    }

    fn open(self: &Arc<Self>) -> OpenStream {
        self.update(|open| open + 1);
        OpenStream(Arc::clone(self))
    }

    fn update(&self, f: impl FnOnce(usize) -> usize) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        *state = (f(state.0), Instant::now());
        drop(state);
        self.changed.notify_one();
    }

    /// Completes once the connection has had no open stream for `timeout`.
    pub(crate) async fn idle(&self, timeout: Duration) {
        loop {
            let (open, since) = *self.state.lock().unwrap_or_else(PoisonError::into_inner);
            if open > 0 {
                self.changed.notified().await;
                continue;
            }
            tokio::select! {
                () = tokio::time::sleep_until(since + timeout) => {
                    let (open, last) = *self.state.lock().unwrap_or_else(PoisonError::into_inner);
                    if open == 0 && last == since {
                        return;
                    }
                }
                () = self.changed.notified() => {}
            }
        }
    }
}

/// One open stream, counted until its response body is done or dropped.
#[derive(Debug)]
pub(crate) struct OpenStream(Arc<Streams>);

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.update(|open| open.saturating_sub(1));
    }
}

/// A response body that keeps its stream counted as open while it is sent.
#[derive(Debug)]
pub(crate) struct Tracked {
    body: tonic::body::Body,
    _stream: OpenStream,
}

impl Body for Tracked {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A request body whose gRPC messages may not be longer than a limit. The
/// check reads each message's 5-byte length prefix as it arrives, so a
/// message announced too long is refused before its bytes are buffered; the
/// refusal is a [`Status`], which tonic hands to the caller as it is.
#[derive(Debug)]
pub(crate) struct Limited<B> {
    body: B,
    limit: usize,
    prefix: [u8; 5],
    prefix_len: usize,
    /// Bytes of the current message still to come.
    remaining: usize,
    failed: bool,
}

impl<B> Limited<B> {
    const fn new(body: B, limit: usize) -> Self {
        Self { body, limit, prefix: [0; 5], prefix_len: 0, remaining: 0, failed: false }
    }

    /// Follows the message framing through `data`; false once a message
    /// longer than the limit is announced.
    fn accept(&mut self, mut data: &[u8]) -> bool {
        while !data.is_empty() {
            if self.remaining > 0 {
                let n = self.remaining.min(data.len());
                self.remaining -= n;
                data = &data[n..];
                continue;
            }
            let n = (5 - self.prefix_len).min(data.len());
            self.prefix[self.prefix_len..self.prefix_len + n].copy_from_slice(&data[..n]);
            self.prefix_len += n;
            data = &data[n..];
            if self.prefix_len == 5 {
                let [_, a, b, c, d] = self.prefix;
                let len = usize::try_from(u32::from_be_bytes([a, b, c, d])).unwrap_or(usize::MAX);
                if len > self.limit {
                    return false;
                }
                self.remaining = len;
                self.prefix_len = 0;
            }
        }
        true
    }
}

impl<B> Body for Limited<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.failed {
            return Poll::Ready(None);
        }
        let frame = match ready!(Pin::new(&mut self.body).poll_frame(cx)) {
            Some(Ok(frame)) => frame,
            Some(Err(error)) => return Poll::Ready(Some(Err(error.into()))),
            None => return Poll::Ready(None),
        };
        if let Some(data) = frame.data_ref() {
            let data = data.clone();
            if !self.accept(&data) {
                self.failed = true;
                return Poll::Ready(Some(Err(Box::new(too_large(self.limit)))));
            }
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.failed || self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn framed(len: u32) -> Vec<u8> {
        let mut v = vec![0];
        v.extend_from_slice(&len.to_be_bytes());
        v.extend(std::iter::repeat_n(7, usize::try_from(len).unwrap()));
        v
    }

    /// OWASP ASVS 5.0 V15.2.2: a message over the limit is refused from its
    /// length prefix alone, however the bytes are split into frames.
    #[test]
    fn message_length_is_checked_across_frame_boundaries() {
        let mut stream = framed(10);
        stream.extend(framed(16));
        stream.extend(framed(17));
        for split in 1..8 {
            let mut limited = Limited::new((), 16);
            let chunks: Vec<_> = stream.chunks(split).collect();
            let refused_at = chunks.iter().position(|c| !limited.accept(c));
            // The third prefix ends at byte 15 + 21 + 5 = 41.
            assert_eq!(refused_at, Some(40 / split), "split {split}");
        }
    }

    #[test]
    fn messages_within_the_limit_pass() {
        let mut limited = Limited::new((), 16);
        let mut stream = framed(0);
        stream.extend(framed(16));
        assert!(limited.accept(&stream));
    }

    #[test]
    fn client_timeouts_in_every_unit_and_junk_ignored() {
        let timeout = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert("grpc-timeout", v.parse().unwrap());
            client_timeout(&h)
        };
        assert_eq!(timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(timeout("150m"), Some(Duration::from_millis(150)));
        assert_eq!(timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(timeout("5u"), Some(Duration::from_micros(5)));
        assert_eq!(timeout("S"), None);
        assert_eq!(timeout("12x"), None);
        assert_eq!(timeout("123456789S"), None);
    }

    #[test]
    fn refusals_carry_their_reasons() {
        let reason = |s: &Status| s.get_details_error_info().unwrap().reason;
        assert_eq!((busy().code(), reason(&busy()).as_str()), (Code::ResourceExhausted, "SERVER_BUSY"));
        assert!(busy().get_details_retry_info().is_some());
        assert_eq!((timed_out().code(), reason(&timed_out()).as_str()), (Code::DeadlineExceeded, "DEADLINE_EXCEEDED"));
        let large = too_large(64);
        assert_eq!((large.code(), reason(&large).as_str()), (Code::ResourceExhausted, "MESSAGE_TOO_LARGE"));
    }
}
