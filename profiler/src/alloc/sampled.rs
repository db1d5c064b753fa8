// Owns the allocator's half of sampled attribution: when a thread's next sample is due, and
// the side table of sampled blocks still live (size, iteration, backtrace). Must never run on
// the fast path beyond its checks (the count down to a sample; a free in the range of sampled
// blocks).

//! Sampled attribution, the allocator's half.
//!
//! **Which allocations.** Allocations are sampled by bytes, as a Poisson process over the
//! bytes a thread allocates: each thread's slot keeps the bytes it may allocate before its
//! next sample, drawn as an exponential distance of mean [`interval`] bytes from the end of
//! the last sampled allocation and kept as the value of its allocated-bytes counter at which
//! the sample is due (`next_sample`). An allocation of `b`
//! bytes is therefore sampled with probability `1 - exp(-b / interval)`, whatever its
//! neighbours, and a sampled block stands for `b / (1 - exp(-b / interval))` bytes and
//! `1 / (1 - exp(-b / interval))` blocks of its call site (as in tcmalloc's and heapprofd's
//! heap profilers). The fast path pays one compare for it, with sampling on or off: it adds
//! to the allocated-bytes counter anyway.
//!
//! **Recognised on free.** A sampled block lives on the sampler's own pages, in a range of
//! address space kept for them (see `pages`: never the inner allocator's heap): one of up to a
//! page in a slot (the smallest power of two that holds it, 16 B to a page), a larger one in a
//! run of pages. So a free need only look at the side table when its pointer is in that range,
//! whatever its size: the fast path pays a subtraction, a compare and its branch, with sampling
//! on or off, and no block of the inner allocator goes to the table (see `pages` for the
//! exceptions, which only cost a miss there). Should no memory be had there, or a block be
//! aligned beyond a page (rare), an allocation due for a sample is left unsampled.
//!
//! **The side table** maps each live sampled block to its size, the iteration it was born in
//! ([`set_epoch`]), the interval it was sampled at and its backtrace: up to [`DEPTH`] return
//! addresses, captured with the `backtrace` crate on the allocating thread (a few
//! microseconds; symbols are resolved at report time), kept once per distinct call path in
//! [`stacks`]. It is sharded by address, each shard behind its own lock,
//! and lives in untracked memory: never in the workload's counts. While a thread works on the
//! table its own allocator calls bypass it (`in_sampler`), so the table never recurses.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::*};
use std::time::Instant;

use super::address::{self, AddressMap};
use super::{LOCAL, Line, Slot, count_alloc, count_free, pages, spans, untracked, unwind};

/// Alignment up to which a block can be sampled (on the pages of `pages`, where a free
/// recognises it by its address).
pub const SAMPLE_ALIGN: usize = pages::PAGE;

/// Return addresses kept per sampled block.
pub const DEPTH: usize = 32;

/// Mean bytes between samples; 0 when sampling is off: the finer of [`RUN_INTERVAL`] and
/// [`FLOOR`].
static INTERVAL: AtomicI64 = AtomicI64::new(0);
/// The interval a run asked for ([`set_interval`]), 0 for none.
static RUN_INTERVAL: AtomicI64 = AtomicI64::new(0);
/// The interval sampling never goes above while heap per span is sampled ([`set_floor`]),
/// 0 for none. Samples taken for it alone (no run sampling) keep no backtrace.
static FLOOR: AtomicI64 = AtomicI64::new(0);
/// Held while the interval is switched.
static SWITCH: Mutex<()> = Mutex::new(());
/// The iteration the workload is in, stamped on each sampled block.
static EPOCH: AtomicU64 = AtomicU64::new(0);

/// `next_sample` of a slot that never samples.
pub(super) const NEVER: i64 = i64::MAX;

