//! The one place that knows every adapter: it builds them from the
//! configuration and hands them to the use cases by constructor injection.
//! No global state, no service locator.

use std::os::unix::fs::DirBuilderExt as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chrono::TimeDelta;
use gatehouse_application::account::{
    AddLoginEmail, ChangePassword, DeleteMe, GetMe, PasswordProof, RemoveLoginEmail, SetPrimaryEmail, UpdateMe,
};
use gatehouse_application::audit::ListAuditEvents;
use gatehouse_application::auth::login::SessionOpener;
use gatehouse_application::auth::{
    GetJwks, Login, Logout, RebuildDenylist, Redeemer, RefreshToken, RequestPasswordReset, ResendVerification,
    ResetPassword, SessionRevoker, SignUp, TokenMinter, ValidateToken, VerificationIssuer, VerificationSender,
    VerifyEmail,
};
use gatehouse_application::events::{EventFactory, OpeningPublisher, RelayOutbox, RelaySettings, SealingEncoder};
use gatehouse_application::mfa::{
    ConfirmFactor, EnrollEmailFactor, EnrollPhoneFactor, EnrollTotp, FreshProofs, ListFactors, MfaDeps, MfaGate,
    RegenerateBackupCodes, RemoveFactor, SendMfaCode, VerifyMfa,
};
use gatehouse_application::organizations::{
    AcceptInvitation, AddMember, CheckPermission, CreateOrganization, CreateRole, DeleteOrganization, DeleteRole,
    GetOrganization, LeaveOrganization, ListInvitations, ListMembers, ListOrganizationAuditEvents, ListOrganizations,
    ListRoles, OrganizationDeps, RemoveMember, RevokeInvitation, UpdateMember, UpdateOrganization, UpdateRole,
};
use gatehouse_application::ports::clock::Clock;
use gatehouse_application::ports::denylist::Denylist;
use gatehouse_application::ports::events::EventPublisher;
use gatehouse_application::ports::health::Probe;
use gatehouse_application::ports::mfa::SecretBox;
use gatehouse_application::ports::random::RandomSource;
use gatehouse_application::ports::rate_limit::RateLimiter;
use gatehouse_application::ports::store::StoreError;
use gatehouse_application::ports::tokens::AccessTokenVerifier;
use gatehouse_application::ports::unit_of_work::UnitOfWorkFactory;
use gatehouse_application::sessions::{ListSessions, PruneSessions, RevokeOtherSessions, RevokeSession};
use gatehouse_application::throttle::Throttle;
use gatehouse_application::{MfaSettings, OrganizationSettings, PasswordStrength, TokenSettings, VerificationSettings};
use gatehouse_crypto::{
    AeadSecretBox, Argon2Hasher, CachingVerifier, JwtKeys, OsRandom, PublicKey, SecretKey, SigningKey, SystemClock,
    TotpRs,
};
use gatehouse_domain::PasswordPolicy;
use gatehouse_events::{LogPublisher, ProtoEventEncoder};
use gatehouse_grpc::{
    AuditApi, AuthApi, ClientIpPolicy, GrpcServer, MfaApi, OrganizationApi, SessionApi, TokenApi, UserApi,
};
use gatehouse_memory::{MemoryDenylist, MemoryRateLimiter};
use gatehouse_rabbitmq::RabbitPublisher;
use gatehouse_redis::{RedisDenylist, RedisRateLimiter};
use gatehouse_sql::{
    Database, PoolSettings, SqlAuditLog, SqlMfaRepository, SqlOrganizationRepository, SqlOutboxStore,
    SqlSessionRepository, SqlUnitOfWorkFactory, SqlUserRepository, SqlVerificationRepository,
};

use crate::config::{Config, EventsSink, redact_url};

/// What replicas share: the denylist, the rate limiter, and the probes of
/// where they live.
type Shared = (Arc<dyn Denylist>, Arc<dyn RateLimiter>, Vec<Arc<dyn Probe>>);

