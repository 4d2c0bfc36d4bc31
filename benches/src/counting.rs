//! A global allocator that counts allocations, for the fixed examples' "allocations per call"
//! (issue 18 asks for one or none per call). It forwards everything to the system allocator;
//! the count is one relaxed atomic add per allocation.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// The system allocator, counting allocations (and reallocations, which may move a block).
/// Install it in a binary with `#[global_allocator]`.
pub struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

impl Counting {
    /// Allocations (and reallocations) made so far by the whole process.
    pub fn allocations() -> u64 {
        ALLOCATIONS.load(Relaxed)
    }
}

// The one unsafe item of the workspace's benches: a GlobalAlloc is an unsafe trait. Every
// method forwards its arguments to `System` unchanged, under the same contract.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Relaxed);
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which is System's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Relaxed);
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` (every allocation here is) with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Relaxed);
        // SAFETY: as for `dealloc`, and `new_size` is the caller's, under the same contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[cfg(test)]
mod tests {
    use super::Counting;

    #[global_allocator]
    static COUNTING: Counting = Counting;

    /// A boxed value is one allocation; a count that never moved would fail this.
    #[test]
    fn allocations_are_counted() {
        let before = Counting::allocations();
        let boxed = std::hint::black_box(Box::new([7u8; 64]));
        assert!(Counting::allocations() > before, "the box was not counted");
        drop(boxed);
    }
}
