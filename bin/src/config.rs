//! Configuration: one typed struct, read from command-line flags and the
//! environment (a flag wins over its variable), with defaults that make
//! `gatehouse serve` work on a fresh machine with no services at all.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use gatehouse_application::EnabledFactors;

/// A setting had a value that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{name}: {message} (got {value:?})")]
    Invalid { name: &'static str, value: String, message: String },
    #[error("unknown flag {0}; run `gatehouse help`")]
    UnknownFlag(String),
    #[error("flag {0} needs a value")]
    MissingValue(String),
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Everything the server can be told.
#[derive(Clone)]
pub struct Config {
    pub grpc_addr: SocketAddr,
    pub data_dir: PathBuf,
    /// `postgres://…` or `sqlite://…`; `None` means a SQLite file in the data dir.
    pub database_url: Option<String>,
    pub db_max_connections: u32,
    pub db_connect_timeout: Duration,
    pub db_statement_timeout: Duration,
    /// `None` means the in-process denylist (single replica only).
    pub redis_url: Option<String>,
    pub redis_key_prefix: String,
    pub redis_timeout: Duration,
    /// Ed25519 PKCS#8 PEM; `None` means `<data dir>/signing-key.pem`, generated on first start.
    pub signing_key_file: Option<PathBuf>,
    /// Keys retired from signing whose tokens must still verify.
    pub previous_signing_key_files: Vec<PathBuf>,
    pub issuer: String,
    pub audience: String,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    /// The absolute life of a session, however active.
    pub session_lifetime: Duration,
    /// Proxies whose `x-forwarded-for` / `x-real-ip` are believed (IPs or CIDRs).
    pub trusted_proxies: Vec<String>,
    /// How often ended sessions are deleted.
    pub session_prune_interval: Duration,
    /// Concurrent argon2 computations; each holds 19 MiB.
    pub password_hash_concurrency: usize,
    pub health_interval: Duration,
    pub denylist_resync_interval: Duration,
    pub log_format: LogFormat,
    /// Base of the links in emails; never taken from request headers.
    pub public_url: String,
    pub require_verified_email: bool,
    pub verify_email_ttl: Duration,
    pub reset_password_ttl: Duration,
    pub max_code_attempts: u32,
    /// `None` means events go to the log (embedded mode).
    pub amqp_url: Option<String>,
    pub amqp_exchange: String,
    pub amqp_timeout: Duration,
    /// How often the outbox relay looks for new rows when idle.
    pub outbox_poll_interval: Duration,
    pub outbox_max_backoff: Duration,
    pub outbox_retention: Duration,
    /// Which second factors may be enrolled and used.
    pub mfa_factors: EnabledFactors,
    /// TOTP steps accepted either side of the current one.
    pub totp_skew: u8,
    /// The issuer authenticator apps show.
    pub mfa_issuer: String,
    /// Life of a login challenge.
    pub mfa_challenge_ttl: Duration,
    /// The AEAD key that seals TOTP secrets; `None` means
    /// `<data dir>/secret-key`, generated on first start (embedded mode).
    pub secret_key_file: Option<PathBuf>,
    /// Retired sealing keys that must still open old secrets.
    pub previous_secret_key_files: Vec<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], 50051)),
            data_dir: PathBuf::from("data"),
            database_url: None,
            db_max_connections: 10,
            db_connect_timeout: Duration::from_secs(5),
            db_statement_timeout: Duration::from_secs(5),
            redis_url: None,
            redis_key_prefix: "gatehouse:".to_owned(),
            redis_timeout: Duration::from_millis(500),
            signing_key_file: None,
            previous_signing_key_files: Vec::new(),
            issuer: "gatehouse".to_owned(),
            audience: "gatehouse".to_owned(),
            access_token_ttl: Duration::from_secs(15 * 60),
            refresh_token_ttl: Duration::from_secs(30 * 24 * 3600),
            session_lifetime: Duration::from_secs(90 * 24 * 3600),
            trusted_proxies: Vec::new(),
            session_prune_interval: Duration::from_secs(3600),
            password_hash_concurrency: std::thread::available_parallelism().map_or(2, std::num::NonZero::get),
            health_interval: Duration::from_secs(5),
            denylist_resync_interval: Duration::from_secs(10),
            log_format: LogFormat::Text,
            public_url: "http://localhost:8080".to_owned(),
            require_verified_email: true,
            verify_email_ttl: Duration::from_secs(5 * 86_400),
            reset_password_ttl: Duration::from_secs(2 * 3600),
            max_code_attempts: 5,
            amqp_url: None,
            amqp_exchange: "gatehouse.events".to_owned(),
            amqp_timeout: Duration::from_secs(5),
            outbox_poll_interval: Duration::from_millis(500),
            outbox_max_backoff: Duration::from_secs(60),
            outbox_retention: Duration::from_secs(3600),
            mfa_factors: EnabledFactors { totp: true, email: true, sms: true },
            totp_skew: 1,
            mfa_issuer: "Gatehouse".to_owned(),
            mfa_challenge_ttl: Duration::from_secs(300),
            secret_key_file: None,
            previous_secret_key_files: Vec::new(),
        }
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

