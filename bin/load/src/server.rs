//! The server under load: started from its binary with the load settings,
//! embedded or against the local PostgreSQL, Redis and RabbitMQ, timed to
//! `SERVING`, and asked for its peak memory (`VmHWM`) at the end.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// What the load scenarios need of the server's settings: accounts that log
/// in without a verified address, and sign-up and message limits that a
/// load generator on one address does not reach. Login limits count only
/// failures, and every load login is right. Logs at `warn`, so the embedded
/// mode's event log lines cost nothing.
pub const LOAD_SETTINGS: &[(&str, &str)] = &[
    ("GATEHOUSE_REQUIRE_VERIFIED_EMAIL", "false"),
    ("GATEHOUSE_SIGNUP_LIMIT_ADDRESS", "1000000/1s"),
    ("GATEHOUSE_MESSAGE_LIMIT_RECIPIENT", "1000000/1s"),
    ("GATEHOUSE_MESSAGE_LIMIT_ACCOUNT", "1000000/1s"),
    ("GATEHOUSE_LOGIN_LIMIT_ADDRESS", "1000000/1s"),
    ("RUST_LOG", "warn"),
];

/// Where the server keeps its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// SQLite and the in-process denylist (`make run`).
    Embedded,
    /// The local PostgreSQL, Redis and RabbitMQ (their default ports).
    Production,
}

impl Mode {
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Embedded => "embedded",
            Self::Production => "production",
        }
    }
}

/// A running server, stopped (and its database dropped) when dropped.
#[derive(Debug)]
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    /// From spawning the process to its health service answering `SERVING`.
    pub cold_start: Duration,
    dir: PathBuf,
    /// Production: the database and the Redis key prefix, removed at the end.
    database: Option<String>,
    redis_prefix: Option<String>,
    /// Production: the connection holding the sink queue (see [`event_sink`]).
    _sink: Option<lapin::Connection>,
}

/// The exchange every production run publishes to.
const LOAD_EXCHANGE: &str = "gatehouse.load";

/// Binds a queue that drops what it receives (`x-message-ttl` 0) to every
/// routing key of [`LOAD_EXCHANGE`], as a deployment's consumers would be.
/// The server publishes `mandatory`, so with nobody bound each event would
/// come back unroutable and be retried while the scenarios run, which is
/// not what a deployment does. The queue is exclusive: it goes with the
/// returned connection.
async fn event_sink(url: &str) -> anyhow::Result<lapin::Connection> {
    use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
    use lapin::types::{AMQPValue, FieldTable};

    let connection = lapin::Connection::connect(url, lapin::ConnectionProperties::default())
        .await
        .context("connecting to RabbitMQ for the event sink")?;
    let channel = connection.create_channel().await?;
    // Declared exactly as the server declares it: the broker refuses a
    // redeclaration that differs.
    let durable = ExchangeDeclareOptions { durable: true, ..ExchangeDeclareOptions::default() };
    channel.exchange_declare(LOAD_EXCHANGE.into(), lapin::ExchangeKind::Topic, durable, FieldTable::default()).await?;
    let mut arguments = FieldTable::default();
    arguments.insert("x-message-ttl".into(), AMQPValue::LongInt(0));
    let exclusive = QueueDeclareOptions { exclusive: true, auto_delete: true, ..QueueDeclareOptions::default() };
    let queue = channel.queue_declare("".into(), exclusive, arguments).await?;
    channel
        .queue_bind(
            queue.name().clone(),
            LOAD_EXCHANGE.into(),
            "#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    Ok(connection)
}

/// Whether PostgreSQL, Redis and RabbitMQ answer on their local ports.
#[must_use]
pub fn production_services_up() -> bool {
    [5432, 6379, 5672].iter().all(|port| {
        TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], *port)), Duration::from_millis(300)).is_ok()
    })
}

