//! Events through RabbitMQ: what a mailer bound to the exchange receives,
//! and delivery that survives a broker outage and several relays, each event
//! exactly once (by event id).

use std::collections::HashSet;
use std::time::Duration;

use gatehouse_grpc::pb;
use gatehouse_testkit::rabbitmq::{self, TestConsumer};
use gatehouse_testkit::{FaultProxy, eventually};
use lapin::message::Delivery;
use lapin::types::AMQPValue;
use tonic::Code;

use gatehouse_grpc::pb::auth_service_client::AuthServiceClient;

use crate::harness::{Mail, Mode, PASSWORD, TestApp, assert_error};
use crate::process::ServerProcess;

/// A queue bound to the app's exchange like a mailer's: the email and SMS
/// events.
async fn mailer(app: &TestApp) -> TestConsumer {
    TestConsumer::bind_keys(&app.config.amqp_exchange, &["email.#", "sms.#"]).await
}

/// The first `event_type` event for `recipient` to arrive, skipping any
/// other: events of earlier requests may still be on their way, in any order.
async fn event_for(consumer: &mut TestConsumer, event_type: &str, recipient: &str) -> Delivery {
    let what = format!("{event_type} for {recipient}");
    consumer.next_matching(&what, |d| d.routing_key.as_str() == event_type && mail(d).email == recipient).await
}

/// The next `n` deliveries, then proof that nothing else arrives.
async fn exactly(consumer: &mut TestConsumer, n: usize) -> Vec<Delivery> {
    let mut got = Vec::with_capacity(n);
    for _ in 0..n {
        got.push(consumer.next().await);
    }
    consumer.assert_nothing_within(Duration::from_millis(1500)).await;
    got
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
    let mut mailer = mailer(&app).await;
    let user_id = app.sign_up("ann@example.com", "correct horse battery").await.unwrap();

    let delivery = event_for(&mut mailer, "email.verification_requested", "ann@example.com").await;
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

/// OWASP ASVS 5.0 V6.3.8: a sign-up with a taken address is answered like a
/// new one; its owner's mailer gets `email.signup_attempted`, and no
/// verification goes out for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_up_with_a_taken_address_emails_its_owner() {
    let app = TestApp::spawn(Mode::Production).await;
    let owner = app.verified_user("ann@example.com").await;
    let mut mailer = mailer(&app).await;
    app.sign_up("Ann@Example.com", "some other password").await.unwrap();
    let notice = event_for(&mut mailer, "email.signup_attempted", "ann@example.com").await;
    assert_eq!(mail(&notice).user_id, owner);
    assert!(
        !app.outbox().await.iter().any(|r| r.event_type == "email.verification_requested" && r.event.user_id != owner),
        "the attempt issued a verification"
    );
}

