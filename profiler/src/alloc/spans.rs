// Owns heap per span: which span each thread is in, the counters of each span name, and the
// side table of blocks allocated inside a span (no header in the block). Must never run on the
// allocator's fast path: while spans are on, every call takes the cold path, which calls here;
// sampled, only sampled blocks come here.

//! Heap per span (see `profiler::SpanMemory`, feature `tracing`).
//!
//! Switching it on ([`enable`]) sends every thread's allocator calls to the cold path for the
//! rest of the process (exact, and slower: measured in the README). There, an allocation made
//! while the thread is inside a span (the one `tracing` calls current) is charged to that
//! span's name and its address recorded in a side table with the span and its size; a free or a
//! `realloc` of a recorded block takes it off its span, wherever and whenever it happens. A
//! `realloc` stays with the span that made the block. Each entry is stamped with the number of
//! the last run window opened ([`RunWindow`]), so that a run's retained bytes are its own
//! blocks still live, and what its `realloc`s grew older blocks by: a pass over the table at
//! the run's end. A block freed inside `untracked` (which must only free what it allocated)
//! stays on the table until its address is given out again. The table is sharded by the block's
//! region of address space, then by its address (see [`shard`]), each shard behind its own
//! lock, and lives in untracked memory, so it never shows in the counts. A span name's live
//! bytes and their peak are one cache line every thread in it writes: threads allocating in
//! one span name at once pay for it (measured in the README), threads in different ones not.
//!
//! **Sampled** ([`enable_sampled`]): the fast path stays. Sampling by bytes goes on at the
//! interval asked for (or finer, while a run samples for attribution), and a sampled block
//! records the span its thread was in (in the table of `sampled`). Each span name then counts
//! what its sampled blocks stand for: `size / p` bytes and `1 / p` allocations allocated,
//! `size / p` live bytes while the block lives (their highest, the peak), `p` the block's
//! probability of being sampled. For the retained bytes of a run ([`RunWindow`]), it also counts apart the
//! sampled blocks allocated in the run and still live (their count gives the bounds), and those
//! allocated before it and freed during it (see `SampledTotals`). Entries are counted exactly.
//! A `realloc` is a new allocation to the sampler: a sampled new block is charged to the span
//! the thread is in. With the exact mode on too, the exact counters are the ones reported.

use std::cell::Cell;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicUsize, Ordering::*};

use super::address::{self, AddressMap};
use super::{LOCAL, Line, untracked};

/// Set once spans are counted: the fast path is never used again.
pub(super) static SPANS_ON: AtomicBool = AtomicBool::new(false);
/// Set once heap per span is sampled ([`enable_sampled`]), at the sampler's floor.
static SAMPLED: AtomicBool = AtomicBool::new(false);
/// The number of the runs' window in progress ([`RunWindow`]), stamped on sampled blocks.
static RUN: AtomicU32 = AtomicU32::new(0);
/// The number of the last [`RunWindow`] opened ([`Names::last_window`]), stamped on the blocks
/// of the exact table: a run's retained bytes are its span's blocks stamped with its own number
/// or a later one.
static OPENED: AtomicU32 = AtomicU32::new(0);
/// `est_allocations` counts in these units per allocation (`1 / p` is fractional).
const ALLOCATION_UNIT: f64 = 1024.0;

/// Lanes the sums of a span name are spread over (see [`Lane`]).
const LANES: usize = 8;

/// A share of a span name's sums: each thread adds to one lane (threads take lanes in turn),
/// so that threads in the same span do not write the same cache line on every allocation.
/// A total is the sum of the lanes.
#[derive(Debug, Default)]
#[repr(align(64))]
struct Lane {
    allocated_bytes: AtomicI64,
    allocations: AtomicI64,
    entries: AtomicI64,
}

