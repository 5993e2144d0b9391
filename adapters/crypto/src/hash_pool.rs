//! A fixed set of OS threads for CPU-heavy work (password hashing), with a
//! bounded queue in front.
//!
//! Why not tokio's blocking pool: it grows a thread per waiting task and
//! lets idle ones die, so each hash may land on a new thread whose malloc
//! arena then keeps its argon2 block; and its threads compete with the
//! runtime's workers at the same priority. Here the threads are fixed, each
//! keeps its own state (its argon2 memory) from one job to the next, they
//! run at a lower scheduling priority than the runtime, and work beyond
//! `threads + queue` is refused at once instead of waiting without bound.

use std::collections::VecDeque;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use tokio::sync::oneshot;

/// One unit of work, run with the thread's own state; what it returns
/// hands the answer to the caller, called once the job no longer counts
/// against the capacity (so a caller that got its answer can submit again).
type Job<S> = Box<dyn FnOnce(&mut S) -> Deliver + Send>;
type Deliver = Box<dyn FnOnce() + Send>;

/// The pool's threads and every job queued or running are full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Full;

/// The job ended without an answer: it panicked (the thread goes on).
#[derive(Debug, thiserror::Error)]
#[error("the job panicked")]
pub(crate) struct Panicked;

struct Queue<S> {
    jobs: VecDeque<Job<S>>,
    /// Jobs taken by a thread and not finished.
    running: usize,
    /// The pool was dropped: threads finish what is queued and exit.
    closed: bool,
}

struct Shared<S> {
    queue: Mutex<Queue<S>>,
    ready: Condvar,
    /// Jobs admitted at once, queued or running: threads plus queue.
    capacity: usize,
}

impl<S> Shared<S> {
    fn lock(&self) -> MutexGuard<'_, Queue<S>> {
        // A job's panic is caught outside the lock, so a poisoned lock can
        // only come from a bug here; the queue itself is still consistent.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A pool of `threads` OS threads, each with state `S`, admitting at most
/// `threads + queue` jobs at once. Dropping it lets the threads finish the
/// queued jobs and exit.
pub(crate) struct HashPool<S> {
    shared: Arc<Shared<S>>,
    threads: usize,
}

impl<S: 'static> HashPool<S> {
    /// Starts `threads` threads (at least one) named `name-N`, each with the
    /// state `init` makes and at a lowered scheduling priority.
    ///
    /// # Errors
    /// When the OS refuses a thread (at start-up only).
    pub(crate) fn start(
        name: &str,
        threads: usize,
        queue: usize,
        init: impl Fn() -> S + Send + Sync + 'static,
    ) -> std::io::Result<Self> {
        let threads = threads.max(1);
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue { jobs: VecDeque::new(), running: 0, closed: false }),
            ready: Condvar::new(),
            capacity: threads.saturating_add(queue),
        });
        let init = Arc::new(init);
        for n in 0..threads {
            let (shared, init) = (Arc::clone(&shared), Arc::clone(&init));
            std::thread::Builder::new().name(format!("{name}-{n}")).spawn(move || {
                lower_priority();
                work(&shared, &mut init());
            })?;
        }
        Ok(Self { shared, threads })
    }

    /// Queues `work`; the answer arrives on the returned receiver, or
    /// [`Panicked`] if the job panicked. A job whose caller stopped waiting
    /// before a thread took it is skipped.
    ///
    /// # Errors
    /// [`Full`] when `threads + queue` jobs are already admitted.
    pub(crate) fn submit<T, F>(&self, work: F) -> Result<impl Future<Output = Result<T, Panicked>>, Full>
    where
        T: Send + 'static,
        F: FnOnce(&mut S) -> T + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job<S> = Box::new(move |state| {
            if tx.is_closed() {
                return Box::new(|| ());
            }
            let answer = work(state);
            Box::new(move || {
                let _ = tx.send(answer);
            })
        });
        let mut queue = self.shared.lock();
        if queue.jobs.len() + queue.running >= self.shared.capacity {
            return Err(Full);
        }
        queue.jobs.push_back(job);
        drop(queue);
        self.shared.ready.notify_one();
        Ok(async move { rx.await.map_err(|_| Panicked) })
    }
}

impl<S> Drop for HashPool<S> {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.ready.notify_all();
    }
}

impl<S> fmt::Debug for HashPool<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HashPool")
            .field("threads", &self.threads)
            .field("queue", &(self.shared.capacity - self.threads))
            .finish_non_exhaustive()
    }
}

/// A thread's loop: take a job, run it, until the pool is closed and empty.
/// A panicking job is logged and forgotten; its caller sees [`Panicked`]
/// (its answer channel is dropped) and the thread takes the next job.
fn work<S>(shared: &Shared<S>, state: &mut S) {
    loop {
        let job = {
            let mut queue = shared.lock();
            loop {
                if let Some(job) = queue.jobs.pop_front() {
                    queue.running += 1;
                    break job;
                }
                if queue.closed {
                    return;
                }
                queue = shared.ready.wait(queue).unwrap_or_else(PoisonError::into_inner);
            }
        };
        let outcome = catch_unwind(AssertUnwindSafe(|| job(state)));
        shared.lock().running -= 1;
        match outcome {
            Ok(deliver) => deliver(),
            Err(_) => tracing::error!("a password hashing job panicked; its thread goes on"),
        }
    }
}

