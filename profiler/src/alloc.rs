// Owns the global allocator `Alloc` and its heap counters: per-thread slots summed on read.
// Must never lock, allocate through itself, or do a shared read-modify-write on the hot path.

//! The counting global allocator.
//!
//! Every thread gets a *slot* of counters the first time it allocates. Only that thread writes
//! its slot, with plain relaxed loads and stores (no `lock`-prefixed instruction), so counting
//! costs a few adds on a cache line nobody else writes. A read sums every slot. Slots are never
//! freed: when a thread exits its slot is handed to the next new thread, which keeps adding to
//! the same totals, so the bytes of exited threads are never lost and the list stays as long as
//! the largest number of threads alive at once. Memory freed on another thread than the one that
//! allocated it makes the freeing thread's slot go negative; the sum nets out.
//!
//! **Exactness.** At a quiet point (no other thread allocating, which is what an iteration
//! boundary of a single-threaded workload is, or after the workload's threads were joined) a
//! read is exact. While other threads run, a read is a sum of per-thread values taken one after
//! another: each is exact, the sum may mix moments a few nanoseconds apart.
//!
//! **Peak.** Each slot also keeps the peak of its own live bytes since the last
//! [`reset_peak`]. The reported peak is the sum of those per-thread peaks. When one thread
//! allocates during an iteration it is exact; when several do it is an upper bound of the true
//! peak (the threads need not have peaked at the same moment), never below it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicPtr, Ordering::*};

/// The global allocator that counts. Install it once in your binary or test crate:
///
/// ```
/// #[global_allocator]
/// static ALLOC: profiler::Alloc = profiler::Alloc::new();
/// # fn main() {}
/// ```
///
/// It forwards every call to the system allocator (`alloc_zeroed` stays `calloc`) and adds a
/// handful of thread-local adds; see the README's performance section for what that costs.
pub struct Alloc {
    _private: (),
}

impl Alloc {
    /// The allocator, ready to be a `#[global_allocator]`.
    pub const fn new() -> Self {
        Alloc { _private: () }
    }
}

impl Default for Alloc {
    fn default() -> Self {
        Self::new()
    }
}

/// Counters of one thread. Written by its owner only (relaxed load + store), read by anyone.
#[repr(align(64))]
struct Slot {
    live_bytes: AtomicI64,
    live_blocks: AtomicI64,
    allocations: AtomicI64,
    allocated_bytes: AtomicI64,
    peak_bytes: AtomicI64,
    in_use: AtomicBool,
    next: AtomicPtr<Slot>,
}