/// The counters of one span name (all its call sites, all threads). The live bytes and their
/// peak are shared by every thread (the peak must be of their sum), on a cache line of their
/// own; the sums are spread over lanes.
#[derive(Debug, Default)]
#[repr(C, align(64))]
struct Counters {
    live_bytes: AtomicI64,
    peak_bytes: AtomicI64,
    lanes: [Lane; LANES],
    /// Sampled mode: what its sampled blocks stand for (bytes rounded per block,
    /// allocations in [`ALLOCATION_UNIT`]s), live and at their highest.
    est_allocated_bytes: AtomicI64,
    est_allocations: AtomicI64,
    est_live_bytes: AtomicI64,
    est_peak_bytes: AtomicI64,
    /// Since the window of runs opened ([`RunWindow`]): its sampled blocks still live, and
    /// the bytes they stand for; sampled blocks from before it freed, and theirs.
    new_samples: AtomicI64,
    new_bytes: AtomicI64,
    freed_samples: AtomicI64,
    freed_bytes: AtomicI64,
    /// Its sampled blocks live, whenever allocated (`est_live_bytes` is what they stand for).
    live_samples: AtomicI64,
}

/// Span names by index (index 0 is "no span"); counters are leaked, never freed.
struct Names {
    /// (call site key, name index) for fast lookup of a call site seen before.
    sites: Vec<(usize, u32)>,
    names: Vec<(&'static str, &'static Counters)>,
    /// The runs in progress ([`RunWindow`]) by number, each with the highest live bytes (exact,
    /// sampled) of every span name (by index - 1) over the stretches that the opening of later
    /// runs ended.
    windows: Vec<(u64, Vec<[i64; 2]>)>,
    /// The number of the last window opened.
    last_window: u64,
}

static NAMES: Mutex<Names> = Mutex::new(Names {
    sites: Vec::new(),
    names: Vec::new(),
    windows: Vec::new(),
    last_window: 0,
});

/// Groups of shards, chosen by the region of address space a block is in ([`REGION_BITS`]),
/// and shards per group, chosen by the block's address.
const GROUPS: usize = 64;
const PER_GROUP: usize = 4;
const SHARDS: usize = GROUPS * PER_GROUP;
/// Regions of 4 MiB: allocators hand each thread regions of its own (glibc's per-thread
/// arenas, mimalloc's per-thread segments, jemalloc's arenas), so a thread's blocks, and its
/// frees of them, stay on the shards of a few groups.
const REGION_BITS: u32 = 22;

/// A block allocated inside a span, on the table.
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// Its span name's counters.
    counters: &'static Counters,
    bytes: i64,
    /// The number of the last run window opened ([`OPENED`]) when it was allocated, or
    /// reallocated.
    stamp: u32,
    /// What a `realloc` carried over from a block of an earlier stamp: its bytes and its
    /// stamp (0 bytes and this block's own stamp for a block allocated afresh). A run from
    /// before that `realloc` retains only what the block grew by since ([`Entry::retained`]).
    carried: i64,
    carried_stamp: u32,
}

impl Entry {
    fn new(counters: &'static Counters, bytes: i64, stamp: u32) -> Self {
        Entry {
            counters,
            bytes,
            stamp,
            carried: 0,
            carried_stamp: stamp,
        }
    }

    /// What the run of window `first` retains of it: nothing of a block from before the
    /// run, all of a block the run allocated, and what a block from before the run grew by
    /// through a `realloc` during it. (A block reallocated again under a later window
    /// carries from that one: a run open across both, which only overlapping runs are,
    /// counts all of the block.)
    fn retained(&self, first: u32) -> i64 {
        if self.stamp < first {
            0
        } else if self.carried_stamp >= first {
            self.bytes
        } else {
            (self.bytes - self.carried).max(0)
        }
    }

    /// The block `self` became through a `realloc` to `bytes`, under window `stamp`.
    fn reallocated(&self, bytes: i64, stamp: u32) -> Self {
        let (carried, carried_stamp) = if self.stamp == stamp {
            (self.carried, self.carried_stamp)
        } else {
            (self.bytes, self.stamp)
        };
        Entry {
            bytes,
            stamp,
            carried,
            carried_stamp,
            ..*self
        }
    }
}

/// Blocks allocated inside a span, by address.
type Table = AddressMap<usize, Entry>;

/// The table's shards, each on a cache line of its own: threads locking neighbouring shards
/// do not share a line.
static TABLE: [Line<Mutex<Option<Table>>>; SHARDS] = [const { Line(Mutex::new(None)) }; SHARDS];