/// A sampled block still live.
#[derive(Debug, Clone, Copy)]
pub struct Block {
    /// Bytes the caller asked for.
    pub size: usize,
    /// Where its memory came from.
    home: Home,
    /// The epoch it was allocated in (see [`set_epoch`]).
    pub born: u64,
    /// The mean sampling interval when it was sampled.
    pub interval: u64,
    /// Its backtrace: an index into [`stacks`] ([`NO_STACK`] when the list was full).
    pub stack: u32,
    /// The span it was allocated in while heap per span is sampled (see `spans`), 0 for none,
    /// and the spans' run it was allocated in.
    span: usize,
    run: u32,
}

impl Block {
    /// The bytes and blocks this sampled block stands for: `size / p` and `1 / p`, `p` its
    /// probability of being sampled.
    pub fn weight(&self) -> (f64, f64) {
        let p = probability(self.size, self.interval);
        (self.size as f64 / p, 1.0 / p)
    }
}

/// `Block::stack` of a block whose backtrace could not be kept.
pub const NO_STACK: u32 = u32::MAX;
/// Distinct backtraces kept (a run sampling more distinct ones leaves the rest unnamed).
pub const MAX_STACKS: usize = 1 << 16;

/// A backtrace: return addresses, innermost first.
#[derive(Debug, Clone, Copy)]
pub struct Stack {
    ips: [usize; DEPTH],
    depth: u8,
}

// Compared and hashed over its `depth` addresses alone (a sample's stack is interned with
// both): the rest of the array is not part of it.
impl PartialEq for Stack {
    fn eq(&self, other: &Stack) -> bool {
        self.ips() == other.ips()
    }
}

impl Eq for Stack {}

impl std::hash::Hash for Stack {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.ips().hash(state);
    }
}

impl Stack {
    /// Return addresses, innermost first.
    pub fn ips(&self) -> &[usize] {
        &self.ips[..self.depth as usize]
    }
}

/// Every distinct backtrace sampled so far, and the index of each (never shrinks: sampled
/// blocks are many, their distinct call paths few).
struct Stacks {
    all: Vec<Stack>,
    index: AddressMap<Stack, u32>,
}

static STACKS: Mutex<Option<Stacks>> = Mutex::new(None);

/// Probability that an allocation of `size` bytes is sampled at mean interval `interval`.
pub fn probability(size: usize, interval: u64) -> f64 {
    if interval == 0 {
        return 1.0;
    }
    -(-(size.max(1) as f64) / interval as f64).exp_m1()
}

const SHARDS: usize = 16;
type Table = AddressMap<usize, Block>;
static TABLE: [Line<Mutex<Option<Table>>>; SHARDS] = [const { Line(Mutex::new(None)) }; SHARDS];

fn shard(ptr: usize) -> &'static Mutex<Option<Table>> {
    &TABLE[address::hash(ptr) as usize % SHARDS]
}

/// Whether the table may hold `ptr`: this thread is not working on the table, and `ptr` is in
/// the range of `pages`.
fn may_hold(ptr: *mut u8) -> bool {
    !busy() && pages::contains(ptr)
}

/// The mean interval for sampling left on in production: 2 MiB, tcmalloc's default. At it,
/// `profiler::Alloc` with sampling on costs 1.02x-1.03x the system allocator on the tightest
/// alloc/free loop, level with divan's `AllocProfiler` (which samples nothing); each halving
/// of the interval doubles the samples' share of that (0.2-0.6% at 2 MiB) and narrows a
/// sampled estimate's bounds by about
/// `sqrt(2)` (README, Performance).
/// For `SpanMemory::sampled` or [`set_interval`]; `--attribute` picks its own per iteration.
pub const ALWAYS_ON_INTERVAL: u64 = 2 << 20;

/// Sample one allocation per `bytes` allocated on average, from every thread's next
/// allocation on; `None` stops sampling (blocks already sampled stay in the table until
/// freed). While heap per span is sampled ([`set_floor`]), sampling goes on at the finer of
/// the two intervals.
pub fn set_interval(bytes: Option<u64>) {
    switch(Interval::Run, bytes);
}