impl Slot {
    const fn new() -> Self {
        Slot {
            live_bytes: AtomicI64::new(0),
            live_blocks: AtomicI64::new(0),
            allocations: AtomicI64::new(0),
            allocated_bytes: AtomicI64::new(0),
            peak_bytes: AtomicI64::new(0),
            in_use: AtomicBool::new(false),
            next: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// Owner-only update: plain loads and stores, no read-modify-write.
    #[inline(always)]
    fn add_owned(&self, bytes: i64, blocks: i64, allocated: i64) {
        let live = self.live_bytes.load(Relaxed) + bytes;
        self.live_bytes.store(live, Relaxed);
        self.live_blocks
            .store(self.live_blocks.load(Relaxed) + blocks, Relaxed);
        if allocated != 0 {
            self.allocations
                .store(self.allocations.load(Relaxed) + 1, Relaxed);
            self.allocated_bytes
                .store(self.allocated_bytes.load(Relaxed) + allocated, Relaxed);
        }
        if live > self.peak_bytes.load(Relaxed) {
            self.peak_bytes.store(live, Relaxed);
        }
    }

    /// Shared update, for the slot of threads that already ran their exit destructor.
    #[cold]
    fn add_shared(&self, bytes: i64, blocks: i64, allocated: i64) {
        let live = self.live_bytes.fetch_add(bytes, Relaxed) + bytes;
        self.live_blocks.fetch_add(blocks, Relaxed);
        if allocated != 0 {
            self.allocations.fetch_add(1, Relaxed);
            self.allocated_bytes.fetch_add(allocated, Relaxed);
        }
        self.peak_bytes.fetch_max(live, Relaxed);
    }
}

/// Head of the list of every slot ever created (slots are never freed).
static SLOTS: AtomicPtr<Slot> = AtomicPtr::new(ptr::null_mut());
/// Counts of threads whose slot was released but which still allocate (late TLS destructors).
static EXITED: Slot = Slot::new();
/// Set when the first thread claims a slot: proof that `Alloc` is the global allocator.
static INSTALLED: AtomicBool = AtomicBool::new(false);

struct Local {
    slot: Cell<*const Slot>,
    /// > 0 while the profiler does its own work on this thread: not counted.
    untracked: Cell<u32>,
}

thread_local! {
    // Const-initialised and without Drop: access never allocates nor registers a destructor.
    static LOCAL: Local = const {
        Local { slot: Cell::new(ptr::null()), untracked: Cell::new(0) }
    };
}

#[inline(always)]
fn count(bytes: i64, blocks: i64, allocated: i64) {
    let _ = LOCAL.try_with(|local| {
        if local.untracked.get() != 0 {
            return;
        }
        let mut slot = local.slot.get();
        if slot.is_null() {
            slot = claim_slot();
            local.slot.set(slot);
        }
        // SAFETY: slots are never freed; only this thread owns `slot` unless it is EXITED.
        let slot = unsafe { &*slot };
        if ptr::eq(slot, &EXITED) {
            slot.add_shared(bytes, blocks, allocated);
        } else {
            slot.add_owned(bytes, blocks, allocated);
        }
    });
}

/// Give this thread a slot: reuse one released by an exited thread, or create one.
#[cold]
#[inline(never)]
fn claim_slot() -> *const Slot {
    INSTALLED.store(true, Relaxed);
    let mut cursor = SLOTS.load(Acquire);
    while !cursor.is_null() {
        // SAFETY: list nodes are never freed.
        let slot = unsafe { &*cursor };
        if slot
            .in_use
            .compare_exchange(false, true, Acquire, Relaxed)
            .is_ok()
        {
            exit_hook::register(cursor);
            return cursor;
        }
        cursor = slot.next.load(Acquire);
    }
    // SAFETY: Slot has a non-zero size; System never calls back into us.
    let fresh = unsafe { System.alloc(Layout::new::<Slot>()) } as *mut Slot;
    if fresh.is_null() {
        return &EXITED;
    }
    // SAFETY: fresh is valid for writes of one Slot.
    unsafe { fresh.write(Slot::new()) };
    let slot = unsafe { &*fresh };
    slot.in_use.store(true, Relaxed);
    let mut head = SLOTS.load(Relaxed);
    loop {
        slot.next.store(head, Relaxed);
        match SLOTS.compare_exchange_weak(head, fresh, Release, Relaxed) {
            Ok(_) => break,
            Err(now) => head = now,
        }
    }
    exit_hook::register(fresh);
    fresh
}

/// Called when a thread exits: later allocations of this thread go to the shared EXITED slot,
/// and its own slot becomes free for the next new thread (its counts stay in the sums).
fn release_slot(slot: *const Slot) {
    let _ = LOCAL.try_with(|local| local.slot.set(&EXITED));
    if !slot.is_null() && !ptr::eq(slot, &EXITED) {
        // SAFETY: slots are never freed.
        unsafe { &*slot }.in_use.store(false, Release);
    }
}

#[cfg(unix)]
mod exit_hook {
    //! A pthread key whose destructor releases the thread's slot. pthread_setspecific does not
    //! allocate for the first keys of a process; if it ever does, the recursion finds the slot
    //! already set and simply counts that allocation.
    use super::Slot;
    use std::sync::OnceLock;

    static KEY: OnceLock<Option<libc::pthread_key_t>> = OnceLock::new();

    extern "C" fn on_thread_exit(slot: *mut libc::c_void) {
        super::release_slot(slot as *const Slot);
    }

    pub(super) fn register(slot: *const Slot) {
        let key = KEY.get_or_init(|| {
            let mut key: libc::pthread_key_t = 0;
            // SAFETY: plain FFI call with a valid out-pointer and an extern "C" destructor.
            let rc = unsafe { libc::pthread_key_create(&mut key, Some(on_thread_exit)) };
            (rc == 0).then_some(key)
        });
        if let Some(key) = key {
            // SAFETY: key was created above; the value is only read back by our destructor.
            unsafe { libc::pthread_setspecific(*key, slot as *const libc::c_void) };
        }
    }
}

#[cfg(not(unix))]
mod exit_hook {
    //! Without pthread keys a slot stays with its thread forever: exact, only never reused.
    pub(super) fn register(_slot: *const super::Slot) {}
}

// SAFETY: every method forwards to System (or, during attribution passes, to dhat::Alloc,
// which forwards to System) with the same arguments and only adds counting, which neither
// allocates nor unwinds.
unsafe impl GlobalAlloc for Alloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if ROUTE_TO_DHAT.load(Relaxed) {
            return unsafe { dhat_route::alloc(layout, false) };
        }
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let size = layout.size() as i64;
            count(size, 1, size);
        }
        p
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if ROUTE_TO_DHAT.load(Relaxed) {
            return unsafe { dhat_route::alloc(layout, true) };
        }
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            let size = layout.size() as i64;
            count(size, 1, size);
        }
        p
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if ROUTE_TO_DHAT.load(Relaxed) {
            return unsafe { dhat_route::dealloc(ptr, layout) };
        }
        unsafe { System.dealloc(ptr, layout) };
        count(-(layout.size() as i64), -1, 0);
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if ROUTE_TO_DHAT.load(Relaxed) {
            return unsafe { dhat_route::realloc(ptr, layout, new_size) };
        }
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            count(new_size as i64 - layout.size() as i64, 0, new_size as i64);
        }
        p
    }
}

