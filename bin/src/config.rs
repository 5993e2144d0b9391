//! Configuration: one typed struct, read by clap from command-line flags and
//! the environment (a flag wins over its variable), with defaults that make
//! `gatehouse serve` work on a fresh machine with no services at all.
//!
//! Each field below is the one place a setting is named: its flag, its
//! variable, its default and its help come from the same attribute, so a
//! setting cannot be documented and forgotten. Rules between settings live
//! in [`Config::check`].

mod error;
mod limits;
mod parse;
#[cfg(test)]
mod tests;

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, CommandFactory as _, FromArgMatches as _, Parser, Subcommand, ValueEnum};
use gatehouse_application::EnabledFactors;
use gatehouse_application::ports::rate_limit::Limit;
use gatehouse_application::throttle::RateLimits;
use ipnet::IpNet;

pub use self::error::ConfigError;
use self::error::{from_clap, invalid, setting_name};
pub use self::limits::ServerLimitsConfig;

/// The command line: `gatehouse [serve|migrate] [--flag value]...`.
#[derive(Debug, Parser)]
#[command(
    name = "gatehouse",
    version,
    about = "Gatehouse: accounts and authentication over gRPC.",
    after_help = "Every flag can also be set by its environment variable; a flag wins over its variable.",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Settings with no subcommand before them mean `serve`, so that
    /// `gatehouse --grpc-addr …` and a container's arguments after its
    /// entrypoint keep working.
    #[command(flatten)]
    serve: Config,
}

/// What `gatehouse` was asked to do, with the configuration to do it with.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply migrations, then serve gRPC (the default)
    Serve(Config),
    /// Apply migrations and exit
    Migrate(Config),
}

impl Command {
    /// Reads `args` (the program name first) and the process environment.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the variable and flag of the first
    /// unusable value; [`ConfigError::Usage`] for help, version and command
    /// lines clap refuses.
    pub fn load<I, T>(args: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        Self::load_with(Cli::command(), args)
    }

    /// [`load`](Self::load) with a given clap command: tests pass one that
    /// ignores the environment.
    fn load_with<I, T>(cmd: clap::Command, args: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let matches = cmd.try_get_matches_from(args).map_err(from_clap)?;
        let cli = Cli::from_arg_matches(&matches).map_err(from_clap)?;
        let command = cli.command.unwrap_or(Self::Serve(cli.serve));
        command.config().check()?;
        // Only serving sends events; migrating needs no broker.
        if let Self::Serve(config) = &command {
            config.events_sink()?;
        }
        Ok(command)
    }

    /// The configuration the command runs with.
    #[must_use]
    pub const fn config(&self) -> &Config {
        match self {
            Self::Serve(config) | Self::Migrate(config) => config,
        }
    }
}

/// Where events should go, as configured (`GATEHOUSE_EVENTS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EventsSetting {
    /// RabbitMQ when `AMQP_URL` is set; otherwise the log, in the embedded
    /// mode only.
    Auto,
    /// RabbitMQ, and `AMQP_URL` must say where.
    Rabbitmq,
    /// The log, whatever the database: link tokens and codes are written
    /// there, so it takes this explicit setting next to PostgreSQL.
    Log,
}

/// Where events go, decided from the settings by [`Config::events_sink`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventsSink {
    /// Published to the RabbitMQ broker at this URL.
    Rabbitmq(String),
    /// Written to the server's log (embedded mode, or explicitly asked for).
    Log,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

// Optional settings and lists are typed `std::option::Option` and
// `std::vec::Vec` so that clap hands the whole value to their parser instead
// of treating them specially: an empty variable (`REDIS_URL=`) then means
// "unset", as deployment files expect, rather than a value to refuse.

