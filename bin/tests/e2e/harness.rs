//! Spawning the server for a test and cleaning up after it. The spawner
//! lives here, not in the testkit, because it builds `gatehouse`'s own
//! `Config` and wiring; what it owns on the services are testkit guards.
//! `TEST_LOG=1` shows the server's logs.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ed25519_dalek::pkcs8::EncodePrivateKey;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use gatehouse::config::Config;
use gatehouse_grpc::pb;
use gatehouse_grpc::pb::auth_service_client::AuthServiceClient;
use gatehouse_grpc::pb::mfa_service_client::MfaServiceClient;
use gatehouse_grpc::pb::session_service_client::SessionServiceClient;
use gatehouse_grpc::pb::token_service_client::TokenServiceClient;
use gatehouse_grpc::pb::user_service_client::UserServiceClient;
use gatehouse_testkit::postgres::TestDatabase;
use gatehouse_testkit::rabbitmq::TestExchange;
use gatehouse_testkit::redis::RedisPrefix;
use gatehouse_testkit::{TempDir, postgres, rabbitmq, redis};
use sea_orm::ConnectionTrait;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_types::StatusExt;

/// Which deployment a test runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// SQLite file + in-process denylist: `make run`.
    Embedded,
    /// PostgreSQL + Redis: what runs in production.
    Production,
}

/// Runs each listed scenario `async fn name(mode: Mode)` once per deployment.
#[macro_export]
macro_rules! in_both_modes {
    ($($name:ident),+ $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::harness::Mode::Embedded).await;
                }
            )+
        }
        mod production {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::harness::Mode::Production).await;
                }
            )+
        }
    };
}

/// The password [`TestApp::user_session`] and [`TestApp::verified_user`] sign up with.
pub const PASSWORD: &str = "correct horse battery";

/// A password as the fresh proof of a request whose `proof` oneof is
/// generated in `pb::$request` (every account or factor change needs one):
/// [`PASSWORD`] unless another is given.
#[macro_export]
macro_rules! password_proof {
    ($request:ident) => {
        $crate::password_proof!($request, $crate::harness::PASSWORD)
    };
    ($request:ident, $password:expr) => {
        Some(gatehouse_grpc::pb::$request::Proof::Password(String::from($password)))
    };
}

/// What a test owns outside the process, each removed when dropped, pass
/// or fail: the testkit's guards.
#[expect(dead_code, reason = "held only to be dropped with the test")]
struct Resources {
    data_dir: TempDir,
    database: Option<TestDatabase>,
    redis_prefix: Option<RedisPrefix>,
    exchange: Option<TestExchange>,
}

/// A running server and clients for it.
pub struct TestApp {
    pub mode: Mode,
    pub addr: SocketAddr,
    pub config: Config,
    pub auth: AuthServiceClient<Channel>,
    pub token: TokenServiceClient<Channel>,
    pub user: UserServiceClient<Channel>,
    pub mfa: MfaServiceClient<Channel>,
    pub sessions: SessionServiceClient<Channel>,
    pub channel: Channel,
    /// The server's signing key, so tests can forge tokens it would accept.
    pub signing_key_pem: String,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
    resources: Option<Resources>,
}

impl TestApp {
    /// A fresh server with its own data: database, key prefix, data dir.
    pub async fn spawn(mode: Mode) -> Self {
        Self::spawn_with(mode, |_| {}).await
    }

    /// Like [`spawn`](Self::spawn), with the configuration adjusted first.
    pub async fn spawn_with(mode: Mode, adjust: impl FnOnce(&mut Config)) -> Self {
        let dir = TempDir::new("gatehouse-e2e");
        let data_dir = dir.path().to_path_buf();
        let mut resources = Resources { data_dir: dir, database: None, redis_prefix: None, exchange: None };

        let signing_key = ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng);
        let signing_key_pem = signing_key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
        let key_file = data_dir.join("test-signing-key.pem");
        std::fs::write(&key_file, &signing_key_pem).unwrap();

