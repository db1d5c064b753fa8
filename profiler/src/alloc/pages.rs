// Owns the pages sampled blocks live in: the toolkit's own mappings, never the inner
// allocator's heap. Must only be called on the allocator's cold path, inside the sampler guard.

//! Memory for sampled blocks.
//!
//! A free must tell a sampled block from any other with one cheap test on the fast path, and a
//! sampled block must not disturb the inner allocator's heap. So every sampled block lives on
//! the toolkit's own pages, in one range of address space reserved for them ([`SPAN`] bytes,
//! inaccessible until used, so it costs neither memory nor commit charge), and a free
//! recognises one by its address alone, whatever its size: [`contains_from`] is a subtraction
//! and a compare against a copy of the range's start, and no block of the inner allocator
//! passes it (unless less than [`SPAN`] could be reserved: then blocks of others in the rest of
//! it look at the table and miss, slower only). The lower half of the range holds blocks of up
//! to a page, the upper half larger ones (below). (Recognising them by page alignment instead
//! sent every page-aligned block of the inner allocator to the table to miss there: 1 in ~170
//! of glibc's small frees, 1 in ~16 of mimalloc's.) Asking the inner allocator for page
//! alignment would also split its heap: on the catalog that made RSS step by 128 KiB where the
//! workload alone stays flat.
//!
//! A page is carved into slots of one size, a power of two from 16 B to a page (the smallest that
//! holds the block, so that the slot is aligned as the block must be), so that a small block costs
//! at most twice its size or its alignment (16 B at least), not a page: with a page each, a
//! workload keeping thousands of small sampled blocks live (a cache filling up, sampled at a fine
//! interval) made RSS climb by a page per block and judged it growing. Pages are made accessible
//! [`REGION`] at a time from the start of the range; freed slots are reused (each thread's slot
//! of the counters keeps one it freed per size, for its next sampled block of that size, so a
//! sample and its free usually take no lock and touch no line another thread wrote), and a page whose slots
//! are all free goes back to be carved again for any size (kept for its first size, pages ran out
//! for the next workload's sizes and RSS stepped there instead). [`reserve`] makes [`RESERVE`]
//! blank pages resident before a run's first sample, so that RSS does not step while the run's
//! small samples fit in them.
//!
//! A block of more than a page takes a *run* of the upper half: a power of two of pages (2 to
//! a few million), handed out from the half's start and made accessible [`RUN_GROWTH`] at a
//! time. A run given back is kept for the next block of its size; while runs kept so hold
//! more than [`IDLE_MAX`] bytes, a run given back is emptied first (its pages go back to the
//! system, and read as zeros when it is used again), so that a workload freeing large sampled
//! blocks gets its memory back as it would from the inner allocator. A block aligned beyond a
//! page, or one no run is left for, is not sampled. None of it is in the heap counters (the
//! block itself is counted at its requested size, as any other).

/// A page: the largest slot, and its alignment.
pub const PAGE: usize = 4096;
/// Pages made accessible at once when no blank page is left.
pub const REGION: usize = 64;
/// Blank pages made resident before a run's first sample.
pub const RESERVE: usize = 256;
/// Bytes of address space reserved for sampled blocks: on 64-bit targets, 4 GiB for blocks of
/// up to a page (a million pages) and 12 GiB for larger ones (past that, allocations due for
/// a sample are left unsampled).
#[cfg(target_pointer_width = "64")]
pub const SPAN: usize = 1 << 34;
#[cfg(not(target_pointer_width = "64"))]
pub const SPAN: usize = 1 << 26;
/// The share of the range for blocks of up to a page (its start); runs take the rest.
#[cfg(target_pointer_width = "64")]
const SMALL_SPAN: usize = 1 << 32;
#[cfg(not(target_pointer_width = "64"))]
const SMALL_SPAN: usize = SPAN / 2;
/// Bytes of the runs' part made accessible at once when a new run needs more.
pub const RUN_GROWTH: usize = 1 << 20;
/// Bytes of runs given back that are kept resident for reuse, at most.
pub const IDLE_MAX: usize = 4 << 20;