/// The owner of an account hit by guessing from everywhere is told once,
/// through the broker, when the account's ceiling is reached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_login_ceiling_emails_the_owner_once() {
    let app = TestApp::spawn_with(Mode::Production, |c| {
        c.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
        c.login_limit_account =
            gatehouse_application::ports::rate_limit::Limit::new(6, chrono::TimeDelta::hours(1)).unwrap();
    })
    .await;
    let owner = app.verified_user("cy@example.com").await;
    let mut mailer = mailer(&app).await;
    for n in 0..10 {
        let mut req = tonic::Request::new(pb::LoginRequest {
            email: "cy@example.com".into(),
            password: "wrong guess".into(),
            ..Default::default()
        });
        req.metadata_mut().insert("x-forwarded-for", format!("198.51.100.{n}").parse().unwrap());
        app.auth.clone().login(req).await.unwrap_err();
    }
    let notice = event_for(&mut mailer, "email.login_throttled", "cy@example.com").await;
    assert_eq!(mail(&notice).user_id, owner);
    let notices = app.outbox().await.into_iter().filter(|r| r.event_type == "email.login_throttled").count();
    assert_eq!(notices, 1, "one notice, however many attempts were refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_reset_through_the_mailer() {
    let app = TestApp::spawn(Mode::Production).await;
    let session = app.user_session("bea@example.com").await;
    // The login's notice may still be on its way: wait for each event by name.
    let mut mailer = mailer(&app).await;
    let req = pb::RequestPasswordResetRequest { email: "bea@example.com".into() };
    app.auth.clone().request_password_reset(req).await.unwrap();
    let reset = event_for(&mut mailer, "email.password_reset_requested", "bea@example.com").await;
    assert_eq!(reset.routing_key.as_str(), "email.password_reset_requested");
    let req = pb::ResetPasswordRequest {
        proof: Some(pb::reset_password_request::Proof::Token(mail(&reset).token)),
        new_password: "a brand new password".into(),
    };
    app.auth.clone().reset_password(req).await.unwrap();
    let changed = event_for(&mut mailer, "email.password_changed", "bea@example.com").await;
    assert_eq!(changed.routing_key.as_str(), "email.password_changed");
    assert_eq!(mail(&changed).email, "bea@example.com");
    assert_error(app.validate(&session.access_token).await, Code::Unauthenticated, "TOKEN_REVOKED");
    assert_error(
        app.login("bea@example.com", "correct horse battery").await,
        Code::Unauthenticated,
        "INVALID_CREDENTIALS",
    );
    app.login("bea@example.com", "a brand new password").await.unwrap();
}

/// While the broker is unreachable requests succeed and events wait in the
/// outbox; once it is back each arrives exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_outage_delays_events_but_loses_and_doubles_none() {
    let proxy = FaultProxy::start(rabbitmq::upstream()).await;
    proxy.cut();
    let app = TestApp::spawn_with(Mode::Production, |c| {
        c.amqp_url = Some(rabbitmq::url_via(proxy.addr()));
        c.amqp_timeout = Duration::from_millis(500);
    })
    .await;
    let mut mailer = mailer(&app).await;

    for n in 0..3 {
        app.sign_up(&format!("user{n}@example.com"), "correct horse battery").await.unwrap();
    }
    // Gives the relay time to try, and fail, a few times; with the broker
    // cut off no amount of time could make it succeed, so a slow machine
    // cannot turn this into a failure.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let pending: Vec<_> = app.outbox().await.into_iter().filter(|r| !r.event_type.starts_with("audit.")).collect();
    assert_eq!(pending.len(), 3);
    assert!(pending.iter().all(|r| !r.sent), "nothing can be sent while the broker is down");

    proxy.restore();
    let delivered = exactly(&mut mailer, 3).await;
    let ids: HashSet<String> = delivered.iter().map(message_id).collect();
    let expected: HashSet<String> = pending.iter().map(|r| r.event.event_id.clone()).collect();
    assert_eq!(ids, expected);
    // The audit facts have no queue here: they wait, unsent (see below).
    eventually("every mailer event to be marked sent", async || {
        app.outbox().await.iter().filter(|r| !r.event_type.starts_with("audit.")).all(|r| r.sent)
    })
    .await;
}

/// An event nobody is bound for is not marked sent (the broker hands it
/// back): it waits in the outbox and arrives once a queue is bound for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_nobody_is_bound_for_waits_until_a_queue_is_bound() {
    let app = TestApp::spawn(Mode::Production).await;
    let mut mailer = mailer(&app).await;
    app.sign_up("late@example.com", "correct horse battery").await.unwrap();
    event_for(&mut mailer, "email.verification_requested", "late@example.com").await;
    // The sign-up's audit fact was tried (the mailer's event, written with
    // it, has gone) and refused for want of a queue: it is still pending.
    let audit =
        |rows: Vec<crate::harness::OutboxRow>| rows.into_iter().find(|r| r.event_type == "audit.user.signed_up");
    let pending = audit(app.outbox().await).expect("the sign-up's audit fact is in the outbox");
    assert!(!pending.sent, "an unroutable event must not be marked sent");

    let mut auditor = TestConsumer::bind_keys(&app.config.amqp_exchange, &["audit.#"]).await;
    let delivery =
        auditor.next_matching("audit.user.signed_up", |d| d.routing_key.as_str() == "audit.user.signed_up").await;
    assert_eq!(message_id(&delivery), pending.event.event_id);
    eventually("the audit fact to be marked sent", async || audit(app.outbox().await).is_some_and(|r| r.sent)).await;
}

