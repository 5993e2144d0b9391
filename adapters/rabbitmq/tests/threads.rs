//! A blackholed broker (connections accepted, not a word back) must not make
//! the publisher pile up connections: each attempt holds an I/O thread and a
//! socket, and a relay retrying for minutes would otherwise grow the process
//! without bound. Alone in its binary so that the thread count is the
//! publisher's own (OWASP ASVS 5.0 V16.5.2: a failing resource must not
//! exhaust this one's).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use gatehouse_application::ports::events::EventPublisher;
use gatehouse_application::ports::health::Probe;
use gatehouse_rabbitmq::RabbitPublisher;
use gatehouse_testkit::{FaultProxy, rabbitmq};
use support::{TIMEOUT, TestConsumer, with_exchange};

/// The threads lapin runs one of per connection (attempted or open).
fn io_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim() == "lapin-io-loop")
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_blackholed_broker_costs_at_most_one_connection_attempt() {
    with_exchange(|exchange| async move {
        let mut consumer = TestConsumer::bind(&exchange).await;
        let before = io_threads();
        let proxy = FaultProxy::start(rabbitmq::upstream()).await;
        proxy.blackhole();
        let publisher = RabbitPublisher::new(&rabbitmq::url_via(proxy.addr()), &exchange, TIMEOUT);
        for _ in 0..5 {
            assert!(publisher.publish(&support::verification_requested().1).await.is_err());
            assert!(publisher.check().await.is_err());
        }
        let during = io_threads() - before;
        assert!(during <= 1, "{during} connection attempts alive after 10 timed-out calls");

        proxy.restore();
        let message = support::verification_requested().1;
        let mut delivered = false;
        for _ in 0..50 {
            if publisher.publish(&message).await.is_ok() {
                delivered = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(delivered, "the publisher recovered once the broker answered");
        let delivery = consumer.next().await;
        assert_eq!(delivery.properties.message_id().as_ref().unwrap().as_str(), message.id.to_string());
        let after = io_threads() - before;
        assert!(after <= 1, "one live connection, nothing left over: {after}");
    })
    .await;
}
