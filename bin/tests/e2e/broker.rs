//! Events through RabbitMQ: what a mailer bound to the exchange receives,
//! and delivery that survives a broker outage and several relays, each event
//! exactly once (by event id).

use std::collections::HashSet;
use std::time::Duration;

use gatehouse_grpc::pb;
use lapin::message::Delivery;
use lapin::options::{BasicConsumeOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection, ConnectionProperties, Consumer, ExchangeKind};
use tokio_stream::StreamExt;

use crate::harness::{Cable, Mail, Mode, TestApp, amqp_url, eventually};

/// A queue bound to the app's exchange like a mailer's: the email and SMS
/// events (`bind_keys` for others, such as the audit stream).
struct Mailer {
    _connection: Connection,
    _channel: Channel,
    consumer: Consumer,
}

impl Mailer {
    async fn bind(exchange: &str) -> Self {
        Self::bind_keys(exchange, &["email.#", "sms.#"]).await
    }

    async fn bind_keys(exchange: &str, keys: &[&str]) -> Self {
        let url = amqp_url();
        let connection =
            tokio::time::timeout(Duration::from_secs(5), Connection::connect(&url, ConnectionProperties::default()))
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_else(|| panic!("RabbitMQ at {url} is unreachable; start it with `make services`"));
        let channel = connection.create_channel().await.unwrap();
        let durable = ExchangeDeclareOptions { durable: true, ..ExchangeDeclareOptions::default() };
        channel.exchange_declare(exchange.into(), ExchangeKind::Topic, durable, FieldTable::default()).await.unwrap();
        let exclusive = QueueDeclareOptions { exclusive: true, auto_delete: true, ..QueueDeclareOptions::default() };
        let queue = channel.queue_declare("".into(), exclusive, FieldTable::default()).await.unwrap();
        for key in keys {
            let (name, options) = (queue.name().clone(), QueueBindOptions::default());
            channel.queue_bind(name, exchange.into(), (*key).into(), options, FieldTable::default()).await.unwrap();
        }
        let no_ack = BasicConsumeOptions { no_ack: true, ..BasicConsumeOptions::default() };
        let consumer =
            channel.basic_consume(queue.name().clone(), "".into(), no_ack, FieldTable::default()).await.unwrap();
        Self { _connection: connection, _channel: channel, consumer }
    }

    async fn next(&mut self) -> Delivery {
        match tokio::time::timeout(Duration::from_secs(10), self.consumer.next()).await {
            Ok(Some(Ok(delivery))) => delivery,
            other => panic!("no event arrived: {:?}", other.map(|o| o.map(|r| r.map(|d| d.routing_key)))),
        }
    }

    /// The next `n` deliveries, then proof that nothing else arrives.
    async fn exactly(&mut self, n: usize) -> Vec<Delivery> {
        let mut got = Vec::with_capacity(n);
        for _ in 0..n {
            got.push(self.next().await);
        }
        if let Ok(Some(extra)) = tokio::time::timeout(Duration::from_millis(1500), self.consumer.next()).await {
            panic!("an event arrived twice or unexpectedly: {:?}", extra.map(|d| d.properties.message_id().clone()));
        }
        got
    }
}

fn message_id(d: &Delivery) -> String {
    d.properties.message_id().as_ref().map(|s| s.as_str().to_owned()).unwrap_or_default()
}

fn mail(d: &Delivery) -> Mail {
    Mail::decode(d.routing_key.as_str(), &d.data)
}

