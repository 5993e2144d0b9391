//! The `mixed` scenario's timing threads at a real-time priority.
//!
//! On a machine where the tool shares its core with the database and the
//! broker (two cores: the server has the other), a tool thread that was
//! woken by an answer could wait for that core behind a PostgreSQL backend
//! or RabbitMQ, and the wait counted as the server's latency: the p99 of
//! validation during logins read 1.2–3.1 ms where the same runs with the
//! tool at `SCHED_FIFO` read 0.8–1.0 ms. `mixed` sends 500 validations a
//! second and a few logins, a few percent of a core, so a real-time tool
//! cannot starve the services it shares the core with (and the kernel
//! keeps 5 % of every second for others in any case). The throughput
//! scenarios keep normal priority: there the tool is busy all the time.

use std::sync::atomic::{AtomicBool, Ordering};

use thread_priority::{
    RealtimeThreadSchedulePolicy, ThreadPriority, ThreadPriorityValue, ThreadSchedulePolicy,
    set_thread_priority_and_policy, thread_native_id,
};

/// Whether any thread failed to get the priority (not permitted, or not Linux).
static REFUSED: AtomicBool = AtomicBool::new(false);

/// Puts the calling thread under `SCHED_FIFO` at a low real-time priority;
/// when that is refused, the thread goes on at normal priority and
/// [`raised`] says so.
pub fn raise_current() {
    let result = ThreadPriorityValue::try_from(10u8)
        .map_err(|_| thread_priority::Error::Priority("10 is out of range"))
        .and_then(|value| {
            set_thread_priority_and_policy(
                thread_native_id(),
                ThreadPriority::Crossplatform(value),
                ThreadSchedulePolicy::Realtime(RealtimeThreadSchedulePolicy::Fifo),
            )
        });
    if result.is_err() {
        REFUSED.store(true, Ordering::Relaxed);
    }
}

/// Whether every thread [`raise_current`] was called on got the priority.
#[must_use]
pub fn raised() -> bool {
    !REFUSED.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// The calling thread's scheduling policy, field 41 of its `stat`.
    fn policy() -> String {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        // Fields after the parenthesised command: state is field 3.
        let fields: Vec<&str> = stat.rsplit_once(") ").unwrap().1.split(' ').collect();
        fields[41 - 3].to_owned()
    }

    /// Either the thread is under `SCHED_FIFO` (1), or the tool knows it is
    /// not and says so: never a claim of priority it does not have.
    #[test]
    fn a_raised_thread_is_under_sched_fifo_or_the_refusal_is_known() {
        std::thread::spawn(|| {
            assert_eq!(policy(), "0", "starts under SCHED_OTHER");
            raise_current();
            let expected = if raised() { "1" } else { "0" };
            assert_eq!(policy(), expected, "raised() = {}", raised());
        })
        .join()
        .unwrap();
    }
}
