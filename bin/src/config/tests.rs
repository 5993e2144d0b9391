#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use clap::CommandFactory as _;

use super::*;

/// Parses a command line with the environment ignored, as if no variable
/// were set (the tests' own environment must not leak in).
fn load(args: &[&str]) -> Result<Command, ConfigError> {
    Command::load_with(without_env(Cli::command()), std::iter::once("gatehouse").chain(args.iter().copied()))
}

fn serve(args: &[&str]) -> Config {
    match load(args).unwrap() {
        Command::Serve(config) => config,
        other => panic!("expected serve, got {other:?}"),
    }
}

/// The message of a refused configuration, which must name `variable`.
fn refused(args: &[&str], variable: &str) -> String {
    let err = load(args).expect_err("the configuration is refused").to_string();
    assert!(err.starts_with(variable), "{args:?}: expected an error naming {variable}, got: {err}");
    err
}

/// Set in the child process that [`with_env`] starts: which of the test's
/// `with_env` calls the child is for, counted from 1.
const CHILD: &str = "GATEHOUSE_CONFIG_TEST_CHILD";

thread_local! {
    /// How many `with_env` calls this test has made so far.
    static CALLS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Runs `body` in a child process whose whole environment is `vars`: clap
/// reads each variable from the process environment when the command is
/// built, and a test must not change its own (other tests run beside it).
/// The child is this test binary again, running only the calling test, and
/// in it only this call's `body`.
fn with_env(vars: &[(&str, &str)], body: impl FnOnce()) {
    let call = CALLS.with(|calls| {
        calls.set(calls.get() + 1);
        calls.get()
    });
    if let Some(child) = std::env::var_os(CHILD) {
        if child.to_str() == Some(call.to_string().as_str()) {
            body();
        }
        return;
    }
    let test = std::thread::current().name().expect("libtest names the thread after the test").to_owned();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([test.as_str(), "--exact", "--nocapture", "--test-threads=1"])
        .env_clear()
        .env(CHILD, call.to_string())
        .envs(vars.iter().copied())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{test} failed with {vars:?}:\n{stdout}\n{stderr}");
    assert!(stdout.contains("1 passed"), "the child ran no test:\n{stdout}");
}

/// Parses the real process environment (set by [`with_env`]) and `args`.
fn load_env(args: &[&str]) -> Result<Command, ConfigError> {
    Command::load(std::iter::once("gatehouse").chain(args.iter().copied()))
}

#[test]
fn defaults_serve_the_embedded_mode_on_localhost() {
    let c = serve(&[]);
    assert_eq!(c.grpc_addr.to_string(), "127.0.0.1:50051");
    assert_eq!(c.effective_database_url(), "sqlite://data/gatehouse.db?mode=rwc");
    assert_eq!(c.redis_url, None);
    assert_eq!(c.amqp_url, None);
    assert_eq!(c.signing_key_file, None);
    assert!(c.trusted_proxies.is_empty() && c.previous_signing_key_files.is_empty());
    assert_eq!(c.access_token_ttl, Duration::from_secs(900));
    assert_eq!(c.refresh_token_ttl, Duration::from_secs(30 * 86_400));
    assert_eq!(c.db_statement_timeout, Duration::from_secs(5));
    assert_eq!(c.outbox_poll_interval, Duration::from_millis(500));
    assert_eq!(c.mfa_factors, EnabledFactors { totp: true, email: true, sms: true });
    assert_eq!(c.log_format, LogFormat::Text);
    assert!(c.require_verified_email);
    assert!(c.password_hash_concurrency >= 1);
}

/// `Config::default()` is what the end-to-end tests build on; it must be
/// the command line's defaults, and pass the checks.
#[test]
fn the_default_config_is_the_command_lines() {
    assert_eq!(Config::default(), serve(&[]));
    Config::default().check().unwrap();
}

#[test]
fn the_statement_timeout_is_read_from_its_variable_and_its_flag() {
    with_env(&[("GATEHOUSE_DB_STATEMENT_TIMEOUT", "7s")], || {
        assert_eq!(load_env(&[]).unwrap().config().db_statement_timeout, Duration::from_secs(7));
        let c = load_env(&["serve", "--db-statement-timeout", "250ms"]).unwrap();
        assert_eq!(c.config().db_statement_timeout, Duration::from_millis(250));
    });
    assert_eq!(serve(&["--db-statement-timeout=9s"]).db_statement_timeout, Duration::from_secs(9));
}

#[test]
fn flags_override_the_environment() {
    let vars = [("GATEHOUSE_GRPC_ADDR", "127.0.0.1:7000"), ("REDIS_URL", "redis://r:6379")];
    with_env(&vars, || {
        let c = load_env(&["--grpc-addr", "0.0.0.0:6000", "--access-token-ttl=5m"]).unwrap();
        assert_eq!(c.config().grpc_addr.to_string(), "0.0.0.0:6000");
        assert_eq!(c.config().access_token_ttl, Duration::from_secs(300));
        assert_eq!(c.config().redis_url.as_deref(), Some("redis://r:6379"));
        let c = load_env(&["serve", "--grpc-addr=0.0.0.0:6000"]).unwrap();
        assert_eq!(c.config().grpc_addr.to_string(), "0.0.0.0:6000");
        let Command::Migrate(c) = load_env(&["migrate"]).unwrap() else { panic!("expected migrate") };
        assert_eq!(c.grpc_addr.to_string(), "127.0.0.1:7000");
    });
}

#[test]
fn empty_variables_mean_unset() {
    let vars = [
        ("DATABASE_URL", ""),
        ("REDIS_URL", " "),
        ("AMQP_URL", ""),
        ("GATEHOUSE_SIGNING_KEY_FILE", ""),
        ("GATEHOUSE_TRUSTED_PROXIES", ""),
        ("GATEHOUSE_PREVIOUS_SECRET_KEY_FILES", ""),
        ("RUST_LOG", ""),
    ];
    with_env(&vars, || {
        let command = load_env(&[]).unwrap();
        let c = command.config();
        assert_eq!((c.database_url.as_deref(), c.redis_url.as_deref(), c.amqp_url.as_deref()), (None, None, None));
        assert_eq!(c.signing_key_file, None);
        assert!(c.trusted_proxies.is_empty() && c.previous_secret_key_files.is_empty());
        assert_eq!(c.log_filter, parse::DEFAULT_LOG_FILTER);
    });
}

#[test]
fn a_bad_variable_is_reported_with_its_name() {
    with_env(&[("GATEHOUSE_GRPC_ADDR", "nowhere")], || {
        let err = load_env(&[]).unwrap_err().to_string();
        assert!(err.starts_with("GATEHOUSE_GRPC_ADDR (--grpc-addr): ") && err.contains("\"nowhere\""), "{err}");
    });
    with_env(&[("GATEHOUSE_ACCESS_TOKEN_TTL", "15 fortnights")], || {
        let err = load_env(&["migrate"]).unwrap_err().to_string();
        assert!(err.starts_with("GATEHOUSE_ACCESS_TOKEN_TTL (--access-token-ttl): "), "{err}");
    });
    with_env(&[("GATEHOUSE_LOG_FORMAT", "xml")], || {
        let err = load_env(&[]).unwrap_err().to_string();
        assert!(err.starts_with("GATEHOUSE_LOG_FORMAT (--log-format): expected one of text, json"), "{err}");
    });
}

#[test]
fn a_bad_flag_is_reported_with_its_variable_name() {
    refused(&["--grpc-addr", "nowhere"], "GATEHOUSE_GRPC_ADDR (--grpc-addr): ");
    refused(&["serve", "--access-token-ttl=31d"], "GATEHOUSE_ACCESS_TOKEN_TTL (--access-token-ttl): ");
    let err = refused(
        &["--access-token-ttl", "2h", "--refresh-token-ttl", "1h"],
        "GATEHOUSE_REFRESH_TOKEN_TTL (--refresh-token-ttl): ",
    );
    assert!(err.contains("longer than GATEHOUSE_ACCESS_TOKEN_TTL"), "{err}");
    let err = refused(&["--outbox-lease", "10s"], "GATEHOUSE_OUTBOX_LEASE (--outbox-lease): ");
    assert!(err.contains("more than twice GATEHOUSE_AMQP_TIMEOUT"), "{err}");
    assert!(load(&["--outbox-lease", "11s"]).is_ok());
    refused(&["--db-max-connections", "0"], "GATEHOUSE_DB_MAX_CONNECTIONS");
    refused(&["--max-code-attempts", "0"], "GATEHOUSE_MAX_CODE_ATTEMPTS");
    refused(&["--password-hash-concurrency", "0"], "GATEHOUSE_PASSWORD_HASH_CONCURRENCY");
    refused(&["--password-min-score", "0"], "GATEHOUSE_PASSWORD_MIN_SCORE");
    refused(&["--password-min-score", "5"], "GATEHOUSE_PASSWORD_MIN_SCORE");
    refused(&["--issuer", " "], "GATEHOUSE_ISSUER");
    refused(&["--log-filter", "info,[=bad"], "RUST_LOG (--log-filter): ");
}

#[test]
fn unknown_flags_and_commands_are_usage_errors() {
    for args in [&["--nope"][..], &["frobnicate"], &["serve", "--grpc-addr"], &["--grpc-addr", "127.0.0.1:1", "serve"]]
    {
        assert!(matches!(load(args), Err(ConfigError::Usage(_))), "{args:?}");
    }
    let Err(ConfigError::Usage(help)) = load(&["serve", "--help"]) else { panic!("expected help") };
    assert_eq!(help.kind(), clap::error::ErrorKind::DisplayHelp);
}

/// Zero intervals would panic the timers; huge lives would overflow time arithmetic.
#[test]
fn zero_or_huge_durations_are_refused_at_start() {
    let limits = [
        ("GATEHOUSE_ACCESS_TOKEN_TTL", MAX_ACCESS_TTL),
        ("GATEHOUSE_REFRESH_TOKEN_TTL", MAX_LONG_TTL),
        ("GATEHOUSE_SESSION_LIFETIME", MAX_LONG_TTL),
        ("GATEHOUSE_VERIFY_EMAIL_TTL", MAX_LONG_TTL),
        ("GATEHOUSE_RESET_PASSWORD_TTL", MAX_LONG_TTL),
        ("GATEHOUSE_OUTBOX_RETENTION", MAX_LONG_TTL),
        ("GATEHOUSE_MFA_CHALLENGE_TTL", MAX_CHALLENGE_TTL),
        ("GATEHOUSE_DB_CONNECT_TIMEOUT", MAX_INTERVAL),
        ("GATEHOUSE_DB_STATEMENT_TIMEOUT", MAX_INTERVAL),
        ("GATEHOUSE_REDIS_TIMEOUT", MAX_INTERVAL),
        ("GATEHOUSE_AMQP_TIMEOUT", MAX_INTERVAL),
        ("GATEHOUSE_HEALTH_INTERVAL", MAX_INTERVAL),
        ("GATEHOUSE_DENYLIST_RESYNC_INTERVAL", MAX_INTERVAL),
        ("GATEHOUSE_OUTBOX_POLL_INTERVAL", MAX_INTERVAL),
        ("GATEHOUSE_OUTBOX_MAX_BACKOFF", MAX_INTERVAL),
        ("GATEHOUSE_OUTBOX_LEASE", MAX_INTERVAL),
        ("GATEHOUSE_SESSION_PRUNE_INTERVAL", MAX_INTERVAL),
    ];
    let flags = flags_by_variable();
    for (variable, max) in limits {
        let flag = &flags[variable];
        let max_secs = max.as_secs().to_string();
        let over = (max.as_secs() + 1).to_string();
        // The longest allowed is accepted (with a refresh life above it where needed)...
        let refresh = (max.as_secs() + 2).to_string();
        let lease = max.as_secs().to_string();
        let mut args = vec![flag.as_str(), max_secs.as_str()];
        if variable == "GATEHOUSE_ACCESS_TOKEN_TTL" {
            args.extend(["--refresh-token-ttl", refresh.as_str()]);
        }
        let half = (max.as_secs() / 2 - 1).to_string();
        if variable == "GATEHOUSE_AMQP_TIMEOUT" {
            // The lease must stay above twice it, and has the same ceiling.
            args = vec![flag.as_str(), half.as_str(), "--outbox-lease", lease.as_str()];
        }
        assert!(load(&args).is_ok(), "{variable}={max_secs}s: {:?}", load(&args).err());
        // ... zero and one second more are refused, naming the variable.
        for value in ["0", "0s", "0ms", over.as_str()] {
            refused(&[flag, value], variable);
        }
    }
    refused(&["--refresh-token-ttl", "100000000d"], "GATEHOUSE_REFRESH_TOKEN_TTL");
}

#[test]
fn debug_output_hides_passwords_in_urls() {
    let c = serve(&["--database-url", "postgres://gh:s3cret@db:5432/gh", "--events", "log"]);
    let shown = format!("{c:?}");
    assert!(!shown.contains("s3cret") && shown.contains("postgres://gh:***@db:5432/gh"), "{shown}");
    assert_eq!(redact_url("postgres://gh@db/gh"), "postgres://gh@db/gh");
    assert_eq!(redact_url("redis://:pw@r:6379"), "redis://:***@r:6379");
}

/// `--help` prints the current value of a variable; connection URLs may
/// carry passwords, so theirs are hidden.
#[test]
fn help_never_shows_the_value_of_a_url_variable() {
    with_env(&[("DATABASE_URL", "postgres://gh:s3cret@db/gh"), ("GATEHOUSE_ISSUER", "shown-issuer")], || {
        let help = Cli::command().find_subcommand_mut("serve").unwrap().render_long_help().to_string();
        assert!(!help.contains("s3cret"), "{help}");
        assert!(help.contains("[env: GATEHOUSE_ISSUER=shown-issuer]"), "{help}");
    });
}

#[test]
fn public_url_must_be_absolute_http() {
    assert_eq!(parse::public_url("https://id.example.com/").unwrap(), "https://id.example.com");
    assert!(parse::public_url("id.example.com").is_err());
    assert!(parse::public_url("javascript:alert(1)").is_err());
    assert!(parse::public_url("https://a.example/?next=evil").is_err());
    refused(&["--public-url", "nope"], "GATEHOUSE_PUBLIC_URL (--public-url): ");
}

#[test]
fn mfa_factors_are_a_list_of_kinds() {
    let c = serve(&["--mfa-factors", "totp, SMS"]);
    assert_eq!(c.mfa_factors, EnabledFactors { totp: true, email: false, sms: true });
    assert_eq!(serve(&["--mfa-factors="]).mfa_factors, EnabledFactors { totp: false, email: false, sms: false });
    let err = refused(&["--mfa-factors", "totp,carrier-pigeon"], "GATEHOUSE_MFA_FACTORS");
    assert!(err.contains("carrier-pigeon"), "{err}");
    assert_eq!(serve(&["--totp-skew", "0"]).totp_skew, 0);
    refused(&["--totp-skew", "3"], "GATEHOUSE_TOTP_SKEW");
}

#[test]
fn booleans_accept_the_usual_spellings() {
    for (value, expected) in [("off", false), ("no", false), ("0", false), ("FALSE", false), ("on", true), ("1", true)]
    {
        assert_eq!(serve(&["--require-verified-email", value]).require_verified_email, expected, "{value}");
    }
    refused(&["--require-verified-email", "maybe"], "GATEHOUSE_REQUIRE_VERIFIED_EMAIL");
}

#[test]
fn durations_accept_common_units() {
    assert_eq!(parse::duration("500ms").unwrap(), Duration::from_millis(500));
    assert_eq!(parse::duration("90").unwrap(), Duration::from_secs(90));
    assert_eq!(parse::duration("90s").unwrap(), Duration::from_secs(90));
    assert_eq!(parse::duration("15m").unwrap(), Duration::from_secs(900));
    assert_eq!(parse::duration(" 2h ").unwrap(), Duration::from_secs(7200));
    assert_eq!(parse::duration("30d").unwrap(), Duration::from_secs(30 * 86_400));
    assert_eq!(parse::duration("1h 30m").unwrap(), Duration::from_secs(5400));
    assert_eq!(parse::duration("1.5h").unwrap(), Duration::from_secs(5400));
    for bad in ["", "h", "5 fortnights", "-5s", "5 s s"] {
        assert!(parse::duration(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn rate_limits_are_max_per_window_and_default_to_the_documented_ones() {
    assert_eq!(Config::default().rate_limits(), RateLimits::default());
    let c = serve(&["--login-limit-pair", "3/30s, 6/1h", "--message-limit-recipient", "2/10m"]);
    let limits = c.rate_limits();
    assert_eq!(limits.login_pair.iter().map(Limit::max).collect::<Vec<_>>(), [3, 6]);
    assert_eq!(limits.login_pair[1].window(), chrono::TimeDelta::hours(1));
    assert_eq!(limits.message_recipient.max(), 2);
    for bad in ["5", "0/1m", "5/0s", "x/1m", "5/forever", "5/90d"] {
        refused(&["--login-limit-account", bad], "GATEHOUSE_LOGIN_LIMIT_ACCOUNT (--login-limit-account): ");
    }
    refused(&["--login-limit-pair", ""], "GATEHOUSE_LOGIN_LIMIT_PAIR");
}

#[test]
fn trusted_proxies_are_networks_or_addresses() {
    let c = serve(&["--trusted-proxies", "10.1.2.3/8, 192.0.2.7,2001:db8::1/32,"]);
    let shown: Vec<String> = c.trusted_proxies.iter().map(ToString::to_string).collect();
    assert_eq!(shown, ["10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32"]);
    for bad in ["gateway", "10.0.0/8", "10.0.0.0/", "10.0.0.0/33", "::/129", "10.0.0.0/8/8"] {
        let err = refused(&["--trusted-proxies", bad], "GATEHOUSE_TRUSTED_PROXIES (--trusted-proxies): ");
        assert!(err.contains("not an IP address or network"), "{bad}: {err}");
    }
}

#[test]
fn key_file_lists_are_comma_separated() {
    let c = serve(&["--previous-signing-key-files", "a.pem, b.pem,,", "--secret-key-file", "s.key"]);
    assert_eq!(c.previous_signing_key_files, [PathBuf::from("a.pem"), PathBuf::from("b.pem")]);
    assert_eq!(c.secret_key_file, Some(PathBuf::from("s.key")));
}

/// Every argument of `serve` (and so of `migrate`, which takes the same),
/// without clap's own `--help`.
fn settings() -> Vec<clap::Arg> {
    let cmd = Cli::command();
    let serve = cmd.find_subcommand("serve").unwrap();
    serve.get_arguments().filter(|a| a.get_id() != "help").cloned().collect()
}

fn variable(arg: &clap::Arg) -> String {
    arg.get_env()
        .unwrap_or_else(|| panic!("{} has no environment variable", arg.get_id()))
        .to_string_lossy()
        .into_owned()
}

fn flags_by_variable() -> BTreeMap<String, String> {
    settings().iter().map(|a| (variable(a), format!("--{}", a.get_long().unwrap()))).collect()
}

#[test]
fn every_setting_has_a_flag_a_variable_and_a_default() {
    for arg in settings() {
        let id = arg.get_id().to_string();
        assert!(arg.get_long().is_some(), "{id} has no flag");
        assert!(arg.get_env().is_some(), "{id} has no environment variable");
        assert!(!arg.get_default_values().is_empty(), "{id} has no default");
    }
    let migrate: Vec<_> =
        Cli::command().find_subcommand("migrate").unwrap().get_arguments().map(|a| a.get_id().clone()).collect();
    let serve: Vec<_> =
        Cli::command().find_subcommand("serve").unwrap().get_arguments().map(|a| a.get_id().clone()).collect();
    assert_eq!(migrate, serve);
}

/// `help` split into one block per option: its flag line and its description.
fn option_blocks(help: &str) -> Vec<String> {
    let mut blocks: Vec<String> = Vec::new();
    for line in help.lines() {
        match blocks.last_mut() {
            Some(block) if !line.trim_start().starts_with('-') => block.push_str(line),
            _ => blocks.push(line.to_owned()),
        }
    }
    blocks
}

#[test]
fn serve_help_lists_every_setting_with_its_variable_and_default() {
    let help = Cli::command().find_subcommand_mut("serve").unwrap().render_help().to_string();
    let blocks = option_blocks(&help);
    for arg in settings() {
        let long = format!("--{} <", arg.get_long().unwrap());
        let block = blocks.iter().find(|b| b.trim_start().starts_with(&long));
        let block = block.unwrap_or_else(|| panic!("{long} is not in the help:\n{help}"));
        assert!(block.contains(&format!("[env: {}", variable(&arg))), "{block}");
        assert!(block.contains("[default: "), "{block}");
    }
}

/// One row of README's configuration table.
#[derive(Debug)]
struct Row {
    variable: String,
    flag: String,
    default: String,
}

fn readme_rows() -> Vec<Row> {
    const README: &str = include_str!("../../../README.md");
    let section = README.split("\n## Running in production\n").nth(1).expect("README has the section");
    let section = section.split("\n## ").next().unwrap_or(section);
    section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|line| {
            let cells: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
            let quoted: Vec<&str> = cells[0].split('`').skip(1).step_by(2).collect();
            assert_eq!(quoted.len(), 2, "one variable and one flag per row: {line}");
            Row { variable: quoted[0].to_owned(), flag: quoted[1].to_owned(), default: cells[1].to_owned() }
        })
        .collect()
}

/// README's table is the operator's reference: it names every variable clap
/// reads and no other, each with its flag and default.
#[test]
fn readme_table_and_clap_agree() {
    let rows = readme_rows();
    let documented: BTreeMap<&str, &Row> = rows.iter().map(|r| (r.variable.as_str(), r)).collect();
    assert_eq!(documented.len(), rows.len(), "a variable is listed twice");
    let known: BTreeMap<String, clap::Arg> = settings().into_iter().map(|a| (variable(&a), a)).collect();
    let undocumented: Vec<&String> = known.keys().filter(|v| !documented.contains_key(v.as_str())).collect();
    let unknown: Vec<&&str> = documented.keys().filter(|v| !known.contains_key(**v)).collect();
    assert!(
        undocumented.is_empty() && unknown.is_empty(),
        "not in README: {undocumented:?}; unknown to clap: {unknown:?}"
    );
    for (variable, arg) in &known {
        let row = documented[variable.as_str()];
        assert_eq!(row.flag, format!("--{}", arg.get_long().unwrap()), "{variable}");
        if !arg.is_hide_default_value_set() {
            let default = arg.get_default_values()[0].to_string_lossy();
            assert_eq!(row.default, format!("`{default}`"), "{variable}'s default");
        }
    }
}

/// OWASP ASVS 5.0 V16.2.5 (sensitive data kept out of the logs):
/// the log publisher writes link tokens and codes, so production (a
/// PostgreSQL database) refuses to start with events going there unless
/// `GATEHOUSE_EVENTS=log` says so; the embedded default keeps the log.
#[test]
fn production_refuses_events_in_the_log_unless_asked_for() {
    const PG: &str = "postgres://gatehouse@db.internal/gatehouse";
    const AMQP: &str = "amqp://guest:guest@broker.internal:5672/%2f";
    assert_eq!(serve(&[]).events_sink().unwrap(), EventsSink::Log, "embedded mode needs no setting");
    assert_eq!(serve(&["--database-url", "sqlite://x.db"]).events_sink().unwrap(), EventsSink::Log);
    let err = refused(&["--database-url", PG], "GATEHOUSE_EVENTS (--events): ");
    assert!(err.contains("AMQP_URL") && err.contains("GATEHOUSE_EVENTS=log"), "{err}");
    refused(&["--database-url", "postgresql://db.internal/gatehouse"], "GATEHOUSE_EVENTS");
    refused(&["--database-url", "POSTGRES://db.internal/gatehouse"], "GATEHOUSE_EVENTS");
    let pg_log = serve(&["--database-url", PG, "--events", "log"]);
    assert_eq!(pg_log.events_sink().unwrap(), EventsSink::Log);
    let pg_broker = serve(&["--database-url", PG, "--amqp-url", AMQP]);
    assert_eq!(pg_broker.events_sink().unwrap(), EventsSink::Rabbitmq(AMQP.into()));
    let explicit = serve(&["--database-url", PG, "--amqp-url", AMQP, "--events", "rabbitmq"]);
    assert_eq!(explicit.events_sink().unwrap(), EventsSink::Rabbitmq(AMQP.into()));
    // Contradictions are refused in either mode.
    let err = refused(&["--events", "rabbitmq"], "GATEHOUSE_EVENTS (--events): ");
    assert!(err.contains("AMQP_URL"), "{err}");
    refused(&["--events", "log", "--amqp-url", AMQP], "GATEHOUSE_EVENTS (--events): ");
    refused(&["--events", "loud"], "GATEHOUSE_EVENTS (--events): expected one of auto, rabbitmq, log");
    // Migrating sends no events: it needs no broker.
    assert!(matches!(load(&["migrate", "--database-url", PG]), Ok(Command::Migrate(_))));
    with_env(&[("DATABASE_URL", PG), ("GATEHOUSE_EVENTS", "log")], || {
        assert_eq!(load_env(&[]).unwrap().config().events_sink().unwrap(), EventsSink::Log);
    });
    with_env(&[("DATABASE_URL", PG)], || {
        let err = load_env(&[]).unwrap_err().to_string();
        assert!(err.starts_with("GATEHOUSE_EVENTS (--events): "), "{err}");
    });
}
