//! The server's resource limits and its answer to undecodable messages,
//! seen from outside over raw HTTP/2: what a hostile client can make one
//! replica hold, and for how long (OWASP ASVS 5.0 V15.2.2, defenses against
//! loss of availability). The limits belong to the transport, not to the
//! store, so these run against the embedded deployment only.

use std::time::{Duration, Instant};

use bytes::Bytes;
use gatehouse_grpc::pb;
use gatehouse_testkit::eventually;
use h2::client::SendRequest;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tonic::codegen::http::{Request, Response};
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::harness::{Mode, TestApp};

const HEALTH_CHECK: &str = "/grpc.health.v1.Health/Check";
const VALIDATE_TOKEN: &str = "/gatehouse.v1.TokenService/ValidateToken";
const SIGN_UP: &str = "/gatehouse.v1.AuthService/SignUp";

/// An HTTP/2 connection to `app` and a task driving it, which returns how
/// long the connection lived once the server closes it.
async fn connect(app: &TestApp) -> (SendRequest<Bytes>, JoinHandle<Duration>) {
    let opened = Instant::now();
    let tcp = TcpStream::connect(app.addr).await.unwrap();
    let (client, connection) = h2::client::handshake(tcp).await.unwrap();
    let driver = tokio::spawn(async move {
        let _ = connection.await;
        opened.elapsed()
    });
    (client, driver)
}

fn grpc_request(app: &TestApp, path: &str) -> Request<()> {
    Request::post(format!("http://{}{path}", app.addr))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap()
}

/// `message` with its gRPC length prefix.
fn framed(message: &[u8]) -> Bytes {
    let mut out = vec![0];
    out.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
    out.extend_from_slice(message);
    out.into()
}

/// Opens a call and sends `body` (already framed); the body stays open
/// unless `end` is set. The returned stream, while alive, keeps it so.
async fn open_call(
    client: &SendRequest<Bytes>,
    request: Request<()>,
    body: Bytes,
    end: bool,
) -> (h2::client::ResponseFuture, h2::SendStream<Bytes>) {
    let mut client = client.clone().ready().await.unwrap();
    let (response, mut send) = client.send_request(request, false).unwrap();
    // A refusal may close the stream before the body is sent: the
    // response then says why, so a failed send is not the test's failure.
    let _ = send.send_data(body, end);
    (response, send)
}

/// The gRPC status of a finished call, from a trailers-only response or the trailers.
async fn status_of(response: Response<h2::RecvStream>) -> Status {
    if let Some(status) = Status::from_header_map(response.headers()) {
        return status;
    }
    let mut body = response.into_body();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.unwrap();
        body.flow_control().release_capacity(chunk.len()).unwrap();
    }
    Status::from_header_map(&body.trailers().await.unwrap().expect("trailers")).expect("grpc-status")
}

async fn call(app: &TestApp, client: &SendRequest<Bytes>, path: &str, message: &[u8]) -> Status {
    let (response, _send) = open_call(client, grpc_request(app, path), framed(message), true).await;
    status_of(response.await.unwrap()).await
}

fn reason(status: &Status) -> String {
    status.get_details_error_info().map(|info| info.reason).unwrap_or_default()
}

