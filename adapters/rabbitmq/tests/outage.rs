//! How the publisher behaves when the broker is unreachable, silent, or goes
//! away: every call fails within about the timeout (never hangs), and a later
//! call reconnects by itself once the broker is back, so the relay only has
//! to retry.
//!
//! The outages are staged with a TCP forwarder in front of the real RabbitMQ
//! (see `support`), which can refuse connections, accept and say nothing, or
//! forward.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gatehouse_application::ports::events::{EventPublisher, OutboxMessage};
use gatehouse_application::ports::health::Probe;
use gatehouse_rabbitmq::RabbitPublisher;
use support::{FAIL_WITHIN, TIMEOUT, TestConsumer, amqp_url, shown_url, with_exchange};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Runs `call` and checks it failed within [`FAIL_WITHIN`].
async fn fails_fast<T: std::fmt::Debug, E>(what: &str, call: impl Future<Output = Result<T, E>>) {
    let started = Instant::now();
    let outcome = call.await;
    assert!(outcome.is_err(), "{what} succeeded during the outage: {:?}", outcome.ok());
    assert!(started.elapsed() < FAIL_WITHIN, "{what} took {:?} to fail", started.elapsed());
}

const REFUSE: u8 = 0;
const SILENT: u8 = 1;
const FORWARD: u8 = 2;

/// A TCP forwarder to the test broker that can refuse connections (accept
/// and close at once), hold them open without a word, or forward them.
struct Forwarder {
    url: String,
    mode: Arc<AtomicU8>,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Forwarder {
    async fn start(mode: u8) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (upstream, url) = upstream_and_forwarder_url(listener.local_addr().unwrap());
        let mode = Arc::new(AtomicU8::new(mode));
        let tasks: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let accept = tokio::spawn({
            let (mode, tasks) = (mode.clone(), tasks.clone());
            async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    let task = match mode.load(Ordering::SeqCst) {
                        REFUSE => continue, // dropping `client` closes it
                        SILENT => tokio::spawn(async move {
                            let _held = client;
                            std::future::pending::<()>().await;
                        }),
                        _ => {
                            let upstream = upstream.clone();
                            tokio::spawn(async move {
                                let Ok(mut server) = TcpStream::connect(&upstream).await else { return };
                                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                            })
                        }
                    };
                    tasks.lock().unwrap().push(task);
                }
            }
        });
        Self { url, mode, tasks, accept }
    }

    /// Closes every connection and refuses new ones: a stopped broker.
    fn refuse(&self) {
        self.mode.store(REFUSE, Ordering::SeqCst);
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    /// Forwards new connections: the broker is back.
    fn forward(&self) {
        self.mode.store(FORWARD, Ordering::SeqCst);
    }

    fn publisher(&self, exchange: &str) -> RabbitPublisher {
        RabbitPublisher::new(&self.url, exchange, TIMEOUT)
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.accept.abort();
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

/// The test broker's `host:port`, and its URL with the forwarder's address.
fn upstream_and_forwarder_url(forwarder: SocketAddr) -> (String, String) {
    let uri: lapin::uri::AMQPUri =
        amqp_url().parse().unwrap_or_else(|e| panic!("GATEHOUSE_TEST_AMQP_URL is not an AMQP URL: {e}"));
    let user = &uri.authority.userinfo;
    let url =
        format!("amqp://{}:{}@{forwarder}/{}", encode(&user.username), encode(&user.password), encode(&uri.vhost));
    (format!("{}:{}", uri.authority.host, uri.authority.port), url)
}

/// Percent-encodes everything but unreserved URL characters.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn message() -> OutboxMessage {
    support::verification_requested().1
}

/// Fails the test unless the real broker answers, so an outage test cannot
/// pass merely because RabbitMQ is not running.
async fn require_broker() {
    drop(support::connect().await);
}

#[tokio::test(flavor = "multi_thread")]
async fn publish_where_nothing_listens_fails_within_the_timeout() {
    let publisher = RabbitPublisher::new("amqp://guest:guest@127.0.0.1:1/%2f", "gh-test-nowhere", TIMEOUT);
    fails_fast("publish", publisher.publish(&message())).await;
    fails_fast("publish again", publisher.publish(&message())).await;
    fails_fast("probe", publisher.check()).await;
    fails_fast("connect", RabbitPublisher::connect("amqp://guest:guest@127.0.0.1:1/%2f", "gh-test-nowhere", TIMEOUT))
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn publish_to_a_broker_that_never_answers_fails_within_the_timeout() {
    let forwarder = Forwarder::start(SILENT).await;
    let publisher = forwarder.publisher("gh-test-silent");
    fails_fast("publish", publisher.publish(&message())).await;
    fails_fast("probe", publisher.check()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn publisher_created_while_the_broker_is_down_delivers_once_it_is_up() {
    require_broker().await;
    with_exchange(|exchange| async move {
        let mut consumer = TestConsumer::bind(&exchange).await;
        let forwarder = Forwarder::start(REFUSE).await;
        let publisher = forwarder.publisher(&exchange);

        let (_, lost) = support::verification_requested();
        fails_fast("publish while down", publisher.publish(&lost)).await;
        fails_fast("probe while down", publisher.check()).await;

        forwarder.forward();
        let (envelope, message) = support::verification_requested();
        publisher.publish(&message).await.unwrap_or_else(|e| panic!("publish once up ({}): {e}", shown_url()));
        publisher.check().await.unwrap();

        let delivery = consumer.next().await;
        assert_eq!(delivery.properties.message_id().as_ref().unwrap().as_str(), envelope.id.to_string());
        consumer.assert_nothing_within(Duration::from_millis(200)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn publisher_reconnects_after_the_broker_went_away() {
    require_broker().await;
    with_exchange(|exchange| async move {
        let mut consumer = TestConsumer::bind(&exchange).await;
        let forwarder = Forwarder::start(FORWARD).await;
        let publisher = forwarder.publisher(&exchange);
        let (before, first) = support::verification_requested();
        publisher.publish(&first).await.unwrap();

        forwarder.refuse();
        fails_fast("publish while down", publisher.publish(&support::verification_requested().1)).await;

        forwarder.forward();
        let (after, second) = support::verification_requested();
        publisher.publish(&second).await.unwrap();

        for expected in [before.id, after.id] {
            let delivery = consumer.next().await;
            assert_eq!(delivery.properties.message_id().as_ref().unwrap().as_str(), expected.to_string());
        }
        consumer.assert_nothing_within(Duration::from_millis(200)).await;
    })
    .await;
}
