//! Work that runs after the caller has been answered.
//!
//! A request whose work depends on a secret fact, such as whether an address
//! has an account, must not let its answer time tell that fact: it answers
//! first and leaves the work to run afterwards (OWASP ASVS 5.0 V6.3.8). The
//! work is bounded: when too much is already waiting, the port hands the task
//! back and the caller runs it before answering.

use std::future::Future;
use std::pin::Pin;

/// A unit of work to run later; it reports its own failures (the caller has
/// already been answered).
pub type Task = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Runs tasks after the answer.
pub trait Background: std::fmt::Debug + Send + Sync {
    /// Starts `task` in the background, or gives it back (`Err`) when the
    /// backlog is full, for the caller to run itself.
    ///
    /// # Errors
    /// The task itself, not started.
    fn start(&self, name: &'static str, task: Task) -> Result<(), Task>;
}