/// OWASP ASVS 5.0 V15.2.2: a message over the limit is answered
/// RESOURCE_EXHAUSTED as soon as its length prefix arrives, so a caller
/// cannot make the server buffer it first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_message_is_resource_exhausted_from_its_length_prefix() {
    let app = TestApp::spawn(Mode::Embedded).await;
    let (client, _driver) = connect(&app).await;

    // Refused by its length alone: what the bytes hold does not matter.
    let status = call(&app, &client, VALIDATE_TOKEN, &vec![0; 100 * 1024]).await;
    assert_eq!((status.code(), reason(&status).as_str()), (Code::ResourceExhausted, "MESSAGE_TOO_LARGE"), "{status:?}");

    // Only the prefix of a 10 MiB message, and the body left open: the
    // answer cannot have waited for the bytes.
    let prefix = Bytes::from_static(&[0, 0x00, 0xa0, 0x00, 0x00]);
    let started = Instant::now();
    let (response, _send) = open_call(&client, grpc_request(&app, SIGN_UP), prefix, false).await;
    let status = status_of(response.await.unwrap()).await;
    assert_eq!((status.code(), reason(&status).as_str()), (Code::ResourceExhausted, "MESSAGE_TOO_LARGE"));
    assert!(started.elapsed() < Duration::from_secs(1), "answered after {:?}", started.elapsed());

    // The generated client sees the same, and a message under the limit is
    // judged on its content.
    let big = pb::SignUpRequest { email: "a".repeat(70 * 1024), password: "x".into(), display_name: String::new() };
    let status = app.auth.clone().sign_up(big).await.unwrap_err();
    assert_eq!((status.code(), reason(&status).as_str()), (Code::ResourceExhausted, "MESSAGE_TOO_LARGE"));
    let under = pb::SignUpRequest { email: "a".repeat(60 * 1024), password: "x".into(), display_name: String::new() };
    let status = app.auth.clone().sign_up(under).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
}

/// OWASP ASVS 5.0 V2.2.1 (input is validated) and V16.5.1 (no internal
/// detail in errors): a message that is not valid protobuf is the caller's
/// mistake, INVALID_ARGUMENT with a stable reason, never INTERNAL naming our
/// message types.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_messages_are_invalid_argument_with_a_reason() {
    let app = TestApp::spawn(Mode::Embedded).await;
    let (client, _driver) = connect(&app).await;
    for (what, path, message) in [
        ("invalid UTF-8 in a string", SIGN_UP, &[0x0a, 0x02, 0xc3, 0x28][..]),
        ("a varint where a string belongs", SIGN_UP, &[0x08, 0x01][..]),
        ("a string longer than the message", VALIDATE_TOKEN, &[0x0a, 0x10, b'a'][..]),
        ("invalid UTF-8 in a token", VALIDATE_TOKEN, &[0x0a, 0x01, 0xff][..]),
    ] {
        let status = call(&app, &client, path, message).await;
        assert_eq!((status.code(), reason(&status).as_str()), (Code::InvalidArgument, "MALFORMED_REQUEST"), "{what}");
        assert_eq!(status.get_details_error_info().unwrap().domain, "gatehouse", "{what}");
        let text = status.message();
        assert!(!text.contains("Request") && !text.contains("decode"), "{what}: {text}");
    }
    // The connection and the server are fine afterwards.
    let status = call(&app, &client, HEALTH_CHECK, &[]).await;
    assert_eq!(status.code(), Code::Ok, "{status:?}");
}

/// OWASP ASVS 5.0 V15.2.2: a request that outlives the request timeout, or
/// the client's shorter `grpc-timeout`, is answered DEADLINE_EXCEEDED and
/// its resources freed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_requests_are_deadline_exceeded() {
    let app = TestApp::spawn_with(Mode::Embedded, |c| c.server_limits.request_timeout = Duration::from_secs(1)).await;
    let (client, _driver) = connect(&app).await;

    // A body that never ends keeps the handler waiting.
    let started = Instant::now();
    let (response, _send) = open_call(&client, grpc_request(&app, SIGN_UP), Bytes::new(), false).await;
    let status = status_of(response.await.unwrap()).await;
    let took = started.elapsed();
    assert_eq!((status.code(), reason(&status).as_str()), (Code::DeadlineExceeded, "DEADLINE_EXCEEDED"));
    assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(3), "answered after {took:?}");

    let mut request = grpc_request(&app, SIGN_UP);
    request.headers_mut().insert("grpc-timeout", "200m".parse().unwrap());
    let started = Instant::now();
    let (response, _send) = open_call(&client, request, Bytes::new(), false).await;
    let status = status_of(response.await.unwrap()).await;
    assert_eq!(status.code(), Code::DeadlineExceeded);
    assert!(started.elapsed() < Duration::from_millis(900), "the client's deadline wins: {:?}", started.elapsed());
}