#[cfg(unix)]
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

/// Start of the reserved range; until it is reserved, the top of the address space, where a
/// 64-bit process has no memory (the kernel's half), so that [`contains`] is false for its
/// blocks (a 32-bit process's blocks there would look at the table and miss: slower only).
#[cfg(unix)]
static BASE: AtomicUsize = AtomicUsize::new(usize::MAX - SPAN + 1);

/// Whether `ptr` may be a small sampled block: in the range of them (on the cold path; the
/// fast path tests a copy of the base, see [`contains_from`]).
#[cfg(unix)]
#[inline(always)]
pub(super) fn contains(ptr: *mut u8) -> bool {
    contains_from(ptr, base())
}

/// The start of the range (or, until it is reserved, the top of the address space). The fast
/// path keeps a copy per thread, which the reservation sends back to the cold path to take
/// anew. SeqCst, as the store: a thread arming reads it again after its own SeqCst store
/// (see `Local::arm`).
#[cfg(unix)]
#[inline(always)]
pub(super) fn base() -> usize {
    BASE.load(SeqCst)
}

/// [`contains`] against a copy of [`base`]: the free's test on the fast path, a subtraction
/// and a compare.
#[cfg(unix)]
#[inline(always)]
pub(super) fn contains_from(ptr: *mut u8, base: usize) -> bool {
    (ptr as usize).wrapping_sub(base) < SPAN
}

/// The fast path's free test against a slot's copy of the range: `ptr` is not in the `reach`
/// bytes from `base` (a subtraction and a compare; a reach of `usize::MAX` holds every
/// pointer).
#[cfg(unix)]
#[inline(always)]
pub(super) fn outside(ptr: *mut u8, base: usize, reach: usize) -> bool {
    (ptr as usize).wrapping_sub(base) >= reach
}

/// Without pages of our own: not page-aligned (a reach of `usize::MAX` holds every pointer).
#[cfg(not(unix))]
#[inline(always)]
pub(super) fn outside(ptr: *mut u8, _base: usize, reach: usize) -> bool {
    reach != usize::MAX && !contains(ptr)
}

/// Whether `ptr` may be a sampled block: without pages of our own they are the inner
/// allocator's, page-aligned (see `sampled`).
#[cfg(not(unix))]
#[inline(always)]
pub(super) fn contains(ptr: *mut u8) -> bool {
    ptr as usize & (PAGE - 1) == 0
}

/// No range without pages of our own.
#[cfg(not(unix))]
pub(super) fn base() -> usize {
    0
}

/// [`contains`]: page alignment, whatever the base.
#[cfg(not(unix))]
#[inline(always)]
pub(super) fn contains_from(ptr: *mut u8, _base: usize) -> bool {
    contains(ptr)
}

#[cfg(unix)]
mod imp {
    use super::{BASE, CLASSES, IDLE_MAX, MIN_SLOT, PAGE, REGION, RUN_GROWTH, SMALL_SPAN, SPAN};
    use std::ptr;
    use std::sync::Mutex;
    use std::sync::atomic::AtomicUsize;
    use std::sync::atomic::Ordering::{Relaxed, SeqCst};

    /// The class of the slot for a block of `size` bytes aligned to `align` (both up to a
    /// page): the smallest power of two that holds it, which a slot's address is aligned to.
    fn class_of(size: usize, align: usize) -> usize {
        let bytes = size.max(align).max(MIN_SLOT).next_power_of_two();
        (bytes / MIN_SLOT).trailing_zeros() as usize
    }

    /// A page of the range, once accessible.
    #[derive(Clone, Copy)]
    struct Page {
        /// The class its slots are of; [`BLANK`] while it is not carved.
        class: u8,
        /// Its free slots: those given back (the first of them in `head`, each holding the
        /// next one's address, 0 for none), and the `fresh` ones at its end never handed out
        /// since it was carved (so carving writes nothing to the page: a sampler that touched
        /// every slot of a page of small ones would evict up to 64 lines of the workload's).
        free: u16,
        head: usize,
        fresh: u16,
        /// Its place in its class's list of pages with free slots, while it is there.
        place: u32,
    }