/// Sample at least one allocation per `bytes` allocated on average from now on, whatever
/// runs ask for with [`set_interval`] (heap per span, sampled). Never raises a floor set
/// before: the finer stays.
pub fn set_floor(bytes: u64) {
    switch(Interval::Floor, Some(bytes));
}

/// The floor set with [`set_floor`], if any.
pub fn floor() -> Option<u64> {
    let f = FLOOR.load(SeqCst);
    (f > 0).then_some(f as u64)
}

/// The interval in force: the finer of `run` and `floor`, 0 when both are.
fn finer(run: i64, floor: i64) -> i64 {
    match (run, floor) {
        (0, f) => f,
        (r, 0) => r,
        (r, f) => r.min(f),
    }
}

/// Which interval [`switch`] sets.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Interval {
    /// A run's, replaced.
    Run,
    /// The floor, lowered only.
    Floor,
}

fn switch(which: Interval, bytes: Option<u64>) {
    let _switching = in_sampler(|| SWITCH.lock().unwrap_or_else(|e| e.into_inner()));
    let bytes = bytes.map_or(0, |b| b.clamp(1, i64::MAX as u64) as i64);
    let is_floor = which == Interval::Floor;
    let stored = if is_floor { &FLOOR } else { &RUN_INTERVAL };
    let was = stored.load(SeqCst);
    stored.store(if is_floor { finer(was, bytes) } else { bytes }, SeqCst);
    // A run's sampling switched on (each run's start is): the loaded objects, those loaded
    // since the last run included, are listed for the unwinder now, outside any allocation.
    // (The floor alone takes no backtraces.)
    if !is_floor && was == 0 && bytes > 0 {
        in_sampler(unwind::prepare);
    }
    let bytes = finer(RUN_INTERVAL.load(SeqCst), FLOOR.load(SeqCst));
    INTERVAL.store(bytes, SeqCst);
    // Each thread draws its next distance at its next allocation. A thread in the middle of
    // drawing one may keep a distance drawn at the old interval: one sample, at most.
    super::for_each_slot(Slot::ask_redraw);
}

/// The mean sampling interval in bytes in force (a run's or the floor, the finer), `None`
/// when off.
pub fn interval() -> Option<u64> {
    let i = INTERVAL.load(Relaxed);
    (i > 0).then_some(i as u64)
}

/// Stamp the blocks sampled from now on with `epoch` (a run's sampling numbers its iterations
/// with epochs of its own, so that blocks of an earlier run are never taken for its own).
pub fn set_epoch(n: u64) {
    EPOCH.store(n, Relaxed);
}

/// Samples taken so far in this process, and the time taken taking them (backtrace and
/// table): the sums of every thread's slot.
pub fn cost() -> (u64, std::time::Duration) {
    let (mut taken, mut ns) = (0u64, 0u64);
    super::for_each_slot(|slot| {
        taken = taken.wrapping_add(slot.samples_taken.load(Relaxed));
        ns = ns.wrapping_add(slot.samples_ns.load(Relaxed));
    });
    (taken, std::time::Duration::from_nanos(ns))
}

/// Count a sample taken by this thread, which took `ns` nanoseconds, on its slot.
fn count_taken(ns: u64) {
    // Read-modify-writes: the slot a thread gets once its own is gone is shared.
    if let Some(slot) = super::owned_slot() {
        slot.samples_taken.fetch_add(1, Relaxed);
        slot.samples_ns.fetch_add(ns, Relaxed);
    }
}

/// Sampled blocks still live.
pub fn live_count() -> usize {
    in_sampler(|| {
        TABLE
            .iter()
            .map(|shard| {
                let table = shard.lock().unwrap_or_else(|e| e.into_inner());
                table.as_ref().map_or(0, |t| t.len())
            })
            .sum()
    })
}

/// Every sampled block still live: a copy in untracked memory, to drop inside
/// [`untracked`](super::untracked).
pub fn live() -> Vec<Block> {
    // Inside the guard: growing `out` under a shard's lock must not look in the table.
    in_sampler(|| {
        let mut out = Vec::new();
        for shard in &TABLE {
            let table = shard.lock().unwrap_or_else(|e| e.into_inner());
            out.extend(table.iter().flat_map(|t| t.values().copied()));
        }
        out
    })
}