/// Everything the server can be told.
#[derive(Clone, PartialEq, Eq, Args)]
pub struct Config {
    /// gRPC listen address
    #[arg(long, env = "GATEHOUSE_GRPC_ADDR", default_value = "127.0.0.1:50051")]
    pub grpc_addr: SocketAddr,
    /// Directory of the embedded SQLite file and the generated keys
    #[arg(long, env = "GATEHOUSE_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
    /// Base URL of the links in emails; never taken from request headers
    #[arg(long, env = "GATEHOUSE_PUBLIC_URL", default_value = "http://localhost:8080", value_parser = parse::public_url)]
    pub public_url: String,
    /// Comma-separated proxy IPs or CIDRs whose x-forwarded-for / x-real-ip are believed [default: none]
    #[arg(long, env = "GATEHOUSE_TRUSTED_PROXIES", default_value = "", hide_default_value = true, value_parser = parse::networks)]
    pub trusted_proxies: std::vec::Vec<IpNet>,
    /// How often dependencies are probed for the health service
    #[arg(long, env = "GATEHOUSE_HEALTH_INTERVAL", default_value = "5s", value_parser = parse::duration)]
    pub health_interval: Duration,
    /// Password-hashing threads (argon2, 19 MiB each, at a lower priority) [default: the number of cores]
    #[arg(long, env = "GATEHOUSE_PASSWORD_HASH_CONCURRENCY", default_value_t = parse::cores(), hide_default_value = true, value_parser = parse::positive)]
    pub password_hash_concurrency: usize,
    /// Hashes that may wait for a hashing thread; past that, Login and the other password calls answer RESOURCE_EXHAUSTED
    #[arg(long, env = "GATEHOUSE_PASSWORD_HASH_QUEUE", default_value = "64")]
    pub password_hash_queue: usize,
    /// Lowest zxcvbn score (1 to 4) a new password needs; 3 is more than 10^8 guesses
    #[arg(long, env = "GATEHOUSE_PASSWORD_MIN_SCORE", default_value = "3", value_parser = clap::value_parser!(u8).range(1..=4))]
    pub password_min_score: u8,
    /// The gRPC server's resource limits (`config/limits.rs`).
    #[command(flatten)]
    pub server_limits: ServerLimitsConfig,

    /// postgres://… or sqlite://… [default: a SQLite file in the data dir]
    #[arg(long, env = "DATABASE_URL", default_value = "", hide_default_value = true, hide_env_values = true, value_parser = parse::optional)]
    pub database_url: std::option::Option<String>,
    /// Database pool size
    #[arg(long, env = "GATEHOUSE_DB_MAX_CONNECTIONS", default_value = "10", value_parser = clap::value_parser!(u32).range(1..))]
    pub db_max_connections: u32,
    /// Database connect and acquire timeout
    #[arg(long, env = "GATEHOUSE_DB_CONNECT_TIMEOUT", default_value = "5s", value_parser = parse::duration)]
    pub db_connect_timeout: Duration,
    /// Longest PostgreSQL statement
    #[arg(long, env = "GATEHOUSE_DB_STATEMENT_TIMEOUT", default_value = "5s", value_parser = parse::duration)]
    pub db_statement_timeout: Duration,
    /// While the database is known to be down, how long one trial call waits for it; the others answer UNAVAILABLE at once
    #[arg(long, env = "GATEHOUSE_DB_OUTAGE_TIMEOUT", default_value = "1s", value_parser = parse::duration)]
    pub db_outage_timeout: Duration,
    /// At start, wait (with backoff) for an unreachable database instead of exiting (true or false)
    #[arg(long, env = "GATEHOUSE_WAIT_FOR_DEPENDENCIES", default_value = "false", action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub wait_for_dependencies: bool,

    /// redis://… for the shared denylist and rate limits [default: none, in-process (one replica only)]
    #[arg(long, env = "REDIS_URL", default_value = "", hide_default_value = true, hide_env_values = true, value_parser = parse::optional)]
    pub redis_url: std::option::Option<String>,
    /// Prefix of every Redis key
    #[arg(long, env = "GATEHOUSE_REDIS_KEY_PREFIX", default_value = "gatehouse:")]
    pub redis_key_prefix: String,
    /// Redis connect and response timeout
    #[arg(long, env = "GATEHOUSE_REDIS_TIMEOUT", default_value = "500ms", value_parser = parse::duration)]
    pub redis_timeout: Duration,
    /// How often the denylist is refilled from SQL
    #[arg(long, env = "GATEHOUSE_DENYLIST_RESYNC_INTERVAL", default_value = "10s", value_parser = parse::duration)]
    pub denylist_resync_interval: Duration,

