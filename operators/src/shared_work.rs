//! Work an operator shares with threads its host already runs.
//!
//! The embedded runtime runs every stage as a task on a small pool of worker threads (two on a
//! two-core machine). When one stage is the pipeline's slowest, it sets the pace while the
//! other worker runs out of work; a pool of the stage's own would compete with the workers for
//! the cores instead. [`Helpers`] lets the host lend its workers: the stage cuts a batch's
//! pure work into chunks and offers them, then works through the chunks itself. Whichever
//! thread claims a chunk computes it; the stage waits only for chunks another thread has
//! claimed and not finished, so a helper that starts late, or never, costs nothing but the
//! offer. The results come back in input order whoever computed them: the outputs are the same
//! bits as on one thread.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

/// What [`SharedRun::map`] returns: every chunk's results, in input order. A named type rather
/// than `impl Iterator`, so that it does not borrow what `meanwhile` borrowed: the caller may
/// consume the results lazily after giving that back.
pub type Results<R> = std::iter::Flatten<std::vec::IntoIter<Vec<R>>>;

/// Threads a host lends an operator for part of its work.
pub trait Helpers: Send + Sync + fmt::Debug {
    /// Runs `job` on other threads of the host's when they are free: on any number of them,
    /// any number of times, at once or after the caller has finished the work itself, or never
    /// (the host shutting down). A job is an offer: [`SharedRun`]'s job claims chunks until
    /// none is left, and the caller waits only for chunks a helper has claimed.
    fn lend(&self, job: Arc<dyn Fn() + Send + Sync>);
}

/// A batch of independent items mapped by a pure function, in chunks claimed by whichever
/// thread gets to them first: the operator's own (through [`SharedRun::map`]) and the helpers
/// it lent a job to.
pub struct SharedRun<T, R, F> {
    /// Shared with the caller, who may still read them after the run (no copy for the run).
    items: Arc<Vec<T>>,
    chunk: usize,
    f: F,
    /// The next chunk to claim.
    next: AtomicUsize,
    progress: Mutex<Progress<R>>,
    finished: Condvar,
}

/// The chunks' results so far.
struct Progress<R> {
    /// One slot per chunk, filled by the thread that computed it.
    results: Vec<Option<Vec<R>>>,
    /// Chunks whose results are in.
    done: usize,
    /// Whether a helper stopped (panicked) in a chunk it claimed: the owner then computes
    /// the chunks that are missing instead of waiting for them.
    abandoned: bool,
}

impl<T, R, F> SharedRun<T, R, F> {
    fn lock(&self) -> MutexGuard<'_, Progress<R>> {
        // A helper that panicked holding the lock left nothing half-written in it (a slot is
        // filled in one assignment): the progress is still good.
        self.progress.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<T, R, F> SharedRun<T, R, F>
where
    T: Send + Sync + 'static,
    R: Send + 'static,
    F: Fn(&T) -> R + Send + Sync + 'static,
{
    /// `f` over `items`, in input order, shared with `helpers` in chunks of `chunk` items.
    /// `meanwhile` runs on the calling thread once it has claimed its last chunk, before it
    /// waits for the chunks still being computed elsewhere: sequential work of the caller's
    /// that fills that wait. The items may be a vector, or one the caller shares (an
    /// `Arc<Vec<T>>` it keeps a clone of, to read them again after the run without copying).
    pub fn map<M>(
        items: impl Into<Arc<Vec<T>>>,
        chunk: usize,
        f: F,
        helpers: &dyn Helpers,
        meanwhile: impl FnOnce() -> M,
    ) -> (Results<R>, M) {
        let items = items.into();
        let chunk = chunk.max(1);
        let chunks = items.len().div_ceil(chunk);
        let run = Arc::new(SharedRun {
            items,
            chunk,
            f,
            next: AtomicUsize::new(0),
            progress: Mutex::new(Progress {
                results: (0..chunks).map(|_| None).collect(),
                done: 0,
                abandoned: false,
            }),
            finished: Condvar::new(),
        });
        // The offer holds the run weakly: once this call returns, a job the host still holds
        // (a stale offer, a task not yet run) frees the batch's items and finds nothing to do.
        let offered = Arc::downgrade(&run);
        helpers.lend(Arc::new(move || {
            if let Some(run) = offered.upgrade() {
                run.work();
            }
        }));
        run.work();
        let extra = meanwhile();
        (run.collect().into_iter().flatten(), extra)
    }

    fn chunks(&self) -> usize {
        self.items.len().div_ceil(self.chunk)
    }

    /// Chunk `i`'s results.
    fn compute(&self, i: usize) -> Vec<R> {
        let start = i * self.chunk;
        let end = (start + self.chunk).min(self.items.len());
        self.items[start..end].iter().map(&self.f).collect()
    }

    /// Claims and computes chunks until none is left.
    fn work(&self) {
        let chunks = self.chunks();
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            if i >= chunks {
                return;
            }
            let mut claim = Claim {
                run: self,
                done: false,
            };
            let out = self.compute(i);
            let mut progress = self.lock();
            // The owner takes the slots once every chunk is in, or one was abandoned (then it
            // computes what is missing itself, and a late result is dropped).
            if let Some(slot) = progress.results.get_mut(i) {
                *slot = Some(out);
            }
            progress.done += 1;
            claim.done = true;
            if progress.done == chunks {
                self.finished.notify_all();
            }
        }
    }