/// Two replicas run two relays against one database: every event once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_relays_deliver_every_event_once() {
    let app = TestApp::spawn(Mode::Production).await;
    let replica = app.replica().await;
    let mut mailer = mailer(&app).await;
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
    let delivered = exactly(&mut mailer, 12).await;
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
    // The login's notice may arrive after the binding: every read below
    // waits for its own event and recipient.
    let mut mailer = TestConsumer::bind_keys(&app.config.amqp_exchange, &keys).await;
    let mut mfa = app.mfa.clone();

    let email = pb::EnrollEmailFactorRequest {
        email: "mfa@example.com".into(),
        proof: crate::password_proof!(enroll_email_factor_request),
    };
    let email_factor = mfa.enroll_email_factor(authed(email, &pair.access_token)).await.unwrap().into_inner().factor_id;
    let delivery = event_for(&mut mailer, "email.mfa_code", "mfa@example.com").await;
    assert_eq!(delivery.routing_key.as_str(), "email.mfa_code");
    let sent = mail(&delivery);
    assert_eq!(sent.email, "mfa@example.com");
    let confirm = pb::ConfirmFactorRequest { factor_id: email_factor, code: sent.code };
    mfa.confirm_factor(authed(confirm, &pair.access_token)).await.unwrap();
    let added = event_for(&mut mailer, "audit.mfa_factor_added", "mfa@example.com").await;
    assert_eq!(added.routing_key.as_str(), "audit.mfa_factor_added");

    let phone = pb::EnrollPhoneFactorRequest {
        phone_number: "+15555550123".into(),
        proof: crate::password_proof!(enroll_phone_factor_request),
    };
    let sms_factor = mfa.enroll_phone_factor(authed(phone, &pair.access_token)).await.unwrap().into_inner().factor_id;
    let delivery = event_for(&mut mailer, "sms.mfa_code", "+15555550123").await;
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
    let mut mailer = mailer(&app).await;
    app.verified_user("notice@example.com").await;
    // Let the sign-up's verification email reach the mailer first, so that
    // nothing but the logins' events can arrive after the notice.
    eventually("the sign-up's email to be sent", async || {
        app.outbox().await.iter().filter(|r| r.event_type.starts_with("email.")).all(|r| r.sent)
    })
    .await;
    app.login("notice@example.com", "correct horse battery").await.unwrap();
    let notice = event_for(&mut mailer, "email.login_notice", "notice@example.com").await;
    assert_eq!(notice.routing_key.as_str(), "email.login_notice");
    assert_eq!(mail(&notice).email, "notice@example.com");
    app.login("notice@example.com", "correct horse battery").await.unwrap();
    exactly(&mut mailer, 0).await;
}

/// Audit facts are also published on the audit stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_facts_are_published_too() {
    let app = TestApp::spawn(Mode::Production).await;
    app.verified_user("audit@example.com").await;
    // Bound for the logins' events only: the sign-up's, which had no queue,
    // still wait in the outbox and must not arrive here.
    let mut mailer = TestConsumer::bind_keys(&app.config.amqp_exchange, &["audit.login.#", "email.login_notice"]).await;
    assert_error(app.login("audit@example.com", "wrong password").await, Code::Unauthenticated, "INVALID_CREDENTIALS");
    app.login("audit@example.com", "correct horse battery").await.unwrap();
    let mut keys = Vec::new();
    for _ in 0..3 {
        keys.push(mailer.next().await.routing_key.as_str().to_owned());
    }
    keys.sort();
    assert_eq!(keys, ["audit.login.failed", "audit.login.succeeded", "email.login_notice"]);
}

