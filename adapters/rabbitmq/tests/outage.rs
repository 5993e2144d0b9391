//! How the publisher behaves when the broker is unreachable, silent, or goes
//! away: every call fails within about the timeout (never hangs), and a later
//! call reconnects by itself once the broker is back, so the relay only has
//! to retry.
//!
//! The outages are staged with the testkit's fault proxy in front of the
//! real RabbitMQ: cut (connections refused), blackholed (accepted, and not a
//! word), or restored.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use gatehouse_application::ports::events::{EventPublisher, OutboxMessage};
use gatehouse_application::ports::health::Probe;
use gatehouse_rabbitmq::RabbitPublisher;
use gatehouse_testkit::rabbitmq::shown_url;
use gatehouse_testkit::{FaultProxy, fails_within, rabbitmq};
use support::{FAIL_WITHIN, TIMEOUT, TestConsumer, with_exchange};

/// Runs `call` and checks it failed within [`FAIL_WITHIN`].
async fn fails_fast<T: std::fmt::Debug, E>(what: &str, call: impl Future<Output = Result<T, E>>) {
    fails_within(what, FAIL_WITHIN, call).await;
}

/// A fault proxy in front of the test broker.
async fn proxy() -> FaultProxy {
    FaultProxy::start(rabbitmq::upstream()).await
}

/// A publisher that reaches the broker through `proxy`.
fn publisher_via(proxy: &FaultProxy, exchange: &str) -> RabbitPublisher {
    RabbitPublisher::new(&rabbitmq::url_via(proxy.addr()), exchange, TIMEOUT)
}

fn message() -> OutboxMessage {
    support::verification_requested().1
}

/// Fails the test unless the real broker answers, so an outage test cannot
/// pass merely because RabbitMQ is not running.
async fn require_broker() {
    drop(rabbitmq::connect().await);
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
    let proxy = proxy().await;
    proxy.blackhole();
    let publisher = publisher_via(&proxy, "gh-test-silent");
    fails_fast("publish", publisher.publish(&message())).await;
    fails_fast("probe", publisher.check()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn publisher_created_while_the_broker_is_down_delivers_once_it_is_up() {
    require_broker().await;
    with_exchange(|exchange| async move {
        let mut consumer = TestConsumer::bind(&exchange).await;
        let proxy = proxy().await;
        proxy.cut();
        let publisher = publisher_via(&proxy, &exchange);

        let (_, lost) = support::verification_requested();
        fails_fast("publish while down", publisher.publish(&lost)).await;
        fails_fast("probe while down", publisher.check()).await;

        proxy.restore();
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
        let proxy = proxy().await;
        let publisher = publisher_via(&proxy, &exchange);
        let (before, first) = support::verification_requested();
        publisher.publish(&first).await.unwrap();

        proxy.cut();
        fails_fast("publish while down", publisher.publish(&support::verification_requested().1)).await;

        proxy.restore();
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
