//! Gatehouse load tool: drives a server over gRPC with N connections × M
//! concurrent streams, for a fixed duration or at a fixed rate, and reports
//! throughput of successful calls, latency percentiles and every status
//! code seen. [`server`] starts the server it measures (embedded, or
//! against the local PostgreSQL, Redis and RabbitMQ) and reads its peak
//! memory; [`report`] prints the table `make load` shows.
//!
//! The scenarios need accounts that can log in at once: the server is
//! started with `GATEHOUSE_REQUIRE_VERIFIED_EMAIL=false` and its sign-up
//! and message limits raised ([`server::LOAD_SETTINGS`]), and each run
//! signs up its own accounts under a fresh tag.

pub mod priority;
pub mod raw;
pub mod report;
pub mod server;
pub mod stats;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use gatehouse_grpc::pb;
use gatehouse_grpc::pb::auth_service_client::AuthServiceClient;
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_health::pb::HealthCheckRequest;

use crate::raw::RawClient;
use crate::stats::{Recorder, Summary};

/// The password every load account has (strong enough for the default policy).
pub const PASSWORD: &str = "correct horse battery";

/// What a scenario calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// `grpc.health.v1.Health/Check`: the empty-RPC ceiling.
    Health,
    /// `ValidateToken` with tokens of many sessions, each presented again and again.
    Validate,
    /// `Login` with the right password, across many accounts.
    Login,
    /// `RefreshToken`, each stream rotating its own session's token.
    Refresh,
    /// `SignUp` of a new account per call.
    Signup,
    /// `ValidateToken` at a fixed rate while logins saturate the hashing threads.
    Mixed,
}

impl Scenario {
    pub const ALL: [Self; 6] = [Self::Health, Self::Validate, Self::Login, Self::Refresh, Self::Signup, Self::Mixed];

    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Health => "health",
            Self::Validate => "validate",
            Self::Login => "login",
            Self::Refresh => "refresh",
            Self::Signup => "signup",
            Self::Mixed => "mixed",
        }
    }
}

/// How hard and how long.
#[derive(Debug, Clone)]
pub struct Options {
    /// HTTP/2 connections.
    pub connections: usize,
    /// Concurrent streams (calls in flight) per connection.
    pub streams: usize,
    pub duration: Duration,
    /// Calls per second over all streams; `None`: as fast as answers come.
    pub rate: Option<f64>,
    /// In `mixed`: the fixed rate of validations.
    pub mixed_validate_rate: f64,
    /// In `mixed`: concurrent logins (enough to keep every hashing thread busy).
    pub mixed_logins: usize,
    /// Accounts signed up for the run, and sessions validated.
    pub accounts: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            connections: 4,
            streams: 16,
            duration: Duration::from_secs(5),
            rate: None,
            mixed_validate_rate: 500.0,
            mixed_logins: 8,
            accounts: 64,
        }
    }
}

/// One scenario's result; `mixed` has two parts (validate and login).
#[derive(Debug, Clone)]
pub struct Outcome {
    pub scenario: Scenario,
    /// `""`, or which part of a mixed scenario.
    pub part: &'static str,
    pub summary: Summary,
}

/// The accounts and sessions a run uses, made once.
#[derive(Debug)]
pub struct Fixture {
    addr: String,
    channels: Vec<Channel>,
    tag: String,
    emails: Vec<String>,
    /// A `ValidateTokenRequest` of each session's access token, encoded.
    validate_requests: Vec<bytes::Bytes>,
    health_request: bytes::Bytes,
    signups: AtomicU64,
}

impl Fixture {
    /// Connects `options.connections` times to `addr` and signs up and logs
    /// in `options.accounts` accounts named after `tag`.
    ///
    /// # Errors
    /// When the server cannot be reached or refuses the set-up calls.
    pub async fn prepare(addr: &str, tag: &str, options: &Options) -> anyhow::Result<Self> {
        let channels = connect(addr, options.connections).await?;
        let emails: Vec<String> =
            (0..options.accounts.max(1)).map(|n| format!("load-{tag}-{n}@example.test")).collect();
        // Sign-ups and logins hash passwords: a few at a time, as the server's threads take them.
        let mut access_tokens = Vec::new();
        for batch in emails.chunks(8) {
            let calls = batch.iter().enumerate().map(|(n, email)| {
                let mut auth = AuthServiceClient::new(channels[n % channels.len()].clone());
                let email = email.clone();
                tokio::spawn(async move {
                    let req = pb::SignUpRequest {
                        email: email.clone(),
                        password: PASSWORD.into(),
                        display_name: "Load".into(),
                    };
                    auth.sign_up(req).await.with_context(|| format!("signing up {email}"))?;
                    login(&mut auth, &email).await.with_context(|| format!("logging in {email}"))
                })
            });
            for call in calls.collect::<Vec<_>>() {
                access_tokens.push(call.await??.access_token);
            }
        }
        let validate_requests = access_tokens
            .into_iter()
            .map(|access_token| raw::encoded(&pb::ValidateTokenRequest { access_token }))
            .collect();
        Ok(Self {
            addr: addr.to_owned(),
            channels,
            tag: tag.to_owned(),
            emails,
            validate_requests,
            health_request: raw::encoded(&HealthCheckRequest { service: String::new() }),
            signups: AtomicU64::new(0),
        })
    }