/// Whether a block at `ptr` may be a sampled one (on the cold path; the fast path's test is
/// `free_is_fast`, against its copy of the range's start): sampled blocks live on the pages of
/// `pages`.
#[inline(always)]
pub(super) fn candidate(ptr: *mut u8) -> bool {
    pages::contains(ptr)
}

/// Bytes to allocate before the next sample: an exponential distance of mean `interval`.
fn draw(slot: &Slot, interval: i64) -> i64 {
    if interval <= 0 {
        return NEVER;
    }
    // xorshift64*, seeded per slot.
    let mut x = slot.rng.load(Relaxed);
    if x == 0 {
        x = (slot as *const Slot as u64) ^ 0x9E37_79B9_7F4A_7C15;
    }
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    slot.rng.store(x, Relaxed);
    let u = (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64;
    let distance = (-ln(1.0 - u) * interval as f64).max(1.0);
    distance.min(i64::MAX as f64 / 4.0) as i64
}

/// The natural logarithm of `x` in (0, 1], to within a few parts in 10^11 (far finer than a
/// sampling distance needs): from its exponent and the atanh series of its mantissa, with no
/// table. libm's `log` reads a table whose lines a sample, at one per megabytes allocated,
/// always finds evicted (measured: 2 of the ~57 L1 data misses a sample took).
fn ln(x: f64) -> f64 {
    const SQRT_2: f64 = std::f64::consts::SQRT_2;
    // x = m * 2^e, m in [sqrt(2)/2, sqrt(2)): ln x = e ln 2 + ln m.
    let bits = x.to_bits();
    let mut e = ((bits >> 52) & 0x7ff) as i64 - 1023;
    let mut m = f64::from_bits((bits & ((1 << 52) - 1)) | (1023 << 52));
    if m >= SQRT_2 {
        m /= 2.0;
        e += 1;
    }
    // ln m = 2 atanh(s), s = (m - 1) / (m + 1), |s| < 0.172: terms to s^13.
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let series = 1.0
        + s2 * (1.0 / 3.0
            + s2 * (1.0 / 5.0
                + s2 * (1.0 / 7.0 + s2 * (1.0 / 9.0 + s2 * (1.0 / 11.0 + s2 / 13.0)))));
    e as f64 * std::f64::consts::LN_2 + 2.0 * s * series
}

/// The calling thread's slot, when it is counted and not inside the table.
fn tracked_slot() -> Option<&'static Slot> {
    LOCAL
        .try_with(|l| {
            let slot = l.owned.get();
            let ok = l.untracked.get() == 0 && !l.in_sampler.get() && !slot.is_null();
            // SAFETY: slots are never freed; the EXITED slot is shared but only read here.
            ok.then(|| unsafe { &*slot })
        })
        .ok()
        .flatten()
        .filter(|slot| !std::ptr::eq(*slot, &super::EXITED))
}

/// Whether an allocation of `size` bytes on this thread is to be sampled. The checked fast
/// path counted it down already; any other way here, it is counted down now. Draws the next
/// distance when a sample is due, or when the slot asked for a new one.
pub(super) fn take_sample(size: usize) -> bool {
    let Some(slot) = tracked_slot() else {
        return false;
    };
    // This allocation is not counted yet (the caller counts it after this).
    let allocated = slot.allocated_bytes.load(Relaxed);
    let after = allocated.wrapping_add(size as i64);
    let interval = INTERVAL.load(Relaxed);
    // An `event_at` of `DUE` is only ever a request to redraw (its flag may have been lost to
    // the owner's own store racing `ask_redraw`'s two).
    if slot.redraw.load(Relaxed) || slot.event_at.load(Relaxed) == super::DUE {
        // A distance drawn afresh, from before this allocation: it keeps its chance.
        slot.redraw.store(false, Relaxed);
        slot.set_next_sample(allocated.saturating_add(draw(slot, interval)));
    }
    if after <= slot.next_sample.load(Relaxed) {
        return false;
    }
    // The next distance runs from the end of this allocation.
    slot.set_next_sample(after.saturating_add(draw(slot, interval)));
    interval > 0
}

