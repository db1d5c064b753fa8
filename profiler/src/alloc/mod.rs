// Owns the global allocator `Alloc` and its heap counters: per-thread slots summed on read.
// Must never lock, allocate through itself, or do a shared read-modify-write on the hot path.

//! The counting global allocator.
//!
//! Every thread gets a *slot* of counters the first time it allocates. Only that thread writes
//! its counters, with plain relaxed loads and stores (no `lock`-prefixed instruction), so
//! counting costs a few adds on a cache line nobody else writes. A slot counts allocations,
//! allocated bytes, frees and freed bytes; live blocks and live bytes are differences, so an
//! allocation and a free each add to two counters, and a free never looks at the peak. A read
//! sums every slot. Slots are never freed: when a thread exits its slot is handed to the next
//! new thread, which keeps adding to the same totals, so the bytes of exited threads are never
//! lost and the list stays as long as the largest number of threads alive at once. Memory
//! freed on another thread than the one that allocated it makes the freeing thread's slot go
//! negative; the sum nets out.
//!
//! **Fast path.** A thread's whole state for the fast path is one thread-local pointer to its
//! slot, never null: an allocator call loads it and works on the slot's first cache line.
//! Calls are counted before they are handed to the inner allocator, so that the call to it is
//! a tail call and the fast path needs no stack frame. (An allocation on the fast path is
//! smaller than a check's reach, [`CHECK_EVERY`]: should the inner allocator fail it, which
//! only happens when the process is out of memory, it stays counted. Larger ones, and
//! allocations due for a check, are counted once they succeeded.) The pointer is
//! [`COLD`], a slot whose tests always fail, while the thread runs [`untracked`] work, before
//! its first allocation, after its exit, and during attribution passes: switching the route to
//! dhat on points every thread's pointer there, so the fast path never reads the route flag.
//! The cold path sorts those cases out and points the pointer at the thread's slot again when
//! the thread is back to plain counting. Writing another thread's pointer is safe because a
//! thread waits, when it claims or releases a slot, for a write in progress on that slot to
//! end: a few instructions, on those cold paths only.
//!
//! **Sampling.** Each slot also keeps the value of its allocated bytes at which its thread's
//! next sample is due (see `sampled`), or its next check of the peak (see "Peak") if that
//! comes first: every allocation compares its new total with it, and goes to the cold path
//! when it is due. A free takes the fast path when its block is outside the range of sampled
//! blocks (`pages`, whose start and length the slot keeps a copy of; on [`COLD`] the length
//! is the whole address space, so no free is fast there): one subtraction and one compare,
//! whatever the block's size and whether sampling is on. Reserving the range sends every
//! thread to the cold path, which re-arms it with the new start.
//!
//! **Exactness.** At a quiet point (no other thread allocating, which is what an iteration
//! boundary of a single-threaded workload is, or after the workload's threads were joined) a
//! read is exact. While other threads run, a read is a sum of per-thread counters taken one
//! after another: each counter is exact, but live blocks (allocations minus frees) and the sum
//! may mix moments a few nanoseconds apart.
//!
//! **Peak.** The reported peak is the lower of two upper bounds of the true one:
//!
//! - *The sum of per-thread peaks.* Each slot keeps the peak of its own live bytes since the
//!   last [`reset_peak`], checked on every allocation and `realloc` (a free can only lower
//!   it). Exact when one thread makes all the calls. With several, they need not have peaked at
//!   the same moment; and where memory moves between threads it tells little: a producer's
//!   own live bytes only grow and a consumer's only shrink, so their peaks add up to all the
//!   bytes that went through (20 MiB of 1 KiB boxes through a channel holding 8 of them).
//!   A thread's own window ([`reset_thread_peak`], at each thread-scope sample) lowers its
//!   slot's peak, so the peak it lets go is banked for the process's window first.
//! - *The published peak.* Every [`CHECK_EVERY`] bytes a thread allocates, one of its
//!   allocations leaves the fast path (it shares the sample's compare: `event_at`) to check
//!   its live bytes, and adds them to one shared sum, [`PUBLISHED`], when they moved by more
//!   than [`PUBLISH_BEYOND`] since it last did; the sum keeps its peak. A thread that
//!   publishes also publishes, on their behalf, every other slot whose live bytes moved that
//!   far: frees never leave the fast path for it, so a thread that only frees (a consumer)
//!   is published by those that allocate. A reset publishes every slot on its behalf,
//!   holding every slot's `publishing` flag meanwhile. At any moment the true live bytes are
//!   the published sum plus what each thread has not published (less, where it freed more
//!   than was published): no more than it allocated since the reset, and no more than a
//!   check's reach or the most a check found (a call that crossed a check holds its bytes
//!   unpublished until the check). The producer and consumer above: 2.3 MiB above the start,
//!   whatever went through.

mod address;
pub mod pages;
pub mod sampled;
pub mod span_stack;
pub mod spans;
mod unwind;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::ptr;
use std::sync::atomic::{
    AtomicBool, AtomicI64, AtomicPtr, AtomicU64, AtomicUsize, Ordering::*, fence,
};

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
/// (While sampled attribution runs, small sampled blocks live on pages of the toolkit's own:
/// see `alloc::sampled`.)
///
/// To count a service that runs on another allocator, wrap it: the counting is the same and
/// every call goes to `inner` instead of the system allocator.
///
/// ```ignore
/// #[global_allocator]
/// static ALLOC: profiler::Alloc<mimalloc::MiMalloc> = profiler::Alloc::wrapping(mimalloc::MiMalloc);
/// ```
///
/// (Sampled attribution, `--attribute`, works over any inner allocator. `--attribute exact`
/// needs the system allocator inside: dhat records through it. With another inner allocator
/// its passes are skipped, saying so.)
pub struct Alloc<A = System> {
    inner: A,
}

impl Alloc<System> {
    /// The allocator over the system allocator, ready to be a `#[global_allocator]`.
    pub const fn new() -> Self {
        Alloc { inner: System }
    }
}

impl<A> Alloc<A> {
    /// The allocator over `inner` (jemalloc, mimalloc, any `GlobalAlloc`), ready to be a
    /// `#[global_allocator]`.
    pub const fn wrapping(inner: A) -> Self {
        Alloc { inner }
    }
}

impl Default for Alloc<System> {
    fn default() -> Self {
        Self::new()
    }
}

/// Counters of one thread. Written by its owner only (relaxed load + store), read by anyone
/// (but for `publication`, see [`Publication`]). Wrapping i64s: the ever-growing ones take
/// centuries to wrap at any real allocation rate. In declaration order: what the fast path
/// reads and writes fills the first cache line, and a free's check of the peak the second.
#[repr(C, align(64))]
struct Slot {
    allocations: AtomicI64,
    allocated_bytes: AtomicI64,
    /// Live blocks are `allocations - frees`.
    frees: AtomicI64,
    /// Live bytes are `allocated_bytes - freed_bytes`.
    freed_bytes: AtomicI64,
    /// Peak of `live_bytes` since the last reset: [`reset_peak`], or the owner's
    /// [`reset_thread_peak`] (the process's peak also takes `banked_peak`).
    peak_bytes: AtomicI64,
    /// The `allocated_bytes` beyond which an allocation goes to the cold path (compared
    /// unsigned: an allocation's size never wraps it): the nearer of `next_sample` and
    /// `alloc_check_at`, [`DUE`] when a redraw is asked for. Written by the owner on the cold
    /// path only (and by [`Slot::ask_redraw`]), so the fast path merely compares against it.
    event_at: AtomicI64,
    /// The start and the length of the range of sampled blocks (`pages`), as the owner last
    /// armed: a free in it goes to the cold path. Set before the owner's `fast` pointer points
    /// here; on [`COLD`] and a slot not armed yet, the whole address space.
    base: AtomicUsize,
    reach: AtomicUsize,
    /// The `allocated_bytes` beyond which the thread's next sample is due (see `sampled`):
    /// [`sampled::NEVER`] while sampling is off.
    next_sample: AtomicI64,
    /// The `allocated_bytes` beyond which the owner publishes (see the module's "Peak").
    alloc_check_at: AtomicI64,
    in_use: AtomicBool,
    /// Set when the next distance to a sample must be drawn afresh (sampling was switched, or
    /// the slot changed hands) rather than a sample taken.
    redraw: AtomicBool,
    /// The `fast` pointer of the thread that owns this slot, for [`disarm_all`] to point at
    /// [`COLD`]; null when no thread does, [`BUSY`] while a disarm writes through it.
    owner: AtomicPtr<AtomicPtr<Slot>>,
    next: AtomicPtr<Slot>,
    /// State of the owner's random draws of sampling distances.
    rng: AtomicU64,
    /// Samples the owners took, and the nanoseconds taking them took (see `sampled::cost`):
    /// on the slot, not on a line every sampling thread would write.
    samples_taken: AtomicU64,
    samples_ns: AtomicU64,
    /// Per slot size of `pages`, one slot of a sampled block the owners freed (0 for none),
    /// for their next sampled block of that size: no shared lock, no line another thread
    /// wrote. Kept with the slot when it changes hands (never lost with a thread).
    stash: [AtomicUsize; pages::CLASSES],
    /// What the slot published (see the module's "Peak"), on a line of its own: the thread
    /// that resets writes it.
    publication: Line<Publication>,
}