    /// Ed25519 PKCS#8 PEM signing key [default: <data dir>/signing-key.pem, generated]
    #[arg(long, env = "GATEHOUSE_SIGNING_KEY_FILE", default_value = "", hide_default_value = true, value_parser = parse::optional_path)]
    pub signing_key_file: std::option::Option<PathBuf>,
    /// Comma-separated retired keys (public or private PEM) whose tokens still verify [default: none]
    #[arg(long, env = "GATEHOUSE_PREVIOUS_SIGNING_KEY_FILES", default_value = "", hide_default_value = true, value_parser = parse::paths)]
    pub previous_signing_key_files: std::vec::Vec<PathBuf>,
    /// Access-token `iss`
    #[arg(long, env = "GATEHOUSE_ISSUER", default_value = "gatehouse", value_parser = parse::required)]
    pub issuer: String,
    /// Access-token `aud`
    #[arg(long, env = "GATEHOUSE_AUDIENCE", default_value = "gatehouse", value_parser = parse::required)]
    pub audience: String,
    /// Access-token life
    #[arg(long, env = "GATEHOUSE_ACCESS_TOKEN_TTL", default_value = "15m", value_parser = parse::duration)]
    pub access_token_ttl: Duration,
    /// Verified access tokens remembered, so a token presented again costs no signature check; 0 turns the cache off
    #[arg(long, env = "GATEHOUSE_TOKEN_CACHE_SIZE", default_value = "10000")]
    pub token_cache_size: u64,
    /// Refresh-token life: the session's idle timeout
    #[arg(long, env = "GATEHOUSE_REFRESH_TOKEN_TTL", default_value = "30d", value_parser = parse::duration)]
    pub refresh_token_ttl: Duration,
    /// Absolute life of a session, however active
    #[arg(long, env = "GATEHOUSE_SESSION_LIFETIME", default_value = "90d", value_parser = parse::duration)]
    pub session_lifetime: Duration,
    /// How often ended sessions are deleted
    #[arg(long, env = "GATEHOUSE_SESSION_PRUNE_INTERVAL", default_value = "1h", value_parser = parse::duration)]
    pub session_prune_interval: Duration,

    /// Login needs a verified address (true or false)
    #[arg(long, env = "GATEHOUSE_REQUIRE_VERIFIED_EMAIL", default_value = "true", action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub require_verified_email: bool,
    /// Life of an email verification
    #[arg(long, env = "GATEHOUSE_VERIFY_EMAIL_TTL", default_value = "5d", value_parser = parse::duration)]
    pub verify_email_ttl: Duration,
    /// Life of a password reset
    #[arg(long, env = "GATEHOUSE_RESET_PASSWORD_TTL", default_value = "2h", value_parser = parse::duration)]
    pub reset_password_ttl: Duration,
    /// Wrong codes allowed per verification
    #[arg(long, env = "GATEHOUSE_MAX_CODE_ATTEMPTS", default_value = "5", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_code_attempts: u32,

    /// amqp://… for events [default: none, events go to the log]
    #[arg(long, env = "AMQP_URL", default_value = "", hide_default_value = true, hide_env_values = true, value_parser = parse::optional)]
    pub amqp_url: std::option::Option<String>,
    /// Topic exchange events go to
    #[arg(long, env = "GATEHOUSE_AMQP_EXCHANGE", default_value = "gatehouse.events", value_parser = parse::required)]
    pub amqp_exchange: String,
    /// Broker connect and confirm timeout
    #[arg(long, env = "GATEHOUSE_AMQP_TIMEOUT", default_value = "5s", value_parser = parse::duration)]
    pub amqp_timeout: Duration,
    /// How often the outbox relay looks for new rows when idle
    #[arg(long, env = "GATEHOUSE_OUTBOX_POLL_INTERVAL", default_value = "500ms", value_parser = parse::duration)]
    pub outbox_poll_interval: Duration,
    /// Longest wait between publish retries
    #[arg(long, env = "GATEHOUSE_OUTBOX_MAX_BACKOFF", default_value = "60s", value_parser = parse::duration)]
    pub outbox_max_backoff: Duration,
    /// How long a relay holds the outbox rows it claimed: after a crash they are sent again (by any replica) once it runs out; more than twice the AMQP timeout
    #[arg(long, env = "GATEHOUSE_OUTBOX_LEASE", default_value = "15s", value_parser = parse::duration)]
    pub outbox_lease: Duration,
    /// How long sent events are kept
    #[arg(long, env = "GATEHOUSE_OUTBOX_RETENTION", default_value = "1h", value_parser = parse::duration)]
    pub outbox_retention: Duration,
    /// Where events go: auto (RabbitMQ with AMQP_URL; else the log, refused with PostgreSQL), rabbitmq, or log
    #[arg(long, env = "GATEHOUSE_EVENTS", default_value = "auto")]
    pub events: EventsSetting,