/// `ptr`'s shard: by its region first, so that threads allocating from regions of their own
/// lock shards no other thread writes (measured: threads in different spans, 2 threads, the
/// tightest loop, 16.3x System -> 5.1x, the same as 1 thread, against shards by address
/// alone); by its address within, so that threads sharing a region do not all queue on one
/// lock.
fn shard(ptr: usize) -> &'static Mutex<Option<Table>> {
    let group = address::hash(ptr >> REGION_BITS) as usize % GROUPS;
    &TABLE[group * PER_GROUP + address::hash(ptr) as usize % PER_GROUP]
}

thread_local! {
    /// This thread's lane ([`Lane`]), `u8::MAX` until its first charge. Const, without Drop:
    /// reading it never allocates.
    static LANE: Cell<u8> = const { Cell::new(u8::MAX) };
}

/// Lanes handed out so far, modulo [`LANES`].
static NEXT_LANE: AtomicU32 = AtomicU32::new(0);

impl Counters {
    /// The calling thread's lane.
    fn lane(&self) -> &Lane {
        let lane = LANE
            .try_with(|lane| {
                if lane.get() == u8::MAX {
                    lane.set((NEXT_LANE.fetch_add(1, Relaxed) as usize % LANES) as u8);
                }
                lane.get() as usize
            })
            .unwrap_or(0);
        &self.lanes[lane]
    }

    /// The sum of one counter over the lanes.
    fn sum(&self, counter: impl Fn(&Lane) -> &AtomicI64) -> i64 {
        self.lanes
            .iter()
            .map(|lane| counter(lane).load(Relaxed))
            .fold(0, i64::wrapping_add)
    }
}

/// Count heap per span from now on: every thread goes to the cold path.
pub fn enable() {
    if SPANS_ON.swap(true, SeqCst) {
        return;
    }
    super::disarm_all();
}

/// Estimate heap per span from sampled allocations, one per `interval` bytes allocated on
/// average (or finer while a run samples for attribution): the fast path stays.
pub fn enable_sampled(interval: u64) {
    super::sampled::set_floor(interval.max(1));
    SAMPLED.store(true, SeqCst);
}

/// Whether heap per span is counted, exactly or sampled.
pub fn enabled() -> bool {
    SPANS_ON.load(Relaxed) || SAMPLED.load(Relaxed)
}

/// Whether the exact counters are the ones to report.
fn exact() -> bool {
    SPANS_ON.load(Relaxed)
}

/// The span a block being sampled now is charged to (the address of its counters, 0 for
/// none): the calling thread's, while heap per span is sampled and not exact.
pub(super) fn sampled_span() -> usize {
    if exact() || !SAMPLED.load(Relaxed) {
        return 0;
    }
    current().map_or(0, |c| c as *const Counters as usize)
}

/// The counters at `span` (an address from [`sampled_span`]), if any.
fn at(span: usize) -> Option<&'static Counters> {
    // SAFETY: a non-zero span is the address of leaked (never freed) counters.
    (span != 0).then(|| unsafe { &*(span as *const Counters) })
}

/// A block was sampled in `span`, standing for `weight()`, `(bytes, blocks)`, allocated
/// (computed only for a block in a span: it costs a libm call).
pub(super) fn on_sampled(span: usize, weight: impl FnOnce() -> (f64, f64)) {
    if let Some(c) = at(span) {
        let (bytes, blocks) = weight();
        c.est_allocated_bytes
            .fetch_add(bytes.round() as i64, Relaxed);
        c.est_allocations
            .fetch_add((blocks * ALLOCATION_UNIT).round() as i64, Relaxed);
    }
}

/// The run sampled blocks are stamped with now.
pub(super) fn run() -> u32 {
    RUN.load(Relaxed)
}

/// A sampled block of `span`, allocated in run `run` and standing for `bytes()`, became live
/// (`samples` 1) or was freed (`bytes()` negative, `samples` -1).
pub(super) fn on_sampled_live(span: usize, run: u32, bytes: impl FnOnce() -> f64, samples: i64) {
    if let Some(c) = at(span) {
        let bytes = bytes().round() as i64;
        let live = c.est_live_bytes.fetch_add(bytes, Relaxed) + bytes;
        c.est_peak_bytes.fetch_max(live, Relaxed);
        c.live_samples.fetch_add(samples, Relaxed);
        if run == RUN.load(Relaxed) {
            c.new_samples.fetch_add(samples, Relaxed);
            c.new_bytes.fetch_add(bytes, Relaxed);
        } else {
            c.freed_samples.fetch_sub(samples, Relaxed);
            c.freed_bytes.fetch_sub(bytes, Relaxed);
        }
    }
}