impl Server {
    /// Starts `binary serve` in `mode` on a free local port, pinned to
    /// `cpus` (a `taskset` list) when given, and waits for `SERVING`.
    ///
    /// # Errors
    /// When it cannot be started or does not serve within 30 s.
    pub async fn start(binary: &Path, mode: Mode, cpus: Option<&str>) -> anyhow::Result<Self> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let tag = format!("{}-{}", std::process::id(), port);
        let dir = std::env::temp_dir().join(format!("gatehouse-load-{tag}"));
        std::fs::create_dir_all(&dir)?;
        let mut command = match cpus {
            Some(cpus) => {
                let mut c = Command::new("taskset");
                c.args(["-c", cpus]).arg(binary);
                c
            }
            None => Command::new(binary),
        };
        command.arg("serve").env("GATEHOUSE_GRPC_ADDR", addr.to_string()).env("GATEHOUSE_DATA_DIR", &dir);
        command.envs(LOAD_SETTINGS.iter().copied());
        let (mut database, mut redis_prefix, mut sink) = (None, None, None);
        if mode == Mode::Production {
            let amqp = "amqp://guest:guest@127.0.0.1:5672/%2f";
            sink = Some(event_sink(amqp).await?);
            let name = format!("gatehouse_load_{}", tag.replace('-', "_"));
            let created = Command::new("createdb").args(["-h", "127.0.0.1", "-U", "postgres", &name]).status();
            if !created.is_ok_and(|s| s.success()) {
                bail!("createdb {name} failed (is PostgreSQL up, user postgres trusted?)");
            }
            database = Some(name.clone());
            let prefix = format!("gatehouse-load-{tag}:");
            redis_prefix = Some(prefix.clone());
            let signing = dir.join("signing-key.pem");
            let secret = dir.join("secret-key");
            gatehouse_crypto::SigningKey::load_or_generate(&signing)?;
            gatehouse_crypto::SecretKey::load_or_generate(&secret)?;
            command
                .env("DATABASE_URL", format!("postgres://postgres@127.0.0.1:5432/{name}"))
                .env("REDIS_URL", "redis://127.0.0.1:6379")
                .env("GATEHOUSE_REDIS_KEY_PREFIX", &prefix)
                .env("AMQP_URL", amqp)
                // One exchange for every run: a per-run name would leave one
                // behind each time.
                .env("GATEHOUSE_AMQP_EXCHANGE", LOAD_EXCHANGE)
                .env("GATEHOUSE_SIGNING_KEY_FILE", &signing)
                .env("GATEHOUSE_SECRET_KEY_FILE", &secret);
        }
        let log = std::fs::File::create(dir.join("server.log"))?;
        command.stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
        let started = Instant::now();
        let child = command.spawn().with_context(|| format!("starting {}", binary.display()))?;
        let mut server = Self { child, addr, cold_start: Duration::ZERO, dir, database, redis_prefix, _sink: sink };
        server.cold_start = server.wait_serving(started).await?;
        Ok(server)
    }

    async fn wait_serving(&mut self, started: Instant) -> anyhow::Result<Duration> {
        while started.elapsed() < Duration::from_secs(30) {
            if let Some(status) = self.child.try_wait()? {
                let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
                bail!("the server exited ({status}):\n{log}");
            }
            if let Ok(channel) = Channel::from_shared(format!("http://{}", self.addr))?.connect().await {
                let answer = HealthClient::new(channel).check(HealthCheckRequest { service: String::new() }).await;
                if answer.is_ok_and(|a| a.into_inner().status == ServingStatus::Serving as i32) {
                    return Ok(started.elapsed());
                }
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        bail!("the server did not serve within 30 s")
    }

    /// The server's peak resident memory so far (`VmHWM`), in bytes.
    #[must_use]
    pub fn peak_rss(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(name) = &self.database {
            let _ = Command::new("dropdb").args(["-h", "127.0.0.1", "-U", "postgres", "--if-exists", name]).status();
        }
        if let Some(prefix) = &self.redis_prefix {
            // Best effort, with redis-cli if it is installed: the run's keys.
            let script = format!(
                "redis-cli -h 127.0.0.1 --scan --pattern '{prefix}*' | xargs -r redis-cli -h 127.0.0.1 del >/dev/null"
            );
            let _ = Command::new("sh").args(["-c", &script]).stderr(Stdio::null()).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