/// One setting: its flag, its environment variable and what it means.
struct Setting {
    flag: &'static str,
    env: &'static str,
    help: &'static str,
    apply: fn(&mut Config, &'static str, &str) -> Result<(), ConfigError>,
}

const SETTINGS: &[Setting] = &[
    Setting {
        flag: "--grpc-addr",
        env: "GATEHOUSE_GRPC_ADDR",
        help: "gRPC listen address [127.0.0.1:50051]",
        apply: |c, n, v| parse(n, v).map(|x| c.grpc_addr = x),
    },
    Setting {
        flag: "--data-dir",
        env: "GATEHOUSE_DATA_DIR",
        help: "directory for the SQLite file and generated keys [data]",
        apply: |c, _, v| {
            c.data_dir = PathBuf::from(v);
            Ok(())
        },
    },
    Setting {
        flag: "--database-url",
        env: "DATABASE_URL",
        help: "postgres://… or sqlite://… [SQLite file in the data dir]",
        apply: |c, _, v| {
            c.database_url = non_empty(v);
            Ok(())
        },
    },
    Setting {
        flag: "--db-max-connections",
        env: "GATEHOUSE_DB_MAX_CONNECTIONS",
        help: "database pool size [10]",
        apply: |c, n, v| parse(n, v).map(|x| c.db_max_connections = x),
    },
    Setting {
        flag: "--db-connect-timeout",
        env: "GATEHOUSE_DB_CONNECT_TIMEOUT",
        help: "database connect/acquire timeout [5s]",
        apply: |c, n, v| duration(n, v).map(|x| c.db_connect_timeout = x),
    },
    Setting {
        flag: "--redis-url",
        env: "REDIS_URL",
        help: "redis://… for the shared denylist [in-process denylist]",
        apply: |c, _, v| {
            c.redis_url = non_empty(v);
            Ok(())
        },
    },
    Setting {
        flag: "--redis-key-prefix",
        env: "GATEHOUSE_REDIS_KEY_PREFIX",
        help: "prefix of every Redis key [gatehouse:]",
        apply: |c, _, v| {
            c.redis_key_prefix = v.to_owned();
            Ok(())
        },
    },
    Setting {
        flag: "--redis-timeout",
        env: "GATEHOUSE_REDIS_TIMEOUT",
        help: "Redis connect/response timeout [500ms]",
        apply: |c, n, v| duration(n, v).map(|x| c.redis_timeout = x),
    },
    Setting {
        flag: "--signing-key-file",
        env: "GATEHOUSE_SIGNING_KEY_FILE",
        help: "Ed25519 PKCS#8 PEM signing key [<data dir>/signing-key.pem, generated]",
        apply: |c, _, v| {
            c.signing_key_file = non_empty(v).map(PathBuf::from);
            Ok(())
        },
    },
    Setting {
        flag: "--previous-signing-key-files",
        env: "GATEHOUSE_PREVIOUS_SIGNING_KEY_FILES",
        help: "comma-separated PEM keys that still verify []",
        apply: |c, _, v| {
            c.previous_signing_key_files =
                v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(PathBuf::from).collect();
            Ok(())
        },
    },
    Setting {
        flag: "--issuer",
        env: "GATEHOUSE_ISSUER",
        help: "access-token `iss` [gatehouse]",
        apply: |c, n, v| required(n, v).map(|x| c.issuer = x),
    },
    Setting {
        flag: "--audience",
        env: "GATEHOUSE_AUDIENCE",
        help: "access-token `aud` [gatehouse]",
        apply: |c, n, v| required(n, v).map(|x| c.audience = x),
    },
    Setting {
        flag: "--access-token-ttl",
        env: "GATEHOUSE_ACCESS_TOKEN_TTL",
        help: "access-token life [15m]",
        apply: |c, n, v| duration(n, v).map(|x| c.access_token_ttl = x),
    },
    Setting {
        flag: "--refresh-token-ttl",
        env: "GATEHOUSE_REFRESH_TOKEN_TTL",
        help: "refresh-token life [30d]",
        apply: |c, n, v| duration(n, v).map(|x| c.refresh_token_ttl = x),
    },
    Setting {
        flag: "--password-hash-concurrency",
        env: "GATEHOUSE_PASSWORD_HASH_CONCURRENCY",
        help: "parallel argon2 hashes [number of cores]",
        apply: |c, n, v| parse::<usize>(n, v).and_then(|x| positive(n, v, x)).map(|x| c.password_hash_concurrency = x),
    },
    Setting {
        flag: "--health-interval",
        env: "GATEHOUSE_HEALTH_INTERVAL",
        help: "how often dependencies are probed [5s]",
        apply: |c, n, v| duration(n, v).map(|x| c.health_interval = x),
    },
    Setting {
        flag: "--denylist-resync-interval",
        env: "GATEHOUSE_DENYLIST_RESYNC_INTERVAL",
        help: "how often the denylist is refilled from SQL [10s]",
        apply: |c, n, v| duration(n, v).map(|x| c.denylist_resync_interval = x),
    },
    Setting {
        flag: "--public-url",
        env: "GATEHOUSE_PUBLIC_URL",
        help: "base URL of links in emails [http://localhost:8080]",
        apply: |c, n, v| public_url(n, v).map(|x| c.public_url = x),
    },
    Setting {
        flag: "--require-verified-email",
        env: "GATEHOUSE_REQUIRE_VERIFIED_EMAIL",
        help: "login needs a verified address [true]",
        apply: |c, n, v| boolean(n, v).map(|x| c.require_verified_email = x),
    },
    Setting {
        flag: "--verify-email-ttl",
        env: "GATEHOUSE_VERIFY_EMAIL_TTL",
        help: "life of an email verification [5d]",
        apply: |c, n, v| duration(n, v).map(|x| c.verify_email_ttl = x),
    },
    Setting {
        flag: "--reset-password-ttl",
        env: "GATEHOUSE_RESET_PASSWORD_TTL",
        help: "life of a password reset [2h]",
        apply: |c, n, v| duration(n, v).map(|x| c.reset_password_ttl = x),
    },
    Setting {
        flag: "--max-code-attempts",
        env: "GATEHOUSE_MAX_CODE_ATTEMPTS",
        help: "wrong codes allowed per verification [5]",
        apply: |c, n, v| {
            parse::<usize>(n, v)
                .and_then(|x| positive(n, v, x))
                .and_then(|x| u32::try_from(x).map_err(|_| invalid(n, v, "too large")))
                .map(|x| c.max_code_attempts = x)
        },
    },
    Setting {
        flag: "--amqp-url",
        env: "AMQP_URL",
        help: "amqp://… for events [events go to the log]",
        apply: |c, _, v| {
            c.amqp_url = non_empty(v);
            Ok(())
        },
    },
    Setting {
        flag: "--amqp-exchange",
        env: "GATEHOUSE_AMQP_EXCHANGE",
        help: "topic exchange events go to [gatehouse.events]",
        apply: |c, n, v| required(n, v).map(|x| c.amqp_exchange = x),
    },
    Setting {
        flag: "--amqp-timeout",
        env: "GATEHOUSE_AMQP_TIMEOUT",
        help: "broker connect/confirm timeout [5s]",
        apply: |c, n, v| duration(n, v).map(|x| c.amqp_timeout = x),
    },
    Setting {
        flag: "--outbox-poll-interval",
        env: "GATEHOUSE_OUTBOX_POLL_INTERVAL",
        help: "relay poll period when idle [500ms]",
        apply: |c, n, v| duration(n, v).map(|x| c.outbox_poll_interval = x),
    },
    Setting {
        flag: "--outbox-max-backoff",
        env: "GATEHOUSE_OUTBOX_MAX_BACKOFF",
        help: "longest wait between publish retries [60s]",
        apply: |c, n, v| duration(n, v).map(|x| c.outbox_max_backoff = x),
    },
    Setting {
        flag: "--outbox-retention",
        env: "GATEHOUSE_OUTBOX_RETENTION",
        help: "how long sent events are kept [1h]",
        apply: |c, n, v| duration(n, v).map(|x| c.outbox_retention = x),
    },
    Setting {
        flag: "--mfa-factors",
        env: "GATEHOUSE_MFA_FACTORS",
        help: "enabled second factors [totp,email,sms]",
        apply: |c, n, v| mfa_factors(n, v).map(|x| c.mfa_factors = x),
    },
    Setting {
        flag: "--totp-skew",
        env: "GATEHOUSE_TOTP_SKEW",
        help: "TOTP steps accepted either side of now, 0 or 1 [1]",
        apply: |c, n, v| {
            parse::<u8>(n, v)
                .and_then(|x| if x <= 1 { Ok(x) } else { Err(invalid(n, v, "must be 0 or 1")) })
                .map(|x| c.totp_skew = x)
        },
    },
    Setting {
        flag: "--mfa-challenge-ttl",
        env: "GATEHOUSE_MFA_CHALLENGE_TTL",
        help: "life of a login challenge [5m]",
        apply: |c, n, v| duration(n, v).map(|x| c.mfa_challenge_ttl = x),
    },
    Setting {
        flag: "--mfa-issuer",
        env: "GATEHOUSE_MFA_ISSUER",
        help: "issuer shown by authenticator apps [Gatehouse]",
        apply: |c, n, v| required(n, v).map(|x| c.mfa_issuer = x),
    },
    Setting {
        flag: "--secret-key-file",
        env: "GATEHOUSE_SECRET_KEY_FILE",
        help: "key that seals TOTP secrets [<data dir>/secret-key, generated]",
        apply: |c, _, v| {
            c.secret_key_file = non_empty(v).map(PathBuf::from);
            Ok(())
        },
    },
    Setting {
        flag: "--previous-secret-key-files",
        env: "GATEHOUSE_PREVIOUS_SECRET_KEY_FILES",
        help: "comma-separated retired sealing keys []",
        apply: |c, _, v| {
            c.previous_secret_key_files =
                v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(PathBuf::from).collect();
            Ok(())
        },
    },
    Setting {
        flag: "--session-lifetime",
        env: "GATEHOUSE_SESSION_LIFETIME",
        help: "absolute life of a session [90d]",
        apply: |c, n, v| duration(n, v).map(|x| c.session_lifetime = x),
    },
    Setting {
        flag: "--trusted-proxies",
        env: "GATEHOUSE_TRUSTED_PROXIES",
        help: "comma-separated proxy IPs/CIDRs whose x-forwarded-for is believed []",
        apply: |c, _, v| {
            c.trusted_proxies = v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
            Ok(())
        },
    },
    Setting {
        flag: "--session-prune-interval",
        env: "GATEHOUSE_SESSION_PRUNE_INTERVAL",
        help: "how often ended sessions are deleted [1h]",
        apply: |c, n, v| duration(n, v).map(|x| c.session_prune_interval = x),
    },
    Setting {
        flag: "--log-format",
        env: "GATEHOUSE_LOG_FORMAT",
        help: "text or json [text]",
        apply: |c, n, v| match v {
            "text" => {
                c.log_format = LogFormat::Text;
                Ok(())
            }
            "json" => {
                c.log_format = LogFormat::Json;
                Ok(())
            }
            _ => Err(invalid(n, v, "expected text or json")),
        },
    },
];

impl Config {
    /// Reads the environment (through `env`) and then `flags` over the defaults.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first variable or flag with an unusable value.
    pub fn load(flags: &[String], env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut config = Self::default();
        for s in SETTINGS {
            if let Some(value) = env(s.env) {
                (s.apply)(&mut config, s.env, &value)?;
            }
        }
        let mut args = flags.iter();
        while let Some(arg) = args.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) => (f, Some(v.to_owned())),
                None => (arg.as_str(), None),
            };
            let setting =
                SETTINGS.iter().find(|s| s.flag == flag).ok_or_else(|| ConfigError::UnknownFlag(arg.clone()))?;
            let value = match inline {
                Some(v) => v,
                None => args.next().cloned().ok_or_else(|| ConfigError::MissingValue(flag.to_owned()))?,
            };
            (setting.apply)(&mut config, setting.flag, &value)?;
        }
        config.check()?;
        Ok(config)
    }

    /// Rules between settings, and bounds that keep time arithmetic and
    /// timers from failing at run time.
    fn check(&self) -> Result<(), ConfigError> {
        let bounded = |name: &'static str, d: Duration, max: Duration| {
            if d.is_zero() || d > max {
                Err(invalid(name, &format!("{d:?}"), &format!("must be above zero and at most {max:?}")))
            } else {
                Ok(())
            }
        };
        let week = Duration::from_secs(7 * 86_400);
        bounded("GATEHOUSE_ACCESS_TOKEN_TTL", self.access_token_ttl, MAX_ACCESS_TTL)?;
        bounded("GATEHOUSE_REFRESH_TOKEN_TTL", self.refresh_token_ttl, MAX_LONG_TTL)?;
        bounded("GATEHOUSE_SESSION_LIFETIME", self.session_lifetime, MAX_LONG_TTL)?;
        bounded("GATEHOUSE_VERIFY_EMAIL_TTL", self.verify_email_ttl, MAX_LONG_TTL)?;
        bounded("GATEHOUSE_RESET_PASSWORD_TTL", self.reset_password_ttl, MAX_LONG_TTL)?;
        bounded("GATEHOUSE_OUTBOX_RETENTION", self.outbox_retention, MAX_LONG_TTL)?;
        bounded("GATEHOUSE_MFA_CHALLENGE_TTL", self.mfa_challenge_ttl, Duration::from_secs(3600))?;
        for (name, d) in [
            ("GATEHOUSE_DB_CONNECT_TIMEOUT", self.db_connect_timeout),
            ("GATEHOUSE_DB_STATEMENT_TIMEOUT", self.db_statement_timeout),
            ("GATEHOUSE_REDIS_TIMEOUT", self.redis_timeout),
            ("GATEHOUSE_AMQP_TIMEOUT", self.amqp_timeout),
            ("GATEHOUSE_HEALTH_INTERVAL", self.health_interval),
            ("GATEHOUSE_DENYLIST_RESYNC_INTERVAL", self.denylist_resync_interval),
            ("GATEHOUSE_OUTBOX_POLL_INTERVAL", self.outbox_poll_interval),
            ("GATEHOUSE_OUTBOX_MAX_BACKOFF", self.outbox_max_backoff),
            ("GATEHOUSE_SESSION_PRUNE_INTERVAL", self.session_prune_interval),
        ] {
            bounded(name, d, week)?;
        }
        if self.refresh_token_ttl <= self.access_token_ttl {
            return Err(invalid(
                "GATEHOUSE_REFRESH_TOKEN_TTL",
                &format!("{:?}", self.refresh_token_ttl),
                "must be longer than GATEHOUSE_ACCESS_TOKEN_TTL",
            ));
        }
        Ok(())
    }

    /// The database URL in force: the configured one or the embedded SQLite file.
    #[must_use]
    pub fn effective_database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", self.data_dir.join("gatehouse.db").display()))
    }

    /// The signing key file in force.
    #[must_use]
    pub fn effective_signing_key_file(&self) -> PathBuf {
        self.signing_key_file.clone().unwrap_or_else(|| self.data_dir.join("signing-key.pem"))
    }

    /// One line per setting, for `gatehouse help`.
    #[must_use]
    pub fn help() -> String {
        SETTINGS.iter().map(|s| format!("  {:<30} {:<38} {}\n", s.flag, s.env, s.help)).collect()
    }
}