/// A slot's share of [`PUBLISHED`]. Written under `publishing` (by the owner, or by
/// [`reset_peak`] on its behalf), but for `max_drift`, which the owner raises in its checks.
struct Publication {
    /// The live bytes last added to [`PUBLISHED`] for this slot.
    published: AtomicI64,
    /// Held while this slot publishes.
    publishing: AtomicBool,
    /// `allocations + frees` and `allocated_bytes` just before [`reset_peak`] published for
    /// it.
    reset_calls: AtomicI64,
    reset_allocated: AtomicI64,
    /// The largest drift a check found since the reset: a call that crossed a check may
    /// have left more unpublished than a check's reach, for the few instructions until its
    /// check.
    max_drift: AtomicI64,
    /// The slot's peak in the process's window up to the owner's last [`reset_thread_peak`]
    /// (which starts a window of the thread's own, as thread-scope samples do), `i64::MIN`
    /// when there was none since [`reset_peak`]: the process's peak must not lose what a
    /// thread's own window let go.
    banked_peak: AtomicI64,
}

/// A value on a cache line of its own: a counter many threads write (or a lock they take)
/// does not slow down the reads of its neighbours.
#[repr(align(64))]
struct Line<T>(T);

impl<T> std::ops::Deref for Line<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// `Slot::owner` while a disarm writes through it: the owner waits before it exits, so the
/// pointer stays valid meanwhile.
const BUSY: *mut AtomicPtr<Slot> = ptr::dangling_mut();

#[inline(always)]
fn add(counter: &AtomicI64, n: i64) -> i64 {
    let value = counter.load(Relaxed).wrapping_add(n);
    counter.store(value, Relaxed);
    value
}

impl Slot {
    const fn new() -> Self {
        Slot {
            allocations: AtomicI64::new(0),
            allocated_bytes: AtomicI64::new(0),
            frees: AtomicI64::new(0),
            freed_bytes: AtomicI64::new(0),
            peak_bytes: AtomicI64::new(0),
            event_at: AtomicI64::new(CHECK_EVERY),
            base: AtomicUsize::new(0),
            reach: AtomicUsize::new(usize::MAX),
            next_sample: AtomicI64::new(sampled::NEVER),
            alloc_check_at: AtomicI64::new(CHECK_EVERY),
            in_use: AtomicBool::new(false),
            redraw: AtomicBool::new(false),
            owner: AtomicPtr::new(ptr::null_mut()),
            next: AtomicPtr::new(ptr::null_mut()),
            rng: AtomicU64::new(0),
            samples_taken: AtomicU64::new(0),
            samples_ns: AtomicU64::new(0),
            stash: [const { AtomicUsize::new(0) }; pages::CLASSES],
            publication: Line(Publication {
                published: AtomicI64::new(0),
                publishing: AtomicBool::new(false),
                reset_calls: AtomicI64::new(0),
                reset_allocated: AtomicI64::new(0),
                max_drift: AtomicI64::new(0),
                banked_peak: AtomicI64::new(i64::MIN),
            }),
        }
    }

    /// [`COLD`]: every allocation is due for a sample, every free in the range of sampled
    /// blocks.
    const fn cold() -> Self {
        let mut slot = Slot::new();
        slot.event_at = AtomicI64::new(DUE);
        slot
    }

    // Owner-only updates: plain loads and stores, no read-modify-write.

    /// An allocation of `bytes`, or a `realloc` to `bytes` from `realloc_from` bytes (one free
    /// and one allocation: live blocks stay the same).
    #[inline(always)]
    fn alloc_owned(&self, bytes: i64, realloc_from: Option<i64>) {
        if let Some(old) = realloc_from {
            self.free_owned(old);
        }
        add(&self.allocations, 1);
        let live = add(&self.allocated_bytes, bytes).wrapping_sub(self.freed_bytes.load(Relaxed));
        if live > self.peak_bytes.load(Relaxed) {
            self.peak_bytes.store(live, Relaxed);
        }
    }

    /// A free of `bytes`: it can only lower live bytes, so the peak is not looked at.
    #[inline(always)]
    fn free_owned(&self, bytes: i64) {
        add(&self.freed_bytes, bytes);
        add(&self.frees, 1);
    }

    /// The owner's fast path for an allocation of `bytes`: counted (the allocation is
    /// about to be handed to the inner allocator), unless a sample or a check is due or a
    /// redraw asked for, in which case `false` and nothing is counted. One compare more than
    /// counting. Unsigned: a slot's allocated bytes are far below 2^63, so adding any size
    /// (at most `isize::MAX`) never wraps, and an allocation larger than the distance to the
    /// next event is always due.
    #[inline(always)]
    fn try_alloc_owned(&self, bytes: usize) -> bool {
        let allocated = self.allocated_after(bytes);
        if allocated > self.event_at.load(Relaxed) as u64 {
            return false;
        }
        let allocated = allocated as i64;
        self.allocated_bytes.store(allocated, Relaxed);
        add(&self.allocations, 1);
        let live = allocated.wrapping_sub(self.freed_bytes.load(Relaxed));
        if live > self.peak_bytes.load(Relaxed) {
            self.peak_bytes.store(live, Relaxed);
        }
        true
    }

    /// Whether an allocation of `bytes` reaches the owner's next sample or check (or a
    /// redraw).
    #[inline(always)]
    fn event_due(&self, bytes: usize) -> bool {
        self.allocated_after(bytes) > self.event_at.load(Relaxed) as u64
    }

    /// The owner's allocated bytes once an allocation of `bytes` is counted, unsigned (what
    /// `event_at` and `next_sample` are compared with).
    #[inline(always)]
    fn allocated_after(&self, bytes: usize) -> u64 {
        (self.allocated_bytes.load(Relaxed) as u64).wrapping_add(bytes as u64)
    }

    /// Whether an allocation of `bytes`, turned away by `event_at`, is due for a check of the
    /// peak only: not on [`COLD`] (whose `event_at` is [`DUE`]), no redraw asked for, and
    /// short of the next sample.
    fn only_a_check_due(&self, bytes: usize) -> bool {
        self.event_at.load(Relaxed) != DUE
            && !self.redraw.load(Relaxed)
            && self.allocated_after(bytes) <= self.next_sample.load(Relaxed) as u64
    }

    /// Allocations, allocated bytes, frees and freed bytes.
    fn counts(&self) -> [i64; 4] {
        [
            self.allocations.load(Relaxed),
            self.allocated_bytes.load(Relaxed),
            self.frees.load(Relaxed),
            self.freed_bytes.load(Relaxed),
        ]
    }

    /// Ask the owner to draw its next distance to a sample afresh.
    fn ask_redraw(&self) {
        self.redraw.store(true, Relaxed);
        self.event_at.store(DUE, Relaxed);
    }