    /// `Page::class` of a page not carved into slots.
    const BLANK: u8 = u8::MAX;

    /// Classes of runs: 2, 4, 8 ... pages, up to all of the runs' part.
    const RUN_CLASSES: usize = (SPAN / PAGE).trailing_zeros() as usize + 1;

    /// The class of the run for a block of `size` bytes (more than a page): the smallest power
    /// of two of pages that holds it.
    fn run_class(size: usize) -> usize {
        size.div_ceil(PAGE).next_power_of_two().trailing_zeros() as usize
    }

    /// The range's pages: one entry per accessible page (from its start); those not carved;
    /// per class, the pages carved for it that have free slots; how many pages its lower part
    /// has (0 until it is reserved).
    struct Pages {
        pages: Vec<Page>,
        blank: Vec<u32>,
        partial: [Vec<u32>; CLASSES],
        len: usize,
        /// Reserving the range failed: no pages, ever.
        failed: bool,
        runs: Runs,
    }

    /// The range's upper part, in runs of pages for blocks of more than a page: offsets from
    /// the range's start.
    struct Runs {
        /// Where the part starts and ends (0 until the range is reserved).
        from: usize,
        to: usize,
        /// The end of what was handed out, and of what is accessible.
        used: usize,
        accessible: usize,
        /// Per class, runs given back: their offset, and whether they were emptied (their
        /// pages read as zeros).
        free: [Vec<(usize, bool)>; RUN_CLASSES],
        /// Bytes of runs given back and not emptied.
        idle: usize,
    }

    static PAGES: Mutex<Pages> = Mutex::new(Pages {
        pages: Vec::new(),
        blank: Vec::new(),
        partial: [const { Vec::new() }; CLASSES],
        len: 0,
        failed: false,
        runs: Runs {
            from: 0,
            to: 0,
            used: 0,
            accessible: 0,
            free: [const { Vec::new() }; RUN_CLASSES],
            idle: 0,
        },
    });

    fn address(index: usize) -> usize {
        BASE.load(Relaxed) + index * PAGE
    }

    impl Pages {
        /// Make the next [`REGION`] pages of the range accessible and blank; `false` when the
        /// range cannot be had or is used up.
        fn grow(&mut self) -> bool {
            let used = self.pages.len();
            if !self.reserved() || used + REGION > self.len {
                return false;
            }
            // SAFETY: pages of our own reserved range, not in use.
            let rc = unsafe {
                libc::mprotect(
                    address(used) as *mut libc::c_void,
                    REGION * PAGE,
                    libc::PROT_READ | libc::PROT_WRITE,
                )
            };
            if rc != 0 {
                return false;
            }
            let blank = Page {
                class: BLANK,
                free: 0,
                head: 0,
                fresh: 0,
                place: 0,
            };
            self.pages.resize(used + REGION, blank);
            // Handed out lowest first.
            self.blank
                .extend((used..used + REGION).rev().map(|i| i as u32));
            true
        }

        /// Carve a blank page into free slots of `class`, and list it; `false` when no page
        /// can be had.
        fn carve(&mut self, class: usize) -> bool {
            if self.blank.is_empty() && !self.grow() {
                return false;
            }
            let Some(index) = self.blank.pop() else {
                return false;
            };
            let index = index as usize;
            let count = (PAGE / (MIN_SLOT << class)) as u16;
            self.pages[index] = Page {
                class: class as u8,
                free: count,
                head: 0,
                fresh: count,
                place: self.partial[class].len() as u32,
            };
            self.partial[class].push(index as u32);
            true
        }

        /// Take page `index` off its class's list of pages with free slots.
        fn unlist(&mut self, index: usize) {
            let Page { class, place, .. } = self.pages[index];
            let list = &mut self.partial[class as usize];
            list.swap_remove(place as usize);
            if let Some(&moved) = list.get(place as usize) {
                self.pages[moved as usize].place = place;
            }
        }

