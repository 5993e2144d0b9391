//! The gRPC server's resource limits, as settings: what one connection, one
//! request and all clients together may make the server hold (OWASP ASVS
//! 5.0 V15.1.3 and V15.2.2: documented, enforced availability defenses).

use std::time::Duration;

use clap::Args;
use gatehouse_grpc::ServerLimits;

use super::error::invalid;
use super::{ConfigError, parse};

/// Smallest accepted message limit: an 8 KiB access token must still fit
/// in a `ValidateToken` request.
const MIN_MESSAGE_BYTES: usize = 16 * 1024;
/// Largest accepted message limit: no Gatehouse request comes near it.
const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;
/// Longest accepted timeout or period of the server's limits.
const MAX_LIMIT_DURATION: Duration = Duration::from_secs(86_400);

/// How much the gRPC server lets its clients hold, and for how long.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct ServerLimitsConfig {
    /// HTTP/2 streams one connection may have open (advertised as SETTINGS_MAX_CONCURRENT_STREAMS)
    #[arg(long, env = "GATEHOUSE_MAX_CONCURRENT_STREAMS", default_value = "200", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_concurrent_streams: u32,
    /// Requests in flight over all connections; one more is answered RESOURCE_EXHAUSTED
    #[arg(long, env = "GATEHOUSE_MAX_CONCURRENT_REQUESTS", default_value = "1000", value_parser = parse::positive)]
    pub max_concurrent_requests: usize,
    /// Open connections; one more is closed as soon as it is accepted
    #[arg(long, env = "GATEHOUSE_MAX_CONNECTIONS", default_value = "10000", value_parser = parse::positive)]
    pub max_connections: usize,
    /// Longest a request may take before it is answered DEADLINE_EXCEEDED
    #[arg(long, env = "GATEHOUSE_REQUEST_TIMEOUT", default_value = "10s", value_parser = parse::duration)]
    pub request_timeout: Duration,
    /// Period of the HTTP/2 keepalive PING that finds vanished clients
    #[arg(long, env = "GATEHOUSE_KEEPALIVE_INTERVAL", default_value = "60s", value_parser = parse::duration)]
    pub keepalive_interval: Duration,
    /// How long a keepalive PING may go unanswered before the connection is closed
    #[arg(long, env = "GATEHOUSE_KEEPALIVE_TIMEOUT", default_value = "20s", value_parser = parse::duration)]
    pub keepalive_timeout: Duration,
    /// A connection with no open stream for this long is closed
    #[arg(long, env = "GATEHOUSE_IDLE_TIMEOUT", default_value = "5m", value_parser = parse::duration)]
    pub idle_timeout: Duration,
    /// Largest request message, in bytes (or with a KiB or MiB suffix); a bigger one is answered RESOURCE_EXHAUSTED
    #[arg(long, env = "GATEHOUSE_MAX_MESSAGE_SIZE", default_value = "64KiB", value_parser = bytes)]
    pub max_message_size: usize,
}

impl ServerLimitsConfig {
    /// The limits the gRPC server enforces.
    #[must_use]
    pub const fn limits(&self) -> ServerLimits {
        ServerLimits {
            max_concurrent_streams: self.max_concurrent_streams,
            max_concurrent_requests: self.max_concurrent_requests,
            max_connections: self.max_connections,
            request_timeout: self.request_timeout,
            keepalive_interval: self.keepalive_interval,
            keepalive_timeout: self.keepalive_timeout,
            idle_timeout: self.idle_timeout,
            max_message_bytes: self.max_message_size,
        }
    }

    /// Bounds that keep timers from failing and the limits meaningful.
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        for (field, d) in [
            ("request_timeout", self.request_timeout),
            ("keepalive_interval", self.keepalive_interval),
            ("keepalive_timeout", self.keepalive_timeout),
            ("idle_timeout", self.idle_timeout),
        ] {
            if d.is_zero() || d > MAX_LIMIT_DURATION {
                return Err(invalid(
                    field,
                    &humantime::format_duration(d).to_string(),
                    &format!("must be above zero and at most {}", humantime::format_duration(MAX_LIMIT_DURATION)),
                ));
            }
        }
        if !(MIN_MESSAGE_BYTES..=MAX_MESSAGE_BYTES).contains(&self.max_message_size) {
            return Err(invalid(
                "max_message_size",
                &self.max_message_size.to_string(),
                &format!("must be between {MIN_MESSAGE_BYTES} and {MAX_MESSAGE_BYTES} bytes (16KiB and 16MiB)"),
            ));
        }
        Ok(())
    }
}

/// A size in bytes: `65536`, `64KiB`, `1MiB`.
fn bytes(value: &str) -> Result<usize, String> {
    let value = value.trim();
    let (digits, unit) = match value.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => value.split_at(at),
        None => (value, ""),
    };
    let scale: usize = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1024,
        "MiB" => 1024 * 1024,
        other => return Err(format!("unknown unit `{other}`; expected bytes, KiB or MiB (e.g. 65536 or 64KiB)")),
    };
    let n: usize = digits.parse().map_err(|e| format!("{e}; expected e.g. 65536 or 64KiB"))?;
    n.checked_mul(scale).ok_or_else(|| "too large".to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use clap::CommandFactory as _;

    use super::super::{Cli, Command, without_env};
    use super::*;

    fn load(args: &[&str]) -> Result<Command, ConfigError> {
        Command::load_with(without_env(Cli::command()), std::iter::once("gatehouse").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_bound_every_resource() {
        let limits = crate::config::Config::default().server_limits.limits();
        assert_eq!(limits, ServerLimits::default(), "clap's defaults and the server's agree");
    }

    #[test]
    fn sizes_take_bytes_kib_and_mib() {
        assert_eq!(bytes("65536"), Ok(65_536));
        assert_eq!(bytes("64KiB"), Ok(65_536));
        assert_eq!(bytes("2 MiB"), Ok(2 * 1024 * 1024));
        assert!(bytes("64kb").unwrap_err().contains("KiB"));
        assert!(bytes("KiB").is_err());
    }

    #[test]
    fn limits_are_set_by_flag() {
        let command = load(&["--max-concurrent-streams", "7", "--idle-timeout", "2s", "--max-message-size", "1MiB"]);
        let limits = command.unwrap().config().server_limits.limits();
        assert_eq!(limits.max_concurrent_streams, 7);
        assert_eq!(limits.idle_timeout, Duration::from_secs(2));
        assert_eq!(limits.max_message_bytes, 1024 * 1024);
    }

    #[test]
    fn unusable_limits_are_refused_by_name() {
        for (args, variable) in [
            (&["--max-concurrent-streams", "0"][..], "GATEHOUSE_MAX_CONCURRENT_STREAMS"),
            (&["--max-concurrent-requests", "0"][..], "GATEHOUSE_MAX_CONCURRENT_REQUESTS"),
            (&["--request-timeout", "0s"][..], "GATEHOUSE_REQUEST_TIMEOUT"),
            (&["--idle-timeout", "30d"][..], "GATEHOUSE_IDLE_TIMEOUT"),
            (&["--max-message-size", "1KiB"][..], "GATEHOUSE_MAX_MESSAGE_SIZE"),
        ] {
            let err = load(args).expect_err("refused").to_string();
            assert!(err.starts_with(variable), "{args:?}: {err}");
        }
    }
}
