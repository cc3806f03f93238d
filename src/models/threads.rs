//! The compute thread pool. Every forward pass and input gradient of `Classifier` runs inside
//! it, so an app can keep a core free for its UI.
//!
//! What controls the threads of the CPU code, as read from the crates' sources:
//! - our kernels (`models::engine`) use rayon's *current* pool, i.e. this one while installed;
//! - the `gemm` crate splits a product into `Parallelism::Rayon(n)` tasks and runs them on the
//!   current rayon pool; the engine passes this pool's size;
//! - candle's CPU backend (the autograd path) runs its `par_iter`s on the current pool too, but
//!   sizes its gemm calls from `RAYON_NUM_THREADS` (or the core count) read once, so inside a
//!   smaller pool candle queues more tasks than threads: correct, just not faster.

use std::sync::{Arc, RwLock};

/// `Some(None)` records that no pool could be started: compute then runs on the caller's
/// thread (and rayon's global pool), which is slower but still correct.
static POOL: RwLock<Option<Option<Arc<rayon::ThreadPool>>>> = RwLock::new(None);

/// The default size: `RAYON_NUM_THREADS` when set (as rayon and candle read it), else every
/// core the process may run on.
fn default_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

fn build(threads: usize) -> Option<Arc<rayon::ThreadPool>> {
    let named = |n: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .thread_name(|i| format!("blindspot-compute-{i}"))
            .build()
    };
    // Spawning threads can fail under a resource limit: try a one-thread pool next, and if
    // even that fails run without a pool of our own rather than refuse to compute.
    named(threads.max(1))
        .or_else(|_| named(1))
        .ok()
        .map(Arc::new)
}

/// Sizes the pool that all model compute runs in. Call it once at start-up: the desktop app
/// passes the core count minus one, so the UI thread always has a core; the command line
/// keeps the default (every core, or `RAYON_NUM_THREADS`). Work already running finishes on
/// the old pool. `threads` below 1 counts as 1.
pub fn set_compute_threads(threads: usize) {
    let pool = build(threads);
    match POOL.write() {
        Ok(mut slot) => *slot = Some(pool),
        Err(poisoned) => *poisoned.into_inner() = Some(pool),
    }
}

/// The number of threads model compute runs on.
pub fn compute_threads() -> usize {
    pool().map_or_else(rayon::current_num_threads, |pool| {
        pool.current_num_threads()
    })
}

fn pool() -> Option<Arc<rayon::ThreadPool>> {
    if let Ok(slot) = POOL.read()
        && let Some(pool) = slot.as_ref()
    {
        return pool.clone();
    }
    let mut slot = match POOL.write() {
        Ok(slot) => slot,
        Err(poisoned) => poisoned.into_inner(),
    };
    slot.get_or_insert_with(|| build(default_threads())).clone()
}

/// Runs `f` on the compute pool (directly when already on one of its threads, or when no
/// pool could be started).
pub(crate) fn install<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    match pool() {
        Some(pool) => pool.install(f),
        None => f(),
    }
}