    /// The same accounts and sessions over connections of their own, made
    /// (and so driven) by the runtime this is called on.
    async fn reconnected(&self) -> anyhow::Result<Self> {
        Ok(Self {
            addr: self.addr.clone(),
            channels: connect(&self.addr, self.channels.len()).await?,
            tag: self.tag.clone(),
            emails: self.emails.clone(),
            validate_requests: self.validate_requests.clone(),
            health_request: self.health_request.clone(),
            signups: AtomicU64::new(self.signups.load(Ordering::Relaxed)),
        })
    }

    fn channel(&self, n: usize) -> Channel {
        self.channels[n % self.channels.len()].clone()
    }
}

/// `connections` HTTP/2 connections to `addr`.
async fn connect(addr: &str, connections: usize) -> anyhow::Result<Vec<Channel>> {
    let mut channels = Vec::new();
    for _ in 0..connections.max(1) {
        let channel = Channel::from_shared(format!("http://{addr}"))?
            .connect()
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        channels.push(channel);
    }
    Ok(channels)
}

async fn login(auth: &mut AuthServiceClient<Channel>, email: &str) -> Result<pb::TokenPair, Status> {
    let req = pb::LoginRequest { email: email.into(), password: PASSWORD.into(), ..Default::default() };
    match auth.login(req).await?.into_inner().result {
        Some(pb::login_response::Result::Tokens(pair)) => Ok(pair),
        _ => Err(Status::failed_precondition("login asked for a second factor")),
    }
}

/// Runs `scenario` against the prepared server.
///
/// # Errors
/// When a stream cannot be set up (its first login for `refresh`).
pub async fn run(fixture: &Arc<Fixture>, scenario: Scenario, options: &Options) -> anyhow::Result<Vec<Outcome>> {
    let streams = options.connections.max(1) * options.streams.max(1);
    let call = match scenario {
        Scenario::Health => Call::Health,
        Scenario::Validate => Call::Validate,
        Scenario::Login => Call::Login,
        Scenario::Refresh => Call::Refresh,
        Scenario::Signup => Call::Signup,
        Scenario::Mixed => return mixed(fixture, options).await,
    };
    let summary = drive(fixture, call, streams, options.duration, options.rate).await?;
    Ok(vec![Outcome { scenario, part: "", summary }])
}

/// `mixed`: validations at a fixed rate while logins keep the hashing
/// threads busy, timed by a runtime of its own whose threads run at a
/// real-time priority where the system allows it ([`priority`]).
async fn mixed(fixture: &Arc<Fixture>, options: &Options) -> anyhow::Result<Vec<Outcome>> {
    let (fixture, options) = (Arc::clone(fixture), options.clone());
    let (done, result) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let outcome = (|| {
            priority::raise_current();
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .on_thread_start(priority::raise_current)
                .build()?;
            runtime.block_on(async {
                // Connections of this runtime, so that its threads do their I/O.
                let fixture = Arc::new(fixture.reconnected().await?);
                let streams = options.connections.max(1) * options.streams.max(1);
                let logins = drive(&fixture, Call::Login, options.mixed_logins.max(1), options.duration, None);
                let validations =
                    drive(&fixture, Call::Validate, streams, options.duration, Some(options.mixed_validate_rate));
                let (logins, validations) = tokio::join!(logins, validations);
                Ok(vec![
                    Outcome { scenario: Scenario::Mixed, part: "validate", summary: validations? },
                    Outcome { scenario: Scenario::Mixed, part: "login", summary: logins? },
                ])
            })
        })();
        let _ = done.send(outcome);
    });
    let outcomes = result.await.context("the mixed scenario's thread ended")?;
    if !priority::raised() {
        eprintln!(
            "load: mixed: no real-time priority for the tool (needs CAP_SYS_NICE); its latencies include the tool's own waits for a CPU"
        );
    }
    outcomes
}

#[derive(Debug, Clone, Copy)]
enum Call {
    Health,
    Validate,
    Login,
    Refresh,
    Signup,
}

/// One stream: its clients on its connection, and its session for `refresh`.
struct Stream {
    index: usize,
    fixture: Arc<Fixture>,
    auth: AuthServiceClient<Channel>,
    raw: RawClient,
    refresh_token: String,
}

