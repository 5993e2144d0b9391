//! Gatehouse application layer: the use cases, written against port traits.
//!
//! Every dependency on the outside world (storage, hashing, signing, the
//! denylist, time, randomness) is a trait in [`ports`]; adapters implement them
//! and `bin` wires them in. Nothing here performs I/O, so the use cases run
//! unchanged on the embedded (SQLite) and production (PostgreSQL + Redis)
//! deployments, and in tests over the fakes in `testing`.

pub mod account;
pub mod audit;
pub mod auth;
pub mod error;
pub mod events;
pub mod ids;
pub mod mfa;
pub mod organizations;
pub mod paging;
pub mod password_strength;
pub mod ports;
pub mod secrets;
pub mod sessions;
pub mod settings;
#[cfg(feature = "testing")]
pub mod testing;
pub mod throttle;

pub use error::{AppError, FieldViolation, TokenRejection, error_chain};
pub use password_strength::PasswordStrength;
pub use settings::{EnabledFactors, MfaSettings, OrganizationSettings, TokenSettings, VerificationSettings};
