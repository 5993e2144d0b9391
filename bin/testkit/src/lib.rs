//! Gatehouse's test infrastructure, shared by the adapter and end-to-end
//! suites: what a test owns on the shared services (a PostgreSQL database, a
//! Redis key prefix, a RabbitMQ exchange, a temporary directory), each
//! removed when its guard drops, also while a failed assertion unwinds; one
//! TCP fault proxy to stage outages; [`eventually`] for conditions that hold
//! after a while; and the `TEST_LOG=1` switch that shows the server's logs.
//!
//! The services are the real ones `make services` starts; their URLs can be
//! overridden with `GATEHOUSE_TEST_POSTGRES_URL`, `GATEHOUSE_TEST_REDIS_URL`
//! and `GATEHOUSE_TEST_AMQP_URL`. A test that cannot reach one fails naming
//! the URL and how to start it; it never skips.
//!
//! This crate is only ever a dev-dependency: nothing in it may reach a
//! production build.

// A helper that cannot do its job fails the test that called it, with a
// message; that is what unwrap and expect are for here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod eventually;
mod log;
pub mod postgres;
mod proxy;
pub mod rabbitmq;
pub mod redis;
mod temp;

pub use eventually::{PATIENCE, eventually, eventually_some, fails_within};
pub use log::init_test_log;
pub use proxy::FaultProxy;
pub use temp::TempDir;

/// A name no other test run uses: `prefix` and a time-ordered UUID, in
/// characters every service accepts in its identifiers.
#[must_use]
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

/// The value of the environment variable `var`, or `default`.
fn env_or(var: &str, default: &str) -> String {
    std::env::var(var).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_owned())
}

/// Runs `cleanup` to completion from a `Drop` impl. `Drop` cannot await, and
/// it usually runs inside the test's runtime, where blocking on a future
/// panics; so the future runs on a thread and runtime of its own, and the
/// drop waits for it, so the resource is gone before the test ends.
fn block_on_own_thread<F>(what: &str, cleanup: impl FnOnce() -> F + Send + 'static)
where
    F: Future<Output = Result<(), String>>,
{
    let outcome = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
        runtime.block_on(async {
            match tokio::time::timeout(std::time::Duration::from_secs(15), cleanup()).await {
                Ok(result) => result,
                Err(_) => Err("timed out after 15 s".to_owned()),
            }
        })
    })
    .join();
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(e)) => eprintln!("could not remove {what}: {e}"),
        Err(_) => eprintln!("removing {what} panicked"),
    }
}