/// The index of the span name of call site `site` (any unique key, e.g. its metadata's
/// address), registering it on first sight.
pub fn index_of(site: usize, name: &'static str) -> u32 {
    untracked(|| {
        let mut names = NAMES.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(&(_, i)) = names.sites.iter().find(|(s, _)| *s == site) {
            return i;
        }
        let (i, counters) = match names.names.iter().position(|(n, _)| *n == name) {
            Some(p) => (p as u32 + 1, names.names[p].1),
            None => {
                let counters: &'static Counters = Box::leak(Box::default());
                names.names.push((name, counters));
                (names.names.len() as u32, counters)
            }
        };
        names.sites.push((site, i));
        remember(site, counters);
        i
    })
}

/// Call sites and their span name's counters, found without a lock when a thread enters a
/// span ([`enter_site`]): open addressing by the site's hash, a pair filled once (its counters
/// first, then its site, released), under the lock of [`NAMES`]. A site that finds no free
/// pair within [`SITE_PROBES`] is looked up under the lock instead.
struct Site {
    site: AtomicUsize,
    at: AtomicUsize,
}

const SITE_PAIRS: usize = 4096;
const SITE_PROBES: usize = 16;
static SITES: [Site; SITE_PAIRS] = [const {
    Site {
        site: AtomicUsize::new(0),
        at: AtomicUsize::new(0),
    }
}; SITE_PAIRS];

/// The pairs `site` may be in, in the order they are tried.
fn site_pairs(site: usize) -> impl Iterator<Item = &'static Site> {
    let first = address::hash(site) as usize;
    (0..SITE_PROBES).map(move |i| &SITES[(first + i) % SITE_PAIRS])
}

/// Remember `site`'s counters (with [`NAMES`] locked: the only writer).
fn remember(site: usize, counters: &'static Counters) {
    for pair in site_pairs(site) {
        match pair.site.load(Relaxed) {
            0 => {
                pair.at.store(counters as *const Counters as usize, Relaxed);
                pair.site.store(site, Release);
                return;
            }
            s if s == site => return,
            _ => {}
        }
    }
}

/// The counters' address of `site`'s span name, if remembered.
fn remembered(site: usize) -> Option<usize> {
    for pair in site_pairs(site) {
        match pair.site.load(Acquire) {
            0 => return None,
            s if s == site => return Some(pair.at.load(Relaxed)),
            _ => {}
        }
    }
    None
}

/// Register call site `site` (named `name`) unless it is known: no lock once it is.
pub fn register(site: usize, name: &'static str) {
    if remembered(site).is_none() {
        index_of(site, name);
    }
}

/// The calling thread entered a span of call site `site` (named `name`), as [`enter`] does,
/// without taking a lock once the site is known.
pub fn enter_site(site: usize, name: &'static str) -> usize {
    match remembered(site) {
        Some(at) => {
            // SAFETY: a remembered address is of leaked (never freed) counters.
            let c = unsafe { &*(at as *const Counters) };
            c.lane().entries.fetch_add(1, Relaxed);
            set_current(at);
            at
        }
        None => enter(index_of(site, name)),
    }
}

fn counters(index: u32) -> Option<&'static Counters> {
    if index == 0 {
        return None;
    }
    let names = NAMES.lock().unwrap_or_else(|e| e.into_inner());
    names.names.get(index as usize - 1).map(|(_, c)| *c)
}

/// The calling thread entered a span of name `index`: its allocations are charged to it until
/// the thread is in another ([`set_current`]). Returns the span name's counters, as
/// [`set_current`] takes them (0 for a name not counted).
///
/// The allocator reads only the span the thread is in; which span an exit returns to, however
/// deep the nesting and in whatever order guards are dropped, the layer keeps
/// (`SpanMemory`'s stack of the spans each thread entered).
pub fn enter(index: u32) -> usize {
    let c = untracked(|| counters(index));
    if let Some(c) = c {
        c.lane().entries.fetch_add(1, Relaxed);
    }
    let at = c.map_or(0, |c| c as *const Counters as usize);
    set_current(at);
    at
}

