//! Which level of a call runs in parallel.
//!
//! A batch of several images is split into one shard per compute thread, and each shard runs
//! the whole network on its own thread with serial kernels: one fork/join per call instead of
//! several per layer, and each thread's activations stay in its own core's cache. On this
//! 2-core machine that took ResNet-20 at batch 8 from 1.27x to 2.0x the one-thread speed,
//! where the per-layer splitting inside the `gemm` crate and our kernels spent its time
//! waking threads for products of a few microseconds. A single image still splits inside
//! each layer. The flag is per thread, so it holds exactly for the shard's own work.

use std::cell::Cell;

thread_local! {
    static SERIAL: Cell<bool> = const { Cell::new(false) };
}

/// Whether kernels on this thread must not fork (it is running one shard of a batch).
pub(crate) fn is_serial() -> bool {
    SERIAL.with(Cell::get)
}

/// Runs `f` with this thread's kernels serial, restoring the previous setting afterwards
/// (also when `f` panics).
pub(crate) fn serial<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            SERIAL.with(|s| s.set(self.0));
        }
    }
    let _restore = Restore(SERIAL.with(|s| s.replace(true)));
    f()
}

/// How many shards a batch of `batch` images splits into on the current pool: one per
/// thread, at most one per image, and 1 when already inside a shard.
pub(crate) fn shard_count(batch: usize) -> usize {
    if is_serial() {
        return 1;
    }
    rayon::current_num_threads().clamp(1, batch.max(1))
}

/// Contiguous image ranges of `batch` split `shards` ways, sizes differing by at most one.
pub(crate) fn shard_ranges(batch: usize, shards: usize) -> Vec<std::ops::Range<usize>> {
    let shards = shards.clamp(1, batch.max(1));
    let (base, extra) = (batch / shards, batch % shards);
    let mut start = 0;
    (0..shards)
        .map(|i| {
            let len = base + usize::from(i < extra);
            let range = start..start + len;
            start += len;
            range
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_the_batch_in_order() {
        assert_eq!(shard_ranges(8, 2), vec![0..4, 4..8]);
        assert_eq!(shard_ranges(5, 3), vec![0..2, 2..4, 4..5]);
        assert_eq!(shard_ranges(1, 4), vec![0..1]);
        assert_eq!(shard_ranges(66, 2), vec![0..33, 33..66]);
    }

    #[test]
    fn serial_is_scoped_and_restored() {
        assert!(!is_serial());
        serial(|| {
            assert!(is_serial());
            assert_eq!(shard_count(8), 1);
        });
        assert!(!is_serial());
        let caught = std::panic::catch_unwind(|| serial(|| panic!("inside")));
        assert!(caught.is_err());
        assert!(!is_serial());
    }
}
