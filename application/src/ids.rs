//! Making ids and secrets from the clock and random ports, so tests that fix
//! both get the same ids every run.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::ports::random::RandomSource;

/// A UUIDv7 (RFC 9562 §5.7): 48 bits of Unix milliseconds, then randomness.
#[must_use]
pub fn new_uuid_v7(now: DateTime<Utc>, rng: &dyn RandomSource) -> Uuid {
    let mut random = [0_u8; 10];
    rng.fill(&mut random);
    let millis = u64::try_from(now.timestamp_millis()).unwrap_or(0);
    uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::SeqRandom;

    #[test]
    fn uuid_v7_carries_the_clock_time_and_version() {
        let now = DateTime::from_timestamp_millis(1_764_000_000_123).unwrap_or_default();
        let id = new_uuid_v7(now, &SeqRandom::default());
        assert_eq!(id.get_version_num(), 7);
        let (secs, nanos) = id.get_timestamp().map(|t| t.to_unix()).unwrap_or_default();
        assert_eq!((secs, nanos / 1_000_000), (1_764_000_000, 123));
    }
}
