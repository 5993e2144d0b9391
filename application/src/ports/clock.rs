//! Time, as a port, so that expiry rules are testable with a fixed clock.

use chrono::{DateTime, Utc};

/// The current time.
pub trait Clock: std::fmt::Debug + Send + Sync {
    /// Now, in UTC. Implementations truncate to microseconds, the precision
    /// PostgreSQL keeps, so a time written and read back compares equal.
    fn now(&self) -> DateTime<Utc>;
}