/// OWASP ASVS 5.0 V15.2.2: requests in flight are bounded over the whole
/// process, not per connection; one more is refused at once with RetryInfo
/// rather than queued, and capacity returns when calls end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_past_the_process_limit_are_refused_with_retry_info() {
    let app = TestApp::spawn_with(Mode::Embedded, |c| c.server_limits.max_concurrent_requests = 2).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        // Two calls that hold their permits: their bodies never end.
        let mut held = Vec::new();
        for _ in 0..2 {
            let (client, driver) = connect(&app).await;
            let (response, send) = open_call(&client, grpc_request(&app, SIGN_UP), Bytes::new(), false).await;
            held.push((client, driver, response, send));
        }
        // Under load a held call's headers can reach the server after the
        // probe's, and the held call is the one refused: the server has then
        // answered it, and the round starts again.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut all_held = true;
        for (_, _, response, _) in &mut held {
            all_held &= tokio::time::timeout(Duration::ZERO, response).await.is_err();
        }
        if all_held {
            let (client, _driver) = connect(&app).await;
            let probe = tokio::time::timeout(Duration::from_secs(5), call(&app, &client, HEALTH_CHECK, &[])).await;
            if let Ok(status) = probe {
                assert_eq!(
                    (status.code(), reason(&status).as_str()),
                    (Code::ResourceExhausted, "SERVER_BUSY"),
                    "{status:?}"
                );
                assert!(status.get_details_retry_info().and_then(|r| r.retry_delay).is_some());
                drop(held); // the client cancels both calls
                eventually("capacity to return", async || {
                    call(&app, &client, HEALTH_CHECK, &[]).await.code() == Code::Ok
                })
                .await;
                return;
            }
        }
        assert!(Instant::now() < deadline, "waited 30s for a third call to be refused, in vain");
    }
}

/// OWASP ASVS 5.0 V15.2.2: connections are bounded; one past the limit is
/// closed at once, and a freed slot is usable again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_limit_are_closed_at_once() {
    // The test app's own client channel holds one of the two.
    let app = TestApp::spawn_with(Mode::Embedded, |c| c.server_limits.max_connections = 2).await;
    let (second, second_driver) = connect(&app).await;
    assert_eq!(call(&app, &second, HEALTH_CHECK, &[]).await.code(), Code::Ok);

    let tcp = TcpStream::connect(app.addr).await.unwrap();
    let request = grpc_request(&app, HEALTH_CHECK);
    let third = tokio::time::timeout(Duration::from_secs(2), async move {
        let (client, connection) = h2::client::handshake(tcp).await?;
        let driver = tokio::spawn(connection);
        let mut client = client.ready().await?;
        let (response, _) = client.send_request(request, true)?;
        let result = response.await.map(|_| ());
        driver.abort();
        result
    })
    .await
    .expect("the third connection is closed at once, not left hanging");
    assert!(third.is_err(), "a connection past the limit was served");

    drop(second);
    second_driver.await.unwrap();
    eventually("a freed slot to serve again", async || fresh_health_check(&app).await).await;
}

/// A health check on a new connection; false if anything on the way fails.
async fn fresh_health_check(app: &TestApp) -> bool {
    let request = grpc_request(app, HEALTH_CHECK);
    let Ok(tcp) = TcpStream::connect(app.addr).await else { return false };
    let attempt = async {
        let (client, connection) = h2::client::handshake(tcp).await?;
        let driver = tokio::spawn(connection);
        let mut client = client.ready().await?;
        let (response, mut send) = client.send_request(request, false)?;
        send.send_data(framed(&[]), true)?;
        let response = response.await?;
        let served = status_of(response).await.code() == Code::Ok;
        driver.abort();
        Ok::<_, h2::Error>(served)
    };
    attempt.await.unwrap_or(false)
}

