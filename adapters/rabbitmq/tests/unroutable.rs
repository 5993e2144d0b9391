//! An event that no queue is bound for is not lost: the broker hands it back
//! (`mandatory` publishing), the publisher reports it unroutable, and the
//! relay keeps the outbox row pending and retries it until a consumer binds.
//! Runs against the real RabbitMQ, each test with an exchange of its own.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;

use chrono::TimeDelta;
use gatehouse_application::events::{RelayOutbox, RelaySettings};
use gatehouse_application::ports::audit::AuditLog;
use gatehouse_application::ports::events::{EventPublisher, PublishError};
use gatehouse_application::testing::{FixedClock, InMemoryStore};
use gatehouse_rabbitmq::RabbitPublisher;
use gatehouse_testkit::FaultProxy;
use gatehouse_testkit::rabbitmq::{self, url as amqp_url};
use support::{TIMEOUT, TestConsumer, with_exchange};

#[tokio::test(flavor = "multi_thread")]
async fn an_event_no_queue_is_bound_for_is_reported_unroutable_not_confirmed() {
    with_exchange(|exchange| async move {
        // Through a proxy that counts the connections the publisher opens.
        let proxy = FaultProxy::start(rabbitmq::upstream()).await;
        let publisher = RabbitPublisher::connect(&rabbitmq::url_via(proxy.addr()), &exchange, TIMEOUT).await.unwrap();
        let (_, message) = support::verification_requested();

        let err = publisher.publish(&message).await.expect_err("nobody is bound: the broker returns it");
        let PublishError::Unroutable { routing_key } = &err else { panic!("expected unroutable, got {err:?}") };
        assert_eq!(routing_key, "email.verification_requested");

        // A queue bound for another key does not make it routable either.
        let _other = TestConsumer::bind_keys(&exchange, &["sms.#"]).await;
        assert!(matches!(publisher.publish(&message).await, Err(PublishError::Unroutable { .. })));

        // The link survived the returns: once a queue is bound the same
        // connection delivers, and the returned copies never arrive.
        let mut consumer = TestConsumer::bind_keys(&exchange, &["email.#"]).await;
        publisher.publish(&message).await.unwrap();
        let delivery = consumer.next().await;
        assert_eq!(delivery.properties.message_id().as_ref().unwrap().as_str(), message.id.to_string());
        consumer.assert_nothing_within(std::time::Duration::from_millis(300)).await;
        assert_eq!(proxy.connections(), 1, "a returned message is no reason to reconnect");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_relay_keeps_an_unroutable_event_pending_and_delivers_it_once_a_queue_is_bound() {
    with_exchange(|exchange| async move {
        let clock = Arc::new(FixedClock::new());
        let store = Arc::new(InMemoryStore::default());
        let publisher = Arc::new(RabbitPublisher::new(&amqp_url(), &exchange, TIMEOUT));
        let relay = RelayOutbox::new(store.clone(), publisher, clock.clone(), RelaySettings::default());
        let (envelope, message) = support::verification_requested();
        store.record(&[message]).await.unwrap();

        let report = relay.run_once().await.unwrap();
        assert_eq!((report.claimed, report.published, report.unroutable), (1, 0, 1), "{report:?}");
        // Still pending: due again after its backoff, not marked sent.
        assert_eq!(relay.run_once().await.unwrap().claimed, 0, "waits out its backoff");
        clock.advance(TimeDelta::seconds(1));
        let report = relay.run_once().await.unwrap();
        assert_eq!((report.claimed, report.unroutable), (1, 1), "retried, still unroutable: {report:?}");

        let mut mailer = TestConsumer::bind_keys(&exchange, &["email.#"]).await;
        clock.advance(TimeDelta::seconds(2));
        let report = relay.run_once().await.unwrap();
        assert_eq!((report.claimed, report.published), (1, 1), "{report:?}");
        let delivery = mailer.next().await;
        assert_eq!(delivery.routing_key.as_str(), "email.verification_requested");
        assert_eq!(delivery.properties.message_id().as_ref().unwrap().as_str(), envelope.id.to_string());

        clock.advance(TimeDelta::minutes(5));
        assert_eq!(relay.run_once().await.unwrap().claimed, 0, "sent: never claimed again");
        mailer.assert_nothing_within(std::time::Duration::from_millis(300)).await;
    })
    .await;
}
