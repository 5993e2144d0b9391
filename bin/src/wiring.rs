//! The one place that knows every adapter: it builds them from the
//! configuration and hands them to the use cases by constructor injection.
//! No global state, no service locator.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chrono::TimeDelta;
use gatehouse_application::TokenSettings;
use gatehouse_application::auth::{
    GetJwks, Login, Logout, RebuildDenylist, RefreshTokens, SessionRevoker, SignUp, TokenMinter, ValidateToken,
};
use gatehouse_application::ports::clock::Clock;
use gatehouse_application::ports::denylist::Denylist;
use gatehouse_application::ports::health::Probe;
use gatehouse_application::ports::random::RandomSource;
use gatehouse_crypto::{Argon2Hasher, JwtKeys, OsRandom, SigningKey, SystemClock};
use gatehouse_grpc::{AuthApi, GrpcServer, TokenApi};
use gatehouse_memory::MemoryDenylist;
use gatehouse_redis::RedisDenylist;
use gatehouse_sql::{Database, PoolSettings, SqlSessionRepository, SqlUserRepository};

use crate::config::Config;

/// A built server, ready to serve.
#[derive(Debug)]
pub struct App {
    pub grpc: GrpcServer,
    /// Refills the denylist from SQL; run at start and every resync interval.
    pub rebuild_denylist: RebuildDenylist,
    pub denylist_resync_interval: Duration,
}

/// Opens the database and applies pending migrations.
///
/// # Errors
/// When the database cannot be reached or a migration fails.
pub async fn open_database(config: &Config) -> anyhow::Result<Database> {
    let url = config.effective_database_url();
    if url.starts_with("sqlite:") {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating the data directory {}", config.data_dir.display()))?;
    }
    let pool = PoolSettings {
        max_connections: config.db_max_connections,
        connect_timeout: config.db_connect_timeout,
        acquire_timeout: config.db_connect_timeout,
    };
    let db = Database::connect(&url, pool).await.with_context(|| format!("connecting to {}", redact_url(&url)))?;
    db.migrate().await.context("applying migrations")?;
    Ok(db)
}

/// Builds every adapter and use case from `config`.
///
/// # Errors
/// When a dependency cannot be reached or a key cannot be loaded.
pub async fn build(config: &Config) -> anyhow::Result<App> {
    let db = open_database(config).await?;

    let (denylist, denylist_probe): (Arc<dyn Denylist>, Arc<dyn Probe>) = match &config.redis_url {
        Some(url) => {
            let redis = RedisDenylist::connect(url, &config.redis_key_prefix, config.redis_timeout)
                .await
                .with_context(|| format!("connecting to Redis at {}", redact_url(url)))?;
            let redis = Arc::new(redis);
            (redis.clone(), redis)
        }
        None => {
            let memory = Arc::new(MemoryDenylist::default());
            (memory.clone(), memory)
        }
    };
    let keys = Arc::new(load_keys(config)?);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let rng: Arc<dyn RandomSource> = Arc::new(OsRandom);
    let hasher = Arc::new(Argon2Hasher::new(config.password_hash_concurrency));
    let users = Arc::new(SqlUserRepository::new(&db));
    let sessions = Arc::new(SqlSessionRepository::new(&db));
    let settings = TokenSettings {
        access_ttl: to_delta(config.access_token_ttl)?,
        refresh_ttl: to_delta(config.refresh_token_ttl)?,
    };

    let minter = TokenMinter::new(keys.clone(), clock.clone(), rng.clone(), settings);
    let revoker = SessionRevoker::new(sessions.clone(), denylist.clone(), settings);
    let validate = ValidateToken::new(keys.clone(), denylist.clone(), clock.clone());
    let auth = AuthApi {
        sign_up: SignUp::new(users.clone(), hasher.clone(), clock.clone(), rng),
        login: Login::new(users, sessions.clone(), hasher, minter.clone()),
        refresh: RefreshTokens::new(sessions.clone(), minter, revoker.clone()),
        logout: Logout::new(sessions.clone(), revoker.clone(), clock.clone()),
        validate: validate.clone(),
    };
    let token = TokenApi { validate, jwks: GetJwks::new(keys) };

    let probes: Vec<Arc<dyn Probe>> = vec![Arc::new(db), denylist_probe];
    Ok(App {
        grpc: GrpcServer::new(auth, token, probes, config.health_interval),
        rebuild_denylist: RebuildDenylist::new(sessions, denylist, revoker, clock, settings),
        denylist_resync_interval: config.denylist_resync_interval,
    })
}

fn load_keys(config: &Config) -> anyhow::Result<JwtKeys> {
    let path = config.effective_signing_key_file();
    if config.signing_key_file.is_none() {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating the data directory {}", config.data_dir.display()))?;
    }
    let current =
        if config.signing_key_file.is_some() { SigningKey::load(&path)? } else { SigningKey::load_or_generate(&path)? };
    let previous =
        config.previous_signing_key_files.iter().map(|p| SigningKey::load(p)).collect::<Result<Vec<_>, _>>()?;
    Ok(JwtKeys::new(current, previous, &config.issuer, &config.audience))
}

fn to_delta(d: Duration) -> anyhow::Result<TimeDelta> {
    TimeDelta::from_std(d).context("duration out of range")
}

/// A URL with any password replaced, safe to log.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{}:***{}", &url[..scheme_end + 3], user, &url[at..])
        }
        _ => url.to_owned(),
    }
}
