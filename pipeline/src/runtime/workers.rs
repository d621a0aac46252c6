//! The runtime's worker threads, lent to a stage for the pure part of its batches
//! ([`optionflow_operators::shared_work`]).
//!
//! The pipeline's slowest stage (the greeks, about half of a replay's work) sets its pace, and
//! on two cores the worker not running it has the other stages to run: it is rarely idle, so a
//! job left for an idle worker mostly came too late (counted: it priced 3.6% of a replay's
//! quotes). A job is therefore also put on offer to the other stages, each of which works it
//! before its next message: the other worker joins the batch at the next boundary between its
//! own messages.
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
    /// The latest job offered. A job whose batch is done costs a helper nothing but taking it.
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
            run_caught(&job);
        }
    }
}

/// Runs a lent job, and stops a panic in it there: the stage that offered the work computes
/// what a helper abandoned ([`optionflow_operators::shared_work::SharedRun`]), so the panic, if
/// the work itself panics, is that stage's, not the one that happened to help.
fn run_caught(job: &Job) {
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job()));
}

impl Helpers for LentWorkers {
    fn lend(&self, job: Job) {
        *self.offer.lock().unwrap_or_else(PoisonError::into_inner) = Some(job.clone());
        self.handle.spawn(async move { run_caught(&job) });
        // A task spawned from a worker goes to that worker's LIFO slot, which no other worker
        // steals from and which wakes none of them: the job would wait for the very stage that
        // offered it. An empty task spawned after it pushes it out to the worker's queue,
        // where an idle worker is woken to take it.
        self.handle.spawn(async {});
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use optionflow_operators::shared_work::SharedRun;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_worked_by_lent_workers_comes_back_in_order() {
        let workers = LentWorkers::current();
        let items: Vec<u64> = (0..10_000).collect();
        let (got, ()) = SharedRun::map(
            items.clone(),
            16,
            |x: &u64| x * 3,
            &workers,
            || {
                // A stage between its messages, as the runtime's stages do.
                workers.help();
            },
        );
        assert_eq!(
            got.collect::<Vec<_>>(),
            items.iter().map(|x| x * 3).collect::<Vec<_>>()
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_job_is_offered_once_to_the_stages_and_once_to_the_workers() {
        let workers = LentWorkers::current();
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = runs.clone();
        workers.lend(Arc::new(move || {
            counted.fetch_add(1, Ordering::SeqCst);
        }));
        workers.help();
        workers.help();
        assert_eq!(
            runs.load(Ordering::SeqCst),
            1,
            "taken off offer by the first"
        );
        // The task spawned for an idle worker runs once this one yields.
        tokio::task::yield_now().await;
        tokio::task::yield_now().await;
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_panic_in_lent_work_stays_out_of_the_stage_that_helped() {
        let workers = LentWorkers::current();
        workers.lend(Arc::new(|| panic!("the work itself is broken")));
        // Returns: the stage that offered the work is the one to fail, computing it itself.
        workers.help();
        tokio::task::yield_now().await;
        tokio::task::yield_now().await;
    }
}
