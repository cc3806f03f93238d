//! Reused f32 buffers, so a run of many steps allocates once and then never grows.
//!
//! glibc serves large allocations with fresh `mmap`s, so a buffer freed and allocated again on
//! every call page-faults its memory back in each time (PyTorch's activations do exactly that).
//! Here every buffer returns to the pool after use and is handed out again on the next call.

/// A free list of buffers. `take` gives the smallest free buffer that is large enough;
/// `end_call` drops the buffers no call since the previous `end_call` asked for, so the pool
/// stays the size of the most recent workload instead of the largest one ever seen.
#[derive(Default)]
pub(crate) struct BufferPool {
    free: Vec<Pooled>,
}

struct Pooled {
    data: Vec<f32>,
    used: bool,
}

impl BufferPool {
    /// A buffer of exactly `len` elements with unspecified contents.
    pub(crate) fn take(&mut self, len: usize) -> Vec<f32> {
        let best = self
            .free
            .iter()
            .enumerate()
            .filter(|(_, b)| b.data.capacity() >= len)
            .min_by_key(|(_, b)| b.data.capacity())
            .map(|(i, _)| i);
        match best {
            Some(i) => {
                let mut data = self.free.swap_remove(i).data;
                // Contents are unspecified: resize only writes the grown tail.
                data.resize(len, 0.0);
                data
            }
            None => vec![0.0; len],
        }
    }

    /// A buffer of `len` zeros.
    pub(crate) fn take_zeroed(&mut self, len: usize) -> Vec<f32> {
        let mut data = self.take(len);
        data.fill(0.0);
        data
    }

    pub(crate) fn give(&mut self, data: Vec<f32>) {
        if data.capacity() > 0 {
            self.free.push(Pooled { data, used: true });
        }
    }

    /// Drops what the last call did not use and marks the rest unused for the next one.
    pub(crate) fn end_call(&mut self) {
        self.free.retain(|b| b.used);
        for b in &mut self.free {
            b.used = false;
        }
    }

    /// Bytes held by free buffers (for tests of allocation growth).
    pub(crate) fn bytes(&self) -> usize {
        self.free.iter().map(|b| 4 * b.data.capacity()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_reused_and_unused_ones_dropped() {
        let mut pool = BufferPool::default();
        let a = pool.take(100);
        let ptr = a.as_ptr();
        pool.give(a);
        let b = pool.take(50);
        assert_eq!(b.as_ptr(), ptr, "the free buffer is reused");
        assert_eq!(b.len(), 50);
        pool.give(b);
        pool.end_call();
        assert_eq!(pool.bytes(), 400, "used in this call: kept");
        pool.end_call();
        assert_eq!(pool.bytes(), 0, "unused for a whole call: dropped");
    }
}