fn invalid(name: &'static str, value: &str, message: &str) -> ConfigError {
    ConfigError::Invalid { name, value: value.to_owned(), message: message.to_owned() }
}

fn parse<T: std::str::FromStr>(name: &'static str, value: &str) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    value.trim().parse().map_err(|e: T::Err| invalid(name, value, &e.to_string()))
}

fn positive(name: &'static str, value: &str, n: usize) -> Result<usize, ConfigError> {
    if n == 0 { Err(invalid(name, value, "must be at least 1")) } else { Ok(n) }
}

fn required(name: &'static str, value: &str) -> Result<String, ConfigError> {
    non_empty(value).ok_or_else(|| invalid(name, value, "must not be empty"))
}

/// A comma-separated subset of `totp`, `email`, `sms`.
fn mfa_factors(name: &'static str, value: &str) -> Result<EnabledFactors, ConfigError> {
    let mut enabled = EnabledFactors { totp: false, email: false, sms: false };
    for kind in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match kind.to_ascii_lowercase().as_str() {
            "totp" => enabled.totp = true,
            "email" => enabled.email = true,
            "sms" => enabled.sms = true,
            _ => return Err(invalid(name, value, "expected a comma-separated list of totp, email, sms")),
        }
    }
    Ok(enabled)
}

