//! Password hashing.

use async_trait::async_trait;
use gatehouse_domain::{Password, PasswordHash};

use crate::ports::BoxError;

/// Why a password could not be hashed or checked.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Every hashing thread is busy and the queue in front of them is
    /// full: nothing was done, and a retry shortly (here or on another
    /// replica) may succeed. Refusing beats queueing without limit, which
    /// only moves the memory and the wait.
    #[error("password hashing is at capacity")]
    Busy,
    /// Hashing failed in a way no caller can fix.
    #[error("password hashing failed")]
    Failed(#[source] BoxError),
}

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
/// run the work off the async runtime with bounded concurrency and a
/// bounded queue, answering [`HashError::Busy`] when both are full.
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