/// The calling thread is now in the span whose counters [`enter`] returned as `at` (0 for
/// none).
pub fn set_current(at: usize) {
    // The counters themselves: charging an allocation takes no lock.
    let _ = LOCAL.try_with(|l| l.span.set(at));
}

/// The counters of the span the calling thread is in, if any.
fn current() -> Option<&'static Counters> {
    let at = LOCAL
        .try_with(|l| {
            if l.untracked.get() != 0 {
                0
            } else {
                l.span.get()
            }
        })
        .unwrap_or(0);
    if at == 0 {
        return None;
    }
    // A span exited on another thread than this one, which entered it, ends here too.
    let at = match super::span_stack::caught_up() {
        Some(now) => {
            set_current(now);
            now
        }
        None => at,
    };
    // SAFETY: a non-zero entry is the address of leaked (never freed) counters, see `enter`.
    (at != 0).then(|| unsafe { &*(at as *const Counters) })
}

/// An allocation of `bytes` at `ptr` (cold path, counted already).
pub(super) fn on_alloc(ptr: *mut u8, bytes: usize) {
    if let Some(c) = current() {
        untracked(|| charge(c, ptr as usize, bytes as i64));
    }
}

fn charge(c: &'static Counters, ptr: usize, bytes: i64) {
    count_allocation(c, bytes);
    put(ptr, Entry::new(c, bytes, OPENED.load(Relaxed)));
}

fn count_allocation(c: &'static Counters, bytes: i64) {
    let lane = c.lane();
    lane.allocations.fetch_add(1, Relaxed);
    lane.allocated_bytes.fetch_add(bytes, Relaxed);
}

/// Block `entry` at `ptr`: on its span's live bytes (and peak), and in the table.
fn put(ptr: usize, entry: Entry) {
    let (c, bytes) = (entry.counters, entry.bytes);
    let live = c.live_bytes.fetch_add(bytes, Relaxed) + bytes;
    // Most allocations do not raise the peak: a read, not a read-modify-write, of the line.
    if live > c.peak_bytes.load(Relaxed) {
        c.peak_bytes.fetch_max(live, Relaxed);
    }
    let mut table = shard(ptr).lock().unwrap_or_else(|e| e.into_inner());
    let stale = table.get_or_insert_with(Table::default).insert(ptr, entry);
    drop(table);
    // A block freed where frees are not counted (inside `untracked`) stayed on the table: the
    // address, given out again, proves it gone.
    if let Some(was) = stale {
        was.counters.live_bytes.fetch_sub(was.bytes, Relaxed);
    }
}

/// Take `ptr` off its span, if it was allocated in one.
fn take(ptr: usize) -> Option<Entry> {
    let mut table = shard(ptr).lock().unwrap_or_else(|e| e.into_inner());
    let entry = table.as_mut()?.remove(&ptr)?;
    drop(table);
    entry.counters.live_bytes.fetch_sub(entry.bytes, Relaxed);
    Some(entry)
}

/// What the run of window `first` retains of the exact table's blocks, by the address of
/// their span name's counters: a pass over every shard, one lock at a time (a block that a
/// `realloc` on another thread moves between shards meanwhile may be missed or seen twice).
fn retained_since(first: u32) -> AddressMap<usize, i64> {
    let mut by_span = AddressMap::default();
    for shard in &TABLE {
        let table = shard.lock().unwrap_or_else(|e| e.into_inner());
        for entry in table.iter().flat_map(|t| t.values()) {
            let bytes = entry.retained(first);
            if bytes != 0 {
                let key = entry.counters as *const Counters as usize;
                *by_span.entry(key).or_insert(0) += bytes;
            }
        }
    }
    by_span
}

/// A free of `ptr` (cold path).
pub(super) fn on_free(ptr: *mut u8) {
    if LOCAL.try_with(|l| l.untracked.get() != 0).unwrap_or(true) {
        return;
    }
    untracked(|| take(ptr as usize));
}