    /// Waits for the chunks other threads claimed and returns every chunk's results, in input
    /// order. Chunks a helper abandoned are computed here.
    fn collect(&self) -> Vec<Vec<R>> {
        let chunks = self.chunks();
        let mut progress = self.lock();
        while progress.done < chunks && !progress.abandoned {
            progress = self
                .finished
                .wait(progress)
                .unwrap_or_else(PoisonError::into_inner);
        }
        let results = std::mem::take(&mut progress.results);
        drop(progress);
        results
            .into_iter()
            .enumerate()
            // Missing: abandoned, or still being computed by a helper that will drop its
            // result. The function is pure, so computing it again gives the same values.
            .map(|(i, slot)| slot.unwrap_or_else(|| self.compute(i)))
            .collect()
    }
}

/// A claimed chunk: if its thread unwinds before the result is in, the owner is told.
struct Claim<'a, T, R, F> {
    run: &'a SharedRun<T, R, F>,
    done: bool,
}

impl<T, R, F> Drop for Claim<'_, T, R, F> {
    fn drop(&mut self) {
        if !self.done {
            self.run.lock().abandoned = true;
            self.run.finished.notify_all();
        }
    }
}

/// Helpers that are plain threads, one per job: for tests and for hosts without a pool.
#[derive(Debug, Default, Clone, Copy)]
pub struct SpawnedThreads;

impl Helpers for SpawnedThreads {
    fn lend(&self, job: Arc<dyn Fn() + Send + Sync>) {
        std::thread::spawn(move || job());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Helpers that never run a job, as a host shutting down.
    #[derive(Debug)]
    struct Absent;

    impl Helpers for Absent {
        fn lend(&self, _job: Arc<dyn Fn() + Send + Sync>) {}
    }

    /// Helpers that run the job at once on the caller's thread: they claim every chunk.
    #[derive(Debug)]
    struct Eager;

    impl Helpers for Eager {
        fn lend(&self, job: Arc<dyn Fn() + Send + Sync>) {
            job();
        }
    }

    fn square(x: &u64) -> u64 {
        x * x
    }

    #[test]
    fn results_come_back_in_input_order_whoever_computes_them() {
        let items: Vec<u64> = (0..1000).collect();
        let expected: Vec<u64> = items.iter().map(square).collect();
        let helpers: [&dyn Helpers; 3] = [&Absent, &Eager, &SpawnedThreads];
        for helpers in helpers {
            for chunk in [1, 7, 16, 1000, 5000] {
                let (got, meanwhile) =
                    SharedRun::map(items.clone(), chunk, square, helpers, || "ran");
                let got: Vec<u64> = got.collect();
                assert_eq!(got, expected, "{helpers:?}, chunks of {chunk}");
                assert_eq!(meanwhile, "ran");
            }
        }
        let (mut empty, ()) = SharedRun::map(Vec::<u64>::new(), 16, square, &SpawnedThreads, || ());
        assert!(empty.next().is_none());
    }

    /// Items the caller shares are read in place and are the caller's alone again once the
    /// run is over (when no helper held on to the offer), vector and all.
    #[test]
    fn shared_items_come_back_to_the_caller_uncopied() {
        let items = Arc::new((0..100).collect::<Vec<u64>>());
        let at = items.as_ptr();
        let (got, ()) = SharedRun::map(Arc::clone(&items), 8, square, &Eager, || ());
        assert_eq!(
            got.collect::<Vec<u64>>(),
            items.iter().map(square).collect::<Vec<_>>()
        );
        let (got, ()) = SharedRun::map(Arc::clone(&items), 8, square, &Absent, || ());
        assert_eq!(got.count(), 100);
        let back = Arc::try_unwrap(items).expect("no run holds the items any more");
        assert_eq!(back.as_ptr(), at, "the same vector, not a copy");
    }

    #[test]
    fn a_chunk_a_helper_abandons_is_computed_by_the_owner() {
        /// A helper whose thread dies in the first chunk it claims.
        #[derive(Debug)]
        struct Dying;

        impl Helpers for Dying {
            fn lend(&self, job: Arc<dyn Fn() + Send + Sync>) {
                let helper = std::thread::Builder::new().name("dying-helper".into());
                let joined = helper.spawn(move || job()).unwrap().join();
                assert!(joined.is_err(), "the helper died");
            }
        }
        fn fragile(x: &u64) -> u64 {
            assert_ne!(std::thread::current().name(), Some("dying-helper"));
            x + 1
        }
        let (got, ()) = SharedRun::map((0..10).collect::<Vec<u64>>(), 2, fragile, &Dying, || ());
        assert_eq!(got.collect::<Vec<u64>>(), (1..11).collect::<Vec<u64>>());
    }
}
