//! What a published event looks like on the wire: routing key, AMQP
//! properties, CloudEvents headers and a payload consumers can decode. Runs
//! against the real RabbitMQ (see `support`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use gatehouse_application::ports::events::EventPublisher;
use gatehouse_application::ports::health::Probe;
use gatehouse_events::{DecodedEvent, decode};
use gatehouse_rabbitmq::RabbitPublisher;
use gatehouse_testkit::rabbitmq::url as amqp_url;
use lapin::types::AMQPValue;
use support::{TIMEOUT, TestConsumer, with_exchange};

fn header(delivery: &lapin::message::Delivery, name: &str) -> String {
    let headers = delivery.properties.headers().as_ref().expect("message has headers");
    match headers.inner().get(name) {
        Some(AMQPValue::LongString(value)) => String::from_utf8(value.as_bytes().to_vec()).unwrap(),
        other => panic!("header {name}: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn published_event_arrives_with_its_type_id_properties_and_cloudevents_headers() {
    with_exchange(|exchange| async move {
        // The publisher declares the exchange first; the consumer's identical
        // declaration then proves it is a durable topic exchange.
        let publisher = RabbitPublisher::connect(&amqp_url(), &exchange, TIMEOUT).await.unwrap();
        let mut consumer = TestConsumer::bind(&exchange).await;
        let (envelope, message) = support::verification_requested();

        publisher.publish(&message).await.unwrap();

        let delivery = consumer.next().await;
        let properties = &delivery.properties;
        let id = envelope.id.to_string();
        assert_eq!(delivery.exchange.as_str(), exchange);
        assert_eq!(delivery.routing_key.as_str(), "email.verification_requested");
        assert_eq!(properties.message_id().as_ref().map(|s| s.as_str()), Some(id.as_str()));
        assert_eq!(properties.content_type().as_ref().map(|s| s.as_str()), Some("application/x-protobuf"));
        assert_eq!(properties.kind().as_ref().map(|s| s.as_str()), Some("email.verification_requested"));
        assert_eq!(*properties.delivery_mode(), Some(2), "persistent");
        assert_eq!(*properties.timestamp(), Some(u64::try_from(envelope.occurred_at.timestamp()).unwrap()));
        assert_eq!(properties.app_id().as_ref().map(|s| s.as_str()), Some("gatehouse"));
        assert_eq!(header(&delivery, "cloudEvents:specversion"), "1.0");
        assert_eq!(header(&delivery, "cloudEvents:id"), id);
        assert_eq!(header(&delivery, "cloudEvents:source"), "gatehouse");
        assert_eq!(header(&delivery, "cloudEvents:type"), "email.verification_requested");
        assert_eq!(header(&delivery, "cloudEvents:time"), "2025-03-14T15:09:26.535Z");

        let DecodedEvent::VerificationRequested(event) =
            decode("email.verification_requested", &delivery.data).unwrap()
        else {
            panic!("decoded to another event");
        };
        assert_eq!(event.event_id, id);
        assert_eq!(event.user_id, envelope.event.user_id().to_string());
        assert_eq!(event.email, "ann@example.com");
        assert_eq!(event.token, "link-token-abc");
        assert_eq!(event.code, "123456");
        assert_eq!(event.link, "https://gatehouse.test/verify?token=link-token-abc");
        assert_eq!(event.occurred_at.unwrap().seconds, envelope.occurred_at.timestamp());
        assert!(event.expires_at.is_some());
        assert_eq!(delivery.data, message.payload);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_event_type_is_routed_under_its_own_key_in_order() {
    with_exchange(|exchange| async move {
        let mut consumer = TestConsumer::bind(&exchange).await;
        let publisher = RabbitPublisher::new(&amqp_url(), &exchange, TIMEOUT);
        let events = support::one_of_each();

        for (_, message) in &events {
            publisher.publish(message).await.unwrap();
        }

        for (envelope, message) in &events {
            let delivery = consumer.next().await;
            assert_eq!(delivery.routing_key.as_str(), envelope.event.event_type());
            assert_eq!(delivery.properties.message_id().as_ref().unwrap().as_str(), envelope.id.to_string());
            let decoded = decode(delivery.routing_key.as_str(), &delivery.data).unwrap();
            assert_eq!(decoded, decode(&message.event_type, &message.payload).unwrap());
            assert_eq!(decoded.event_id(), envelope.id.to_string());
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn probe_reports_a_reachable_broker_and_declares_the_exchange() {
    with_exchange(|exchange| async move {
        let publisher = RabbitPublisher::new(&amqp_url(), &exchange, TIMEOUT);
        assert_eq!(publisher.name(), "broker");
        publisher.check().await.unwrap();
        // The probe's connection is reused: publishing right after works.
        let mut consumer = TestConsumer::bind(&exchange).await;
        let (envelope, message) = support::verification_requested();
        publisher.publish(&message).await.unwrap();
        assert_eq!(consumer.next().await.properties.message_id().as_ref().unwrap().as_str(), envelope.id.to_string());
    })
    .await;
}