/// Where a sampled block's memory came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Home {
    /// A slot or a run of [`pages`].
    Page,
    /// The inner allocator, page-aligned (without pages of our own: not on Unix).
    Inner,
}

/// A block aligned beyond a page (rare): no memory of [`pages`] will do, and a free would not
/// look for it elsewhere, so it is never sampled.
fn over_aligned(align: usize) -> bool {
    align > SAMPLE_ALIGN
}

/// Memory for a sampled block of `layout`, where a free can tell it by its address: on the
/// pages of [`pages`]; null when it cannot be had.
unsafe fn sampled_memory<A: GlobalAlloc>(
    inner: &A,
    layout: Layout,
    zeroed: bool,
) -> (*mut u8, Home) {
    if over_aligned(layout.align()) {
        return (std::ptr::null_mut(), Home::Page);
    }
    let p = in_sampler(|| pages::take(layout.size(), layout.align(), zeroed));
    if !p.is_null() || cfg!(unix) {
        // Null when none is to be had: no block a free would recognise.
        return (p, Home::Page);
    }
    // No pages of our own on this platform: the inner allocator's block, page-aligned, which
    // is how a free recognises it here (`pages::contains`).
    let Ok(aligned) = Layout::from_size_align(layout.size(), SAMPLE_ALIGN) else {
        return (std::ptr::null_mut(), Home::Page);
    };
    (unsafe { inner_alloc(inner, aligned, zeroed) }, Home::Inner)
}

pub(super) unsafe fn inner_alloc<A: GlobalAlloc>(
    inner: &A,
    layout: Layout,
    zeroed: bool,
) -> *mut u8 {
    unsafe {
        if zeroed {
            inner.alloc_zeroed(layout)
        } else {
            inner.alloc(layout)
        }
    }
}

/// Give back the memory of a sampled block of `size` bytes.
unsafe fn free_sampled<A: GlobalAlloc>(
    inner: &A,
    ptr: *mut u8,
    size: usize,
    align: usize,
    home: Home,
) {
    match home {
        // SAFETY: memory of `pages` for `size` bytes and `align`, its block off the table.
        Home::Page => in_sampler(|| unsafe { pages::give_back(ptr, size, align) }),
        // SAFETY: allocated by `inner` with this size, page-aligned.
        Home::Inner => unsafe {
            inner.dealloc(ptr, Layout::from_size_align_unchecked(size, SAMPLE_ALIGN))
        },
    }
}

/// Allocate `layout` as a sampled block (the caller decided with [`take_sample`]), count it
/// and record it; a plain allocation when it cannot be one.
pub(super) unsafe fn alloc<A: GlobalAlloc>(inner: &A, layout: Layout, zeroed: bool) -> *mut u8 {
    let (p, home) = unsafe { sampled_memory(inner, layout, zeroed) };
    if p.is_null() {
        return unsafe { plain_alloc(inner, layout, zeroed) };
    }
    count_alloc(layout.size(), None);
    if spans::SPANS_ON.load(Relaxed) {
        spans::on_alloc(p, layout.size());
    }
    record(p, layout.size(), home);
    p
}

/// A plain allocation, counted (the cold path's own).
pub(super) unsafe fn plain_alloc<A: GlobalAlloc>(
    inner: &A,
    layout: Layout,
    zeroed: bool,
) -> *mut u8 {
    unsafe { counted_alloc(inner, layout, layout.size(), zeroed) }
}

/// Allocate `layout` from `inner` and, if it succeeds, count `size` bytes (and charge them to
/// the thread's span).
unsafe fn counted_alloc<A: GlobalAlloc>(
    inner: &A,
    layout: Layout,
    size: usize,
    zeroed: bool,
) -> *mut u8 {
    let p = unsafe { inner_alloc(inner, layout, zeroed) };
    if !p.is_null() {
        count_alloc(size, None);
        if spans::SPANS_ON.load(Relaxed) {
            spans::on_alloc(p, size);
        }
    }
    p
}