    /// The owner's next sample is due beyond `allocated_bytes` of `at`.
    fn set_next_sample(&self, at: i64) {
        self.next_sample.store(at, Relaxed);
        let check = self.alloc_check_at.load(Relaxed);
        self.event_at.store(at.min(check), Relaxed);
    }

    /// The owner, after a call it counted off the fast path: publish when a check is due.
    #[inline(always)]
    fn check_if_due(&self) {
        if self.allocated_bytes.load(Relaxed) > self.alloc_check_at.load(Relaxed) {
            self.check();
        }
    }

    /// The owner's check: publish when its live bytes moved by more than [`PUBLISH_BEYOND`]
    /// since they were last published (and then every other slot's that moved as far: see
    /// the module's "Peak"), and set the next check [`CHECK_EVERY`] bytes on.
    #[cold]
    #[inline(never)]
    fn check(&self) {
        let (allocated, freed) = (
            self.allocated_bytes.load(Relaxed),
            self.freed_bytes.load(Relaxed),
        );
        let publication = &self.publication;
        let drift = allocated.wrapping_sub(freed) - publication.published.load(Relaxed);
        if drift > publication.max_drift.load(Relaxed) {
            publication.max_drift.store(drift, Relaxed);
        }
        if drift.abs() > PUBLISH_BEYOND {
            publish_moved(self);
        }
        let next = allocated.wrapping_add(CHECK_EVERY);
        self.alloc_check_at.store(next, Relaxed);
        let sample = self.next_sample.load(Relaxed);
        if self.event_at.load(Relaxed) != DUE {
            // (A redraw asked for stays asked.)
            self.event_at.store(sample.min(next), Relaxed);
        }
    }

    /// Take `publishing`: the owner's checks, or [`reset_peak`] on the owner's behalf.
    fn lock_publishing(&self) {
        let mut waited = 0;
        while self
            .publication
            .publishing
            .compare_exchange_weak(false, true, Acquire, Relaxed)
            .is_err()
        {
            back_off(&mut waited);
        }
    }

    fn unlock_publishing(&self) {
        self.publication.publishing.store(false, Release);
    }

    /// Add this slot's live bytes since it last published to [`PUBLISHED`] (`publishing`
    /// held). Where the owner runs meanwhile (a check of another thread publishes for it),
    /// the live bytes read are at least what they were at any moment between the reads of
    /// the two counters (see [`Slot::live_bytes`]): what it holds unpublished after is
    /// within what it allocates after.
    fn publish_locked(&self) {
        let live = self.live_bytes();
        let drift = live - self.publication.published.load(Relaxed);
        self.publication.published.store(live, Relaxed);
        publish(drift);
    }

    /// Take `publishing` if no one holds it.
    fn try_lock_publishing(&self) -> bool {
        self.publication
            .publishing
            .compare_exchange(false, true, Acquire, Relaxed)
            .is_ok()
    }

    /// What this slot may have held unpublished at any moment since the last [`reset_peak`]:
    /// its drift now if it made no call since; else no more than it allocated since, and no
    /// more than a check's reach (or what a check found, for a call that crossed one).
    fn unpublished_bound(&self) -> i64 {
        let publication = &self.publication;
        let (allocations, frees) = (self.allocations.load(Relaxed), self.frees.load(Relaxed));
        let drift = self.live_bytes() - publication.published.load(Relaxed);
        if allocations.wrapping_add(frees) == publication.reset_calls.load(Relaxed) {
            return drift;
        }
        let since = self
            .allocated_bytes
            .load(Relaxed)
            .wrapping_sub(publication.reset_allocated.load(Relaxed));
        let reach = (CHECK_EVERY + PUBLISH_BEYOND).max(publication.max_drift.load(Relaxed));
        since.clamp(0, reach).max(drift)
    }

    /// A new peak window for the whole process, from the thread that resets (`publishing`
    /// held): mark where it starts, then publish the slot's drift, so that the window starts
    /// with none (what the owner counts after the mark is within what it allocated since).
    fn reset_window_locked(&self) {
        let publication = &self.publication;
        let calls = self.allocations.load(Relaxed) + self.frees.load(Relaxed);
        publication.reset_calls.store(calls, Relaxed);
        publication
            .reset_allocated
            .store(self.allocated_bytes.load(Relaxed), Relaxed);
        publication.max_drift.store(0, Relaxed);
        publication.banked_peak.store(i64::MIN, Relaxed);
        self.publish_locked();
        self.reset_peak();
    }

    /// A new peak window for the owner's own counters ([`reset_thread_peak`]): the peak it
    /// lets go is banked for the process's window first (under `publishing`, so that a
    /// [`reset_peak`] is wholly before or after).
    fn reset_thread_window(&self) {
        self.lock_publishing();
        let peak = self.peak_bytes.load(Relaxed).max(self.live_bytes());
        self.publication.banked_peak.fetch_max(peak, Relaxed);
        // Banked before the peak is lowered: a reader that sees the lower peak sees it.
        fence(Release);
        self.reset_peak();
        self.unlock_publishing();
    }

    /// This slot's peak in the process's window, given its `counters()` just read.
    fn process_peak(&self, counters: &HeapCounters) -> i64 {
        fence(Acquire);
        counters
            .peak_bytes
            .max(self.publication.banked_peak.load(Relaxed))
    }

    /// Shared update, for the slot of threads that already ran their exit destructor.
    fn alloc_shared(&self, bytes: i64, realloc_from: Option<i64>) {
        if let Some(old) = realloc_from {
            self.free_shared(old);
        }
        self.allocations.fetch_add(1, Relaxed);
        let allocated = self
            .allocated_bytes
            .fetch_add(bytes, Relaxed)
            .wrapping_add(bytes);
        // Frees by other exited threads may land in between: close enough for late
        // destructors, the only users of this slot.
        let live = allocated.wrapping_sub(self.freed_bytes.load(Relaxed));
        self.peak_bytes.fetch_max(live, Relaxed);
        publish(bytes);
    }

    fn free_shared(&self, bytes: i64) {
        self.freed_bytes.fetch_add(bytes, Relaxed);
        self.frees.fetch_add(1, Relaxed);
        publish(-bytes);
    }

    /// Bytes allocated minus bytes freed by this slot's threads.
    fn live_bytes(&self) -> i64 {
        let freed = self.freed_bytes.load(Relaxed);
        self.allocated_bytes.load(Relaxed).wrapping_sub(freed)
    }

    /// This slot's counters (read by any thread; see "Exactness" for a running owner).
    fn counters(&self) -> HeapCounters {
        // Frees first: read in the order they are made, a running owner's sums lean high.
        let (frees, freed_bytes) = (self.frees.load(Relaxed), self.freed_bytes.load(Relaxed));
        let allocations = self.allocations.load(Relaxed);
        let allocated_bytes = self.allocated_bytes.load(Relaxed);
        let live_bytes = allocated_bytes.wrapping_sub(freed_bytes);
        HeapCounters {
            live_bytes,
            live_blocks: allocations.wrapping_sub(frees),
            allocations,
            allocated_bytes,
            peak_bytes: self.peak_bytes.load(Relaxed).max(live_bytes),
        }
    }

    /// Start a new peak window: the peak becomes the current live bytes.
    fn reset_peak(&self) {
        self.peak_bytes.store(self.live_bytes(), Relaxed);
    }

    /// Record the `fast` pointer of the thread that just claimed this slot.
    fn set_owner(&self, fast: &AtomicPtr<Slot>) {
        let fast = fast as *const AtomicPtr<Slot> as *mut AtomicPtr<Slot>;
        let mut waited = 0;
        while self
            .owner
            .compare_exchange_weak(ptr::null_mut(), fast, AcqRel, Relaxed)
            .is_err()
        {
            back_off(&mut waited);
        }
    }

    /// Forget the owner's `fast` pointer (its thread exits), waiting out a `route_to_dhat`
    /// that may be writing through it.
    fn clear_owner(&self) {
        let mut waited = 0;
        loop {
            let owner = self.owner.load(Acquire);
            if owner != BUSY
                && self
                    .owner
                    .compare_exchange_weak(owner, ptr::null_mut(), AcqRel, Relaxed)
                    .is_ok()
            {
                return;
            }
            back_off(&mut waited);
        }
    }