/// A built server, ready to serve.
#[derive(Debug)]
pub struct App {
    pub grpc: GrpcServer,
    /// Refills the denylist from SQL; run at start and every resync interval.
    pub rebuild_denylist: RebuildDenylist,
    pub denylist_resync_interval: Duration,
    /// Publishes the outbox; run in a loop next to the server.
    pub relay: RelayOutbox,
    pub outbox_poll_interval: Duration,
    /// Deletes ended sessions; run every prune interval.
    pub prune_sessions: PruneSessions,
    pub session_prune_interval: Duration,
    /// The verified-token cache in front of validation, when it is on; its
    /// counts are logged when the server stops.
    pub token_cache: Option<Arc<CachingVerifier>>,
}

/// Creates the data directory readable by its owner only: it holds the
/// embedded database (password hashes) and the generated signing key.
fn ensure_data_dir(config: &Config) -> anyhow::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&config.data_dir)
        .with_context(|| format!("creating the data directory {}", config.data_dir.display()))
}

/// Opens the database and applies pending migrations.
///
/// # Errors
/// When the database cannot be reached or a migration fails.
pub async fn open_database(config: &Config) -> anyhow::Result<Database> {
    let url = config.effective_database_url();
    if url.starts_with("sqlite:") {
        ensure_data_dir(config)?;
    }
    let pool = PoolSettings {
        max_connections: config.db_max_connections,
        connect_timeout: config.db_connect_timeout,
        acquire_timeout: config.db_connect_timeout,
        statement_timeout: config.db_statement_timeout,
        outage_timeout: config.db_outage_timeout,
    };
    let mut pause = WAIT_FIRST;
    let db = loop {
        match Database::connect(&url, pool).await {
            Ok(db) => break db,
            // An unreachable database (refused, unknown host, failed
            // authentication: each can be fixed while we wait); a malformed
            // URL cannot.
            Err(error @ StoreError::Unavailable(_)) if config.wait_for_dependencies => {
                let cause = gatehouse_application::error_chain(&error);
                tracing::warn!(database = %redact_url(&url), %cause, retry_in_ms = pause.as_millis(), "database unreachable; waiting");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(WAIT_MAX);
            }
            Err(error) => return Err(error).with_context(|| format!("connecting to {}", redact_url(&url))),
        }
    };
    db.migrate().await.context("applying migrations")?;
    Ok(db)
}

/// The first and the longest pause between start-up connection attempts
/// with `--wait-for-dependencies`.
const WAIT_FIRST: Duration = Duration::from_millis(500);
const WAIT_MAX: Duration = Duration::from_secs(30);

