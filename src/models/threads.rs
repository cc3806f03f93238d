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

static POOL: RwLock<Option<Arc<rayon::ThreadPool>>> = RwLock::new(None);

/// The default size: `RAYON_NUM_THREADS` when set (as rayon and candle read it), else every
/// core the process may run on.
fn default_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

fn build(threads: usize) -> Arc<rayon::ThreadPool> {
    let built = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .thread_name(|i| format!("blindspot-compute-{i}"))
        .build();
    match built {
        Ok(pool) => Arc::new(pool),
        // Spawning threads failed (a resource limit): a one-thread pool runs on the caller's
        // own thread budget; if even that fails there is nothing sensible left to do.
        Err(_) => Arc::new(
            rayon::ThreadPoolBuilder::new()
                .num_threads(1)
                .build()
                .expect("cannot start even one compute thread"),
        ),
    }
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
    pool().current_num_threads()
}

fn pool() -> Arc<rayon::ThreadPool> {
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

/// Runs `f` on the compute pool (directly when already on one of its threads).
pub(crate) fn install<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    pool().install(f)
}