/// OWASP ASVS 5.0 V15.2.2: a connection that carries no stream is closed
/// after the idle timeout; one with a call in progress is not, and its timer
/// starts when its last stream ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed_after_the_idle_timeout() {
    let app = TestApp::spawn_with(Mode::Embedded, |c| {
        c.server_limits.idle_timeout = Duration::from_secs(1);
        c.server_limits.request_timeout = Duration::from_secs(2);
    })
    .await;

    let (idle, idle_driver) = connect(&app).await;
    let (busy, busy_driver) = connect(&app).await;
    let (response, _send) = open_call(&busy, grpc_request(&app, SIGN_UP), Bytes::new(), false).await;

    let lived =
        tokio::time::timeout(Duration::from_secs(5), idle_driver).await.expect("idle connection closed").unwrap();
    assert!(lived >= Duration::from_millis(900) && lived < Duration::from_secs(3), "idle connection lived {lived:?}");
    drop(idle);

    // The busy connection's call ends at the request timeout (2 s), then
    // the connection idles for 1 s.
    assert_eq!(status_of(response.await.unwrap()).await.code(), Code::DeadlineExceeded);
    let lived =
        tokio::time::timeout(Duration::from_secs(6), busy_driver).await.expect("busy connection closed").unwrap();
    assert!(lived >= Duration::from_millis(2900) && lived < Duration::from_secs(5), "busy connection lived {lived:?}");
    drop(busy);
}

/// What the server did with a flood of streams on one connection.
#[derive(Default)]
struct FloodReport {
    /// The server's SETTINGS_MAX_CONCURRENT_STREAMS.
    advertised: Option<u32>,
    /// Streams the server reset with REFUSED_STREAM.
    refused: std::collections::BTreeSet<u32>,
    /// Streams the server answered: served.
    answered: std::collections::BTreeSet<u32>,
    /// The last stream id of the server's GOAWAY, if it sent one.
    goaway_last_stream: Option<u32>,
}

impl std::fmt::Debug for FloodReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FloodReport")
            .field("advertised", &self.advertised)
            .field("refused", &self.refused.len())
            .field("answered", &self.answered.len())
            .field("goaway_last_stream", &self.goaway_last_stream)
            .finish()
    }
}

const REFUSED_STREAM: u32 = 0x7;

/// A raw HTTP/2 frame header and payload.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap().to_be_bytes();
    let mut out = vec![len[1], len[2], len[3], kind, flags];
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// A HEADERS block with every field a literal that is not indexed, so no
/// HPACK state is needed: a health check whose body never comes.
fn health_headers() -> Vec<u8> {
    let mut block = Vec::new();
    for (name, value) in [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", HEALTH_CHECK),
        (":authority", "localhost"),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ] {
        block.push(0x00);
        block.push(u8::try_from(name.len()).unwrap());
        block.extend_from_slice(name.as_bytes());
        block.push(u8::try_from(value.len()).unwrap());
        block.extend_from_slice(value.as_bytes());
    }
    block
}