/// Free `ptr` if it is a sampled block (counted, taken off the table, its page given back);
/// `false` if it is not one.
pub(super) unsafe fn dealloc<A: GlobalAlloc>(inner: &A, ptr: *mut u8, layout: Layout) -> bool {
    let Some(block) = take(ptr) else {
        return false;
    };
    count_free(layout.size());
    if spans::SPANS_ON.load(Relaxed) {
        spans::on_free(ptr);
    }
    // SAFETY: `ptr` is a sampled block of `block.size` bytes, just taken off the table.
    unsafe { free_sampled(inner, ptr, block.size, layout.align(), block.home) };
    true
}

/// `realloc` where the old block is sampled or the new one is to be (only if `may_sample`:
/// not while calls are routed through dhat, which must see every block it recorded freed by
/// itself): a new block (sampled or not), the bytes copied, the old one freed where it came
/// from. `None` when neither is the case (the caller does a plain `realloc`, in place where
/// the inner allocator can).
pub(super) unsafe fn realloc<A: GlobalAlloc>(
    inner: &A,
    ptr: *mut u8,
    layout: Layout,
    new_size: usize,
    may_sample: bool,
) -> Option<*mut u8> {
    let old = if candidate(ptr) { peek(ptr) } else { None };
    let sample = may_sample && take_sample(new_size) && !over_aligned(layout.align());
    if old.is_none() && !sample {
        return None;
    }
    // A sampled block is never the inner allocator's with the caller's layout: copied.
    // SAFETY: the caller's `new_size` with the old alignment is valid (GlobalAlloc::realloc).
    let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
    let (mut p, home) = if sample {
        unsafe { sampled_memory(inner, new_layout, false) }
    } else {
        (std::ptr::null_mut(), Home::Page)
    };
    let sampled = !p.is_null();
    if !sampled {
        p = unsafe { inner.alloc(new_layout) };
    }
    if p.is_null() {
        // The old block is still the caller's, and still on the table.
        return Some(p);
    }
    // SAFETY: both blocks are valid for the smaller of the two sizes and do not overlap.
    unsafe { std::ptr::copy_nonoverlapping(ptr, p, layout.size().min(new_size)) };
    count_alloc(new_size, Some(layout.size()));
    if spans::SPANS_ON.load(Relaxed) {
        spans::on_realloc(ptr, p, layout.size(), new_size);
    }
    if sampled {
        record(p, new_size, home);
    }
    match old.and_then(|_| take(ptr)) {
        // SAFETY: a sampled block of that size, off the table.
        Some(block) => unsafe { free_sampled(inner, ptr, block.size, layout.align(), block.home) },
        // SAFETY: the caller's block, allocated by `inner` with this layout.
        None => unsafe { inner.dealloc(ptr, layout) },
    }
    Some(p)
}

/// Run `f` on the table: untracked, and with this thread's allocator calls kept off the table.
fn in_sampler<R>(f: impl FnOnce() -> R) -> R {
    struct Guard(bool);
    impl Drop for Guard {
        fn drop(&mut self) {
            let _ = LOCAL.try_with(|l| l.in_sampler.set(self.0));
        }
    }
    let was = LOCAL
        .try_with(|l| l.in_sampler.replace(true))
        .unwrap_or(true);
    let _guard = Guard(was);
    untracked(f)
}

/// Whether this thread is working on the table (its calls must bypass it).
#[inline]
pub(super) fn busy() -> bool {
    LOCAL.try_with(|l| l.in_sampler.get()).unwrap_or(true)
}