impl Stream {
    async fn call(&mut self, call: Call, k: usize) -> Result<(), Status> {
        let fixture = &self.fixture;
        match call {
            Call::Health => {
                self.raw.call(raw::HEALTH_CHECK, fixture.health_request.clone()).await?;
            }
            Call::Validate => {
                let request = &fixture.validate_requests[(self.index + k) % fixture.validate_requests.len()];
                self.raw.call(raw::VALIDATE_TOKEN, request.clone()).await?;
            }
            Call::Login => {
                let email = &fixture.emails[(self.index * 7 + k) % fixture.emails.len()];
                login(&mut self.auth, email).await?;
            }
            Call::Refresh => {
                let req = pb::RefreshTokenRequest {
                    refresh_token: std::mem::take(&mut self.refresh_token),
                    ..Default::default()
                };
                let answer = self.auth.refresh_token(req).await;
                let pair = match answer {
                    Ok(response) => response.into_inner().tokens,
                    Err(status) => {
                        // The chain is broken: start a new session for the next call.
                        let email = &fixture.emails[self.index % fixture.emails.len()];
                        self.refresh_token =
                            login(&mut self.auth, email).await.map(|p| p.refresh_token).unwrap_or_default();
                        return Err(status);
                    }
                };
                self.refresh_token = pair.map(|p| p.refresh_token).unwrap_or_default();
            }
            Call::Signup => {
                let n = fixture.signups.fetch_add(1, Ordering::Relaxed);
                let email = format!("load-{}-s{n}@example.test", fixture.tag);
                let req = pb::SignUpRequest { email, password: PASSWORD.into(), display_name: "Load".into() };
                self.auth.sign_up(req).await?;
            }
        }
        Ok(())
    }
}

/// How late a timer may fire before a fixed-rate stream counts as behind.
const TIMER_SLACK: Duration = Duration::from_millis(2);

/// Runs `call` on `streams` concurrent streams for `duration`: each as fast
/// as answers come, or together at `rate` calls a second. At a fixed rate a
/// stream that fell behind counts a call's latency from when it was due,
/// not from when it was sent, so a server that falls behind shows it (no
/// coordinated omission).
async fn drive(
    fixture: &Arc<Fixture>,
    call: Call,
    streams: usize,
    duration: Duration,
    rate: Option<f64>,
) -> anyhow::Result<Summary> {
    let mut tasks = Vec::new();
    for index in 0..streams {
        let channel = fixture.channel(index);
        let mut stream = Stream {
            index,
            fixture: Arc::clone(fixture),
            auth: AuthServiceClient::new(channel.clone()),
            raw: RawClient::new(channel),
            refresh_token: String::new(),
        };
        if matches!(call, Call::Refresh) {
            let email = &fixture.emails[index % fixture.emails.len()];
            stream.refresh_token =
                login(&mut stream.auth, email).await.context("the first login of a refresh stream")?.refresh_token;
        }
        tasks.push(stream);
    }
    let start = tokio::time::Instant::now();
    let deadline = start + duration;
    #[allow(clippy::cast_precision_loss)]
    let period = rate.map(|r| Duration::from_secs_f64(streams as f64 / r.max(0.001)));
    let handles: Vec<_> = tasks
        .into_iter()
        .map(|mut stream| {
            tokio::spawn(async move {
                let mut recorder = Recorder::default();
                let mut ticker = period.map(|period| {
                    // Streams start spread over one period, so the rate is even.
                    #[allow(clippy::cast_possible_truncation)]
                    let offset = period.mul_f64(stream.index as f64 / streams as f64);
                    let mut ticker = tokio::time::interval_at(start + offset, period);
                    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                    ticker
                });
                for k in 0.. {
                    let due = match &mut ticker {
                        Some(ticker) => ticker.tick().await,
                        None => tokio::time::Instant::now(),
                    };
                    if due >= deadline {
                        break;
                    }
                    // A timer fires up to a millisecond late (its resolution):
                    // that is the tool's delay, not the server's. Later than
                    // that, the stream fell behind, and the wait counts.
                    let sent = tokio::time::Instant::now();
                    let from = if sent.duration_since(due) > TIMER_SLACK { due } else { sent };
                    let code = stream.call(call, k).await.err().map_or(Code::Ok, |s| s.code());
                    recorder.record(from.elapsed(), code);
                }
                recorder
            })
        })
        .collect();
    let mut all = Recorder::default();
    for handle in handles {
        all.merge(handle.await?);
    }
    Ok(all.summarize(start.elapsed()))
}

/// The raw argon2id rate with the server's parameters (m=19456 KiB, t=2,
/// p=1) on `threads` threads for `duration`: what `Login` is compared with.
#[must_use]
pub fn argon2id_rate(threads: usize, duration: Duration) -> f64 {
    let start = Instant::now();
    let hashes: u64 = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads.max(1))
            .map(|_| {
                scope.spawn(|| {
                    let argon2 = argon2::Argon2::new(
                        argon2::Algorithm::Argon2id,
                        argon2::Version::V0x13,
                        argon2::Params::DEFAULT,
                    );
                    let mut blocks = vec![argon2::Block::default(); argon2::Params::DEFAULT.block_count()];
                    let mut out = [0u8; 32];
                    let mut n = 0u64;
                    while start.elapsed() < duration {
                        if argon2
                            .hash_password_into_with_memory(
                                PASSWORD.as_bytes(),
                                b"load-tool-salt-16",
                                &mut out,
                                &mut blocks,
                            )
                            .is_ok()
                        {
                            n += 1;
                        }
                    }
                    n
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap_or(0)).sum()
    });
    stats::per_second(hashes, start.elapsed())
}
