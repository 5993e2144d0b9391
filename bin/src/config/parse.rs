//! Value parsers for settings whose type alone does not say what is
//! accepted. Each returns a message for clap, which adds the value; the
//! caller adds the variable's name.

use std::convert::Infallible;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use gatehouse_application::EnabledFactors;
use gatehouse_application::ports::rate_limit::Limit;
use ipnet::IpNet;

/// `500ms`, `90s`, `15m`, `12h`, `30d`, and combinations such as `1h 30m`
/// (humantime's forms). A bare number means seconds.
pub(super) fn duration(value: &str) -> Result<Duration, String> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return value.parse().map(Duration::from_secs).map_err(|e| format!("{e}"));
    }
    humantime::parse_duration(value).map_err(|e| format!("{e}; expected e.g. 500ms, 90s, 15m, 12h or 30d"))
}

/// A rate limit, `MAX/WINDOW`: `5/1m` allows a burst of five, then one
/// every twelve seconds.
pub(super) fn rate(value: &str) -> Result<Limit, String> {
    let (max, window) = value.trim().split_once('/').ok_or("expected MAX/WINDOW, e.g. 5/1m or 100/24h")?;
    let max: u32 = max.trim().parse().map_err(|e| format!("{e} in the count before '/'"))?;
    let window = duration(window)?;
    let window = chrono::TimeDelta::from_std(window).map_err(|e| format!("{e}"))?;
    if window > chrono::TimeDelta::days(30) {
        return Err("the window must be at most 30d".to_owned());
    }
    Limit::new(max, window).map_err(|e| e.to_string())
}

/// A comma-separated list of rate limits, at least one.
pub(super) fn rates(value: &str) -> Result<Vec<Limit>, String> {
    let limits = entries(value).map(rate).collect::<Result<Vec<_>, _>>()?;
    if limits.is_empty() { Err("at least one MAX/WINDOW is needed".to_owned()) } else { Ok(limits) }
}

/// Empty means unset, as an empty variable in a deployment file does.
pub(super) fn optional(value: &str) -> Result<Option<String>, Infallible> {
    let value = value.trim();
    Ok((!value.is_empty()).then(|| value.to_owned()))
}

pub(super) fn optional_path(value: &str) -> Result<Option<PathBuf>, Infallible> {
    Ok(optional(value)?.map(PathBuf::from))
}

/// A comma-separated list of paths; empty entries are skipped.
pub(super) fn paths(value: &str) -> Result<Vec<PathBuf>, Infallible> {
    Ok(entries(value).map(PathBuf::from).collect())
}

/// A comma-separated list of networks in CIDR notation (`10.0.0.0/8`,
/// `2001:db8::/32`) or single addresses (`192.0.2.7`); host bits below the
/// prefix are cleared.
pub(super) fn networks(value: &str) -> Result<Vec<IpNet>, String> {
    entries(value)
        .map(|entry| {
            let net = if entry.contains('/') {
                entry.parse::<IpNet>().ok()
            } else {
                entry.parse::<IpAddr>().ok().map(IpNet::from)
            };
            net.map(|net| net.trunc()).ok_or_else(|| {
                format!("`{entry}` is not an IP address or network (expected e.g. 10.0.0.0/8, ::1/128 or 192.0.2.7)")
            })
        })
        .collect()
}

/// Text that must not be empty (a token's `iss`, an exchange name).
pub(super) fn required(value: &str) -> Result<String, &'static str> {
    let value = value.trim();
    if value.is_empty() { Err("must not be empty") } else { Ok(value.to_owned()) }
}

/// At least one (a pool or a semaphore of zero would never grant).
pub(super) fn positive(value: &str) -> Result<usize, String> {
    match value.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_owned()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// The default argon2 concurrency: one hash per core.
pub(super) fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZero::get)
}

/// An absolute http(s) URL without query or fragment; trailing `/` dropped.
pub(super) fn public_url(value: &str) -> Result<String, &'static str> {
    let v = value.trim().trim_end_matches('/');
    let rest = v.strip_prefix("https://").or_else(|| v.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && !v.contains(['?', '#', ' ']) => Ok(v.to_owned()),
        _ => Err("expected an absolute http(s) URL such as https://id.example.com"),
    }
}

/// A comma-separated subset of `totp`, `email`, `sms`; empty enables none.
pub(super) fn mfa_factors(value: &str) -> Result<EnabledFactors, String> {
    let mut enabled = EnabledFactors { totp: false, email: false, sms: false };
    for kind in entries(value) {
        match kind.to_ascii_lowercase().as_str() {
            "totp" => enabled.totp = true,
            "email" => enabled.email = true,
            "sms" => enabled.sms = true,
            _ => return Err(format!("unknown factor `{kind}`; expected a comma-separated list of totp, email, sms")),
        }
    }
    Ok(enabled)
}

/// What is logged when `RUST_LOG` is unset or empty.
pub(super) const DEFAULT_LOG_FILTER: &str = "info,sqlx=warn,sea_orm=warn";

/// A tracing env-filter (`info`, `info,sqlx=warn`); checked here so that a
/// typo is refused at start instead of silently logging something else.
pub(super) fn log_filter(value: &str) -> Result<String, String> {
    let value = match value.trim() {
        "" => DEFAULT_LOG_FILTER,
        v => v,
    };
    tracing_subscriber::EnvFilter::try_new(value).map(|_| value.to_owned()).map_err(|e| e.to_string())
}

fn entries(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty())
}