    /// Send the owner thread to the cold path: point its `fast` pointer at [`COLD`].
    fn disarm_owner(&self) {
        let mut waited = 0;
        let owner = loop {
            let owner = self.owner.swap(BUSY, Acquire);
            if owner != BUSY {
                break owner;
            }
            back_off(&mut waited);
        };
        if !owner.is_null() {
            // SAFETY: the owner thread is alive: it waits in `clear_owner` for BUSY to go.
            unsafe { &*owner }.store(cold(), SeqCst);
        }
        self.owner.store(owner, Release);
    }
}

/// Wait for another thread to finish with a slot's `owner` (a few instructions, unless that
/// thread was descheduled meanwhile: then give it the CPU). Never on the hot path.
fn back_off(waited: &mut u32) {
    *waited += 1;
    if *waited < 64 {
        std::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
}

/// The slot every thread's `fast` pointer points to while its calls must take the cold path.
/// Never written: its tests send every call to the cold path before it counts anything.
static COLD: Slot = Slot::cold();

fn cold() -> *mut Slot {
    &COLD as *const Slot as *mut Slot
}

/// `Slot::event_at` when the next allocation must leave the fast path whatever its size (a
/// redraw is asked for, or the slot is [`COLD`]): no allocated-bytes counter is below it.
const DUE: i64 = 0;

/// Every this many bytes a thread allocates, one of its allocations goes off the fast path to
/// check how far its live bytes moved (see the module's "Peak").
pub const CHECK_EVERY: i64 = 1 << 20;
/// A check publishes a thread's live bytes when they moved by more than this since they were
/// last published: a loop that frees what it allocates publishes nothing.
pub const PUBLISH_BEYOND: i64 = 256 << 10;

/// The live bytes every slot published, summed: the process's live bytes, but for what each
/// slot allocated or freed since it last published. Written by a thread's checks (at most
/// once per [`CHECK_EVERY`] bytes it allocates or frees), by resets, and by every call of an
/// exited thread.
static PUBLISHED: Line<AtomicI64> = Line(AtomicI64::new(0));
/// Held by [`reset_peak`]: one reset at a time takes every slot's `publishing`.
static RESETTING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The highest [`PUBLISHED`] since the last [`reset_peak`].
static PUBLISHED_PEAK: Line<AtomicI64> = Line(AtomicI64::new(0));

/// Add `bytes` to [`PUBLISHED`] and raise its peak.
fn publish(bytes: i64) {
    let now = PUBLISHED.fetch_add(bytes, Relaxed).wrapping_add(bytes);
    PUBLISHED_PEAK.fetch_max(now, Relaxed);
}

/// A check of `own` (its owner's) found its live bytes moved far: publish them, and every
/// other slot's that moved beyond [`PUBLISH_BEYOND`] (skipping one whose `publishing` is
/// held: its owner or a reset is publishing it). Falls first, then rises, so that the sum's
/// peak never holds one thread's growth without another's frees published with it. Reads
/// every slot, at most once per check that publishes: once per [`PUBLISH_BEYOND`] a thread's
/// live bytes move.
fn publish_moved(own: &Slot) {
    let moved = |slot: &Slot, rising: bool| {
        let drift = slot.live_bytes() - slot.publication.published.load(Relaxed);
        drift.abs() > PUBLISH_BEYOND && (drift > 0) == rising
    };
    for rising in [false, true] {
        if moved(own, rising) {
            own.lock_publishing();
            own.publish_locked();
            own.unlock_publishing();
        }
        for_each_slot(|slot| {
            if !ptr::eq(slot, own) && moved(slot, rising) && slot.try_lock_publishing() {
                slot.publish_locked();
                slot.unlock_publishing();
            }
        });
    }
}

/// Head of the list of every slot ever created (slots are never freed).
static SLOTS: AtomicPtr<Slot> = AtomicPtr::new(ptr::null_mut());
/// Counts of threads whose slot was released but which still allocate (late TLS destructors).
static EXITED: Slot = Slot::new();
/// Set when the first thread claims a slot: proof that `Alloc` is the global allocator.
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// Send every thread to the cold path, to re-arm with what changed.
fn disarm_all() {
    for_each_slot(Slot::disarm_owner);
}

fn for_each_slot(f: impl FnMut(&Slot)) {
    // SeqCst, as the slot's link: a walk that disarms every thread after a SeqCst store must
    // see a slot linked before that store (see `Local::arm`).
    walk_slots(SLOTS.load(SeqCst), f);
}

/// Every slot from `cursor` on.
fn walk_slots(mut cursor: *mut Slot, mut f: impl FnMut(&Slot)) {
    while !cursor.is_null() {
        // SAFETY: list nodes are never freed.
        let slot = unsafe { &*cursor };
        f(slot);
        cursor = slot.next.load(Acquire);
    }
}

struct Local {
    /// The slot the fast path counts into, or [`COLD`] for the cold path: while the thread
    /// runs untracked work, before its first allocation, after its exit, and after
    /// [`route_to_dhat`] switched the route on (it points every thread's pointer at `COLD`;
    /// the cold path sets it again once the route is off). Atomic because `route_to_dhat`
    /// writes it.
    fast: AtomicPtr<Slot>,
    /// This thread's slot: null until its first allocation, `&EXITED` after its exit.
    owned: Cell<*const Slot>,
    /// `owned` knows this thread's `fast` pointer, so the fast path may be used.
    armable: Cell<bool>,
    /// > 0 while the profiler does its own work on this thread: not counted.
    untracked: Cell<u32>,
    /// The counters (address) of the span this thread is in, the one `tracing` calls current
    /// (heap per span; see `spans`); 0 for none.
    span: Cell<usize>,
    /// Set while this thread works on the table of sampled blocks: its own calls bypass it.
    in_sampler: Cell<bool>,
    /// The stack address above which this thread's sampled backtraces stop (the toolkit's
    /// run loop; see `sampled::set_stack_floor`), 0 for none.
    stack_floor: Cell<usize>,
    /// `owned`'s allocations, allocated bytes, frees and freed bytes when this thread claimed
    /// it: what the thread counted since is theirs less these (see [`untracked_for_good`]).
    claimed: Cell<[i64; 4]>,
}

thread_local! {
    // Const-initialised and without Drop: access never allocates nor registers a destructor,
    // and compiles to a plain thread-local address.
    static LOCAL: Local = const {
        Local {
            fast: AtomicPtr::new(&COLD as *const Slot as *mut Slot),
            owned: Cell::new(ptr::null()),
            armable: Cell::new(false),
            untracked: Cell::new(0),
            span: Cell::new(0),
            in_sampler: Cell::new(false),
            stack_floor: Cell::new(0),
            claimed: Cell::new([0; 4]),
        }
    };
}

/// The calling thread's own slot (the shared [`EXITED`] one after its exit), if it has one:
/// for what the sampler keeps per thread, whether or not the thread is counted right now.
fn owned_slot() -> Option<&'static Slot> {
    let slot = LOCAL.try_with(|l| l.owned.get()).ok()?;
    // SAFETY: slots are never freed.
    unsafe { slot.as_ref() }
}

/// The slot the calling thread's fast path counts into: its own, or [`COLD`].
#[inline(always)]
fn fast_slot() -> &'static Slot {
    let slot = LOCAL
        .try_with(|local| local.fast.load(Relaxed))
        .unwrap_or(cold());
    // SAFETY: slots are never freed; `fast` is only ever this thread's own slot or COLD.
    unsafe { &*slot }
}

/// Whether the fast path may free `ptr` counted in `slot`: outside the range of sampled
/// blocks as the slot knows it (never on [`COLD`]).
#[inline(always)]
fn free_is_fast(slot: &Slot, ptr: *mut u8) -> bool {
    pages::outside(ptr, slot.base.load(Relaxed), slot.reach.load(Relaxed))
}

