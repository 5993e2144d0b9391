//! Accepting and serving connections, with the limits tonic's own server
//! cannot set: a cap on open connections and an idle timeout that closes a
//! connection with no open stream (a GOAWAY first, so a client that was
//! about to start a call knows to reconnect rather than see it fail). The
//! HTTP/2 settings (stream limit, keepalive pings) go to hyper, and every
//! request passes the [`Guard`] first.
//!
//! On shutdown the listener closes at once, every connection gets a GOAWAY,
//! and in-flight calls have one request timeout to finish.

use std::convert::Infallible;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;
use tonic::codegen::Service;
use tonic::codegen::http::{Request, Response};
use tonic::transport::server::TcpConnectInfo;

use crate::guard::{Guard, Limited, Streams};
use crate::limits::ServerLimits;

/// Pause after a failed accept (out of file descriptors, say), so the loop
/// does not spin while the cause lasts.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves `routes` on `listener` under `limits` until `shutdown` completes,
/// then drains the open connections.
pub(crate) async fn serve<S>(
    listener: TcpListener,
    routes: S,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()> + Send,
) where
    S: Service<Request<Limited<Incoming>>, Response = Response<tonic::body::Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let mut http = http2::Builder::new(TokioExecutor::new());
    http.timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_concurrent_streams)
        .keep_alive_interval(limits.keepalive_interval)
        .keep_alive_timeout(limits.keepalive_timeout);
    let requests = Arc::new(Semaphore::new(limits.max_concurrent_requests));
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    // Every connection holds a receiver; the sender says "shut down" and
    // then waits for them all to be dropped.
    let (stop, stopped) = watch::channel(());
    let mut last_refusal_logged: Option<Instant> = None;

    let mut shutdown = pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        let Ok(permit) = Arc::clone(&connections).try_acquire_owned() else {
            // Logged at most once a second: a flood must not flood the log too.
            if last_refusal_logged.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
                tracing::warn!(max = limits.max_connections, "connection refused: too many open connections");
                last_refusal_logged = Some(Instant::now());
            }
            drop(stream);
            continue;
        };
        let connect_info = TcpConnectInfo { local_addr: stream.local_addr().ok(), remote_addr: Some(peer) };
        let streams = Streams::new();
        let guard = Guard::new(
            routes.clone(),
            Arc::clone(&requests),
            limits.request_timeout,
            limits.max_message_bytes,
            Arc::clone(&streams),
            connect_info,
        );
        tokio::spawn(connection(stream, http.clone(), guard, streams, limits, stopped.clone(), permit));
    }
    drop(listener);
    drop(stopped);
    let _ = stop.send(());
    stop.closed().await;
}

/// Serves one connection until the client closes it, it has been idle for
/// the idle timeout, or the server shuts down.
async fn connection<S>(
    stream: TcpStream,
    http: http2::Builder<TokioExecutor>,
    guard: Guard<S>,
    streams: Arc<Streams>,
    limits: ServerLimits,
    mut stop: watch::Receiver<()>,
    _permit: OwnedSemaphorePermit,
) where
    S: Service<Request<Limited<Incoming>>, Response = Response<tonic::body::Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    // gRPC calls are small request/response pairs: Nagle's delay only adds latency.
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, "cannot set TCP_NODELAY");
    }
    let mut conn = pin!(http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(guard)));
    let why = tokio::select! {
        result = conn.as_mut() => {
            if let Err(error) = result {
                tracing::debug!(%error, "connection ended with an error");
            }
            return;
        }
        () = streams.idle(limits.idle_timeout) => "idle",
        _ = stop.changed() => "shutdown",
    };
    tracing::debug!(why, "closing connection");
    conn.as_mut().graceful_shutdown();
    match tokio::time::timeout(limits.request_timeout, conn).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::debug!(%error, "connection ended with an error"),
        Err(_) => tracing::debug!("connection still busy after its grace period; dropped"),
    }
}