/// Builds every adapter and use case from `config`.
///
/// # Errors
/// When a dependency cannot be reached or a key cannot be loaded.
pub async fn build(config: &Config) -> anyhow::Result<App> {
    // Refused before anything is touched: production with events in the log.
    let events_sink = config.events_sink()?;
    let db = open_database(config).await?;

    // Redis, when configured, holds what every replica must agree on: the
    // denylist and the rate-limit counts. Without it both live in-process,
    // which is right for one replica only.
    let (denylist, limiter, mut probes): Shared = match &config.redis_url {
        Some(url) => {
            let connecting = || format!("connecting to Redis at {}", redact_url(url));
            let (prefix, timeout) = (&config.redis_key_prefix, config.redis_timeout);
            let denylist = Arc::new(RedisDenylist::connect(url, prefix, timeout).await.with_context(connecting)?);
            let limiter = Arc::new(RedisRateLimiter::connect(url, prefix, timeout).await.with_context(connecting)?);
            (denylist.clone(), limiter.clone(), vec![denylist, limiter])
        }
        None => {
            let memory = Arc::new(MemoryDenylist::default());
            (memory.clone(), Arc::new(MemoryRateLimiter::new()), vec![memory])
        }
    };
    // Events go to the broker when one is configured, to the log only where
    // the configuration allows it. The publisher connects on demand, so the
    // server starts (and requests succeed) while the broker is down.
    let broker: Arc<dyn EventPublisher> = match events_sink {
        EventsSink::Rabbitmq(url) => Arc::new(RabbitPublisher::new(&url, &config.amqp_exchange, config.amqp_timeout)),
        EventsSink::Log => Arc::new(LogPublisher),
    };
    // Outbox payloads carry link tokens and codes: sealed at rest, opened
    // by the relay just before publishing.
    let secrets: Arc<dyn SecretBox> = Arc::new(load_secret_box(config)?);
    let publisher: Arc<dyn EventPublisher> = Arc::new(OpeningPublisher::new(broker, secrets.clone()));
    let keys = Arc::new(load_keys(config)?);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let rng: Arc<dyn RandomSource> = Arc::new(OsRandom);
    let hasher = Arc::new(
        Argon2Hasher::new(config.password_hash_concurrency, config.password_hash_queue)
            .context("starting the password-hashing threads")?,
    );
    let users = Arc::new(SqlUserRepository::new(&db));
    let policy = PasswordPolicy::new(config.password_min_score).context("GATEHOUSE_PASSWORD_MIN_SCORE")?;
    let strength = PasswordStrength::new(users.clone(), policy);
    let sessions = Arc::new(SqlSessionRepository::new(&db));
    let verifications = Arc::new(SqlVerificationRepository::new(&db));
    let outbox = Arc::new(SqlOutboxStore::new(&db));
    let uow: Arc<dyn UnitOfWorkFactory> = Arc::new(SqlUnitOfWorkFactory::new(&db));
    let settings = TokenSettings {
        access_ttl: to_delta(config.access_token_ttl)?,
        refresh_ttl: to_delta(config.refresh_token_ttl)?,
        session_lifetime: to_delta(config.session_lifetime)?,
    };
    let client_ip = ClientIpPolicy::new(config.trusted_proxies.clone());
    let verification_settings = VerificationSettings {
        public_url: config.public_url.clone(),
        verify_email_ttl: to_delta(config.verify_email_ttl)?,
        reset_password_ttl: to_delta(config.reset_password_ttl)?,
        max_code_attempts: config.max_code_attempts,
        ..VerificationSettings::default()
    };

    let encoder = SealingEncoder::new(Arc::new(ProtoEventEncoder), secrets.clone());
    let audit_log = Arc::new(SqlAuditLog::new(&db));
    let events = EventFactory::new(Arc::new(encoder), rng.clone(), audit_log.clone());
    let issuer = VerificationIssuer::new(rng.clone(), events.clone(), verification_settings.clone());
    let redeemer = Redeemer::new(verifications.clone(), verification_settings.clone());
    let minter = TokenMinter::new(keys.clone(), clock.clone(), rng.clone(), settings);
    let revoker = SessionRevoker::new(uow.clone(), denylist.clone(), events.clone(), settings);
    let organization_reads = Arc::new(SqlOrganizationRepository::new(&db));
    let opener = SessionOpener {
        sessions: sessions.clone(),
        organizations: organization_reads.clone(),
        uow: uow.clone(),
        users: users.clone(),
        events: events.clone(),
    };

    // Validation (ValidateToken and every authenticated call) goes through
    // the cache; the denylist is still asked each time, after it.
    let token_cache =
        (config.token_cache_size > 0).then(|| Arc::new(CachingVerifier::new(keys.clone(), config.token_cache_size)));
    let verifier: Arc<dyn AccessTokenVerifier> = match &token_cache {
        Some(cache) => cache.clone(),
        None => keys.clone(),
    };
    let validate = ValidateToken::new(verifier, denylist.clone(), clock.clone());
    let throttle = Throttle::new(limiter, clock.clone(), config.rate_limits());
    let proof = PasswordProof::new(users.clone(), hasher.clone(), throttle.clone());
    let sender = VerificationSender::new(
        verifications,
        uow.clone(),
        issuer.clone(),
        clock.clone(),
        throttle.clone(),
        Arc::new(crate::background::TokioBackground::default()),
    );
    let mfa_deps = MfaDeps {
        mfa: Arc::new(SqlMfaRepository::new(&db)),
        uow: uow.clone(),
        users: users.clone(),
        hasher: hasher.clone(),
        totp: Arc::new(TotpRs),
        secrets,
        events: events.clone(),
        rng: rng.clone(),
        clock: clock.clone(),
        settings: MfaSettings {
            issuer: config.mfa_issuer.clone(),
            totp_skew: config.totp_skew,
            enabled: config.mfa_factors,
            challenge_ttl: to_delta(config.mfa_challenge_ttl)?,
            ..MfaSettings::default()
        },
        throttle: throttle.clone(),
    };
    let auth = AuthApi {
        sign_up: SignUp::new(
            uow.clone(),
            users.clone(),
            hasher.clone(),
            strength.clone(),
            clock.clone(),
            rng.clone(),
            issuer.clone(),
            throttle.clone(),
        )
        .reveal_taken_addresses(!config.require_verified_email),
        login: Login::new(
            users.clone(),
            hasher.clone(),
            minter.clone(),
            config.require_verified_email,
            MfaGate::new(mfa_deps.clone()),
            opener.clone(),
            throttle.clone(),
        ),
        refresh_token: RefreshToken::new(uow.clone(), minter.clone(), revoker.clone()),
        logout: Logout::new(sessions.clone(), revoker.clone(), keys.clone(), clock.clone()),
        verify_email: VerifyEmail::new(redeemer.clone(), uow.clone(), events.clone(), clock.clone()),
        resend_verification: ResendVerification::new(users.clone(), sender.clone()),
        request_password_reset: RequestPasswordReset::new(users.clone(), sender),
        reset_password: ResetPassword::new(
            redeemer,
            uow.clone(),
            hasher.clone(),
            strength.clone(),
            issuer.clone(),
            revoker.clone(),
            clock.clone(),
            throttle.clone(),
        ),
        send_mfa_code: SendMfaCode::new(mfa_deps.clone()),
        verify_mfa: VerifyMfa::new(mfa_deps.clone(), opener, minter),
    };
    // Changes to login emails need the same fresh proof as changes to
    // factors, counted against the same per-account limit.
    let fresh_proofs = FreshProofs::from(&mfa_deps);
    let mfa = MfaApi {
        enroll_totp: EnrollTotp::new(mfa_deps.clone()),
        enroll_email_factor: EnrollEmailFactor::new(mfa_deps.clone()),
        enroll_phone_factor: EnrollPhoneFactor::new(mfa_deps.clone()),
        confirm_factor: ConfirmFactor::new(mfa_deps.clone()),
        list_factors: ListFactors::new(mfa_deps.clone()),
        remove_factor: RemoveFactor::new(mfa_deps.clone()),
        regenerate_backup_codes: RegenerateBackupCodes::new(mfa_deps),
    };
    let org_deps = OrganizationDeps {
        organizations: organization_reads,
        users: users.clone(),
        audit: audit_log.clone(),
        uow: uow.clone(),
        events: events.clone(),
        revoker: revoker.clone(),
        throttle: throttle.clone(),
        clock: clock.clone(),
        rng: rng.clone(),
        settings: OrganizationSettings {
            public_url: config.public_url.clone(),
            invitation_ttl: to_delta(config.invitation_ttl)?,
        },
    };
    let user = UserApi {
        get_me: GetMe::new(users.clone()),
        update_me: UpdateMe::new(users, clock.clone()),
        change_password: ChangePassword::new(
            proof.clone(),
            strength,
            uow.clone(),
            revoker.clone(),
            events.clone(),
            clock.clone(),
        ),
        add_login_email: AddLoginEmail::new(fresh_proofs.clone(), uow.clone(), issuer, clock.clone()),
        remove_login_email: RemoveLoginEmail::new(fresh_proofs.clone(), uow.clone(), events.clone(), clock.clone()),
        set_primary_email: SetPrimaryEmail::new(fresh_proofs, uow.clone(), events.clone(), clock.clone()),
        delete_me: DeleteMe::new(proof, uow.clone(), revoker.clone(), events, clock.clone()),
    };
    let session_api = SessionApi {
        list: ListSessions::new(sessions.clone(), clock.clone()),
        revoke: RevokeSession::new(sessions.clone(), revoker.clone(), clock.clone()),
        revoke_others: RevokeOtherSessions::new(uow, revoker.clone(), clock.clone()),
    };
    let organizations = organization_api(&org_deps);
    let audit = AuditApi {
        list: ListAuditEvents::new(audit_log),
        list_organization: ListOrganizationAuditEvents::new(org_deps),
    };
    let token = TokenApi { validate, jwks: GetJwks::new(keys) };
    let relay_settings = RelaySettings {
        max_backoff: to_delta(config.outbox_max_backoff)?,
        lease: to_delta(config.outbox_lease)?,
        retention: to_delta(config.outbox_retention)?,
        ..RelaySettings::default()
    };

    probes.insert(0, Arc::new(db));
    Ok(App {
        grpc: GrpcServer::new(auth, token, user, mfa, session_api, audit, client_ip, probes, config.health_interval)
            .with_limits(config.server_limits.limits())
            .with_organizations(organizations),
        rebuild_denylist: RebuildDenylist::new(sessions.clone(), denylist, revoker, clock.clone(), settings),
        denylist_resync_interval: config.denylist_resync_interval,
        relay: RelayOutbox::new(outbox, publisher, clock.clone(), relay_settings),
        outbox_poll_interval: config.outbox_poll_interval,
        prune_sessions: PruneSessions::new(sessions, clock, settings),
        session_prune_interval: config.session_prune_interval,
        token_cache,
    })
}