impl Local {
    /// Make `owned` the fast slot again, unless the thread is untracked or routed to dhat.
    ///
    /// Against a concurrent `route_to_dhat(true)`: either it sees our store and disarms us, or
    /// our SeqCst load after the store sees the route on and we disarm ourselves.
    ///
    /// The slot's copy of the range of sampled blocks is set first. Against the range being
    /// reserved: it stores its start, then disarms every thread; either that disarm comes
    /// after our store, or our SeqCst load of the start after the store sees the new one and
    /// we arm again with it.
    fn arm(&self) {
        let cold_route = || ROUTE_TO_DHAT.load(SeqCst) || spans::SPANS_ON.load(SeqCst);
        if !self.armable.get() || self.untracked.get() != 0 || cold_route() {
            return;
        }
        loop {
            // SAFETY: `owned` is this thread's slot (armable), never freed.
            let slot = unsafe { &*self.owned.get() };
            if slot.redraw.load(Relaxed) {
                // A redraw asked for while the owner drew a distance may have been overwritten.
                slot.event_at.store(DUE, Relaxed);
            }
            let base = pages::base();
            slot.base.store(base, Relaxed);
            slot.reach.store(pages::SPAN, Relaxed);
            self.fast.store(self.owned.get() as *mut Slot, SeqCst);
            if cold_route() {
                self.fast.store(cold(), Relaxed);
                return;
            }
            if pages::base() == base {
                return;
            }
        }
    }

    /// The slot to count into on the cold path: `None` while untracked; claims one first, and
    /// makes it the fast one again when it can.
    fn cold_slot(&self) -> Option<*const Slot> {
        if self.untracked.get() != 0 {
            return None;
        }
        if self.owned.get().is_null() {
            claim_slot(self);
        }
        self.arm();
        Some(self.owned.get())
    }
}

#[cold]
#[inline(never)]
fn count_alloc_cold(bytes: i64, realloc_from: Option<i64>) {
    let _ = LOCAL.try_with(|local| match local.cold_slot() {
        None => {}
        Some(slot) if ptr::eq(slot, &EXITED) => EXITED.alloc_shared(bytes, realloc_from),
        Some(slot) => {
            // SAFETY: slots are never freed; only this thread owns `slot`.
            let slot = unsafe { &*slot };
            slot.alloc_owned(bytes, realloc_from);
            slot.check_if_due();
        }
    });
}

#[cold]
#[inline(never)]
fn count_free_cold(bytes: i64) {
    let _ = LOCAL.try_with(|local| match local.cold_slot() {
        None => {}
        Some(slot) if ptr::eq(slot, &EXITED) => EXITED.free_shared(bytes),
        Some(slot) => {
            // SAFETY: slots are never freed; only this thread owns `slot`.
            let slot = unsafe { &*slot };
            slot.free_owned(bytes);
            slot.check_if_due();
        }
    });
}

/// Count an allocation (or a `realloc` from `realloc_from` bytes) off the fast path.
fn count_alloc(bytes: usize, realloc_from: Option<usize>) {
    let (bytes, realloc_from) = (bytes as i64, realloc_from.map(|old| old as i64));
    let slot = fast_slot();
    if ptr::eq(slot, &COLD) {
        count_alloc_cold(bytes, realloc_from);
    } else {
        slot.alloc_owned(bytes, realloc_from);
        slot.check_if_due();
    }
}

/// Count a free off the fast path.
fn count_free(bytes: usize) {
    let slot = fast_slot();
    if ptr::eq(slot, &COLD) {
        count_free_cold(bytes as i64);
    } else {
        slot.free_owned(bytes as i64);
        slot.check_if_due();
    }
}

/// Give this thread a slot (reuse one released by an exited thread, or create one), make it
/// the thread's `owned` slot and, when the thread can be found again at its exit, record
/// where its `fast` pointer is so that the fast path may be used.
#[cold]
#[inline(never)]
fn claim_slot(local: &Local) {
    let slot = find_or_create_slot();
    local.owned.set(slot);
    if ptr::eq(slot, &EXITED) {
        return;
    }
    // SAFETY: slots are never freed.
    local.claimed.set(unsafe { &*slot }.counts());
    // The new owner draws its own distance to the next sample.
    unsafe { &*slot }.ask_redraw();
    // SAFETY: slots are never freed.
    unsafe { &*slot }.set_owner(&local.fast);
    if exit_hook::register(slot) {
        local.armable.set(true);
    } else {
        // Never released, so never cleared: `route_to_dhat` must not write to this thread
        // once it is gone. Without the fast path the thread still counts, on the cold path.
        unsafe { &*slot }.clear_owner();
    }
}

fn find_or_create_slot() -> *const Slot {
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
        match SLOTS.compare_exchange_weak(head, fresh, SeqCst, Relaxed) {
            Ok(_) => break,
            Err(now) => head = now,
        }
    }
    fresh
}

/// Called when a thread exits: later allocations of this thread go to the shared EXITED slot,
/// and its own slot becomes free for the next new thread (its counts stay in the sums).
fn release_slot(slot: *const Slot) {
    if slot.is_null() || ptr::eq(slot, &EXITED) {
        return;
    }
    // SAFETY: slots are never freed.
    let slot = unsafe { &*slot };
    slot.clear_owner();
    let _ = LOCAL.try_with(|local| {
        local.armable.set(false);
        local.owned.set(&EXITED);
        local.fast.store(cold(), Relaxed);
    });
    slot.in_use.store(false, Release);
}

#[cfg(unix)]
mod exit_hook {
    //! A pthread key whose destructor releases the thread's slot. pthread_setspecific does not
    //! allocate for the first keys of a process, and when it does it calls libc's allocator
    //! directly, never Rust's global one.
    use super::Slot;
    use std::sync::OnceLock;

    static KEY: OnceLock<Option<libc::pthread_key_t>> = OnceLock::new();

    extern "C" fn on_thread_exit(slot: *mut libc::c_void) {
        super::release_slot(slot as *const Slot);
    }

    /// `true` if the slot will be released when the thread exits.
    pub(super) fn register(slot: *const Slot) -> bool {
        let key = KEY.get_or_init(|| {
            let mut key: libc::pthread_key_t = 0;
            // SAFETY: plain FFI call with a valid out-pointer and an extern "C" destructor.
            let rc = unsafe { libc::pthread_key_create(&mut key, Some(on_thread_exit)) };
            (rc == 0).then_some(key)
        });
        // SAFETY: key was created above; the value is only read back by our destructor.
        key.is_some_and(|key| unsafe {
            libc::pthread_setspecific(key, slot as *const libc::c_void) == 0
        })
    }
}

#[cfg(not(unix))]
mod exit_hook {
    //! Without pthread keys a slot stays with its thread forever: exact, only never reused,
    //! and its thread always counts on the cold path (see `claim_slot`).
    pub(super) fn register(_slot: *const super::Slot) -> bool {
        false
    }
}

// SAFETY: every method forwards to the inner allocator (or, during attribution passes, which
// only a System inner allows, to dhat::Alloc, which forwards to System) with the same
// arguments, or, for a small sampled block, serves it from a slot of its own pages (aligned
// and sized for the layout asked) and frees it there; what it adds (counting, and on the cold
// path the sampler's table, which is kept off the table itself) never unwinds and never calls
// back into a caller's allocation.
unsafe impl<A: GlobalAlloc + 'static> GlobalAlloc for Alloc<A> {
    #[inline(always)]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let slot = fast_slot();
        if slot.try_alloc_owned(layout.size()) {
            unsafe { self.inner.alloc(layout) }
        } else {
            unsafe { alloc_due(&self.inner, slot, layout, false) }
        }
    }

    #[inline(always)]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let slot = fast_slot();
        if slot.try_alloc_owned(layout.size()) {
            unsafe { self.inner.alloc_zeroed(layout) }
        } else {
            unsafe { alloc_due(&self.inner, slot, layout, true) }
        }
    }

    #[inline(always)]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let slot = fast_slot();
        if !free_is_fast(slot, ptr) {
            return unsafe { cold::dealloc(&self.inner, ptr, layout) };
        }
        // Counted first: a free cannot fail, and `free` then stays a tail call.
        slot.free_owned(layout.size() as i64);
        unsafe { self.inner.dealloc(ptr, layout) }
    }

    #[inline(always)]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let slot = fast_slot();
        if !free_is_fast(slot, ptr) || slot.event_due(new_size) {
            return unsafe { cold::realloc(&self.inner, ptr, layout, new_size) };
        }
        // Counted first, as an allocation on the fast path is.
        slot.alloc_owned(new_size as i64, Some(layout.size() as i64));
        unsafe { self.inner.realloc(ptr, layout, new_size) }
    }
}