fn boolean(name: &'static str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(invalid(name, value, "expected true or false")),
    }
}

/// An absolute http(s) URL without query or fragment; trailing `/` dropped.
fn public_url(name: &'static str, value: &str) -> Result<String, ConfigError> {
    let v = value.trim().trim_end_matches('/');
    let rest = v.strip_prefix("https://").or_else(|| v.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && !v.contains(['?', '#', ' ']) => Ok(v.to_owned()),
        _ => Err(invalid(name, value, "expected an absolute http(s) URL such as https://id.example.com")),
    }
}

fn non_empty(value: &str) -> Option<String> {
    let v = value.trim();
    (!v.is_empty()).then(|| v.to_owned())
}

/// `90`, `90s`, `500ms`, `15m`, `12h`, `30d`.
fn duration(name: &'static str, value: &str) -> Result<Duration, ConfigError> {
    let v = value.trim();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (digits, unit) = v.split_at(split);
    let n: u64 =
        digits.parse().map_err(|_| invalid(name, value, "expected a number with a unit: 500ms, 90s, 15m, 12h, 30d"))?;
    let secs = |k: u64| Duration::from_secs(n.saturating_mul(k));
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "" | "s" => Ok(secs(1)),
        "m" => Ok(secs(60)),
        "h" => Ok(secs(3600)),
        "d" => Ok(secs(86_400)),
        _ => Err(invalid(name, value, "unknown unit; use ms, s, m, h or d")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned())
    }

    #[test]
    fn defaults_serve_the_embedded_mode_on_localhost() {
        let c = Config::load(&[], env(&[])).unwrap();
        assert_eq!(c.grpc_addr.to_string(), "127.0.0.1:50051");
        assert_eq!(c.effective_database_url(), "sqlite://data/gatehouse.db?mode=rwc");
        assert_eq!(c.redis_url, None);
        assert_eq!(c.access_token_ttl, Duration::from_secs(900));
        assert_eq!(c.refresh_token_ttl, Duration::from_secs(30 * 86_400));
    }

    #[test]
    fn flags_override_the_environment() {
        let flags = ["--grpc-addr".to_owned(), "0.0.0.0:6000".to_owned(), "--access-token-ttl=5m".to_owned()];
        let c =
            Config::load(&flags, env(&[("GATEHOUSE_GRPC_ADDR", "127.0.0.1:7000"), ("REDIS_URL", "redis://r:6379")]))
                .unwrap();
        assert_eq!(c.grpc_addr.to_string(), "0.0.0.0:6000");
        assert_eq!(c.access_token_ttl, Duration::from_secs(300));
        assert_eq!(c.redis_url.as_deref(), Some("redis://r:6379"));
    }

    #[test]
    fn a_bad_value_is_reported_with_the_variable_name() {
        let err = Config::load(&[], env(&[("GATEHOUSE_GRPC_ADDR", "nowhere")])).unwrap_err().to_string();
        assert!(err.starts_with("GATEHOUSE_GRPC_ADDR:"), "{err}");
        let err = Config::load(&[], env(&[("GATEHOUSE_ACCESS_TOKEN_TTL", "15 fortnights")])).unwrap_err().to_string();
        assert!(err.contains("GATEHOUSE_ACCESS_TOKEN_TTL"), "{err}");
        let err = Config::load(&["--nope".to_owned()], env(&[])).unwrap_err();
        assert!(matches!(err, ConfigError::UnknownFlag(_)));
        let err = Config::load(&[], env(&[("GATEHOUSE_ACCESS_TOKEN_TTL", "31d")])).unwrap_err().to_string();
        assert!(err.contains("GATEHOUSE_ACCESS_TOKEN_TTL"), "{err}");
        let err =
            Config::load(&[], env(&[("GATEHOUSE_ACCESS_TOKEN_TTL", "2h"), ("GATEHOUSE_REFRESH_TOKEN_TTL", "1h")]))
                .unwrap_err()
                .to_string();
        assert!(err.contains("GATEHOUSE_REFRESH_TOKEN_TTL"), "{err}");
    }

    /// Zero intervals would panic the timers; huge lives would overflow time arithmetic.
    #[test]
    fn zero_or_huge_durations_are_refused_at_start() {
        for (name, value) in [
            ("GATEHOUSE_HEALTH_INTERVAL", "0s"),
            ("GATEHOUSE_DENYLIST_RESYNC_INTERVAL", "0"),
            ("GATEHOUSE_REDIS_TIMEOUT", "0ms"),
            ("GATEHOUSE_REFRESH_TOKEN_TTL", "100000000d"),
            ("GATEHOUSE_VERIFY_EMAIL_TTL", "0s"),
        ] {
            let pairs: &'static [(&'static str, &'static str)] = Box::leak(Box::new([(name, value)]));
            let err = Config::load(&[], env(pairs)).unwrap_err().to_string();
            assert!(err.starts_with(name), "{name}={value}: {err}");
        }
    }

    #[test]
    fn debug_output_hides_passwords_in_urls() {
        let c = Config::load(&[], env(&[("DATABASE_URL", "postgres://gh:s3cret@db:5432/gh")])).unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cret") && shown.contains("postgres://gh:***@db:5432/gh"), "{shown}");
        assert_eq!(redact_url("postgres://gh@db/gh"), "postgres://gh@db/gh");
        assert_eq!(redact_url("redis://:pw@r:6379"), "redis://:***@r:6379");
    }

    #[test]
    fn public_url_must_be_absolute_http() {
        assert_eq!(public_url("X", "https://id.example.com/").unwrap(), "https://id.example.com");
        assert!(public_url("X", "id.example.com").is_err());
        assert!(public_url("X", "javascript:alert(1)").is_err());
        assert!(public_url("X", "https://a.example/?next=evil").is_err());
        let err = Config::load(&[], env(&[("GATEHOUSE_PUBLIC_URL", "nope")])).unwrap_err().to_string();
        assert!(err.starts_with("GATEHOUSE_PUBLIC_URL:"), "{err}");
    }

    #[test]
    fn mfa_factors_are_a_list_of_kinds() {
        let c = Config::load(&[], env(&[("GATEHOUSE_MFA_FACTORS", "totp, SMS")])).unwrap();
        assert_eq!(c.mfa_factors, EnabledFactors { totp: true, email: false, sms: true });
        assert!(Config::load(&[], env(&[("GATEHOUSE_MFA_FACTORS", "totp,carrier-pigeon")])).is_err());
        assert!(Config::load(&[], env(&[("GATEHOUSE_TOTP_SKEW", "3")])).is_err());
    }

    #[test]
    fn booleans_accept_the_usual_spellings() {
        let c = Config::load(&[], env(&[("GATEHOUSE_REQUIRE_VERIFIED_EMAIL", "off")])).unwrap();
        assert!(!c.require_verified_email);
        assert!(Config::load(&[], env(&[("GATEHOUSE_REQUIRE_VERIFIED_EMAIL", "maybe")])).is_err());
    }

    #[test]
    fn durations_accept_common_units() {
        assert_eq!(duration("X", "500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(duration("X", "90").unwrap(), Duration::from_secs(90));
        assert_eq!(duration("X", "2h").unwrap(), Duration::from_secs(7200));
        assert!(duration("X", "h").is_err());
        assert!(duration("X", "5w").is_err());
    }
}