        let secret_key_file = data_dir.join("test-secret-key");
        gatehouse_crypto::SecretKey::load_or_generate(&secret_key_file).unwrap();
        let mut config = Config {
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir,
            signing_key_file: Some(key_file),
            secret_key_file: Some(secret_key_file),
            health_interval: Duration::from_millis(500),
            denylist_resync_interval: Duration::from_millis(500),
            outbox_poll_interval: Duration::from_millis(50),
            outbox_max_backoff: Duration::from_millis(500),
            public_url: "https://id.example.test".into(),
            db_max_connections: 5,
            ..Config::default()
        };
        if mode == Mode::Production {
            let database = TestDatabase::create("gh_e2e").await;
            config.database_url = Some(database.url().to_owned());
            resources.database = Some(database);
            let prefix = RedisPrefix::new("gh-e2e");
            config.redis_url = Some(redis::url());
            config.redis_key_prefix = prefix.prefix().to_owned();
            // A Redis call that times out makes the denylist stale (validation
            // fails closed until the rebuild it triggers): on a loaded CI
            // machine the production default of 500 ms is too tight.
            config.redis_timeout = Duration::from_secs(2);
            resources.redis_prefix = Some(prefix);
            let exchange = TestExchange::new("gh-e2e");
            config.amqp_url = Some(rabbitmq::url());
            config.amqp_exchange = exchange.name().to_owned();
            resources.exchange = Some(exchange);
            config.amqp_timeout = Duration::from_secs(2);
        }
        adjust(&mut config);
        Self::start(mode, config, signing_key_pem, Some(resources)).await
    }

    async fn start(mode: Mode, config: Config, signing_key_pem: String, resources: Option<Resources>) -> Self {
        gatehouse_testkit::init_test_log();
        let app = match gatehouse::wiring::build(&config).await {
            Ok(app) => app,
            Err(e) if mode == Mode::Production => panic!(
                "cannot start the production-mode server ({e:#}). PostgreSQL ({}) and Redis ({}) must be running: run `make services`",
                postgres::admin_url(),
                redis::url()
            ),
            Err(e) => panic!("cannot start the embedded server: {e:#}"),
        };
        let listener = tokio::net::TcpListener::bind(config.grpc_addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(gatehouse::serve(app, listener, async {
            let _ = rx.await;
        }));
        let channel = Channel::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap();
        Self {
            mode,
            addr,
            auth: AuthServiceClient::new(channel.clone()),
            token: TokenServiceClient::new(channel.clone()),
            user: UserServiceClient::new(channel.clone()),
            mfa: MfaServiceClient::new(channel.clone()),
            sessions: SessionServiceClient::new(channel.clone()),
            channel,
            config,
            signing_key_pem,
            shutdown: Some(tx),
            server: Some(server),
            resources,
        }
    }

    /// Stops this server and starts a new one on the same data, database,
    /// key prefix and keys: a restart (or another replica).
    pub async fn restart(mut self) -> Self {
        self.stop().await;
        let resources = self.resources.take();
        let mut config = self.config.clone();
        config.grpc_addr = SocketAddr::from(([127, 0, 0, 1], 0));
        Self::start(self.mode, config, self.signing_key_pem.clone(), resources).await
    }

    /// A second server sharing this one's database, denylist and keys.
    pub async fn replica(&self) -> Self {
        let mut config = self.config.clone();
        config.grpc_addr = SocketAddr::from(([127, 0, 0, 1], 0));
        Self::start(self.mode, config, self.signing_key_pem.clone(), None).await
    }

    /// Graceful shutdown; waits for the server task to end.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            let result = tokio::time::timeout(Duration::from_secs(10), server).await;
            assert!(matches!(result, Ok(Ok(Ok(())))), "server did not stop cleanly: {result:?}");
        }
    }

    pub async fn sign_up(&self, email: &str, password: &str) -> Result<String, Status> {
        let req = pb::SignUpRequest { email: email.into(), password: password.into(), display_name: "Test".into() };
        self.auth.clone().sign_up(req).await.map(|r| r.into_inner().user_id)
    }

    /// Login's answer: tokens, or a second-factor challenge.
    pub async fn login_outcome(&self, email: &str, password: &str) -> Result<pb::login_response::Result, Status> {
        let req = pb::LoginRequest { email: email.into(), password: password.into(), ..Default::default() };
        Ok(self.auth.clone().login(req).await?.into_inner().result.expect("login answers something"))
    }

    pub async fn login(&self, email: &str, password: &str) -> Result<pb::TokenPair, Status> {
        let req = pb::LoginRequest { email: email.into(), password: password.into(), ..Default::default() };
        let res = self.auth.clone().login(req).await?.into_inner();
        match res.result {
            Some(pb::login_response::Result::Tokens(pair)) => Ok(pair),
            other => panic!("login returned no tokens: {other:?}"),
        }
    }

    /// Signs up `email` with a fixed good password, verifies the address
    /// with the link token from its event, and logs in.
    pub async fn user_session(&self, email: &str) -> pb::TokenPair {
        self.verified_user(email).await;
        self.login(email, PASSWORD).await.unwrap()
    }

    /// Signs up `email` with the fixed good password and verifies it.
    pub async fn verified_user(&self, email: &str) -> String {
        let user_id = self.sign_up(email, PASSWORD).await.unwrap();
        let event = self.last_event("email.verification_requested", email).await;
        self.verify_token(&event.token).await.unwrap();
        user_id
    }

    /// `ChangePassword` as the holder of `access_token`.
    pub async fn change_password(&self, access_token: &str, current: &str, new: &str) -> Result<(), Status> {
        let req = pb::ChangePasswordRequest { current_password: current.into(), new_password: new.into() };
        self.user.clone().change_password(authed(req, access_token)).await.map(|_| ())
    }

    pub async fn verify_token(&self, token: &str) -> Result<(), Status> {
        let req = pb::VerifyEmailRequest { proof: Some(pb::verify_email_request::Proof::Token(token.into())) };
        self.auth.clone().verify_email(req).await.map(|_| ())
    }

    pub async fn verify_code(&self, email: &str, code: &str) -> Result<(), Status> {
        let proof =
            pb::verify_email_request::Proof::EmailCode(pb::EmailCode { email: email.into(), code: code.into() });
        self.auth.clone().verify_email(pb::VerifyEmailRequest { proof: Some(proof) }).await.map(|_| ())
    }

    /// Every event committed to the outbox so far (sent or not), oldest first,
    /// read straight from the database: what the relay will deliver.
    pub async fn outbox(&self) -> Vec<OutboxRow> {
        let db = sea_orm::Database::connect(self.config.effective_database_url()).await.unwrap();
        let rows = db
            .query_all(sea_orm::Statement::from_string(
                db.get_database_backend(),
                "SELECT id, event_type, payload, sent_at IS NOT NULL AS sent FROM outbox ORDER BY created_at, id",
            ))
            .await
            .unwrap();
        let out = rows
            .iter()
            .map(|r| {
                let event_type: String = r.try_get("", "event_type").unwrap();
                let sealed: Vec<u8> = r.try_get("", "payload").unwrap();
                let payload = self.open_payload(&sealed);
                let sent: bool = r.try_get("", "sent").unwrap();
                OutboxRow { event: Mail::decode(&event_type, &payload), event_type, sent }
            })
            .collect();
        let _ = db.close().await;
        out
    }

    /// Outbox payloads are sealed at rest; the test holds the key.
    fn open_payload(&self, sealed: &[u8]) -> Vec<u8> {
        use gatehouse_application::ports::mfa::SecretBox as _;
        let key = gatehouse_crypto::SecretKey::load(self.config.secret_key_file.as_ref().unwrap()).unwrap();
        let framed = gatehouse_application::events::unframe(sealed).expect("outbox payloads are sealed");
        gatehouse_crypto::AeadSecretBox::new(key, Vec::new()).open(&framed).unwrap()
    }

    /// The newest committed `event_type` event addressed to `email`. Some
    /// requests answer before their work is done (a reset or a resent
    /// verification, so their timing reveals nothing), so this waits a
    /// while for the event, as a mailer would.
    pub async fn last_event(&self, event_type: &str, email: &str) -> Mail {
        self.event_after(event_type, email, None).await
    }

    /// The newest `event_type` event for `email` other than `previous`,
    /// waiting for it like [`Self::last_event`]: what a second request sent.
    pub async fn event_after(&self, event_type: &str, email: &str, previous: impl Into<Option<&Mail>>) -> Mail {
        let previous = previous.into().map(|m| m.event_id.clone());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let rows = self.outbox().await;
            let newest =
                rows.into_iter().rev().find(|r| r.event_type == event_type && r.event.email == email).map(|r| r.event);
            if let Some(mail) = newest.filter(|m| Some(&m.event_id) != previous.as_ref()) {
                return mail;
            }
            assert!(tokio::time::Instant::now() < deadline, "no {event_type} event for {email} in the outbox");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn validate(&self, access_token: &str) -> Result<pb::ValidateTokenResponse, Status> {
        let req = pb::ValidateTokenRequest { access_token: access_token.into() };
        self.token.clone().validate_token(req).await.map(tonic::Response::into_inner)
    }

    pub async fn refresh(&self, refresh_token: &str) -> Result<pb::TokenPair, Status> {
        let req = pb::RefreshTokenRequest { refresh_token: refresh_token.into(), ..Default::default() };
        self.auth.clone().refresh_token(req).await.map(|r| r.into_inner().tokens.unwrap())
    }

    pub async fn logout_bearer(&self, access_token: &str) -> Result<(), Status> {
        let mut req = tonic::Request::new(pb::LogoutRequest::default());
        req.metadata_mut().insert("authorization", format!("Bearer {access_token}").parse().unwrap());
        self.auth.clone().logout(req).await.map(|_| ())
    }

    pub async fn logout_refresh(&self, refresh_token: &str) -> Result<(), Status> {
        let req = pb::LogoutRequest { refresh_token: refresh_token.into() };
        self.auth.clone().logout(req).await.map(|_| ())
    }

    /// The `kid` of the current signing key, from the server's JWKS.
    pub async fn kid(&self) -> String {
        let jwks = self.token.clone().get_jwks(pb::GetJwksRequest {}).await.unwrap().into_inner();
        jwks.keys[0].kid.clone()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

/// How far past an expiry a test waits before it expects a refusal: the
/// server may keep instants to the second, and on a loaded machine a
/// few milliseconds of margin are not enough.
const EXPIRY_MARGIN: Duration = Duration::from_secs(1);

/// Sleeps until `expiry`, an instant the server reported, is past by a
/// margin. Waiting for the server's own expiry, not for a lifetime counted
/// from when the test happened to look, keeps a slow step from eating
/// into the wait.
pub async fn sleep_past(expiry: Option<&prost_types::Timestamp>) {
    let expiry = expiry.expect("the server reports the expiry");
    let at = UNIX_EPOCH + Duration::new(u64::try_from(expiry.seconds).unwrap(), u32::try_from(expiry.nanos).unwrap());
    let left = at.duration_since(SystemTime::now()).unwrap_or_default();
    tokio::time::sleep(left + EXPIRY_MARGIN).await;
}

/// `message` with `authorization: Bearer <access_token>`.
pub fn authed<T>(message: T, access_token: &str) -> tonic::Request<T> {
    let mut req = tonic::Request::new(message);
    req.metadata_mut().insert("authorization", format!("Bearer {access_token}").parse().unwrap());
    req
}

/// One outbox row as the tests see it.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub event_type: String,
    pub event: Mail,
    /// Whether the relay has published it (a confirmed publish).
    pub sent: bool,
}

/// The fields of an email event that tests use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mail {
    pub event_id: String,
    pub user_id: String,
    pub email: String,
    pub token: String,
    pub code: String,
    pub link: String,
    pub new_email: String,
    /// When the link or code stops working, for the events that carry one.
    pub expires_at: Option<prost_types::Timestamp>,
}