mod cold;

/// An allocation the fast path's compare turned away. When only a check of the peak is due
/// (the thread counts into its own slot, no sample is due and no redraw asked for), it is
/// made here, out of line, counted once it succeeded, and the check after it: a thread's
/// every MiB allocated comes here once, and the cold path's sorting of the other cases would
/// cost that MiB 1-2% on a loop of 4-64 KiB blocks. Anything else goes to the cold path.
#[inline(never)]
unsafe fn alloc_due<A: GlobalAlloc + 'static>(
    inner: &A,
    slot: &Slot,
    layout: Layout,
    zeroed: bool,
) -> *mut u8 {
    if !slot.only_a_check_due(layout.size()) {
        return unsafe { cold::alloc(inner, layout, zeroed) };
    }
    let p = unsafe { alloc_large(inner, slot, layout, zeroed) };
    if !p.is_null() {
        slot.check();
    }
    p
}

/// An allocation due for a check only, counted once it succeeded.
#[inline(never)]
unsafe fn alloc_large<A: GlobalAlloc>(
    inner: &A,
    slot: &Slot,
    layout: Layout,
    zeroed: bool,
) -> *mut u8 {
    let p = unsafe { sampled::inner_alloc(inner, layout, zeroed) };
    if !p.is_null() {
        slot.alloc_owned(layout.size() as i64, None);
    }
    p
}

/// Set only while an attribution pass runs (see `attribution.rs`): every call then also goes
/// through dhat, which records a backtrace per allocation (about 20-30x slower per
/// iteration). Switching it on points every thread's `fast` pointer at `COLD`, so the hot
/// path never looks at this flag: the cold path does.
static ROUTE_TO_DHAT: AtomicBool = AtomicBool::new(false);

/// Set once `Alloc` served a call with an inner allocator other than the system one.
static FOREIGN_INNER: AtomicBool = AtomicBool::new(false);

/// Whether allocations may be routed through dhat: only when the inner allocator is the
/// system one (dhat allocates from it, and a block must be freed by the allocator that made it).
pub fn can_route_to_dhat() -> bool {
    !FOREIGN_INNER.load(Relaxed)
}

/// Route allocations through dhat (`true`) or straight to the system allocator (`false`).
/// Only the attribution pass switches it, around iterations run under a dhat profiler.
/// A call another thread is making at that very moment may still go the old way.
pub(crate) fn route_to_dhat(on: bool) {
    if on && !can_route_to_dhat() {
        return;
    }
    ROUTE_TO_DHAT.store(on, SeqCst);
    if on {
        // Every thread to the cold path, which sees the flag. Off, threads find their way
        // back to the fast path on their next cold call.
        disarm_all();
    }
}

mod dhat_route;

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
    // The other bound of the peak (see the module's "Peak"): what each slot may have held
    // unpublished, and the published peak, read after the slots (a publish in between is
    // then counted twice, never missed).
    let mut published_bound = 0i64;
    let mut add = |slot: &Slot| {
        let c = slot.counters();
        total.live_bytes += c.live_bytes;
        total.live_blocks += c.live_blocks;
        total.allocations += c.allocations;
        total.allocated_bytes += c.allocated_bytes;
        total.peak_bytes += slot.process_peak(&c);
    };
    add(&EXITED); // publishes every call
    for_each_slot(|slot| {
        add(slot);
        published_bound = published_bound.wrapping_add(slot.unpublished_bound());
    });
    let published_bound = published_bound.wrapping_add(PUBLISHED_PEAK.load(Relaxed));
    total.peak_bytes = total.peak_bytes.min(published_bound).max(total.live_bytes);
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
            if local.owned.get().is_null() {
                claim_slot(local);
                local.arm();
            }
            // SAFETY: slots are never freed.
            unsafe { &*local.owned.get() }.counters()
        })
        .ok()
}

/// Start a new peak window for the calling thread's counters only ([`thread_heap`]'s peak);
/// [`heap`]'s peak keeps its own window, which only [`reset_peak`] starts.
pub fn reset_thread_peak() {
    let _ = LOCAL.try_with(|local| {
        let slot = local.owned.get();
        // Not the slot of exited threads: shared by all of them, it has no window of its own.
        if !slot.is_null() && !ptr::eq(slot, &EXITED) {
            // SAFETY: slots are never freed.
            unsafe { &*slot }.reset_thread_window();
        }
    });
}

/// Start a new peak window: every slot's peak becomes its current live bytes, and every
/// slot's live bytes are published, so that the published peak starts at the live bytes.
///
/// A thread allocating at this very moment may keep a peak set just before the reset; that
/// only makes the next peak an over-estimate, never an under-estimate.
pub fn reset_peak() {
    let _one_at_a_time = RESETTING.lock().unwrap_or_else(|e| e.into_inner());
    EXITED.reset_peak();
    // The slots as of now (new ones are linked in front of this head): every one's
    // `publishing` taken first, so that no owner publishes between the marks and the new
    // published peak. Owners go on counting meanwhile, within what they allocate since.
    let head = SLOTS.load(SeqCst);
    walk_slots(head, Slot::lock_publishing);
    walk_slots(head, Slot::reset_window_locked);
    PUBLISHED_PEAK.store(PUBLISHED.load(Relaxed), Relaxed);
    walk_slots(head, Slot::unlock_publishing);
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
            let _ = LOCAL.try_with(|local| {
                let depth = local.untracked.get() - 1;
                local.untracked.set(depth);
                if depth == 0 {
                    local.arm();
                }
            });
        }
    }
    let _ = LOCAL.try_with(|local| {
        local.untracked.set(local.untracked.get() + 1);
        local.fast.store(cold(), Relaxed);
    });
    let _guard = Guard;
    f()
}

/// Make the calling thread the toolkit's for the rest of its life: take back what it counted
/// since it started, and count nothing it does from here on, its exit included.
///
/// For a thread spawned untracked ([`spawn_untracked`]): std frees the boxes its spawner made
/// (untracked) on the new thread, before the thread's own code runs, and that counted as
/// frees (two blocks off the heap per thread), as would what its thread-locals free at exit.
fn untracked_for_good() {
    let _ = LOCAL.try_with(|local| {
        local.untracked.set(local.untracked.get() + 1);
        local.fast.store(cold(), Relaxed);
        let owned = local.owned.get();
        if owned.is_null() || ptr::eq(owned, &EXITED) {
            return;
        }
        // SAFETY: slots are never freed; only this thread writes its counters. Going back to
        // the claim only raises live bytes above what they were, which the peak may miss:
        // its start-up's allocations, if any, are the peak's own.
        let slot = unsafe { &*owned };
        let [allocations, allocated, frees, freed] = local.claimed.get();
        slot.allocations.store(allocations, Relaxed);
        slot.allocated_bytes.store(allocated, Relaxed);
        slot.frees.store(frees, Relaxed);
        slot.freed_bytes.store(freed, Relaxed);
    });
}

