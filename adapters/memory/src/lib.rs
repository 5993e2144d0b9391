//! Gatehouse in-process adapters for the single-process embedded mode: the
//! token denylist ([`MemoryDenylist`]) and the rate limiter
//! ([`MemoryRateLimiter`]) kept in this process's memory instead of Redis.
//! They implement the same `Denylist` and `RateLimiter` contracts as
//! `gatehouse-redis` (the shared contract suites in that crate's tests run
//! against both).

mod denylist;
mod rate_limit;

pub use denylist::MemoryDenylist;
pub use rate_limit::{DEFAULT_MAX_KEYS, MemoryRateLimiter};