/// Opens `streams` streams on one connection without waiting for any
/// permission, as a hostile client would (h2 clients queue streams past the
/// peer's limit themselves), and reports what the server did.
async fn flood(app: &TestApp, streams: u32) -> FloodReport {
    let tcp = TcpStream::connect(app.addr).await.unwrap();
    let (mut read, mut write) = tcp.into_split();
    let (settings_tx, settings_rx) = tokio::sync::oneshot::channel::<()>();
    let reader = tokio::spawn(async move {
        let mut report = FloodReport::default();
        let mut settings_tx = Some(settings_tx);
        loop {
            let mut header = [0u8; 9];
            if read.read_exact(&mut header).await.is_err() {
                break;
            }
            let len = usize::try_from(u32::from_be_bytes([0, header[0], header[1], header[2]])).unwrap();
            let (kind, flags) = (header[3], header[4]);
            let stream = u32::from_be_bytes([header[5], header[6], header[7], header[8]]) & 0x7fff_ffff;
            let mut payload = vec![0; len];
            if read.read_exact(&mut payload).await.is_err() {
                break;
            }
            match kind {
                // SETTINGS from the server (not an ack): note the stream limit.
                0x4 if flags & 0x1 == 0 => {
                    for setting in payload.chunks_exact(6) {
                        if u16::from_be_bytes([setting[0], setting[1]]) == 0x3 {
                            report.advertised =
                                Some(u32::from_be_bytes([setting[2], setting[3], setting[4], setting[5]]));
                        }
                    }
                    if let Some(tx) = settings_tx.take() {
                        let _ = tx.send(());
                    }
                }
                0x1 => {
                    report.answered.insert(stream);
                }
                0x3 if u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]) == REFUSED_STREAM => {
                    report.refused.insert(stream);
                }
                0x7 => {
                    report.goaway_last_stream =
                        Some(u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]) & 0x7fff_ffff);
                }
                _ => {}
            }
            let accounted = report.refused.len() + report.answered.len();
            if report.goaway_last_stream.is_some() || accounted >= usize::try_from(streams).unwrap() {
                break;
            }
        }
        report
    });

    write.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await.unwrap();
    write.write_all(&frame(0x4, 0, 0, &[])).await.unwrap();
    settings_rx.await.expect("the server sends its SETTINGS");
    write.write_all(&frame(0x4, 0x1, 0, &[])).await.unwrap();
    let block = health_headers();
    let mut burst = Vec::new();
    for i in 0..streams {
        // END_HEADERS, not END_STREAM: each stream stays open, waiting for its body.
        burst.extend(frame(0x1, 0x4, 2 * i + 1, &block));
    }
    // The server may hang up mid-burst; what it answered is the result.
    let _ = write.write_all(&burst).await;
    let report = tokio::time::timeout(Duration::from_secs(20), reader).await.expect("the server answers").unwrap();
    drop(write);
    report
}

/// OWASP ASVS 5.0 V15.2.2: 5 000 streams opened at once on one connection
/// get no more than the advertised limit served; the rest are refused, and
/// a health check on another connection answers within 1 s meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_past_the_advertised_limit_are_refused_while_health_answers() {
    let app = TestApp::spawn_with(Mode::Embedded, |c| c.server_limits.request_timeout = Duration::from_secs(3)).await;
    let limit = app.config.server_limits.max_concurrent_streams;
    let (client, _driver) = connect(&app).await;

    let flooding = flood(&app, 5000);
    let probing = async {
        let mut slowest = Duration::ZERO;
        for _ in 0..20 {
            let started = Instant::now();
            let status = tokio::time::timeout(Duration::from_secs(1), call(&app, &client, HEALTH_CHECK, &[]))
                .await
                .expect("health answers within 1 s during the flood");
            assert_eq!(status.code(), Code::Ok, "{status:?}");
            slowest = slowest.max(started.elapsed());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        slowest
    };
    let (report, slowest) = tokio::join!(flooding, probing);

    assert_eq!(report.advertised, Some(limit), "{report:?}");
    // Every stream the server did not refuse, up to its GOAWAY's last
    // stream if it hung up: at least as many as it served.
    let served = (0..5000u32)
        .map(|i| 2 * i + 1)
        .filter(|id| !report.refused.contains(id))
        .filter(|id| report.goaway_last_stream.is_none_or(|last| *id <= last))
        .count();
    let limit = usize::try_from(limit).unwrap();
    assert!(served <= limit, "{served} streams served past the limit of {limit}: {report:?}");
    assert!(report.answered.len() <= limit, "{report:?}");
    assert!(!report.refused.is_empty(), "no stream was refused: {report:?}");
    assert!(slowest < Duration::from_secs(1));
}