/// Every `OrganizationService` use case over the same ports.
fn organization_api(d: &OrganizationDeps) -> OrganizationApi {
    OrganizationApi {
        create: CreateOrganization::new(d.clone()),
        get: GetOrganization::new(d.clone()),
        update: UpdateOrganization::new(d.clone()),
        list: ListOrganizations::new(d.clone()),
        delete: DeleteOrganization::new(d.clone()),
        add_member: AddMember::new(d.clone()),
        accept_invitation: AcceptInvitation::new(d.clone()),
        list_invitations: ListInvitations::new(d.clone()),
        revoke_invitation: RevokeInvitation::new(d.clone()),
        update_member: UpdateMember::new(d.clone()),
        remove_member: RemoveMember::new(d.clone()),
        leave: LeaveOrganization::new(d.clone()),
        list_members: ListMembers::new(d.clone()),
        create_role: CreateRole::new(d.clone()),
        update_role: UpdateRole::new(d.clone()),
        list_roles: ListRoles::new(d.clone()),
        delete_role: DeleteRole::new(d.clone()),
        check_permission: CheckPermission::new(d.clone()),
    }
}

/// The signing key (configured, or generated on first start in the embedded
/// mode) and the retired keys whose tokens must still verify. Replicas must
/// share one key, so a generated key is refused once a shared denylist
/// (Redis) says this is a multi-replica deployment.
fn load_keys(config: &Config) -> anyhow::Result<JwtKeys> {
    let current = match &config.signing_key_file {
        Some(path) => SigningKey::load(path)?,
        None if config.redis_url.is_some() => anyhow::bail!(
            "GATEHOUSE_SIGNING_KEY_FILE is required with REDIS_URL: every replica must sign with the same key"
        ),
        None => {
            ensure_data_dir(config)?;
            SigningKey::load_or_generate(&config.effective_signing_key_file())?
        }
    };
    let previous =
        config.previous_signing_key_files.iter().map(|p| load_public_key(p)).collect::<anyhow::Result<Vec<_>>>()?;
    Ok(JwtKeys::new(current, previous, &config.issuer, &config.audience))
}