    /// Enabled second factors: a comma-separated subset of totp, email, sms
    #[arg(long, env = "GATEHOUSE_MFA_FACTORS", default_value = "totp,email,sms", value_parser = parse::mfa_factors)]
    pub mfa_factors: EnabledFactors,
    /// TOTP steps accepted either side of now (0 or 1)
    #[arg(long, env = "GATEHOUSE_TOTP_SKEW", default_value = "1", value_parser = clap::value_parser!(u8).range(0..=1))]
    pub totp_skew: u8,
    /// Life of a login challenge
    #[arg(long, env = "GATEHOUSE_MFA_CHALLENGE_TTL", default_value = "5m", value_parser = parse::duration)]
    pub mfa_challenge_ttl: Duration,
    /// Issuer shown by authenticator apps
    #[arg(long, env = "GATEHOUSE_MFA_ISSUER", default_value = "Gatehouse", value_parser = parse::required)]
    pub mfa_issuer: String,
    /// Key that seals TOTP secrets and outbox payloads [default: <data dir>/secret-key, generated]
    #[arg(long, env = "GATEHOUSE_SECRET_KEY_FILE", default_value = "", hide_default_value = true, value_parser = parse::optional_path)]
    pub secret_key_file: std::option::Option<PathBuf>,
    /// Comma-separated retired sealing keys that still open old secrets [default: none]
    #[arg(long, env = "GATEHOUSE_PREVIOUS_SECRET_KEY_FILES", default_value = "", hide_default_value = true, value_parser = parse::paths)]
    pub previous_secret_key_files: std::vec::Vec<PathBuf>,

    /// Login failures per account and client address, comma-separated tiers of MAX/WINDOW (the wait grows tier by tier)
    #[arg(long, env = "GATEHOUSE_LOGIN_LIMIT_PAIR", default_value = "5/1m,10/10m,20/1h", value_parser = parse::rates)]
    pub login_limit_pair: std::vec::Vec<Limit>,
    /// Login failures per account from every address (NIST: at most 100 in a row); reaching it emails the owner
    #[arg(long, env = "GATEHOUSE_LOGIN_LIMIT_ACCOUNT", default_value = "100/24h", value_parser = parse::rate)]
    pub login_limit_account: Limit,
    /// Login failures per client address across accounts (IPv6 per /64)
    #[arg(long, env = "GATEHOUSE_LOGIN_LIMIT_ADDRESS", default_value = "100/1h", value_parser = parse::rate)]
    pub login_limit_address: Limit,
    /// Wrong passwords per signed-in account (ChangePassword, DeleteMe, fresh proofs)
    #[arg(long, env = "GATEHOUSE_PASSWORD_CHECK_LIMIT", default_value = "10/1h", value_parser = parse::rate)]
    pub password_check_limit: Limit,
    /// Sign-ups per client address
    #[arg(long, env = "GATEHOUSE_SIGNUP_LIMIT_ADDRESS", default_value = "20/1h", value_parser = parse::rate)]
    pub signup_limit_address: Limit,
    /// Emails and texts per recipient
    #[arg(long, env = "GATEHOUSE_MESSAGE_LIMIT_RECIPIENT", default_value = "10/1h", value_parser = parse::rate)]
    pub message_limit_recipient: Limit,
    /// Emails and texts per account, whatever the recipient
    #[arg(long, env = "GATEHOUSE_MESSAGE_LIMIT_ACCOUNT", default_value = "20/1h", value_parser = parse::rate)]
    pub message_limit_account: Limit,
    /// Invitations per organization, whoever sends them
    #[arg(long, env = "GATEHOUSE_INVITATION_LIMIT_ORGANIZATION", default_value = "50/1h", value_parser = parse::rate)]
    pub invitation_limit_organization: Limit,
    /// Life of an organization invitation
    #[arg(long, env = "GATEHOUSE_INVITATION_TTL", default_value = "7d", value_parser = parse::duration)]
    pub invitation_ttl: Duration,