/// Leave the frames of the calling thread's stack above `addr` out of its sampled backtraces
/// from now on: `addr` is the address of a local of the frame that calls the workload, so
/// its frames and its callers' (the toolkit's run loop, the thread's start) are never
/// unwound, which halves what a sample costs in a typical run. 0 keeps every frame. Returns
/// the floor it replaces, to be put back.
pub fn set_stack_floor(addr: usize) -> usize {
    LOCAL.try_with(|l| l.stack_floor.replace(addr)).unwrap_or(0)
}

/// Stacks farther than this below a floor are taken for another stack (a coroutine's), on
/// which the floor means nothing.
const FLOOR_REACH: usize = 256 << 20;

fn record(ptr: *mut u8, size: usize, home: Home) {
    let interval = INTERVAL.load(Relaxed).max(1) as u64;
    let started = Instant::now();
    let span = spans::sampled_span();
    // Backtraces are for runs' attribution: a sample for heap per span alone needs none.
    let unwinding = RUN_INTERVAL.load(Relaxed) > 0;
    let floor = LOCAL.try_with(|l| l.stack_floor.get()).unwrap_or(0);
    let mut block = in_sampler(|| {
        let mut stack = Stack {
            ips: [0; DEPTH],
            depth: 0,
        };
        // The floor applies when this thread runs on the stack it was set on.
        let here = &stack as *const Stack as usize;
        let floor = if floor > here && floor - here < FLOOR_REACH {
            floor
        } else {
            usize::MAX
        };
        // The walk leaves out its own frames and this one (never yours: resolving their
        // units' symbols cost 3.5 ms of the catalog's first resolution).
        let stack = if unwinding {
            stack.depth = unwind::backtrace(here, floor, &mut stack.ips) as u8;
            intern(&stack)
        } else {
            NO_STACK
        };
        Block {
            size,
            home,
            born: EPOCH.load(Relaxed),
            interval,
            stack,
            span,
            run: 0,
        }
    });
    // Stamped last: a run that began during the backtrace has this block as its own.
    block.run = spans::run();
    spans::on_sampled(block.span, || block.weight());
    insert(ptr, block);
    count_taken(started.elapsed().as_nanos() as u64);
}

/// Put `block` on the table at `ptr` (and its weight on its span's live bytes).
fn insert(ptr: *mut u8, block: Block) {
    spans::on_sampled_live(block.span, block.run, || block.weight().0, 1);
    in_sampler(|| {
        let mut table = shard(ptr as usize)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        table
            .get_or_insert_with(Table::default)
            .insert(ptr as usize, block);
    });
}

/// The index of `stack` in the list of distinct backtraces (inside the sampler guard).
fn intern(stack: &Stack) -> u32 {
    let mut stacks = STACKS.lock().unwrap_or_else(|e| e.into_inner());
    let stacks = stacks.get_or_insert_with(|| Stacks {
        all: Vec::new(),
        index: AddressMap::default(),
    });
    if let Some(&i) = stacks.index.get(stack) {
        return i;
    }
    if stacks.all.len() >= MAX_STACKS {
        return NO_STACK;
    }
    let i = stacks.all.len() as u32;
    stacks.all.push(*stack);
    stacks.index.insert(*stack, i);
    i
}

/// Every distinct backtrace sampled so far, by [`Block::stack`]: a copy in untracked memory,
/// to drop inside [`untracked`](super::untracked).
pub fn stacks() -> Vec<Stack> {
    in_sampler(|| {
        let stacks = STACKS.lock().unwrap_or_else(|e| e.into_inner());
        stacks.as_ref().map(|s| s.all.clone()).unwrap_or_default()
    })
}

