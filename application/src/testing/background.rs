//! A background runner for use-case tests: by default it hands every task
//! back, so the use case runs it before answering and tests see its effects
//! at once; deferred, it keeps them until the test runs them.

use std::sync::atomic::AtomicBool;

use super::*;
use crate::ports::background::{Background, Task};

#[derive(Debug, Default)]
pub struct FakeBackground {
    deferred: AtomicBool,
    waiting: Mutex<Vec<(&'static str, TaskCell)>>,
}

/// A task behind a `Debug` the fake's derive can use.
struct TaskCell(Task);

impl std::fmt::Debug for TaskCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Task")
    }
}

impl FakeBackground {
    /// Keeps tasks instead of handing them back, until [`Self::run_waiting`].
    pub fn defer(&self) {
        self.deferred.store(true, Ordering::Relaxed);
    }

    /// The names of the tasks waiting.
    #[must_use]
    pub fn waiting(&self) -> Vec<&'static str> {
        self.waiting.lock().unwrap().iter().map(|(name, _)| *name).collect()
    }

    /// Runs every waiting task to the end, in order.
    pub fn run_waiting(&self) {
        let tasks: Vec<_> = self.waiting.lock().unwrap().drain(..).collect();
        for (_, TaskCell(task)) in tasks {
            futures_executor::block_on(task);
        }
    }
}

impl Background for FakeBackground {
    fn start(&self, name: &'static str, task: Task) -> Result<(), Task> {
        if self.deferred.load(Ordering::Relaxed) {
            self.waiting.lock().unwrap().push((name, TaskCell(task)));
            Ok(())
        } else {
            Err(task)
        }
    }
}