/// A `realloc` of `old` (of `old_bytes`) to `bytes` that the inner allocator makes in
/// `realloc` (cold path): the block stays with the span that made it (one made outside any
/// span is charged to the span the thread is in, if any, which a run retains only what it
/// grew by: the span did not make the rest). Its entry leaves the table before `realloc` runs: once the
/// inner allocator has freed `old`, another thread may get that address and charge it to its
/// own span first. Should `realloc` fail, the old block, still the caller's, goes back on its
/// span.
pub(super) fn around_realloc(
    old: *mut u8,
    old_bytes: usize,
    bytes: usize,
    realloc: impl FnOnce() -> *mut u8,
) -> *mut u8 {
    if !SPANS_ON.load(Relaxed) || LOCAL.try_with(|l| l.untracked.get() != 0).unwrap_or(true) {
        return realloc();
    }
    let now = current();
    let made_in = untracked(|| take(old as usize));
    let new = realloc();
    untracked(|| match made_in {
        Some(entry) if new.is_null() => put(old as usize, entry),
        Some(entry) => {
            count_allocation(entry.counters, bytes as i64);
            put(
                new as usize,
                entry.reallocated(bytes as i64, OPENED.load(Relaxed)),
            );
        }
        None if new.is_null() => {}
        None => {
            if let Some(c) = now {
                count_allocation(c, bytes as i64);
                let entry = Entry {
                    carried: old_bytes as i64,
                    carried_stamp: 0,
                    ..Entry::new(c, bytes as i64, OPENED.load(Relaxed))
                };
                put(new as usize, entry);
            }
        }
    });
    new
}

/// A `realloc` of `old` (of `old_bytes`) to `new` of `bytes` made while `old` is still
/// allocated (a copy, `old` freed after this).
pub(super) fn on_realloc(old: *mut u8, new: *mut u8, old_bytes: usize, bytes: usize) {
    around_realloc(old, old_bytes, bytes, || new);
}

/// One span name's totals since heap per span was switched on (estimates when sampled).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpanTotals {
    pub name: &'static str,
    pub allocated_bytes: i64,
    pub allocations: i64,
    /// Bytes allocated inside it and still live (their bounds: `live_bytes_bounds`, feature
    /// `tracing`).
    pub live_bytes: i64,
    /// Highest `live_bytes` since the last [`RunWindow::open`] ([`totals`]), or since the
    /// window opened ([`RunWindow::totals`]).
    pub peak_bytes: i64,
    pub entries: i64,
    /// Set when the byte and allocation fields are estimates from sampled blocks.
    pub sampled: Option<SampledTotals>,
}

/// What a sampled span name's estimates rest on: its sampled blocks live, and since the window
/// of runs opened ([`RunWindow`]; the process's start when no run was made) the run's own and
/// the earlier ones freed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampledTotals {
    /// The interval heap per span is sampled at (runs may sample finer meanwhile).
    pub interval: u64,
    /// Sampled blocks allocated inside it and still live, whenever allocated: `live_bytes`
    /// is what they stand for.
    pub live_samples: i64,
    /// Sampled blocks allocated inside it during the run and still live, and the bytes they
    /// stand for.
    pub new_samples: i64,
    pub new_bytes: i64,
    /// Sampled blocks allocated inside it before the run and freed during it, and theirs.
    pub freed_samples: i64,
    pub freed_bytes: i64,
}

/// Every span name's totals, or `None` when spans are not counted.
pub fn totals() -> Option<Vec<SpanTotals>> {
    // Built untracked (under the lock of the names), handed over counted: whoever drops it
    // then frees it consistently.
    totals_in(None).map(super::adopt)
}

/// [`totals`] built and to be dropped untracked: for a run, whose own figures (and the peaks
/// of copies run at once) must not hold them.
pub(crate) fn totals_untracked() -> Option<Vec<SpanTotals>> {
    totals_in(None)
}