impl Mail {
    /// Decodes an event payload with the published schema.
    pub fn decode(event_type: &str, payload: &[u8]) -> Self {
        use gatehouse_events::DecodedEvent as E;
        match gatehouse_events::decode(event_type, payload).unwrap() {
            E::VerificationRequested(e) => Self {
                event_id: e.event_id,
                user_id: e.user_id,
                email: e.email,
                token: e.token,
                code: e.code,
                link: e.link,
                expires_at: e.expires_at,
                ..Self::default()
            },
            E::PasswordResetRequested(e) => Self {
                event_id: e.event_id,
                user_id: e.user_id,
                email: e.email,
                token: e.token,
                code: e.code,
                link: e.link,
                expires_at: e.expires_at,
                ..Self::default()
            },
            E::PasswordChanged(e) => {
                Self { event_id: e.event_id, user_id: e.user_id, email: e.email, ..Self::default() }
            }
            E::OrganizationInvitation(e) => Self {
                event_id: e.event_id,
                user_id: e.user_id,
                email: e.email,
                token: e.token,
                link: e.link,
                expires_at: e.expires_at,
                ..Self::default()
            },
            E::EmailChanged(e) => Self {
                event_id: e.event_id,
                user_id: e.user_id,
                email: e.email,
                new_email: e.new_email,
                ..Self::default()
            },
            // SMS codes go to a phone number: `email` holds the recipient.
            E::EmailMfaCode(e) | E::SmsMfaCode(e) => Self {
                event_id: e.event_id,
                user_id: e.user_id,
                email: if e.email.is_empty() { e.phone } else { e.email },
                code: e.code,
                ..Self::default()
            },
            E::MfaFactorAdded(e) => {
                Self { event_id: e.event_id, user_id: e.user_id, email: e.email, ..Self::default() }
            }
            E::MfaFactorRemoved(e) => {
                Self { event_id: e.event_id, user_id: e.user_id, email: e.email, ..Self::default() }
            }
            E::BackupCodeUsed(e) => Self {
                event_id: e.event_id,
                user_id: e.user_id,
                email: e.email,
                code: e.remaining.to_string(),
                ..Self::default()
            },
            E::Audit(e) => Self { event_id: e.event_id, user_id: e.subject_id, link: e.kind, ..Self::default() },
            E::LoginNotice(e) => Self {
                event_id: e.event_id,
                user_id: e.user_id,
                email: e.email,
                link: format!("{} {}", e.ip, e.device),
                ..Self::default()
            },
            E::BackupCodesRegenerated(e) => {
                Self { event_id: e.event_id, user_id: e.user_id, email: e.email, ..Self::default() }
            }
            E::LoginThrottled(e) => {
                Self { event_id: e.event_id, user_id: e.user_id, email: e.email, link: e.ip, ..Self::default() }
            }
            E::SignupAttempted(e) => {
                Self { event_id: e.event_id, user_id: e.user_id, email: e.email, link: e.ip, ..Self::default() }
            }
        }
    }
}

/// Asserts `result` failed with `code` and `ErrorInfo.reason` = `reason`.
#[track_caller]
pub fn assert_error<T: std::fmt::Debug>(result: Result<T, Status>, code: Code, reason: &str) -> Status {
    let status = result.expect_err("expected an error");
    assert_eq!(status.code(), code, "{status:?}");
    let info = status.get_error_details().error_info().cloned();
    assert_eq!(info.map(|i| i.reason), Some(reason.to_owned()), "{status:?}");
    status
}

/// The status's code and `ErrorInfo.reason` (empty when it has none): what
/// a caller acts on, so what a test of a refusal compares.
pub fn code_and_reason(status: &Status) -> (Code, String) {
    let reason = status.get_error_details().error_info().map(|i| i.reason.clone()).unwrap_or_default();
    (status.code(), reason)
}

/// The fields named by the status's `BadRequest` violations.
pub fn violated_fields(status: &Status) -> Vec<String> {
    status
        .get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default()
}
