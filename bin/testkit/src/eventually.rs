//! Time in tests: waiting for a condition that holds after a while (a
//! background task ran, a health probe noticed, an event was published)
//! instead of sleeping for a guessed time that a loaded machine overruns,
//! and bounding a call that must fail rather than hang.

use std::time::Duration;

/// How long [`eventually`] waits before failing the test: far longer than
/// anything should take, so only a real failure reaches it, even on a
/// loaded two-core machine.
pub const PATIENCE: Duration = Duration::from_secs(30);

const POLL: Duration = Duration::from_millis(50);

/// Polls `check` until it returns `true`; fails the test, saying `what` was
/// awaited, if it has not within [`PATIENCE`].
pub async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    eventually_some(what, async || check().await.then_some(())).await;
}

/// Polls `check` until it returns `Some`, and returns that; fails the test,
/// saying `what` was awaited, if it has not within [`PATIENCE`].
pub async fn eventually_some<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("waited {PATIENCE:?} for {what}, in vain");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Runs `call` and fails the test unless it returns an error within
/// `bound`: for a call that must give up, not hang, when its service is gone.
pub async fn fails_within<T: std::fmt::Debug, E>(
    what: &str,
    bound: Duration,
    call: impl Future<Output = Result<T, E>>,
) {
    match tokio::time::timeout(bound, call).await {
        Ok(Err(_)) => {}
        Ok(Ok(value)) => panic!("{what} succeeded during the outage: {value:?}"),
        Err(_) => panic!("{what} did not fail within {bound:?}"),
    }
}
