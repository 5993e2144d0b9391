//! Gatehouse Redis adapter: the token denylist ([`RedisDenylist`]) and the
//! rate limiter ([`RedisRateLimiter`]) shared by every replica. The denylist
//! keeps one key per revoked session or access token, which Redis itself
//! expires when the last token it could refuse has; the rate limiter keeps
//! one key per limited subject, decided atomically by one script per check
//! and expired by Redis once it counts nothing.
//!
//! Every call is bounded by the timeout given to `connect`; a slow or dead
//! Redis yields a `DenylistError` or `RateLimitError` quickly, and the
//! caller then fails closed.

mod connection;
mod denylist;
mod key;
mod rate_limit;

pub use denylist::RedisDenylist;
pub use rate_limit::RedisRateLimiter;
