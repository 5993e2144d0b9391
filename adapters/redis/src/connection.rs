//! The connection handling every Redis adapter shares: one multiplexed,
//! self-reconnecting connection, and a timeout on every call.

use std::future::Future;
use std::time::Duration;

use gatehouse_application::ports::BoxError;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, RedisError};

/// Reconnection attempts after the first one fails. Each call is bounded by
/// the timeout anyway; retrying more would only delay start-up on a dead
/// Redis.
const CONNECT_RETRIES: usize = 1;

/// Longest pause between reconnection attempts, in milliseconds.
const MAX_RETRY_DELAY_MS: u64 = 1_000;

/// Connects to the Redis at `url`; `timeout` bounds each connection attempt
/// and each later response, including any wait for a reconnection.
pub(crate) async fn connect(url: &str, timeout: Duration) -> Result<ConnectionManager, RedisError> {
    let client = Client::open(url)?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(timeout)
        .set_response_timeout(timeout)
        .set_number_of_retries(CONNECT_RETRIES)
        .set_max_delay(MAX_RETRY_DELAY_MS);
    ConnectionManager::new_with_config(client, config).await
}

/// Runs one request within `timeout`. The error is Redis's own, or says
/// that no answer came in time.
pub(crate) async fn within_timeout<T>(
    timeout: Duration,
    request: impl Future<Output = Result<T, RedisError>>,
) -> Result<T, BoxError> {
    match tokio::time::timeout(timeout, request).await {
        Ok(result) => result.map_err(|e| Box::new(e).into()),
        Err(_) => Err(format!("redis: no answer within {} ms", timeout.as_millis()).into()),
    }
}
