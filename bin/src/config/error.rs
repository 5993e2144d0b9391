//! Errors that name the setting at fault the way a user knows it: by its
//! environment variable and its flag, wherever the value came from.

use clap::Args as _;
use clap::error::{ContextKind, ContextValue, ErrorKind};

use super::Config;

/// A setting had a value that could not be used, or the command line asked
/// for help or was malformed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `name` is the variable, with its flag: `GATEHOUSE_GRPC_ADDR (--grpc-addr)`.
    #[error("{name}: {message} (got {value:?})")]
    Invalid { name: String, value: String, message: String },
    /// Help, version, or a command line clap refused (unknown flag, missing
    /// value); clap's own rendering says it best, so it is kept whole.
    #[error("{0}")]
    Usage(clap::Error),
}

/// A setting as a user knows it: `GATEHOUSE_X (--x)`, found by `matches`
/// among the settings as declared (the command parsed may have had its
/// variables removed, in tests).
pub(super) fn setting_name(matches: impl Fn(&clap::Arg) -> bool) -> Option<String> {
    let cmd = Config::augment_args(clap::Command::new("gatehouse"));
    let arg = cmd.get_arguments().find(|arg| matches(arg))?;
    Some(match (arg.get_env(), arg.get_long()) {
        (Some(env), Some(long)) => format!("{} (--{long})", env.to_string_lossy()),
        _ => arg.get_id().to_string(),
    })
}

pub(super) fn invalid(field: &str, value: &str, message: &str) -> ConfigError {
    let name = setting_name(|arg| arg.get_id() == field).unwrap_or_else(|| field.to_owned());
    ConfigError::Invalid { name, value: value.to_owned(), message: message.to_owned() }
}

/// Clap names a bad value by its flag only (`--grpc-addr <GRPC_ADDR>`), even
/// when it came from the environment; the error is rebuilt to name the
/// variable too. Everything else (a flag without its value, an unknown flag,
/// help) stays clap's.
pub(super) fn from_clap(error: clap::Error) -> ConfigError {
    let text = |kind| match error.get(kind) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        _ => None,
    };
    let message = match (error.kind(), std::error::Error::source(&error), error.get(ContextKind::ValidValue)) {
        (ErrorKind::ValueValidation, Some(source), _) => source.to_string(),
        (ErrorKind::InvalidValue, _, Some(ContextValue::Strings(valid))) if !valid.is_empty() => {
            format!("expected one of {}", valid.join(", "))
        }
        _ => return ConfigError::Usage(error),
    };
    let (Some(shown), Some(value)) = (text(ContextKind::InvalidArg), text(ContextKind::InvalidValue)) else {
        return ConfigError::Usage(error);
    };
    // `shown` is the argument as clap prints it: `--grpc-addr <GRPC_ADDR>`.
    let long = shown.split_whitespace().next().and_then(|flag| flag.strip_prefix("--"));
    match long.and_then(|long| setting_name(|arg| arg.get_long() == Some(long))) {
        Some(name) => ConfigError::Invalid { name, value, message },
        None => ConfigError::Usage(error),
    }
}