/// Every span name's totals, with the peaks of `window` (a [`RunWindow`]'s number) if any,
/// built untracked.
fn totals_in(window: Option<u64>) -> Option<Vec<SpanTotals>> {
    if !enabled() {
        return None;
    }
    let interval = super::sampled::floor().unwrap_or(0);
    let exact = exact();
    Some(untracked(|| {
        let names = NAMES.lock().unwrap_or_else(|e| e.into_inner());
        let ended = window
            .and_then(|id| names.windows.iter().find(|(w, _)| *w == id))
            .map_or(&[][..], |(_, peaks)| &peaks[..]);
        names
            .names
            .iter()
            .enumerate()
            .map(|(i, (name, c))| {
                let load = |counter: &AtomicI64| counter.load(Relaxed);
                let [peak, est_peak] = ended.get(i).copied().unwrap_or([i64::MIN; 2]);
                let entries = c.sum(|lane| &lane.entries);
                if exact {
                    return SpanTotals {
                        name,
                        allocated_bytes: c.sum(|lane| &lane.allocated_bytes),
                        allocations: c.sum(|lane| &lane.allocations),
                        live_bytes: load(&c.live_bytes),
                        // A charge racing `RunWindow::open` may leave the peak below.
                        peak_bytes: load(&c.peak_bytes).max(load(&c.live_bytes)).max(peak),
                        entries,
                        sampled: None,
                    };
                }
                let units = load(&c.est_allocations) as f64;
                SpanTotals {
                    name,
                    allocated_bytes: load(&c.est_allocated_bytes),
                    allocations: (units / ALLOCATION_UNIT).round() as i64,
                    live_bytes: load(&c.est_live_bytes),
                    peak_bytes: load(&c.est_peak_bytes).max(est_peak),
                    entries,
                    sampled: Some(SampledTotals {
                        interval,
                        new_samples: load(&c.new_samples),
                        new_bytes: load(&c.new_bytes),
                        freed_samples: load(&c.freed_samples),
                        freed_bytes: load(&c.freed_bytes),
                        live_samples: load(&c.live_samples),
                    }),
                }
            })
            .collect()
    }))
}

/// A run in progress, from [`RunWindow::open`] to its drop.
///
/// Peaks: opening a run starts a new stretch of every span name's peak (it becomes the live
/// bytes), and each run still open keeps the highest of the stretch that ended, so that a run's
/// peaks ([`RunWindow::totals`]) are the highest over its own time, whatever other runs (other
/// tests of a parallel `cargo test`) open and close meanwhile. This costs the opening a pass
/// over the span names for each run open, and charging an allocation nothing more.
///
/// Sampled, the first of overlapping runs also opens a window of their own: blocks sampled
/// from then on are stamped with a new number, and each span name counts the window's sampled
/// blocks still live and the earlier ones freed (a free racing the opening may be missed).
/// Runs that overlap (copies run at once) share it, so that none wipes another's counts.
pub struct RunWindow {
    /// Its number in [`Names::windows`].
    id: u64,
}

impl RunWindow {
    pub fn open() -> Self {
        untracked(|| {
            let mut guard = NAMES.lock().unwrap_or_else(|e| e.into_inner());
            let Names {
                names,
                windows,
                last_window,
                ..
            } = &mut *guard;
            let first = windows.is_empty();
            if first {
                RUN.fetch_add(1, SeqCst);
            }
            for (i, (_, c)) in names.iter().enumerate() {
                if first {
                    for counter in [
                        &c.new_samples,
                        &c.new_bytes,
                        &c.freed_samples,
                        &c.freed_bytes,
                    ] {
                        counter.store(0, Relaxed);
                    }
                }
                // A swap: a charge raising the peak meanwhile lands in one stretch or the next.
                let ended = [
                    c.peak_bytes.swap(c.live_bytes.load(Relaxed), Relaxed),
                    c.est_peak_bytes
                        .swap(c.est_live_bytes.load(Relaxed), Relaxed),
                ];
                for (_, peaks) in windows.iter_mut() {
                    if peaks.len() <= i {
                        peaks.resize(i + 1, [i64::MIN; 2]);
                    }
                    for (peak, stretch) in peaks[i].iter_mut().zip(ended) {
                        *peak = (*peak).max(stretch);
                    }
                }
            }
            *last_window += 1;
            OPENED.store(*last_window as u32, Relaxed);
            windows.push((*last_window, Vec::new()));
            RunWindow { id: *last_window }
        })
    }

    /// Every span name's totals, its peak the highest since this window opened (`None` when
    /// spans are not counted).
    pub fn totals(&self) -> Option<Vec<SpanTotals>> {
        self.totals_untracked().map(super::adopt)
    }

    /// [`RunWindow::totals`] built and to be dropped untracked.
    pub(crate) fn totals_untracked(&self) -> Option<Vec<SpanTotals>> {
        totals_in(Some(self.id))
    }