/// Set only while an attribution pass runs (see `attribution.rs`): every call then also goes
/// through dhat, which records a backtrace per allocation (23-48x slower). Off, the hot path
/// pays one relaxed load of this flag, which no one writes.
static ROUTE_TO_DHAT: AtomicBool = AtomicBool::new(false);

/// Route allocations through dhat (`true`) or straight to the system allocator (`false`).
/// Only the attribution pass switches it, around iterations run under a dhat profiler.
pub(crate) fn route_to_dhat(on: bool) {
    ROUTE_TO_DHAT.store(on, SeqCst);
}

mod dhat_route {
    //! The slow path during attribution passes. Calls from the profiler's own untracked work
    //! and from dhat's bookkeeping (which allocates through the global allocator while we
    //! call into dhat) go straight to the system allocator and are not counted; the
    //! workload's calls are counted exactly as on the fast path, then recorded by dhat.
    use super::{LOCAL, count, untracked};
    use std::alloc::{GlobalAlloc, Layout, System};

    static DHAT: dhat::Alloc = dhat::Alloc;

    fn is_untracked() -> bool {
        LOCAL.try_with(|l| l.untracked.get() != 0).unwrap_or(true)
    }

    #[cold]
    #[inline(never)]
    pub(super) unsafe fn alloc(layout: Layout, zeroed: bool) -> *mut u8 {
        if is_untracked() {
            return unsafe {
                if zeroed {
                    System.alloc_zeroed(layout)
                } else {
                    System.alloc(layout)
                }
            };
        }
        let p = untracked(|| unsafe {
            if zeroed {
                DHAT.alloc_zeroed(layout)
            } else {
                DHAT.alloc(layout)
            }
        });
        if !p.is_null() {
            let size = layout.size() as i64;
            count(size, 1, size);
        }
        p
    }

    #[cold]
    #[inline(never)]
    pub(super) unsafe fn dealloc(ptr: *mut u8, layout: Layout) {
        if is_untracked() {
            return unsafe { System.dealloc(ptr, layout) };
        }
        untracked(|| unsafe { DHAT.dealloc(ptr, layout) });
        count(-(layout.size() as i64), -1, 0);
    }

    #[cold]
    #[inline(never)]
    pub(super) unsafe fn realloc(ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if is_untracked() {
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        let p = untracked(|| unsafe { DHAT.realloc(ptr, layout, new_size) });
        if !p.is_null() {
            count(new_size as i64 - layout.size() as i64, 0, new_size as i64);
        }
        p
    }
}

/// Heap counters summed over every thread, exited ones included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HeapCounters {
    /// Bytes allocated and not yet freed.
    pub live_bytes: i64,
    /// Allocations not yet freed.
    pub live_blocks: i64,
    /// Allocations made so far (a `realloc` counts as one).
    pub allocations: i64,
    /// Bytes requested by those allocations (a `realloc` counts its new size).
    pub allocated_bytes: i64,
    /// Peak of live bytes since the last [`reset_peak`] (exact for one allocating thread, an
    /// upper bound for several).
    pub peak_bytes: i64,
}