/// The AEAD box that seals TOTP secrets: the configured key, or one
/// generated on first start in the data directory (embedded mode; refused
/// once Redis says there are replicas, which must share the key).
fn load_secret_box(config: &Config) -> anyhow::Result<AeadSecretBox> {
    let current = match &config.secret_key_file {
        Some(path) => SecretKey::load(path)?,
        None if config.redis_url.is_some() => anyhow::bail!(
            "GATEHOUSE_SECRET_KEY_FILE is required with REDIS_URL: every replica must open the same TOTP secrets"
        ),
        None => {
            ensure_data_dir(config)?;
            SecretKey::load_or_generate(&config.data_dir.join("secret-key"))?
        }
    };
    let previous =
        config.previous_secret_key_files.iter().map(|p| SecretKey::load(p)).collect::<Result<Vec<_>, _>>()?;
    Ok(AeadSecretBox::new(current, previous))
}

/// A retired key: its public half (SPKI PEM) is enough, a private PEM works too.
fn load_public_key(path: &Path) -> anyhow::Result<PublicKey> {
    let pem = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    match PublicKey::from_pem(&pem) {
        Ok(key) => Ok(key),
        Err(_) => {
            Ok(SigningKey::from_pem(&pem).with_context(|| format!("{} holds no Ed25519 key", path.display()))?.into())
        }
    }
}

fn to_delta(d: Duration) -> anyhow::Result<TimeDelta> {
    TimeDelta::from_std(d).context("duration out of range")
}