/// OWASP ASVS 5.0 V16.2.5 (sensitive data kept out of the logs): the real
/// binary refuses to serve production (a PostgreSQL database) with no broker,
/// since its events, link tokens and codes included, would go to the log;
/// the error names the setting that allows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_without_a_broker_refuses_to_start_unless_the_log_is_asked_for() {
    let database = gatehouse_testkit::postgres::TestDatabase::create("gh_e2e").await;
    let data = gatehouse_testkit::TempDir::new("gatehouse-e2e");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .arg("serve")
        .env_clear()
        .env("DATABASE_URL", database.url())
        .env("GATEHOUSE_DATA_DIR", data.path())
        .env("GATEHOUSE_GRPC_ADDR", "127.0.0.1:0")
        .output()
        .expect("the gatehouse binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "refused at start: {stderr}");
    assert!(stderr.contains("GATEHOUSE_EVENTS (--events)") && stderr.contains("AMQP_URL"), "{stderr}");

    // Asked for explicitly, the log is allowed: the same server builds.
    let config = gatehouse::config::Config {
        database_url: Some(database.url().to_owned()),
        data_dir: data.path().to_path_buf(),
        events: gatehouse::config::EventsSetting::Log,
        ..gatehouse::config::Config::default()
    };
    gatehouse::wiring::build(&config).await.expect("GATEHOUSE_EVENTS=log starts production without a broker");
    let refused = gatehouse::wiring::build(&gatehouse::config::Config {
        events: gatehouse::config::EventsSetting::Auto,
        ..config
    })
    .await
    .expect_err("the library's wiring refuses too");
    assert!(format!("{refused:#}").contains("GATEHOUSE_EVENTS"), "{refused:#}");
}

/// `kill -9` while the relay drains a backlog loses nothing: the rows the
/// dead process had claimed are sent by the next one once their lease runs
/// out, and the rest as soon as it starts. Delivery is at least once; a row
/// confirmed but not yet marked sent may come twice, with its event id, so
/// consumers de-duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_drain_loses_no_event() {
    const SIGN_UPS: usize = 40;
    let mut app = TestApp::spawn(Mode::Production).await;
    app.stop().await;
    let mut mailer = mailer(&app).await;
    let proxy = FaultProxy::start(rabbitmq::upstream()).await;
    proxy.cut();
    let via = rabbitmq::url_via(proxy.addr());
    // The harness's AMQP timeout (a loaded CI machine can take longer than
    // the default to confirm), and the shortest lease it allows.
    let quick = [
        ("GATEHOUSE_AMQP_TIMEOUT", "2s"),
        ("GATEHOUSE_OUTBOX_LEASE", "5s"),
        ("GATEHOUSE_OUTBOX_MAX_BACKOFF", "500ms"),
        ("GATEHOUSE_SIGNUP_LIMIT_ADDRESS", "1000/1h"),
    ];
    let mut first = ServerProcess::start(&app.config, &[&quick[..], &[("AMQP_URL", via.as_str())]].concat()).await;
    let mut auth = AuthServiceClient::new(first.channel.clone());
    for n in 0..SIGN_UPS {
        let req = pb::SignUpRequest {
            email: format!("backlog{n}@example.com"),
            password: PASSWORD.into(),
            ..Default::default()
        };
        auth.sign_up(req).await.unwrap();
    }
    let expected: HashSet<String> = app
        .outbox()
        .await
        .into_iter()
        .filter(|r| r.event_type == "email.verification_requested")
        .map(|r| r.event.event_id)
        .collect();
    assert_eq!(expected.len(), SIGN_UPS, "every sign-up waits in the outbox while the broker is cut off");

    proxy.restore();
    let mut seen = HashSet::from([message_id(&mailer.next().await)]);
    first.kill();

    let _second = ServerProcess::start(&app.config, &quick).await;
    while !expected.is_subset(&seen) {
        seen.insert(message_id(&mailer.next().await));
    }
    eventually("every mailer event to be marked sent", async || {
        app.outbox().await.iter().filter(|r| r.event_type.starts_with("email.")).all(|r| r.sent)
    })
    .await;
}