/// `true` once `profiler::Alloc` served an allocation, i.e. it is the global allocator.
pub fn is_installed() -> bool {
    INSTALLED.load(Relaxed)
}

/// Read the counters, or `None` if `profiler::Alloc` is not the global allocator.
pub fn heap() -> Option<HeapCounters> {
    if !is_installed() {
        return None;
    }
    let mut total = HeapCounters::default();
    let mut add = |slot: &Slot| {
        total.live_bytes += slot.live_bytes.load(Relaxed);
        total.live_blocks += slot.live_blocks.load(Relaxed);
        total.allocations += slot.allocations.load(Relaxed);
        total.allocated_bytes += slot.allocated_bytes.load(Relaxed);
        total.peak_bytes += slot
            .peak_bytes
            .load(Relaxed)
            .max(slot.live_bytes.load(Relaxed));
    };
    add(&EXITED);
    let mut cursor = SLOTS.load(Acquire);
    while !cursor.is_null() {
        // SAFETY: list nodes are never freed.
        let slot = unsafe { &*cursor };
        add(slot);
        cursor = slot.next.load(Acquire);
    }
    Some(total)
}

/// The counters of the calling thread alone: what it allocated and freed, whatever thread
/// the memory came from or goes to. `None` if `profiler::Alloc` is not the global allocator.
///
/// A slot may have served an exited thread before: compare two reads, never a single value.
pub fn thread_heap() -> Option<HeapCounters> {
    if !is_installed() {
        return None;
    }
    LOCAL
        .try_with(|local| {
            let mut slot = local.slot.get();
            if slot.is_null() {
                slot = claim_slot();
                local.slot.set(slot);
            }
            // SAFETY: slots are never freed.
            let slot = unsafe { &*slot };
            let live = slot.live_bytes.load(Relaxed);
            HeapCounters {
                live_bytes: live,
                live_blocks: slot.live_blocks.load(Relaxed),
                allocations: slot.allocations.load(Relaxed),
                allocated_bytes: slot.allocated_bytes.load(Relaxed),
                peak_bytes: slot.peak_bytes.load(Relaxed).max(live),
            }
        })
        .ok()
}

/// Start a new peak window for the calling thread's counters only.
pub fn reset_thread_peak() {
    let _ = LOCAL.try_with(|local| {
        let slot = local.slot.get();
        if !slot.is_null() {
            // SAFETY: slots are never freed.
            let slot = unsafe { &*slot };
            slot.peak_bytes
                .store(slot.live_bytes.load(Relaxed), Relaxed);
        }
    });
}

/// Start a new peak window: every slot's peak becomes its current live bytes.
///
/// A thread allocating at this very moment may keep a peak set just before the reset; that
/// only makes the next peak an over-estimate, never an under-estimate.
pub fn reset_peak() {
    let reset = |slot: &Slot| {
        slot.peak_bytes
            .store(slot.live_bytes.load(Relaxed), Relaxed)
    };
    reset(&EXITED);
    let mut cursor = SLOTS.load(Acquire);
    while !cursor.is_null() {
        // SAFETY: list nodes are never freed.
        let slot = unsafe { &*cursor };
        reset(slot);
        cursor = slot.next.load(Acquire);
    }
}

/// Run `f` without counting what it allocates or frees on this thread.
///
/// The profiler's own work (sampling, its sampler thread, progress output) runs inside this, so
/// it never shows in a workload's numbers. Memory allocated inside must be freed inside too (or
/// never): a block allocated untracked and freed tracked would count as a negative.
pub fn untracked<R>(f: impl FnOnce() -> R) -> R {
    struct Guard;
    impl Drop for Guard {
        fn drop(&mut self) {
            let _ = LOCAL.try_with(|l| l.untracked.set(l.untracked.get() - 1));
        }
    }
    let _ = LOCAL.try_with(|l| l.untracked.set(l.untracked.get() + 1));
    let _guard = Guard;
    f()
}

/// Move a vector built untracked into tracked memory, freeing the untracked original untracked.
/// Used to hand the profiler's records to the caller once the last sample is taken.
pub(crate) fn adopt<T: Clone>(untracked_vec: Vec<T>) -> Vec<T> {
    let adopted = untracked_vec.clone();
    untracked(move || drop(untracked_vec));
    adopted
}
