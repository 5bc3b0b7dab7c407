//! A global allocator that zeroes every block it frees — including the old block a `realloc`
//! moves away from. It covers the copies of secret bytes that secret-exec does not own: the HTTP
//! body buffers, TLS records and JSON scratch space inside the SDK.

use std::alloc::{GlobalAlloc, Layout};

/// Wipes every block before handing it back to `A`. The process allocator is
/// `Wiping(System)`; generic so tests can put a recording allocator underneath and see what `A`
/// receives.
pub struct Wiping<A>(pub A);

#[inline]
unsafe fn wipe(ptr: *mut u8, len: usize) {
    // SAFETY: the caller owns `len` bytes at `ptr` until it frees them just after this.
    unsafe { std::ptr::write_bytes(ptr, 0, len) };
    // The memset is otherwise dead (the block is freed next) and the optimiser may drop it;
    // black_box makes the pointer observed so the writes must happen.
    std::hint::black_box(ptr);
}

// SAFETY: every method forwards to `A` with the same layouts; wiping touches only the block
// being released, before it is released.
unsafe impl<A: GlobalAlloc> GlobalAlloc for Wiping<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: our caller upholds `alloc`'s contract, which we pass on unchanged.
        unsafe { self.0.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        unsafe { self.0.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` is a live block of `layout` from `A` (our caller's contract): we may
        // write its bytes, then hand it back to `A` once.
        unsafe {
            wipe(ptr, layout.size());
            self.0.dealloc(ptr, layout)
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // Never let the inner realloc move the block: it would free the old one unwiped.
        // SAFETY: `new_size` is non-zero and fits the alignment (realloc's contract), so the
        // layout is valid; the copy stays inside both blocks; the old one is wiped and freed once.
        unsafe {
            let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
            let new = self.0.alloc(new_layout);
            if !new.is_null() {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                wipe(ptr, layout.size());
                self.0.dealloc(ptr, layout);
            }
            new
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::alloc::System;
    use std::cell::RefCell;

    /// Allocates from `System`, and at each dealloc records whether the block it is handed
    /// still holds any non-zero byte (read while the block is still owned, so this is sound).
    #[derive(Default)]
    struct Recorder {
        freed_dirty: RefCell<Vec<bool>>,
    }

    // SAFETY: forwards to `System`; it only reads a block before freeing it.
    unsafe impl GlobalAlloc for Recorder {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            // SAFETY: forwarded unchanged.
            unsafe { System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: the block is still ours and `layout.size()` bytes long.
            let bytes = unsafe { std::slice::from_raw_parts(ptr, layout.size()) };
            self.freed_dirty
                .borrow_mut()
                .push(bytes.iter().any(|&b| b != 0));
            // SAFETY: forwarded unchanged, once.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    #[test]
    fn every_released_block_is_zero_and_contents_survive_realloc() {
        // (initial size, realloc sizes): growing, shrinking, equal, and large (mmap-sized).
        let rows: &[(usize, &[usize])] = &[
            (8, &[]),
            (8, &[64]),
            (64, &[4]),
            (16, &[16]),
            (32, &[1 << 20, 24]),
        ];
        for (size, reallocs) in rows {
            let a = Wiping(Recorder::default());
            let mut layout = Layout::from_size_align(*size, 8).unwrap();
            // SAFETY: each block is used within its layout and freed once with the layout it has.
            unsafe {
                let mut p = a.alloc(layout);
                assert!(!p.is_null());
                std::ptr::write_bytes(p, 0xA5, *size);
                for &n in *reallocs {
                    p = a.realloc(p, layout, n);
                    assert!(!p.is_null());
                    let kept = layout.size().min(n);
                    let bytes = std::slice::from_raw_parts(p, kept);
                    assert!(bytes.iter().all(|&b| b == 0xA5), "{size} -> {n}: lost data");
                    std::ptr::write_bytes(p, 0xA5, n);
                    layout = Layout::from_size_align(n, 8).unwrap();
                }
                a.dealloc(p, layout);
            }
            let freed = a.0.freed_dirty.borrow();
            assert_eq!(freed.len(), reallocs.len() + 1, "{size} {reallocs:?}");
            assert!(
                freed.iter().all(|dirty| !dirty),
                "{size} {reallocs:?}: a block was released unwiped: {freed:?}"
            );
        }
    }

    #[test]
    fn the_global_allocator_round_trips() {
        let a = Wiping(System);
        // SAFETY: each block is used within its layout and freed once with the layout it has.
        unsafe {
            let l = Layout::from_size_align(8, 8).unwrap();
            let p = a.alloc(l);
            std::ptr::copy_nonoverlapping(b"canary!!".as_ptr(), p, 8);
            let q = a.realloc(p, l, 64);
            assert_eq!(std::slice::from_raw_parts(q, 8), b"canary!!");
            a.dealloc(q, Layout::from_size_align(64, 8).unwrap());
        }
    }
}
