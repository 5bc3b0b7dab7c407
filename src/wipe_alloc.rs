//! A global allocator that zeroes every block it frees — including the old block a `realloc`
//! moves away from. It covers the copies of secret bytes that secret-exec does not own: the HTTP
//! body buffers, TLS records and JSON scratch space inside the SDK.

use std::alloc::{GlobalAlloc, Layout, System};

pub struct WipeOnFree;

#[inline]
unsafe fn wipe(ptr: *mut u8, len: usize) {
    // SAFETY: the caller owns `len` bytes at `ptr` until it frees them just after this.
    unsafe { std::ptr::write_bytes(ptr, 0, len) };
    // The memset is otherwise dead (the block is freed next) and the optimiser may drop it;
    // black_box makes the pointer observed so the writes must happen.
    std::hint::black_box(ptr);
}

// SAFETY: every method forwards to `System` with the same layouts; wiping touches only the
// block being released, before it is released.
unsafe impl GlobalAlloc for WipeOnFree {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe {
            wipe(ptr, layout.size());
            System.dealloc(ptr, layout)
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // Never let the system realloc move the block: it would free the old one unwiped.
        unsafe {
            let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
            let new = System.alloc(new_layout);
            if !new.is_null() {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                wipe(ptr, layout.size());
                System.dealloc(ptr, layout);
            }
            new
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn realloc_keeps_contents_and_dealloc_is_sound() {
        let a = WipeOnFree;
        unsafe {
            let l = Layout::from_size_align(8, 8).unwrap();
            let p = a.alloc(l);
            assert!(!p.is_null());
            std::ptr::copy_nonoverlapping(b"canary!!".as_ptr(), p, 8);
            let q = a.realloc(p, l, 64);
            assert!(!q.is_null());
            assert_eq!(std::slice::from_raw_parts(q, 8), b"canary!!");
            let shrunk = a.realloc(q, Layout::from_size_align(64, 8).unwrap(), 4);
            assert_eq!(std::slice::from_raw_parts(shrunk, 4), b"cana");
            a.dealloc(shrunk, Layout::from_size_align(4, 8).unwrap());
        }
    }
}