/// Spawn one of the toolkit's own threads (a sampler, a monitor): made untracked, its body run
/// untracked for good ([`untracked_for_good`]), ready when this returns. Join and drop the
/// handle untracked too ([`OwnThread`] does).
///
/// The wait for it is a mutex and a condition variable, not a channel: a thread's first
/// blocking receive on a channel makes it a thread-local context (48 B) that its exit frees,
/// which, made here untracked, would take 48 B off the heap when the caller's thread exits.
pub(crate) fn spawn_untracked<T: Send + 'static>(
    name: &str,
    body: impl FnOnce() -> T + Send + 'static,
) -> std::io::Result<OwnThread<T>> {
    use std::sync::{Arc, Condvar, Mutex};
    untracked(|| {
        // The new thread's id once it is ready.
        let ready = Arc::new((Mutex::new(None), Condvar::new()));
        let tell = Arc::clone(&ready);
        let handle = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                untracked_for_good();
                let (tid, woken) = &*tell;
                *tid.lock().unwrap_or_else(|e| e.into_inner()) = Some(crate::quiet::current_tid());
                woken.notify_one();
                drop(tell);
                body()
            })?;
        // Until then, its start-up's frees are on the heap.
        let (tid, woken) = &*ready;
        let mut tid = tid.lock().unwrap_or_else(|e| e.into_inner());
        while tid.is_none() {
            tid = woken.wait(tid).unwrap_or_else(|e| e.into_inner());
        }
        Ok(OwnThread {
            tid: tid.unwrap_or(0),
            handle: Some(handle),
        })
    })
}

/// A thread of [`spawn_untracked`]: joined and dropped untracked.
pub(crate) struct OwnThread<T> {
    tid: u32,
    handle: Option<std::thread::JoinHandle<T>>,
}

impl<T> OwnThread<T> {
    /// Its kernel thread id (0 where there is none to read).
    pub(crate) fn tid(&self) -> u32 {
        self.tid
    }

    pub(crate) fn unpark(&self) {
        if let Some(handle) = &self.handle {
            handle.thread().unpark();
        }
    }

    /// Wait for it; what it returns was made untracked.
    pub(crate) fn join(mut self) -> std::thread::Result<T> {
        let handle = self.handle.take().expect("joined once");
        untracked(|| handle.join())
    }
}

impl<T> Drop for OwnThread<T> {
    fn drop(&mut self) {
        untracked(|| drop(self.handle.take()));
    }
}

/// A value made untracked that is dropped untracked too, wherever its last owner drops it:
/// the toolkit's own state shared with a worker or kept in a caller's callback (an `Arc` of a
/// watch, a progress bar), which would otherwise be freed counted by whichever thread lets it
/// go last and take its size off the heap.
pub(crate) struct Untracked<T>(std::mem::ManuallyDrop<T>);

impl<T> Untracked<T> {
    /// Make the value with `make`, untracked.
    pub(crate) fn make(make: impl FnOnce() -> T) -> Self {
        Untracked(std::mem::ManuallyDrop::new(untracked(make)))
    }

    /// Change the value, untracked: what the change allocates is freed with the value,
    /// untracked. (No `DerefMut`: a change made counted would be freed uncounted.)
    pub(crate) fn with_mut<R>(&mut self, change: impl FnOnce(&mut T) -> R) -> R {
        untracked(|| change(&mut self.0))
    }
}

impl<T: Clone> Clone for Untracked<T> {
    fn clone(&self) -> Self {
        Untracked::make(|| T::clone(self))
    }
}

impl<T> std::ops::Deref for Untracked<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> Drop for Untracked<T> {
    fn drop(&mut self) {
        // SAFETY: dropped once, here; never used again.
        untracked(|| unsafe { std::mem::ManuallyDrop::drop(&mut self.0) });
    }
}

/// Hand a vector built untracked to tracked code: its buffer is counted now as if it had been
/// allocated here, so that freeing it later (tracked) nets out. No copy: a run's samples can
/// be tens of MiB. Call it where allocations are tracked; inside `untracked` it counts nothing.
pub(crate) fn adopt<T>(untracked_vec: Vec<T>) -> Vec<T> {
    let bytes = untracked_vec.capacity() * std::mem::size_of::<T>();
    if bytes > 0 && is_installed() {
        count_alloc(bytes, None);
    }
    untracked_vec
}

#[cfg(test)]
mod tests {
    //! The slot arithmetic and the fast pointer's states, on slots of the tests' own (this test
    //! binary does not install `Alloc`, so nothing here touches the process-wide list; checks
    //! add to the process-wide published sum, which no test here reads).
    use super::*;

    fn counters(
        live_bytes: i64,
        live_blocks: i64,
        allocations: i64,
        allocated_bytes: i64,
        peak_bytes: i64,
    ) -> HeapCounters {
        HeapCounters {
            live_bytes,
            live_blocks,
            allocations,
            allocated_bytes,
            peak_bytes,
        }
    }

    #[test]
    fn live_values_are_differences_across_realloc() {
        let slot = Slot::new();
        slot.alloc_owned(100, None);
        slot.alloc_owned(50, None);
        slot.alloc_owned(300, Some(100)); // realloc 100 -> 300: one free, one allocation
        slot.free_owned(50);
        assert_eq!(slot.counters(), counters(300, 1, 3, 450, 350));
        slot.alloc_owned(10, Some(300)); // shrinking realloc
        assert_eq!(slot.counters(), counters(10, 1, 4, 460, 350));
        slot.free_owned(10);
        assert_eq!(slot.counters(), counters(0, 0, 4, 460, 350));
    }

    #[test]
    fn the_shared_path_counts_like_the_owned_one() {
        let (owned, shared) = (Slot::new(), Slot::new());
        for (bytes, realloc_from) in [(64, None), (4096, None), (8192, Some(4096)), (16, Some(64))]
        {
            owned.alloc_owned(bytes, realloc_from);
            shared.alloc_shared(bytes, realloc_from);
        }
        owned.free_owned(16);
        shared.free_shared(16);
        assert_eq!(owned.counters(), shared.counters());
        assert_eq!(owned.counters(), counters(8192, 1, 4, 12368, 8256));
    }

    #[test]
    fn frees_on_another_slot_net_out() {
        let (a, b) = (Slot::new(), Slot::new());
        a.alloc_owned(64, None);
        b.free_owned(64);
        let (a, b) = (a.counters(), b.counters());
        assert_eq!((b.live_bytes, b.live_blocks), (-64, -1));
        assert_eq!(
            (a.live_bytes + b.live_bytes, a.live_blocks + b.live_blocks),
            (0, 0)
        );
    }

    #[test]
    fn a_reset_starts_a_new_peak_window() {
        let slot = Slot::new();
        slot.alloc_owned(1000, None);
        slot.free_owned(1000);
        slot.alloc_owned(10, None);
        assert_eq!(slot.counters().peak_bytes, 1000);
        slot.reset_peak();
        assert_eq!(slot.counters().peak_bytes, 10);
        slot.alloc_owned(20, None);
        slot.free_owned(20);
        assert_eq!(
            slot.counters().peak_bytes,
            30,
            "below the old peak, above the reset"
        );
    }

    #[test]
    fn a_threads_own_window_does_not_shorten_the_processs() {
        let slot = Slot::new();
        slot.alloc_owned(1000, None);
        slot.free_owned(1000);
        slot.alloc_owned(10, None);
        slot.reset_thread_window();
        let c = slot.counters();
        assert_eq!((c.peak_bytes, slot.process_peak(&c)), (10, 1000));
        slot.alloc_owned(2000, None);
        slot.free_owned(2000);
        slot.reset_thread_window();
        let c = slot.counters();
        assert_eq!((c.peak_bytes, slot.process_peak(&c)), (10, 2010));
        // The process's own reset starts both windows afresh.
        slot.lock_publishing();
        slot.reset_window_locked();
        slot.unlock_publishing();
        let c = slot.counters();
        assert_eq!((c.peak_bytes, slot.process_peak(&c)), (10, 10));
    }