/// Make room before a run's first sample for `blocks` sampled blocks live and `stacks`
/// distinct backtraces, and [`pages::RESERVE`] pages for small sampled blocks, and touch
/// it all, so that neither grows nor faults pages in (stepping RSS) while the run samples.
pub fn reserve(blocks: usize, stacks: usize) {
    in_sampler(|| {
        pages::reserve(pages::RESERVE);
        let dummy = Block {
            size: 0,
            home: Home::Page,
            born: 0,
            interval: 0,
            stack: NO_STACK,
            span: 0,
            run: 0,
        };
        for shard in &TABLE {
            let mut table = shard.lock().unwrap_or_else(|e| e.into_inner());
            let table = table.get_or_insert_with(Table::default);
            let room = blocks / SHARDS;
            if table.capacity() < room {
                // Any keys: the map is cleared before use, only its memory is wanted.
                let mut touch = Table::with_capacity_and_hasher(room, Default::default());
                touch.extend((0..room).map(|i| (2 * i + 1, dummy)));
                touch.clear();
                touch.extend(table.drain());
                *table = touch;
            }
        }
        let mut all = STACKS.lock().unwrap_or_else(|e| e.into_inner());
        let all = all.get_or_insert_with(|| Stacks {
            all: Vec::new(),
            index: AddressMap::default(),
        });
        if all.all.capacity() < stacks {
            // Distinct keys (a stack is compared over its depth), to fill the index's memory.
            let blank = |i: usize| Stack {
                ips: [i; DEPTH],
                depth: 1,
            };
            let kept = all.all.len();
            all.all.extend((kept..stacks).map(blank));
            all.all.truncate(kept);
            let mut index = AddressMap::with_capacity_and_hasher(stacks, Default::default());
            index.extend((0..stacks).map(|i| (blank(i), 0)));
            index.clear();
            index.extend(all.index.drain());
            all.index = index;
        }
    });
}

/// Take `ptr` off the table: its block, if it was sampled.
fn take(ptr: *mut u8) -> Option<Block> {
    if !may_hold(ptr) {
        return None;
    }
    in_sampler(|| {
        let mut table = shard(ptr as usize)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let block = table.as_mut()?.remove(&(ptr as usize))?;
        spans::on_sampled_live(block.span, block.run, || -block.weight().0, -1);
        Some(block)
    })
}

/// `ptr`'s block, if it is sampled, left on the table.
fn peek(ptr: *mut u8) -> Option<Block> {
    if !may_hold(ptr) {
        return None;
    }
    in_sampler(|| {
        let table = shard(ptr as usize)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        table.as_ref()?.get(&(ptr as usize)).copied()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interval_in_force_is_the_finer_of_a_run_and_the_floor() {
        assert_eq!(finer(0, 0), 0, "off");
        assert_eq!(finer(4096, 0), 4096);
        assert_eq!(finer(0, 1 << 20), 1 << 20, "the floor alone: heap per span");
        assert_eq!(finer(4096, 1 << 20), 4096, "a run sampling finer");
        assert_eq!(
            finer(1 << 30, 1 << 20),
            1 << 20,
            "never coarser than the floor"
        );
    }

    #[test]
    fn the_distance_logarithm_is_libms_to_within_1e_10() {
        // Every draw's input is in (0, 1]: 1 - u, u a multiple of 2^-53 below 1.
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut inputs = vec![1.0, 0.5, f64::EPSILON / 2.0, 1.0 - f64::EPSILON / 2.0];
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            inputs.push(1.0 - (x >> 11) as f64 / (1u64 << 53) as f64);
        }
        for v in inputs {
            let (ours, libm) = (ln(v), v.ln());
            assert!(
                (ours - libm).abs() <= 1e-10 * libm.abs().max(1e-3),
                "ln({v:e}): {ours} against {libm}"
            );
        }
    }

    #[test]
    fn a_block_stands_for_its_bytes_over_its_chance_of_being_sampled() {
        let block = |size, interval| Block {
            size,
            home: Home::Page,
            born: 0,
            interval,
            stack: NO_STACK,
            span: 0,
            run: 0,
        };
        let (bytes, blocks) = block(1024, 1024).weight();
        let p = 1.0 - (-1.0f64).exp();
        assert!((blocks - 1.0 / p).abs() < 1e-9 && (bytes - 1024.0 / p).abs() < 1e-6);
        // A block far larger than the interval was certain to be sampled: itself alone.
        assert_eq!(block(1 << 30, 1024).weight(), ((1u64 << 30) as f64, 1.0));
    }
}
