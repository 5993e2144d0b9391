//! Password hashing.

use async_trait::async_trait;
use gatehouse_domain::{Password, PasswordHash};

use crate::ports::BoxError;

/// Hashing failed in a way no caller can fix.
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed")]
pub struct HashError(#[source] pub BoxError);

/// The outcome of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordCheck {
    /// The password matches. `needs_rehash` is set when the stored hash uses
    /// older parameters than the current policy, or was made from the
    /// password before it was normalised; the caller should store a new one.
    Match {
        needs_rehash: bool,
    },
    Mismatch,
}

/// A slow, salted password hash (argon2id in production). Implementations
/// run the work off the async runtime with bounded concurrency.
#[async_trait]
pub trait PasswordHasher: std::fmt::Debug + Send + Sync {
    /// Hashes a new password into a PHC string.
    async fn hash(&self, password: &Password) -> Result<PasswordHash, HashError>;

    /// Checks `password` against `hash`: its NFKC form first, then, when the
    /// text as typed differs, that text (hashes stored before passwords were
    /// normalised), which matches with `needs_rehash`. With `None` (no such
    /// account) it verifies against a fixed dummy hash, as many times as a
    /// real mismatch would, and answers `Mismatch`, so an unknown email costs
    /// the same time as a wrong password.
    async fn verify(&self, password: &Password, hash: Option<&PasswordHash>) -> Result<PasswordCheck, HashError>;
}