        /// Whether the range is reserved: reserved now if it was not tried yet.
        fn reserved(&mut self) -> bool {
            if self.len == 0 && !self.failed && !self.reserve_range() {
                self.failed = true;
            }
            !self.failed
        }

        /// Reserve the range: [`SPAN`] bytes, or less where address space is limited
        /// (`ulimit -v`: a sixteenth of the limit at most, which the reservation counts
        /// against, or what mmap grants). Blocks of others may then lie in the rest of the span
        /// [`contains`](super::contains) tests: their frees look at the table and miss it,
        /// slower only.
        fn reserve_range(&mut self) -> bool {
            let mut len = SPAN;
            let mut limit = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: plain FFI call with a valid out-pointer.
            if unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut limit) } == 0
                && limit.rlim_cur != libc::RLIM_INFINITY
            {
                let most = usize::try_from(limit.rlim_cur / 16).unwrap_or(usize::MAX);
                while len > most {
                    len /= 4;
                }
            }
            while len >= 16 * REGION * PAGE {
                // SAFETY: an anonymous private mapping, inaccessible; no file, no fixed address.
                let p = unsafe {
                    libc::mmap(
                        ptr::null_mut(),
                        len,
                        libc::PROT_NONE,
                        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                        -1,
                        0,
                    )
                };
                if p != libc::MAP_FAILED {
                    BASE.store(p as usize, SeqCst);
                    // Every thread's fast path holds a copy of the base: back to the cold
                    // path, which takes the new one, before any block of the range is out.
                    crate::alloc::disarm_all();
                    let small = SMALL_SPAN.min(len / 2);
                    self.len = small / PAGE;
                    self.runs.from = small;
                    self.runs.used = small;
                    self.runs.accessible = small;
                    self.runs.to = len;
                    return true;
                }
                len /= 4;
            }
            false
        }
    }

    impl Runs {
        /// A run of class `class` (emptied, or fresh: zeros) and its offset; `None` when
        /// the part is used up.
        fn take(&mut self, class: usize) -> Option<(usize, bool)> {
            let bytes = PAGE << class;
            if let Some((at, emptied)) = self.free[class].pop() {
                if !emptied {
                    self.idle -= bytes;
                }
                return Some((at, emptied));
            }
            let at = self.used;
            if self.to - at < bytes {
                return None;
            }
            if at + bytes > self.accessible {
                let end = (at + bytes).max(self.accessible + RUN_GROWTH).min(self.to);
                // SAFETY: our own reserved range, not in use.
                let rc = unsafe {
                    libc::mprotect(
                        address_of(self.accessible),
                        end - self.accessible,
                        libc::PROT_READ | libc::PROT_WRITE,
                    )
                };
                if rc != 0 {
                    return None;
                }
                self.accessible = end;
            }
            self.used = at + bytes;
            Some((at, true))
        }

        /// Keep the run at `at` of class `class` for the next block of its size, emptied
        /// first when the runs kept hold [`IDLE_MAX`] bytes already.
        fn give_back(&mut self, at: usize, class: usize) {
            let bytes = PAGE << class;
            let emptied = self.idle + bytes > IDLE_MAX
                // SAFETY: a run of ours, no longer in use: its pages may go.
                && unsafe {
                    libc::madvise(address_of(at), bytes, libc::MADV_DONTNEED) == 0
                };
            if !emptied {
                self.idle += bytes;
            }
            self.free[class].push((at, emptied));
        }
    }

    fn address_of(offset: usize) -> *mut libc::c_void {
        (BASE.load(Relaxed) + offset) as *mut libc::c_void
    }

    /// The calling thread's stashed slot of `class` (see `Slot::stash`), if it has a slot.
    /// A stashed slot stays in use as far as its page knows.
    fn stash(class: usize) -> Option<&'static AtomicUsize> {
        // Atomics: the slot threads share after their exit (`EXITED`) is written by several.
        crate::alloc::owned_slot()?.stash.get(class)
    }

    fn pages() -> std::sync::MutexGuard<'static, Pages> {
        PAGES.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn reserve(count: usize) {
        let mut pages = pages();
        // Blank pages, not pages in all: a run may start with earlier runs' sampled blocks
        // still holding some.
        while pages.blank.len() < count {
            let before = pages.blank.len();
            if !pages.grow() {
                return;
            }
            for &index in &pages.blank[before..] {
                // SAFETY: an accessible page of ours, blank: touch it so that it is resident.
                unsafe { ptr::write_volatile(address(index as usize) as *mut u8, 0) };
            }
        }
    }

    pub fn take(size: usize, align: usize, zeroed: bool) -> *mut u8 {
        if align > PAGE {
            return ptr::null_mut();
        }
        if size > PAGE {
            return take_run(size, zeroed);
        }
        let class = class_of(size, align);
        // This thread's stashed slot of the class, or one from the pages.
        let p = match stash(class).map_or(0, |s| s.swap(0, Relaxed)) {
            0 => take_slot(class),
            stashed => stashed as *mut u8,
        };
        if zeroed && !p.is_null() {
            // SAFETY: the slot is ours and at least `size` bytes long.
            unsafe { ptr::write_bytes(p, 0, size) };
        }
        p
    }

    /// A free slot of `class` from the pages (under their lock); null when none can be had.
    fn take_slot(class: usize) -> *mut u8 {
        let mut pages = pages();
        if pages.partial[class].is_empty() && !pages.carve(class) {
            return ptr::null_mut();
        }
        let index = *pages.partial[class].last().unwrap() as usize;
        let page = &mut pages.pages[index];
        let slot = if page.head != 0 {
            let slot = page.head;
            // SAFETY: a slot given back holds the address of the next one.
            page.head = unsafe { (slot as *const usize).read() };
            slot
        } else {
            // None given back: a fresh one, from the page's end.
            page.fresh -= 1;
            address(index) + usize::from(page.fresh) * (MIN_SLOT << class)
        };
        page.free -= 1;
        if page.free == 0 {
            pages.unlist(index);
        }
        slot as *mut u8
    }

    /// A run for a block of `size` bytes (more than a page), zeroed if asked.
    fn take_run(size: usize, zeroed: bool) -> *mut u8 {
        let mut pages = pages();
        if !pages.reserved() {
            return ptr::null_mut();
        }
        let Some((at, emptied)) = pages.runs.take(run_class(size)) else {
            return ptr::null_mut();
        };
        drop(pages);
        let p = address_of(at) as *mut u8;
        if zeroed && !emptied {
            // SAFETY: the run is ours and at least `size` bytes long.
            unsafe { ptr::write_bytes(p, 0, size) };
        }
        p
    }

    /// # Safety
    /// `p` came from `take` for a block of `size` bytes and is not used again.
    pub unsafe fn give_back(p: *mut u8, size: usize, align: usize) {
        if size <= PAGE
            && let Some(stash) = stash(class_of(size, align))
            && stash
                .compare_exchange(0, p as usize, Relaxed, Relaxed)
                .is_ok()
        {
            return;
        }
        unsafe { give_back_to_pages(p, size) }
    }

    /// # Safety
    /// As [`give_back`]'s.
    unsafe fn give_back_to_pages(p: *mut u8, size: usize) {
        let mut pages = pages();
        if size > PAGE {
            let at = p as usize - BASE.load(Relaxed);
            pages.runs.give_back(at, run_class(size));
            return;
        }
        let index = (p as usize - BASE.load(Relaxed)) / PAGE;
        let Page {
            class, free, head, ..
        } = pages.pages[index];
        // SAFETY: the slot is ours and free from now on: it holds the next free one.
        unsafe { (p as *mut usize).write(head) };
        let class = class as usize;
        if free == 0 {
            let place = pages.partial[class].len() as u32;
            pages.partial[class].push(index as u32);
            pages.pages[index].place = place;
        }
        let page = &mut pages.pages[index];
        page.head = p as usize;
        page.free = free + 1;
        if usize::from(page.free) == PAGE / (MIN_SLOT << class) {
            // Every slot free: the page goes back to the blank ones, for any class.
            pages.unlist(index);
            pages.pages[index].class = BLANK;
            pages.blank.push(index as u32);
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn slots_are_aligned_to_their_class_and_never_overlap() {
            // A small slot freed is the thread's next of its size, without the lock (one test
            // with the rest: at its end no page of small slots may be in use).
            // This test's thread gets a slot, as a counted thread has (the tests' global
            // allocator is not this one).
            crate::alloc::LOCAL.with(|l| {
                if l.owned.get().is_null() {
                    crate::alloc::claim_slot(l);
                }
            });
            let class = class_of(100, 8);
            let p = take(100, 8, false);
            // SAFETY: the slot holds 100 bytes.
            unsafe { p.write_bytes(0xA5, 100) };
            // SAFETY: taken above, not used again.
            unsafe { give_back(p, 100, 8) };
            // Held by this thread's slot: no lock, and no other thread gets it.
            assert_eq!(stash(class).unwrap().load(Relaxed), p as usize);
            let q = take(128, 16, true);
            assert_eq!(q, p, "the stashed slot of its class");
            assert_eq!(stash(class).unwrap().load(Relaxed), 0);
            assert!(
                (0..128).all(|i| unsafe { *q.add(i) } == 0),
                "zeroed as asked"
            );
            // SAFETY: taken above, not used again.
            unsafe { give_back(q, 128, 16) };

            let blocks: Vec<(usize, usize)> = [(1, 1), (16, 8), (17, 8), (100, 64), (24, 256)]
                .into_iter()
                .chain([(2048, 8), (2049, 16), (4096, 4096), (8, 4096)])
                .collect();
            let mut taken = Vec::new();
            for round in 0..3 {
                for &(size, align) in &blocks {
                    let p = take(size, align, round % 2 == 0);
                    assert!(!p.is_null());
                    assert!(super::super::contains(p), "{p:?} outside the range");
                    assert_eq!(p as usize % align, 0, "{size} B aligned to {align}");
                    if round % 2 == 0 {
                        // Zeroed when asked, though the slot may have been used before.
                        assert!((0..size).all(|i| unsafe { *p.add(i) } == 0));
                    }
                    // SAFETY: the slot holds `size` bytes.
                    unsafe { p.write_bytes(0xA5, size) };
                    taken.push((p as usize, size, align));
                }
                taken.sort();
                for pair in taken.windows(2) {
                    assert!(pair[0].0 + pair[0].1 <= pair[1].0, "{pair:x?} overlap");
                }
                // Half given back, to be taken again by the next round.
                let kept = taken.len() / 2;
                for (p, size, align) in taken.drain(kept..) {
                    // SAFETY: taken above, not used again.
                    unsafe { give_back(p as *mut u8, size, align) };
                }
            }
            // Three pages' worth of 16 B blocks, then everything given back (this thread's
            // stashed slots too): every page is blank again, to be carved for any size.
            taken.extend((0..3 * PAGE / MIN_SLOT).map(|_| (take(16, 8, false) as usize, 16, 8)));
            for (p, size, align) in taken.drain(..) {
                // SAFETY: taken above, not used again.
                unsafe { give_back(p as *mut u8, size, align) };
            }
            for class in 0..CLASSES {
                let p = stash(class).expect("a slot").swap(0, Relaxed);
                if p != 0 {
                    // SAFETY: a stashed slot of this class, in no other hands.
                    unsafe { give_back_to_pages(p as *mut u8, MIN_SLOT << class) };
                }
            }
            let pages = pages();
            assert!(pages.pages.iter().all(|page| page.class == BLANK));
            assert!(pages.partial.iter().all(Vec::is_empty));
            assert_eq!(pages.blank.len(), pages.pages.len());
            assert_eq!(class_of(1, 1), 0);
            assert_eq!(class_of(17, 8), 1);
            assert_eq!(class_of(8, 4096), CLASSES - 1);
        }

        #[test]
        fn runs_hold_their_blocks_and_are_kept_for_the_next_of_their_size() {
            assert_eq!(run_class(PAGE + 1), 1);
            assert_eq!(run_class(2 * PAGE), 1);
            assert_eq!(run_class(2 * PAGE + 1), 2);
            assert!(
                take(PAGE + 1, 2 * PAGE, false).is_null(),
                "aligned beyond a page"
            );
            let sizes = [PAGE + 1, 5000, 3 * PAGE, 64 << 10, (1 << 20) + 3, 3 << 20];
            let mut taken: Vec<(usize, usize)> = Vec::new();
            for round in 0..3 {
                for &size in &sizes {
                    let p = take(size, 8, round == 1);
                    assert!(!p.is_null(), "{size} B");
                    assert!(super::super::contains(p), "{p:?} outside the range");
                    assert_eq!(p as usize % PAGE, 0);
                    if round == 1 {
                        // Zeroed when asked, though the run may have been used before.
                        assert!((0..size).all(|i| unsafe { *p.add(i) } == 0), "{size} B");
                    }
                    // SAFETY: the run holds `size` bytes.
                    unsafe { p.write_bytes(0xA5, size) };
                    taken.push((p as usize, size));
                }
                taken.sort();
                for pair in taken.windows(2) {
                    assert!(pair[0].0 + pair[0].1 <= pair[1].0, "{pair:x?} overlap");
                }
                for (p, size) in taken.drain(..) {
                    // SAFETY: taken above, not used again.
                    unsafe { give_back(p as *mut u8, size, 8) };
                }
            }
            // Given back, kept: the next block of a size takes a run kept for it (tests in
            // this binary run at once, so another may have taken it: any kept run of the
            // class will do). The runs kept resident stay within their cap.
            let p = take(64 << 10, 8, false) as usize;
            let pages = pages();
            assert!(pages.runs.idle <= IDLE_MAX);
            assert!(p - BASE.load(Relaxed) < pages.runs.used);
            drop(pages);
            // SAFETY: taken above, not used again.
            unsafe { give_back(p as *mut u8, 64 << 10, 8) };
        }
    }
}