fn header(d: &Delivery, name: &str) -> Option<String> {
    let headers = d.properties.headers().as_ref()?;
    match headers.inner().get(name)? {
        AMQPValue::LongString(s) => Some(s.to_string()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        other => Some(format!("{other:?}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_event_reaches_the_mailer_and_its_link_token_verifies() {
    let app = TestApp::spawn(Mode::Production).await;
    let mut mailer = Mailer::bind(&app.config.amqp_exchange).await;
    let user_id = app.sign_up("ann@example.com", "correct horse battery").await.unwrap();

    let delivery = mailer.next().await;
    assert_eq!(delivery.routing_key.as_str(), "email.verification_requested");
    let p = &delivery.properties;
    assert_eq!(p.content_type().as_ref().map(|s| s.as_str()), Some("application/x-protobuf"));
    assert_eq!(p.kind().as_ref().map(|s| s.as_str()), Some("email.verification_requested"));
    assert_eq!(*p.delivery_mode(), Some(2), "persistent");
    let event = mail(&delivery);
    assert_eq!((event.user_id.as_str(), event.email.as_str()), (user_id.as_str(), "ann@example.com"));
    assert_eq!(message_id(&delivery), event.event_id);
    assert_eq!(header(&delivery, "cloudEvents:id"), Some(event.event_id.clone()));
    assert_eq!(header(&delivery, "cloudEvents:type").as_deref(), Some("email.verification_requested"));
    assert_eq!(header(&delivery, "cloudEvents:specversion").as_deref(), Some("1.0"));

    app.verify_token(&event.token).await.unwrap();
    app.login("ann@example.com", "correct horse battery").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_reset_through_the_mailer() {
    let app = TestApp::spawn(Mode::Production).await;
    let session = app.user_session("bea@example.com").await;
    let mut mailer = Mailer::bind(&app.config.amqp_exchange).await;
    let req = pb::RequestPasswordResetRequest { email: "bea@example.com".into() };
    app.auth.clone().request_password_reset(req).await.unwrap();
    let reset = mailer.next().await;
    assert_eq!(reset.routing_key.as_str(), "email.password_reset_requested");
    let req = pb::ResetPasswordRequest {
        proof: Some(pb::reset_password_request::Proof::Token(mail(&reset).token)),
        new_password: "a brand new password".into(),
    };
    app.auth.clone().reset_password(req).await.unwrap();
    let changed = mailer.next().await;
    assert_eq!(changed.routing_key.as_str(), "email.password_changed");
    assert_eq!(mail(&changed).email, "bea@example.com");
    assert!(app.validate(&session.access_token).await.is_err());
    assert!(app.login("bea@example.com", "correct horse battery").await.is_err());
    app.login("bea@example.com", "a brand new password").await.unwrap();
}

/// While the broker is unreachable requests succeed and events wait in the
/// outbox; once it is back each arrives exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_outage_delays_events_but_loses_and_doubles_none() {
    let url = amqp_url();
    let authority =
        url.split('@').nth(1).and_then(|rest| rest.split('/').next()).unwrap_or("127.0.0.1:5672").to_owned();
    let cable = Cable::to(authority.clone()).await;
    cable.cut();
    let via_cable = url.replacen(&authority, &cable.addr.to_string(), 1);
    let app = TestApp::spawn_with(Mode::Production, |c| {
        c.amqp_url = Some(via_cable);
        c.amqp_timeout = Duration::from_millis(500);
    })
    .await;
    let mut mailer = Mailer::bind(&app.config.amqp_exchange).await;

    for n in 0..3 {
        app.sign_up(&format!("user{n}@example.com"), "correct horse battery").await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let pending: Vec<_> = app.outbox().await.into_iter().filter(|r| !r.event_type.starts_with("audit.")).collect();
    assert_eq!(pending.len(), 3);
    assert!(pending.iter().all(|r| !r.sent), "nothing can be sent while the broker is down");

    cable.restore();
    let delivered = mailer.exactly(3).await;
    let ids: HashSet<String> = delivered.iter().map(message_id).collect();
    let expected: HashSet<String> = pending.iter().map(|r| r.event.event_id.clone()).collect();
    assert_eq!(ids, expected);
    assert!(eventually(async || app.outbox().await.iter().all(|r| r.sent)).await, "rows are marked sent");
}

/// Two replicas run two relays against one database: every event once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_relays_deliver_every_event_once() {
    let app = TestApp::spawn(Mode::Production).await;
    let replica = app.replica().await;
    let mut mailer = Mailer::bind(&app.config.amqp_exchange).await;
    let sign_ups: Vec<_> = (0..12)
        .map(|n| {
            let target = if n % 2 == 0 { app.auth.clone() } else { replica.auth.clone() };
            tokio::spawn(async move {
                let mut client = target;
                let req = pb::SignUpRequest {
                    email: format!("many{n}@example.com"),
                    password: "correct horse battery".into(),
                    display_name: String::new(),
                };
                client.sign_up(req).await.unwrap();
            })
        })
        .collect();
    for s in sign_ups {
        s.await.unwrap();
    }
    let delivered = mailer.exactly(12).await;
    let ids: HashSet<String> = delivered.iter().map(message_id).collect();
    assert_eq!(ids.len(), 12, "no event delivered twice");
    let outbox = app.outbox().await;
    let expected: HashSet<String> =
        outbox.iter().filter(|r| !r.event_type.starts_with("audit.")).map(|r| r.event.event_id.clone()).collect();
    assert_eq!(ids, expected);
}

/// Email and SMS second-factor codes reach the mailer / SMS gateway through
/// RabbitMQ, routed by their own keys, and the delivered codes work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mfa_codes_reach_the_mailer_and_the_sms_gateway() {
    use crate::harness::authed;

    let app = TestApp::spawn(Mode::Production).await;
    let pair = app.user_session("mfa@example.com").await;
    let keys = ["email.#", "sms.#", "audit.mfa_factor_added"];
    let mut mailer = Mailer::bind_keys(&app.config.amqp_exchange, &keys).await;
    let mut mfa = app.mfa.clone();

    let email = pb::EnrollEmailFactorRequest { email: "mfa@example.com".into() };
    let email_factor = mfa.enroll_email_factor(authed(email, &pair.access_token)).await.unwrap().into_inner().factor_id;
    let delivery = mailer.next().await;
    assert_eq!(delivery.routing_key.as_str(), "email.mfa_code");
    let sent = mail(&delivery);
    assert_eq!(sent.email, "mfa@example.com");
    let confirm = pb::ConfirmFactorRequest { factor_id: email_factor, code: sent.code };
    mfa.confirm_factor(authed(confirm, &pair.access_token)).await.unwrap();
    assert_eq!(mailer.next().await.routing_key.as_str(), "audit.mfa_factor_added");

    let phone = pb::EnrollPhoneFactorRequest { phone_number: "+15555550123".into() };
    let sms_factor = mfa.enroll_phone_factor(authed(phone, &pair.access_token)).await.unwrap().into_inner().factor_id;
    let delivery = mailer.next().await;
    assert_eq!(delivery.routing_key.as_str(), "sms.mfa_code");
    let sent = mail(&delivery);
    assert_eq!(sent.email, "+15555550123", "the SMS event names the phone number");
    let confirm = pb::ConfirmFactorRequest { factor_id: sms_factor, code: sent.code };
    mfa.confirm_factor(authed(confirm, &pair.access_token)).await.unwrap();
}

/// A login from a new device emails a notice; a second from the same one does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_from_a_new_device_emails_a_notice_once() {
    let app = TestApp::spawn(Mode::Production).await;
    app.verified_user("notice@example.com").await;
    // Let the sign-up's verification email leave first.
    assert!(eventually(async || app.outbox().await.iter().all(|r| r.sent)).await);
    let mut mailer = Mailer::bind(&app.config.amqp_exchange).await;
    app.login("notice@example.com", "correct horse battery").await.unwrap();
    let notice = mailer.next().await;
    assert_eq!(notice.routing_key.as_str(), "email.login_notice");
    assert_eq!(mail(&notice).email, "notice@example.com");
    app.login("notice@example.com", "correct horse battery").await.unwrap();
    mailer.exactly(0).await;
}

/// Audit facts are also published on the audit stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_facts_are_published_too() {
    let app = TestApp::spawn(Mode::Production).await;
    app.verified_user("audit@example.com").await;
    assert!(eventually(async || app.outbox().await.iter().all(|r| r.sent)).await);
    let mut mailer = Mailer::bind_keys(&app.config.amqp_exchange, &["#"]).await;
    assert!(app.login("audit@example.com", "wrong password").await.is_err());
    app.login("audit@example.com", "correct horse battery").await.unwrap();
    let mut keys = Vec::new();
    for _ in 0..3 {
        keys.push(mailer.next().await.routing_key.as_str().to_owned());
    }
    keys.sort();
    assert_eq!(keys, ["audit.login.failed", "audit.login.succeeded", "email.login_notice"]);
}
