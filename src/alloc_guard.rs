//! A global allocator that makes huge allocations cost address space, not memory.
//!
//! Why it exists: the `kafka-protocol` decoder reserves `Vec::with_capacity(n)` for an
//! array length `n` read from the request before it checks `n` against the bytes that
//! follow. A 40-byte request claiming four billion topics would ask for hundreds of GB
//! and the default allocator would abort the whole broker. Every frame is bounded by
//! `socket.request.max.bytes`, so such a vector never gets more than a frame's worth of
//! elements before decoding fails; what must not happen is committing (or failing to
//! commit) the reservation. Allocations of 1 GiB and more are therefore served by an
//! anonymous `MAP_NORESERVE` mapping: untouched pages cost nothing and are returned by
//! `munmap` when the decoder gives up. Everything smaller goes to the system allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::num::NonZeroUsize;
use std::ptr::NonNull;

const HUGE: usize = 1 << 30;
const PAGE: usize = 4096;

pub struct GuardedAlloc;

#[cfg(test)]
thread_local! {
    static ALLOCATIONS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Allocations (and reallocations) made so far by the calling thread. Unit tests only:
/// they check that the produce and fetch paths do not allocate per record or per batch.
#[cfg(test)]
pub fn allocations() -> u64 {
    ALLOCATIONS.with(|c| c.get())
}

#[inline]
fn count() {
    #[cfg(test)]
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
}

fn is_huge(layout: &Layout) -> bool {
    layout.size() >= HUGE && layout.align() <= PAGE
}

unsafe fn map(size: usize) -> *mut u8 {
    use nix::sys::mman::{mmap_anonymous, MapFlags, ProtFlags};
    let Some(len) = NonZeroUsize::new(size) else { return std::ptr::null_mut() };
    match mmap_anonymous(
        None,
        len,
        ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
        MapFlags::MAP_PRIVATE | MapFlags::MAP_NORESERVE,
    ) {
        Ok(p) => p.as_ptr() as *mut u8,
        Err(_) => std::ptr::null_mut(),
    }
}

unsafe fn unmap(ptr: *mut u8, size: usize) {
    if let Some(p) = NonNull::new(ptr as *mut std::ffi::c_void) {
        let _ = nix::sys::mman::munmap(p, size);
    }
}

unsafe impl GlobalAlloc for GuardedAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        if is_huge(&layout) {
            map(layout.size())
        } else {
            System.alloc(layout)
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        if is_huge(&layout) {
            map(layout.size()) // anonymous mappings are zero-filled
        } else {
            System.alloc_zeroed(layout)
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if is_huge(&layout) {
            unmap(ptr, layout.size())
        } else {
            System.dealloc(ptr, layout)
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
        if !is_huge(&layout) && !is_huge(&new_layout) {
            count();
            return System.realloc(ptr, layout, new_size);
        }
        let new = self.alloc(new_layout);
        if !new.is_null() {
            std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
            self.dealloc(ptr, layout);
        }
        new
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_huge_reservation_is_cheap_and_usable() {
        let mut v: Vec<[u8; 64]> = Vec::with_capacity(4_000_000_000);
        v.push([1; 64]);
        v.push([2; 64]);
        assert_eq!(v[1][0], 2);
        let mut w = v.clone();
        w.extend_from_slice(&[[3; 64]; 10]);
        assert_eq!(w.len(), 12);
    }
}
