//! The ports: every capability the use cases need from the outside world,
//! as traits named for what the core needs, not for the technology behind
//! them. Adapters implement them; `bin` chooses which.

pub mod audit;
pub mod background;
pub mod clock;
pub mod denylist;
pub mod events;
pub mod health;
pub mod mfa;
pub mod organizations;
pub mod password;
pub mod random;
pub mod rate_limit;
pub mod store;
pub mod tokens;
pub mod unit_of_work;
pub mod verifications;

/// The failure behind a port error, kept whole (with its own sources) so the
/// border that reports it can log the entire chain once.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;