    /// How log lines are written
    #[arg(long, env = "GATEHOUSE_LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,
    /// Which log lines are written (tracing's env-filter syntax)
    #[arg(long, env = "RUST_LOG", default_value = parse::DEFAULT_LOG_FILTER, value_parser = parse::log_filter)]
    pub log_filter: String,
}

impl Default for Config {
    /// The built-in defaults, whatever the environment holds: what the
    /// end-to-end tests start from.
    #[allow(clippy::expect_used, reason = "the defaults are constants; a unit test parses them")]
    fn default() -> Self {
        let cmd = without_env(Self::augment_args(clap::Command::new("gatehouse")));
        cmd.try_get_matches_from(["gatehouse"])
            .and_then(|matches| Self::from_arg_matches(&matches))
            .expect("the built-in defaults parse")
    }
}

impl std::fmt::Debug for Config {
    /// Connection URLs may carry passwords: they are shown redacted.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("grpc_addr", &self.grpc_addr)
            .field("data_dir", &self.data_dir)
            .field("database_url", &self.database_url.as_deref().map(redact_url))
            .field("redis_url", &self.redis_url.as_deref().map(redact_url))
            .field("amqp_url", &self.amqp_url.as_deref().map(redact_url))
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

/// A URL with any password replaced by `***`, safe to log.
#[must_use]
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end && url[scheme_end + 3..at].contains(':') => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{}:***{}", &url[..scheme_end + 3], user, &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// Longest accepted access-token life: a leaked one lives this long.
const MAX_ACCESS_TTL: Duration = Duration::from_secs(24 * 3600);
/// Longest accepted life of refresh tokens and verifications.
const MAX_LONG_TTL: Duration = Duration::from_secs(400 * 86_400);
/// Longest accepted life of a login challenge.
const MAX_CHALLENGE_TTL: Duration = Duration::from_secs(3600);
/// Longest accepted timeout or period of a background task.
const MAX_INTERVAL: Duration = Duration::from_secs(7 * 86_400);

impl Config {
    /// Rules between settings, and bounds that keep time arithmetic and
    /// timers from failing at run time. Settings are named by field; the
    /// error names their variable and flag.
    fn check(&self) -> Result<(), ConfigError> {
        let bounded = |field: &str, d: Duration, max: Duration| {
            if d.is_zero() || d > max {
                Err(invalid(
                    field,
                    &humantime::format_duration(d).to_string(),
                    &format!("must be above zero and at most {}", humantime::format_duration(max)),
                ))
            } else {
                Ok(())
            }
        };
        bounded("access_token_ttl", self.access_token_ttl, MAX_ACCESS_TTL)?;
        bounded("refresh_token_ttl", self.refresh_token_ttl, MAX_LONG_TTL)?;
        bounded("session_lifetime", self.session_lifetime, MAX_LONG_TTL)?;
        bounded("verify_email_ttl", self.verify_email_ttl, MAX_LONG_TTL)?;
        bounded("reset_password_ttl", self.reset_password_ttl, MAX_LONG_TTL)?;
        bounded("invitation_ttl", self.invitation_ttl, MAX_LONG_TTL)?;
        bounded("outbox_retention", self.outbox_retention, MAX_LONG_TTL)?;
        bounded("mfa_challenge_ttl", self.mfa_challenge_ttl, MAX_CHALLENGE_TTL)?;
        for (field, d) in [
            ("db_connect_timeout", self.db_connect_timeout),
            ("db_statement_timeout", self.db_statement_timeout),
            ("db_outage_timeout", self.db_outage_timeout),
            ("redis_timeout", self.redis_timeout),
            ("amqp_timeout", self.amqp_timeout),
            ("health_interval", self.health_interval),
            ("denylist_resync_interval", self.denylist_resync_interval),
            ("outbox_poll_interval", self.outbox_poll_interval),
            ("outbox_max_backoff", self.outbox_max_backoff),
            ("outbox_lease", self.outbox_lease),
            ("session_prune_interval", self.session_prune_interval),
        ] {
            bounded(field, d, MAX_INTERVAL)?;
        }
        self.server_limits.check()?;
        // A round stops starting publishes at half its lease and the last
        // one may take the AMQP timeout: shorter, and another replica could
        // claim rows this one is still publishing.
        if self.outbox_lease <= self.amqp_timeout * 2 {
            return Err(invalid(
                "outbox_lease",
                &humantime::format_duration(self.outbox_lease).to_string(),
                &format!(
                    "must be more than twice {}",
                    setting_name(|arg| arg.get_id() == "amqp_timeout").unwrap_or_default()
                ),
            ));
        }
        if self.refresh_token_ttl <= self.access_token_ttl {
            return Err(invalid(
                "refresh_token_ttl",
                &humantime::format_duration(self.refresh_token_ttl).to_string(),
                &format!(
                    "must be longer than {}",
                    setting_name(|arg| arg.get_id() == "access_token_ttl").unwrap_or_default()
                ),
            ));
        }
        Ok(())
    }