#[cfg(not(unix))]
mod imp {
    //! Without mmap, no pages of our own: small sampled blocks come from the inner allocator,
    //! page-aligned (see `sampled`).
    pub fn reserve(_pages: usize) {}

    pub fn take(_size: usize, _align: usize, _zeroed: bool) -> *mut u8 {
        std::ptr::null_mut()
    }

    pub unsafe fn give_back(_p: *mut u8, _size: usize, _align: usize) {}
}

/// The smallest slot.
const MIN_SLOT: usize = 16;
/// Slot sizes: 16 B to a page, powers of two (a thread's slot keeps one freed slot of each:
/// see `Slot::stash`).
pub(super) const CLASSES: usize = (PAGE / MIN_SLOT).trailing_zeros() as usize + 1;

/// Make at least `pages` pages accessible and resident for small sampled blocks (before a
/// run's first sample: see the module's doc). Inside the sampler guard only (`sampled::reserve`).
pub(super) fn reserve(pages: usize) {
    imp::reserve(pages)
}

/// Memory for a sampled block of `size` bytes aligned to `align` (zeroed if asked): a slot
/// for one of up to a page, a run for a larger one; null when aligned beyond a page or none
/// can be had.
pub(super) fn take(size: usize, align: usize, zeroed: bool) -> *mut u8 {
    imp::take(size, align, zeroed)
}

/// Give back the memory of a sampled block of `size` bytes aligned to `align`.
///
/// # Safety
/// `p` came from [`take`] for a block of `size` bytes and `align` and is not used again.
pub(super) unsafe fn give_back(p: *mut u8, size: usize, align: usize) {
    unsafe { imp::give_back(p, size, align) }
}
