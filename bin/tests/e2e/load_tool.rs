//! The load tool keeps working: every scenario runs for a second against an
//! embedded server, with the settings `make load` gives its servers, and
//! every call answers OK. It measures nothing here (a debug build on a
//! shared machine); `make load` does.

use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use gatehouse_application::ports::rate_limit::Limit;
use gatehouse_load::{Fixture, Options, Scenario};

use crate::harness::{Mode, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_of_the_load_tool_runs_and_every_call_succeeds() {
    // `server::LOAD_SETTINGS`, as fields.
    let unlimited = Limit::new(1_000_000, TimeDelta::seconds(1)).unwrap();
    let app = TestApp::spawn_with(Mode::Embedded, |c| {
        c.require_verified_email = false;
        c.signup_limit_address = unlimited;
        c.message_limit_recipient = unlimited;
        c.message_limit_account = unlimited;
        c.login_limit_address = unlimited;
    })
    .await;
    let options = Options {
        connections: 1,
        streams: 2,
        duration: Duration::from_secs(1),
        rate: None,
        mixed_validate_rate: 50.0,
        mixed_logins: 2,
        accounts: 4,
    };
    let fixture = Arc::new(Fixture::prepare(&app.addr.to_string(), "e2e", &options).await.unwrap());
    for scenario in Scenario::ALL {
        let outcomes = gatehouse_load::run(&fixture, scenario, &options).await.unwrap();
        assert!(!outcomes.is_empty());
        for outcome in outcomes {
            let summary = &outcome.summary;
            assert!(summary.all_ok(), "{} {}: {:?}", scenario.name(), outcome.part, summary.codes);
        }
    }
}

/// The tool sends `health` and `validate` as pre-encoded bytes and drains
/// the answers unread: a refused call must still count as refused, or a
/// run of errors would be reported as throughput.
#[tokio::test]
async fn a_raw_call_reports_the_status_the_server_answered() {
    use gatehouse_load::raw::{self, RawClient};

    let app = TestApp::spawn(Mode::Embedded).await;
    let mut client = RawClient::new(app.channel.clone());
    let health = raw::encoded(&tonic_health::pb::HealthCheckRequest { service: String::new() });
    client.call(raw::HEALTH_CHECK, health).await.expect("health answers OK");

    let forged = raw::encoded(&gatehouse_grpc::pb::ValidateTokenRequest { access_token: "not.a.token".into() });
    let status = client.call(raw::VALIDATE_TOKEN, forged).await.expect_err("a forged token is refused");
    assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");

    let session = app.user_session("raw-load@example.test").await;
    let genuine = raw::encoded(&gatehouse_grpc::pb::ValidateTokenRequest { access_token: session.access_token });
    client.call(raw::VALIDATE_TOKEN, genuine).await.expect("a genuine token is valid");
}
