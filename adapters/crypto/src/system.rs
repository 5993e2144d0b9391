//! The real clock and the OS random source.

use chrono::{DateTime, SubsecRound as _, Utc};
use gatehouse_application::ports::clock::Clock;
use gatehouse_application::ports::random::RandomSource;
use rand_core::{OsRng, RngCore as _};

/// The system clock, in UTC, truncated to microseconds (what PostgreSQL keeps).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        // chrono's `clock` feature is off workspace-wide; `SystemTime` is the same source.
        DateTime::<Utc>::from(std::time::SystemTime::now()).trunc_subsecs(6)
    }
}

/// The operating system's CSPRNG (`getrandom`).
#[derive(Debug, Clone, Copy, Default)]
pub struct OsRandom;

impl RandomSource for OsRandom {
    /// Panics only if the OS cannot provide randomness at all, in which case
    /// no secret this service makes could be trusted anyway.
    fn fill(&self, buf: &mut [u8]) {
        OsRng.fill_bytes(buf);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use chrono::Timelike as _;

    use super::*;

    #[test]
    fn clock_is_truncated_to_microseconds() {
        let now = SystemClock.now();
        assert_eq!(now.nanosecond() % 1_000, 0);
        let system = DateTime::<Utc>::from(std::time::SystemTime::now());
        assert!((system - now).num_seconds().abs() < 5);
    }

    #[test]
    fn os_random_fills_the_whole_buffer() {
        let mut a = [0u8; 32];
        let mut b = [0u8; 32];
        OsRandom.fill(&mut a);
        OsRandom.fill(&mut b);
        assert_ne!(a, [0u8; 32]);
        assert_ne!(a, b);
    }
}
