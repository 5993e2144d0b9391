//! [`TokioBackground`]: the `Background` port on this process's runtime,
//! with a bound on the tasks in flight.

use std::sync::Arc;

use gatehouse_application::ports::background::{Background, Task};
use tokio::sync::Semaphore;

/// Tasks that may run at once before new ones are handed back to their
/// caller. Each is one short look-up and at most one transaction, so this
/// bounds memory and database work during a flood of requests.
pub const MAX_IN_FLIGHT: usize = 256;

/// Runs tasks on the Tokio runtime, at most `MAX_IN_FLIGHT` at a time.
#[derive(Debug, Clone)]
pub struct TokioBackground {
    permits: Arc<Semaphore>,
}

impl TokioBackground {
    #[must_use]
    pub fn new(max_in_flight: usize) -> Self {
        Self { permits: Arc::new(Semaphore::new(max_in_flight)) }
    }
}

impl Default for TokioBackground {
    fn default() -> Self {
        Self::new(MAX_IN_FLIGHT)
    }
}

impl Background for TokioBackground {
    fn start(&self, name: &'static str, task: Task) -> Result<(), Task> {
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            tracing::debug!(task = name, "background full: running before the answer");
            return Err(task);
        };
        tokio::spawn(async move {
            task.await;
            drop(permit);
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::time::Duration;

    use tokio::sync::oneshot;

    use super::*;

    #[tokio::test]
    async fn tasks_run_after_start_returns_and_a_full_runner_hands_them_back() {
        let background = TokioBackground::new(1);
        let (release, wait) = oneshot::channel::<()>();
        let (done_tx, done) = oneshot::channel::<()>();
        let first = Box::pin(async move {
            let _ = wait.await;
            let _ = done_tx.send(());
        });
        assert!(background.start("first", first).is_ok());
        // The first holds the only permit: the second comes back to its caller.
        let handed_back = background.start("second", Box::pin(async {}));
        assert!(handed_back.is_err(), "a full runner must hand the task back");
        release.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), done).await.unwrap().unwrap();
        // The permit returns once the task has finished.
        tokio::time::timeout(Duration::from_secs(5), async {
            while background.permits.available_permits() == 0 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .unwrap();
        assert!(background.start("third", Box::pin(async {})).is_ok());
    }
}
