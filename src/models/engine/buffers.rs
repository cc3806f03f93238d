//! Reused f32 buffers, so a run of many steps allocates once and then never grows.
//!
//! glibc serves large allocations with fresh `mmap`s, so a buffer freed and allocated again on
//! every call page-faults its memory back in each time (PyTorch's activations do exactly that).
//! Here every buffer returns to the pool after use and is handed out again on the next call.

/// A free list of buffers. `take` gives the smallest free buffer that is large enough;
/// `end_call` drops the buffers that neither of the last `KEPT_CALLS` calls asked for, so the
/// pool stays the size of the recent workload instead of the largest one ever seen.
///
/// Why two calls and not one: an LST iteration alternates a recording forward pass (which
/// holds every activation the reverse pass reads) with a plain one (which holds a few). Kept
/// for one call only, the plain pass dropped what the recording one had used, and the next
/// recording pass allocated it all again: fresh zeroed memory, 3% of a DeiT-S step.
#[derive(Default)]
pub(crate) struct BufferPool {
    free: Vec<Pooled>,
}

/// A buffer that this many calls in a row did not use is dropped.
const KEPT_CALLS: u8 = 2;

struct Pooled {
    data: Vec<f32>,
    /// Given back during the current call.
    used: bool,
    /// Whole calls in a row that did not use it.
    idle_calls: u8,
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
            None => super::huge_pages::zeroed(len),
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
            self.free.push(Pooled {
                data,
                used: true,
                idle_calls: 0,
            });
        }
    }

    /// Drops what the last `KEPT_CALLS` calls did not use.
    pub(crate) fn end_call(&mut self) {
        for b in &mut self.free {
            b.idle_calls = if b.used { 0 } else { b.idle_calls + 1 };
            b.used = false;
        }
        self.free.retain(|b| b.idle_calls < KEPT_CALLS);
    }

    /// Bytes held by free buffers (for tests of allocation growth).
    pub(crate) fn bytes(&self) -> usize {
        self.free.iter().map(|b| 4 * b.data.capacity()).sum()
    }
}

/// An op's kept buffer (`Workspace::saved`) resized to `len`, allocated afresh (on huge
/// pages) when it must grow.
pub(crate) fn saved_buffer(slot: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if slot.capacity() < len {
        *slot = super::huge_pages::zeroed(len);
    }
    slot.resize(len, 0.0);
    slot
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
        assert_eq!(pool.bytes(), 400, "unused in one call: still kept");
        pool.end_call();
        assert_eq!(pool.bytes(), 0, "unused for two whole calls: dropped");
    }
}
