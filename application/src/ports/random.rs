//! Randomness, as a port, so that tests can make ids and secrets repeatable.

/// A cryptographically secure random source (the OS CSPRNG in production).
pub trait RandomSource: std::fmt::Debug + Send + Sync {
    /// Fills `buf` with random bytes.
    fn fill(&self, buf: &mut [u8]);
}