    #[test]
    fn a_check_publishes_only_live_bytes_that_moved_far() {
        let slot = Slot::new();
        slot.alloc_owned(1000, None);
        slot.check();
        assert_eq!(
            slot.publication.published.load(SeqCst),
            0,
            "1000 B moved: not far"
        );
        assert_eq!(slot.alloc_check_at.load(SeqCst), 1000 + CHECK_EVERY);
        slot.alloc_owned(PUBLISH_BEYOND, None);
        slot.check_if_due();
        assert_eq!(
            slot.publication.published.load(SeqCst),
            0,
            "no check due yet"
        );
        slot.alloc_owned(CHECK_EVERY, None);
        slot.check_if_due();
        let live = 1000 + PUBLISH_BEYOND + CHECK_EVERY;
        assert_eq!(slot.publication.published.load(SeqCst), live);
        assert_eq!(
            slot.event_at.load(SeqCst),
            live + CHECK_EVERY,
            "the next check, sampling off"
        );
        // Freed, all of it: frees never check; the next check publishes the fall.
        slot.free_owned(live);
        slot.check_if_due();
        assert_eq!(slot.publication.published.load(SeqCst), live);
        slot.alloc_owned(CHECK_EVERY + 1, None);
        slot.check_if_due();
        assert_eq!(slot.publication.published.load(SeqCst), CHECK_EVERY + 1);
    }

    #[test]
    fn an_allocation_past_a_check_alone_is_told_from_a_sample_or_a_redraw() {
        let slot = Slot::new();
        slot.set_next_sample(CHECK_EVERY + 4096);
        assert_eq!(
            slot.event_at.load(SeqCst),
            CHECK_EVERY,
            "the check comes first"
        );
        assert!(slot.event_due(CHECK_EVERY as usize + 1));
        assert!(slot.only_a_check_due(CHECK_EVERY as usize + 1));
        assert!(
            !slot.only_a_check_due(CHECK_EVERY as usize + 4097),
            "the sample too"
        );
        slot.ask_redraw();
        assert!(!slot.only_a_check_due(1), "a redraw asked for");
    }

    #[test]
    fn what_a_slot_holds_unpublished_is_bounded_by_what_it_allocated_since_the_reset() {
        let slot = Slot::new();
        slot.alloc_owned(5000, None);
        slot.lock_publishing();
        slot.reset_window_locked();
        slot.unlock_publishing();
        assert_eq!(
            slot.publication.published.load(SeqCst),
            5000,
            "published at the reset"
        );
        assert_eq!(slot.unpublished_bound(), 0, "no call since");
        slot.free_owned(5000);
        assert_eq!(
            slot.unpublished_bound(),
            0,
            "freed only: never above the published"
        );
        slot.alloc_owned(300, None);
        assert_eq!(slot.unpublished_bound(), 300);
        slot.alloc_owned(100 << 20, None);
        assert_eq!(
            slot.unpublished_bound(),
            (100 << 20) + 300 - 5000,
            "its drift now, when beyond a check's reach (no check ran)"
        );
        slot.check();
        assert_eq!(
            slot.unpublished_bound(),
            (100 << 20) + 300 - 5000,
            "published now, but the call that crossed the check held it unpublished"
        );
        slot.lock_publishing();
        slot.reset_window_locked();
        slot.unlock_publishing();
        slot.alloc_owned(PUBLISH_BEYOND + 1, None);
        slot.check();
        assert_eq!(
            slot.unpublished_bound(),
            PUBLISH_BEYOND + 1,
            "a new window: what it allocated since, published or not"
        );
    }

    /// What `claim_slot` does, on a slot outside the process-wide list.
    fn adopt_slot(local: &Local, slot: &'static Slot) {
        local.owned.set(slot);
        slot.set_owner(&local.fast);
        local.armable.set(true);
        local.arm();
    }

    fn on_cold_path() -> bool {
        ptr::eq(fast_slot(), &COLD)
    }

    #[test]
    fn the_cold_slot_fails_every_test_and_counts_nothing() {
        let before = COLD.counters();
        assert!(!COLD.try_alloc_owned(1));
        assert!(COLD.event_due(1));
        assert!(!COLD.only_a_check_due(1));
        for block in [1usize << 40, 16, usize::MAX - 4095] {
            assert!(!free_is_fast(&COLD, block as *mut u8));
        }
        assert_eq!(COLD.counters(), before);
        assert_eq!(before, HeapCounters::default());
    }

    #[test]
    fn a_free_in_the_range_of_sampled_blocks_is_not_fast() {
        let slot = Slot::new();
        assert!(
            !free_is_fast(&slot, (1usize << 40) as *mut u8),
            "not armed: nothing is fast"
        );
        let base = 1usize << 40;
        slot.base.store(base, SeqCst);
        slot.reach.store(pages::SPAN, SeqCst);
        for (addr, fast) in [
            (base - 64, true),
            (base, false),
            (base + pages::SPAN - 64, false),
            (base + pages::SPAN, true),
            (16, true),
        ] {
            assert_eq!(free_is_fast(&slot, addr as *mut u8), fast, "{addr:#x}");
        }
    }

    #[test]
    fn an_allocation_beyond_the_next_event_is_due_whatever_its_size() {
        let slot = Slot::new();
        assert!(!slot.event_due(CHECK_EVERY as usize));
        assert!(slot.event_due(CHECK_EVERY as usize + 1));
        for size in [isize::MAX as usize, usize::MAX / 2 + 1, usize::MAX] {
            assert!(slot.event_due(size), "{size} B");
            assert!(!slot.try_alloc_owned(size), "{size} B");
        }
        assert_eq!(slot.counts(), [0; 4], "nothing counted");
        assert!(slot.try_alloc_owned(64));
        assert_eq!(slot.counts(), [1, 64, 0, 0]);
    }

    /// One test for every use of the process-wide route flag, so none runs concurrently.
    #[test]
    fn the_fast_pointer_follows_untracked_work_the_route_and_the_exit() {
        std::thread::spawn(|| {
            let slot: &'static Slot = Box::leak(Box::new(Slot::new()));
            assert!(on_cold_path(), "a new thread starts on the cold path");
            LOCAL.with(|local| adopt_slot(local, slot));
            assert!(ptr::eq(fast_slot(), slot));

            untracked(|| {
                assert!(on_cold_path());
                untracked(|| assert!(on_cold_path()));
                assert!(on_cold_path(), "still untracked after the inner call");
            });
            assert!(ptr::eq(fast_slot(), slot));

            // route_to_dhat(true) points every slot's owner at COLD, here this one.
            ROUTE_TO_DHAT.store(true, SeqCst);
            slot.disarm_owner();
            assert!(on_cold_path());
            LOCAL.with(Local::arm);
            untracked(|| {});
            assert!(on_cold_path(), "nothing re-arms while the route is on");
            ROUTE_TO_DHAT.store(false, SeqCst);
            LOCAL.with(Local::arm);
            assert!(
                ptr::eq(fast_slot(), slot),
                "the cold path re-arms once it is off"
            );
            assert_eq!(
                (slot.base.load(SeqCst), slot.reach.load(SeqCst)),
                (pages::base(), pages::SPAN),
                "the range, copied"
            );

            // Thread exit: the slot forgets its owner, which stays on the cold path.
            release_slot(slot);
            assert!(on_cold_path());
            assert!(slot.owner.load(SeqCst).is_null());
            assert!(!slot.in_use.load(SeqCst));
            slot.disarm_owner(); // no owner to write to any more
            LOCAL.with(Local::arm);
            assert!(on_cold_path());
            LOCAL.with(|local| assert!(ptr::eq(local.owned.get(), &EXITED)));
        })
        .join()
        .unwrap();
    }

    #[test]
    fn disarming_races_thread_exits_safely() {
        let slots: Vec<&'static Slot> =
            (0..4).map(|_| &*Box::leak(Box::new(Slot::new()))).collect();
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                while !stop.load(Relaxed) {
                    slots.iter().for_each(|slot| slot.disarm_owner());
                }
            });
            for round in 0..200 {
                let slot = slots[round % slots.len()];
                std::thread::scope(|t| {
                    t.spawn(|| {
                        LOCAL.with(|local| adopt_slot(local, slot));
                        std::hint::black_box(fast_slot() as *const Slot);
                        release_slot(slot);
                    });
                });
                slot.in_use.store(false, SeqCst);
            }
            stop.store(true, Relaxed);
        });
        for slot in slots {
            assert!(
                slot.owner.load(SeqCst).is_null(),
                "every exit cleared its owner"
            );
        }
    }
}
