//! A Redis key prefix of a test's own, on the test server.

use std::net::SocketAddr;

use redis::ConnectionAddr;

/// The variable naming the test Redis.
pub const URL_VAR: &str = "GATEHOUSE_TEST_REDIS_URL";
const DEFAULT_URL: &str = "redis://127.0.0.1:6379";

/// The test Redis's URL: [`URL_VAR`] or the local server.
#[must_use]
pub fn url() -> String {
    crate::env_or(URL_VAR, DEFAULT_URL)
}

/// Fails the test saying how to start Redis.
fn unreachable(e: &dyn std::fmt::Display) -> ! {
    panic!("Redis at {} is unreachable ({e}); start it with `make services` or set {URL_VAR}", url())
}

/// The test Redis's `host:port`: what a [`FaultProxy`](crate::FaultProxy)
/// forwards to.
#[must_use]
pub fn upstream() -> String {
    let (host, port, _) = parts();
    format!("{host}:{port}")
}

/// The test Redis's URL with its address replaced by `via` (a proxy's),
/// keeping credentials and database number.
#[must_use]
pub fn url_via(via: SocketAddr) -> String {
    let (_, _, rest) = parts();
    format!("redis://{}{via}/{}", rest.0, rest.1)
}

/// Host, port, and (`user:password@` or empty, database number) of the URL.
fn parts() -> (String, u16, (String, i64)) {
    let url = url();
    let client = redis::Client::open(url.as_str()).unwrap_or_else(|e| panic!("{URL_VAR}={url}: {e}"));
    let info = client.get_connection_info();
    let ConnectionAddr::Tcp(host, port) = &info.addr else { panic!("{url} is not a plain TCP Redis URL") };
    let auth = match (&info.redis.username, &info.redis.password) {
        (Some(user), Some(password)) => format!("{user}:{password}@"),
        (None, Some(password)) => format!(":{password}@"),
        _ => String::new(),
    };
    (host.clone(), *port, (auth, info.redis.db))
}

/// A key prefix no other test uses. Every key under it is deleted when the
/// guard drops, passed or failed; create it before writing anything.
#[derive(Debug)]
pub struct RedisPrefix {
    client: redis::Client,
    prefix: String,
}

impl RedisPrefix {
    /// A prefix `<label>-<uuid>:` on the test Redis.
    #[must_use]
    pub fn new(label: &str) -> Self {
        let client = redis::Client::open(url()).unwrap_or_else(|e| unreachable(&e));
        Self { client, prefix: format!("{label}-{}:", uuid::Uuid::now_v7().simple()) }
    }

    /// The prefix, colon included.
    #[must_use]
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Every key under the prefix, in no particular order.
    pub async fn keys(&self) -> Vec<String> {
        let mut connection = self.client.get_multiplexed_async_connection().await.unwrap_or_else(|e| unreachable(&e));
        let mut keys = Vec::new();
        let mut cursor = 0_u64;
        loop {
            let (next, batch): (u64, Vec<String>) =
                scan(cursor, &self.prefix).query_async(&mut connection).await.unwrap_or_else(|e| unreachable(&e));
            keys.extend(batch);
            if next == 0 {
                return keys;
            }
            cursor = next;
        }
    }
}

impl Drop for RedisPrefix {
    fn drop(&mut self) {
        if let Err(e) = delete_all(&self.client, &self.prefix) {
            eprintln!("could not delete the test keys {}*: {e}", self.prefix);
        }
    }
}

/// Deletes every key under `prefix` on the test Redis, as if Redis had lost
/// its data, and says how many there were.
#[must_use = "a test that simulates data loss usually checks there was data to lose"]
pub fn delete_keys(prefix: &str) -> usize {
    let client = redis::Client::open(url()).unwrap_or_else(|e| unreachable(&e));
    delete_all(&client, prefix).unwrap_or_else(|e| unreachable(&e))
}

/// Deletes every key under `prefix`, counting them. The synchronous client
/// needs no runtime, so this works from `Drop`.
fn delete_all(client: &redis::Client, prefix: &str) -> redis::RedisResult<usize> {
    let mut connection = client.get_connection_with_timeout(std::time::Duration::from_secs(5))?;
    let (mut cursor, mut deleted) = (0_u64, 0);
    loop {
        let (next, keys): (u64, Vec<String>) = scan(cursor, prefix).query(&mut connection)?;
        if !keys.is_empty() {
            redis::cmd("DEL").arg(&keys).query::<()>(&mut connection)?;
            deleted += keys.len();
        }
        if next == 0 {
            return Ok(deleted);
        }
        cursor = next;
    }
}

/// One `SCAN` step over the keys under `prefix`.
fn scan(cursor: u64, prefix: &str) -> redis::Cmd {
    let mut cmd = redis::cmd("SCAN");
    cmd.arg(cursor).arg("MATCH").arg(format!("{prefix}*")).arg("COUNT").arg(1000);
    cmd
}