    /// Exact heap per span only (`None` otherwise): every span name's bytes allocated inside it
    /// since this window opened and still live, whatever other runs open and close meanwhile.
    /// A pass over the whole side table: for the end of a run.
    pub fn retained(&self) -> Option<Vec<(&'static str, i64)>> {
        self.retained_untracked().map(super::adopt)
    }

    /// [`RunWindow::retained`] built and to be dropped untracked.
    pub(crate) fn retained_untracked(&self) -> Option<Vec<(&'static str, i64)>> {
        if !exact() {
            return None;
        }
        Some(untracked(|| {
            let by_span = retained_since(self.id as u32);
            let names = NAMES.lock().unwrap_or_else(|e| e.into_inner());
            names
                .names
                .iter()
                .map(|&(name, c)| {
                    let key = c as *const Counters as usize;
                    (name, by_span.get(&key).copied().unwrap_or(0))
                })
                .collect()
        }))
    }
}

impl Drop for RunWindow {
    fn drop(&mut self) {
        untracked(|| {
            let mut names = NAMES.lock().unwrap_or_else(|e| e.into_inner());
            names.windows.retain(|(id, _)| *id != self.id);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_put_where_a_stale_one_was_replaces_it() {
        let (a, b): (&'static Counters, &'static Counters) =
            (Box::leak(Box::default()), Box::leak(Box::default()));
        // An address no allocator gives out (odd): the table is only a map here.
        let ptr = 0x7777_0001;
        put(ptr, Entry::new(a, 100, 0));
        put(ptr, Entry::new(b, 40, 0));
        assert_eq!(a.live_bytes.load(SeqCst), 0, "the stale block is gone");
        assert_eq!(b.live_bytes.load(SeqCst), 40);
        assert!(take(ptr).is_some());
        assert_eq!(b.live_bytes.load(SeqCst), 0);
    }

    #[test]
    fn a_run_retains_its_blocks_and_what_older_ones_grew_by() {
        let c: &'static Counters = Box::leak(Box::default());
        // Run windows: 3 opened before the block, 5 after it, 7 after its first realloc.
        let block = Entry::new(c, 1000, 4);
        assert_eq!((block.retained(3), block.retained(5)), (1000, 0));
        // Grown to 1500 under window 5: run 5 retains the growth, run 3 all of it.
        let grown = block.reallocated(1500, 5);
        assert_eq!((grown.retained(3), grown.retained(5)), (1500, 500));
        // Grown again under the same window: still from the 1000 B of before.
        let again = grown.reallocated(1800, 5);
        assert_eq!((again.retained(5), again.retained(6)), (800, 0));
        // Shrunk under window 7: run 7 retains nothing of it.
        let shrunk = again.reallocated(200, 7);
        assert_eq!((shrunk.retained(7), shrunk.retained(8)), (0, 0));
        // A run open across both reallocs counts all of it: the carry is the last one's
        // (documented; only overlapping runs see it).
        assert_eq!(shrunk.retained(5), 200);
    }

    #[test]
    fn a_site_enters_its_names_counters_with_or_without_a_free_pair() {
        // More sites than pairs: the last ones are entered under the lock.
        let name = "sites_test";
        let sites: Vec<usize> = (1..=SITE_PAIRS + 100).map(|i| i * 64 + 1).collect();
        let first = index_of(sites[0], name);
        let at = counters(first).unwrap() as *const Counters as usize;
        for &site in &sites {
            assert_eq!(index_of(site, name), first);
            assert_eq!(enter_site(site, name), at);
        }
        let entries = counters(first).unwrap().sum(|lane| &lane.entries);
        assert_eq!(entries, sites.len() as i64);
        assert!(sites.iter().filter(|&&s| remembered(s).is_some()).count() > SITE_PAIRS / 2);
        set_current(0);
    }

    #[test]
    fn overlapping_runs_share_one_window() {
        let first = RunWindow::open();
        let run = RUN.load(SeqCst);
        let second = RunWindow::open();
        assert_eq!(
            RUN.load(SeqCst),
            run,
            "the second run joins the first one's window"
        );
        drop(first);
        let third = RunWindow::open();
        assert_eq!(RUN.load(SeqCst), run, "still open: the second run goes on");
        drop((second, third));
        let next = RunWindow::open();
        assert_eq!(RUN.load(SeqCst), run + 1, "all closed: a new window");
        drop(next);
    }
}