    /// Where events go. The log shows every link token and code, which is
    /// the point in the embedded mode and a leak in production, so with a
    /// PostgreSQL database (production) and no broker the server refuses to
    /// start unless `GATEHOUSE_EVENTS=log` asks for the log explicitly.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming `GATEHOUSE_EVENTS` for production
    /// without a broker, `rabbitmq` without `AMQP_URL`, or `log` with one.
    pub fn events_sink(&self) -> Result<EventsSink, ConfigError> {
        let production = self.database_url.as_deref().is_some_and(is_postgres_url);
        let name = |field: &str| setting_name(|arg| arg.get_id() == field).unwrap_or_else(|| field.to_owned());
        match (self.events, &self.amqp_url) {
            (EventsSetting::Auto | EventsSetting::Rabbitmq, Some(url)) => Ok(EventsSink::Rabbitmq(url.clone())),
            (EventsSetting::Auto, None) if !production => Ok(EventsSink::Log),
            (EventsSetting::Auto, None) => Err(invalid(
                "events",
                "auto",
                &format!(
                    "with a PostgreSQL {} and no {}, events (link tokens and codes) would go to the log; set {} \
                     for the broker, or GATEHOUSE_EVENTS=log if the log is really meant",
                    name("database_url"),
                    name("amqp_url"),
                    name("amqp_url"),
                ),
            )),
            (EventsSetting::Rabbitmq, None) => {
                Err(invalid("events", "rabbitmq", &format!("needs {} to say where the broker is", name("amqp_url"))))
            }
            (EventsSetting::Log, None) => Ok(EventsSink::Log),
            (EventsSetting::Log, Some(_)) => Err(invalid(
                "events",
                "log",
                &format!("contradicts {}, which is set: unset one of them", name("amqp_url")),
            )),
        }
    }

    /// The database URL in force: the configured one or the embedded SQLite file.
    #[must_use]
    pub fn effective_database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", self.data_dir.join("gatehouse.db").display()))
    }

    /// The rate limits in force.
    #[must_use]
    pub fn rate_limits(&self) -> RateLimits {
        RateLimits {
            login_pair: self.login_limit_pair.clone(),
            login_account: self.login_limit_account,
            login_address: self.login_limit_address,
            password_check: self.password_check_limit,
            sign_up_address: self.signup_limit_address,
            message_recipient: self.message_limit_recipient,
            message_account: self.message_limit_account,
            invitation_organization: self.invitation_limit_organization,
        }
    }

    /// The signing key file in force.
    #[must_use]
    pub fn effective_signing_key_file(&self) -> PathBuf {
        self.signing_key_file.clone().unwrap_or_else(|| self.data_dir.join("signing-key.pem"))
    }
}

/// Whether `url` names a PostgreSQL database: the production deployment.
fn is_postgres_url(url: &str) -> bool {
    let scheme = url.split_once("://").map_or("", |(scheme, _)| scheme);
    scheme.eq_ignore_ascii_case("postgres") || scheme.eq_ignore_ascii_case("postgresql")
}

/// `cmd` with every variable unset, for the built-in defaults and for tests
/// that must not see the environment they run in.
fn without_env(cmd: clap::Command) -> clap::Command {
    cmd.mut_args(|arg| arg.env(None::<&'static str>)).mut_subcommands(without_env)
}