/// Moves the calling thread to `SCHED_BATCH` (CPU-bound work that should
/// not preempt interactive threads on wake-up) at nice 10: the runtime's
/// workers (nice 0) get about ten times its CPU share when both want it,
/// so a login flood slows token validation little, while hashes still use
/// every idle cycle. Both only
/// lower the priority, which needs no privilege; failing is logged, and
/// the pool works at normal priority.
#[cfg(target_os = "linux")]
fn lower_priority() {
    use thread_priority::{
        NormalThreadSchedulePolicy, ThreadPriority, ThreadPriorityValue, ThreadSchedulePolicy,
        set_thread_priority_and_policy, thread_native_id,
    };
    // The crate maps 0..=99 onto niceness 19..=-20: 22 is nice 10 (a test
    // reads it back from the kernel).
    let result = ThreadPriorityValue::try_from(22u8)
        .map_err(|_| thread_priority::Error::Priority("22 is out of range"))
        .and_then(|value| {
            set_thread_priority_and_policy(
                thread_native_id(),
                ThreadPriority::Crossplatform(value),
                ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Batch),
            )
        });
    if let Err(error) = result {
        tracing::warn!(?error, "cannot lower the hashing threads' priority; they run at normal priority");
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority() {}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    fn counter_pool(threads: usize, queue: usize) -> HashPool<u32> {
        HashPool::start("test-pool", threads, queue, || 0).unwrap()
    }

    #[tokio::test]
    async fn more_jobs_than_threads_all_finish_and_reuse_the_threads_state() {
        let pool = counter_pool(2, 30);
        let answers: Vec<_> = (0..32u32)
            .map(|n| {
                pool.submit(move |count: &mut u32| {
                    *count += 1;
                    std::thread::sleep(Duration::from_millis(2));
                    (n, *count)
                })
                .unwrap()
            })
            .collect();
        let mut seen = Vec::new();
        let mut per_thread_max = 0;
        for (n, answer) in answers.into_iter().enumerate() {
            let (m, count) = answer.await.unwrap();
            assert_eq!(m as usize, n);
            per_thread_max = per_thread_max.max(count);
            seen.push(m);
        }
        assert_eq!(seen.len(), 32);
        assert!(per_thread_max >= 16, "two threads ran 32 jobs with their own state: {per_thread_max}");
    }

    /// OWASP ASVS 5.0 V15.2.2: work past the threads and the queue is refused, not queued.
    #[tokio::test]
    async fn a_full_queue_refuses_at_once_and_admits_again_when_a_job_ends() {
        let pool = counter_pool(1, 1);
        let (release, wait) = mpsc::channel::<()>();
        let running = pool.submit(move |_: &mut u32| wait.recv().unwrap()).unwrap();
        let queued = pool.submit(|_: &mut u32| 7).unwrap();
        assert_eq!(pool.submit(|_: &mut u32| 8).err(), Some(Full), "one running, one queued: full");
        release.send(()).unwrap();
        running.await.unwrap();
        assert_eq!(queued.await.unwrap(), 7);
        assert_eq!(pool.submit(|_: &mut u32| 9).unwrap().await.unwrap(), 9);
    }

    #[tokio::test]
    async fn with_no_queue_only_idle_threads_take_work() {
        let pool = counter_pool(1, 0);
        let (release, wait) = mpsc::channel::<()>();
        let running = pool.submit(move |_: &mut u32| wait.recv().unwrap()).unwrap();
        assert_eq!(pool.submit(|_: &mut u32| 1).err(), Some(Full));
        release.send(()).unwrap();
        running.await.unwrap();
        assert_eq!(pool.submit(|_: &mut u32| 2).unwrap().await.unwrap(), 2);
    }

    #[tokio::test]
    async fn a_panic_inside_a_job_does_not_kill_the_pool() {
        let pool = counter_pool(1, 4);
        let panicking = pool.submit(|_: &mut u32| -> u32 { panic!("argon2 blew up") }).unwrap();
        assert!(panicking.await.is_err(), "the caller learns its job failed");
        for n in 0..3 {
            let answer = pool.submit(move |count: &mut u32| {
                *count += 1;
                n
            });
            assert_eq!(answer.unwrap().await.unwrap(), n, "the one thread still works");
        }
    }

    /// The runtime's workers keep priority over hashing.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn threads_run_at_a_lower_priority_under_sched_batch() {
        let pool = counter_pool(1, 0);
        let stat = pool.submit(|_: &mut u32| std::fs::read_to_string("/proc/thread-self/stat").unwrap());
        let stat = stat.unwrap().await.unwrap();
        // Fields after the parenthesised command: state is field 3; nice is 19, policy 41.
        let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
        let (nice, policy) = (fields[19 - 3], fields[41 - 3]);
        assert_eq!(nice, "10");
        assert_eq!(policy, "3", "SCHED_BATCH");
    }
}
