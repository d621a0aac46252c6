//! The runtime's worker threads, lent to a stage for the pure part of its batches
//! ([`optionflow_operators::shared_work`]).
//!
//! The pipeline's slowest stage (the greeks, about half of a replay's work) sets its pace, and
//! on two cores the worker not running it has the other stages to run: it is rarely idle, so a
//! job left for an idle worker mostly came too late (measured: 4% of a replay's pricing). A job
//! is therefore also put on offer to the other stages, each of which works it before its next
//! message: the other worker joins the batch at the next boundary between its own messages.
//! Which thread prices which quote never changes an output.

use optionflow_operators::shared_work::Helpers;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::runtime::Handle;

/// A job a stage offers.
type Job = Arc<dyn Fn() + Send + Sync>;

/// The runtime's workers as helpers: a job is spawned as a task, for a worker with nothing to
/// run, and put on offer to the stages ([`LentWorkers::help`]).
#[derive(Clone)]
pub struct LentWorkers {
    handle: Handle,
    /// The latest job offered. A job that is done costs a helper one failed claim.
    offer: Arc<Mutex<Option<Job>>>,
}

impl fmt::Debug for LentWorkers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LentWorkers").finish_non_exhaustive()
    }
}

impl LentWorkers {
    /// The workers of the runtime this is called on.
    pub fn current() -> LentWorkers {
        LentWorkers {
            handle: Handle::current(),
            offer: Arc::default(),
        }
    }

    /// Works the job on offer, if there is one (taking it off offer: one stage at a time
    /// joins a batch besides the task spawned for it).
    pub fn help(&self) {
        let job = self
            .offer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(job) = job {
            job();
        }
    }
}

impl Helpers for LentWorkers {
    fn lend(&self, job: Job) {
        *self.offer.lock().unwrap_or_else(PoisonError::into_inner) = Some(job.clone());
        self.handle.spawn(async move { job() });
        // A task spawned from a worker goes to that worker's LIFO slot, which no other worker
        // steals from and which wakes none of them: the job would wait for the very stage that
        // offered it. An empty task spawned after it pushes it out to the worker's queue,
        // where an idle worker is woken to take it.
        self.handle.spawn(async {});
    }
}
