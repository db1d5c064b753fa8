// Owns heap per span: which span each thread is in, the counters of each span name, and the
// side table of blocks allocated inside a span (no header in the block). Must never run on the
// allocator's fast path: while spans are on, every call takes the cold path, which calls here.

//! Heap per span (see `profiler::SpanMemory`, feature `tracing`).
//!
//! Switching it on ([`enable`]) sends every thread's allocator calls to the cold path for the
//! rest of the process (exact, and slower: measured in the README). There, an allocation made
//! while the thread is inside a span (the innermost entered one) is charged to that span's
//! name and its address recorded in a side table with the span and its size; a free or a
//! `realloc` of a recorded block takes it off its span, wherever and whenever it happens. A
//! `realloc` stays with the span that made the block. The table is sharded by address, each
//! shard behind its own lock, and lives in untracked memory, so it never shows in the counts.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering::*};

use super::{LOCAL, untracked};

/// Set once spans are counted: the fast path is never used again.
pub(super) static SPANS_ON: AtomicBool = AtomicBool::new(false);

/// Deepest nesting of spans a thread's stack keeps; deeper ones are charged to the 16th.
pub(super) const MAX_DEPTH: usize = 16;

/// The counters of one span name (all its call sites, all threads).
#[derive(Debug, Default)]
struct Counters {
    allocated_bytes: AtomicI64,
    allocations: AtomicI64,
    live_bytes: AtomicI64,
    peak_bytes: AtomicI64,
    entries: AtomicI64,
}

/// Span names by index (index 0 is "no span"); counters are leaked, never freed.
struct Names {
    /// (call site key, name index) for fast lookup of a call site seen before.
    sites: Vec<(usize, u32)>,
    names: Vec<(&'static str, &'static Counters)>,
}

static NAMES: Mutex<Names> = Mutex::new(Names {
    sites: Vec::new(),
    names: Vec::new(),
});

const SHARDS: usize = 64;

/// Blocks allocated inside a span: address -> (its span's counters, bytes).
type Table = HashMap<usize, (&'static Counters, i64)>;
static TABLE: [Mutex<Option<Table>>; SHARDS] = [const { Mutex::new(None) }; SHARDS];

fn shard(ptr: usize) -> &'static Mutex<Option<Table>> {
    &TABLE[(ptr >> 4).wrapping_mul(0x9E37_79B9) % SHARDS]
}

/// Count heap per span from now on: every thread goes to the cold path.
pub fn enable() {
    if SPANS_ON.swap(true, SeqCst) {
        return;
    }
    super::disarm_all();
}

/// Whether heap per span is counted.
pub fn enabled() -> bool {
    SPANS_ON.load(Relaxed)
}

/// The index of the span name of call site `site` (any unique key, e.g. its metadata's
/// address), registering it on first sight.
pub fn index_of(site: usize, name: &'static str) -> u32 {
    untracked(|| {
        let mut names = NAMES.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(&(_, i)) = names.sites.iter().find(|(s, _)| *s == site) {
            return i;
        }
        let i = match names.names.iter().position(|(n, _)| *n == name) {
            Some(p) => p as u32 + 1,
            None => {
                let counters: &'static Counters = Box::leak(Box::default());
                names.names.push((name, counters));
                names.names.len() as u32
            }
        };
        names.sites.push((site, i));
        i
    })
}

fn counters(index: u32) -> Option<&'static Counters> {
    if index == 0 {
        return None;
    }
    let names = NAMES.lock().unwrap_or_else(|e| e.into_inner());
    names.names.get(index as usize - 1).map(|(_, c)| *c)
}

/// The calling thread enters span name `index`: its allocations are charged to it until the
/// matching [`exit`].
pub fn enter(index: u32) {
    let c = untracked(|| counters(index));
    if let Some(c) = c {
        c.entries.fetch_add(1, Relaxed);
    }
    // The stack holds the counters themselves: charging an allocation takes no lock.
    let at = c.map_or(0, |c| c as *const Counters as usize);
    let _ = LOCAL.try_with(|l| {
        let depth = l.span_depth.get() as usize;
        if depth < MAX_DEPTH {
            let mut stack = l.span_stack.get();
            stack[depth] = at;
            l.span_stack.set(stack);
        }
        l.span_depth.set((depth + 1).min(u8::MAX as usize) as u8);
    });
}

/// The calling thread leaves its innermost span.
pub fn exit() {
    let _ = LOCAL.try_with(|l| {
        let depth = l.span_depth.get().saturating_sub(1);
        l.span_depth.set(depth);
    });
}

/// The counters of the span the calling thread is in, if any.
fn current() -> Option<&'static Counters> {
    let at = LOCAL
        .try_with(|l| {
            let depth = l.span_depth.get() as usize;
            if depth == 0 || l.untracked.get() != 0 {
                0
            } else {
                l.span_stack.get()[depth.min(MAX_DEPTH) - 1]
            }
        })
        .unwrap_or(0);
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
    c.allocations.fetch_add(1, Relaxed);
    c.allocated_bytes.fetch_add(bytes, Relaxed);
    let live = c.live_bytes.fetch_add(bytes, Relaxed) + bytes;
    c.peak_bytes.fetch_max(live, Relaxed);
    let mut table = shard(ptr).lock().unwrap_or_else(|e| e.into_inner());
    table
        .get_or_insert_with(HashMap::new)
        .insert(ptr, (c, bytes));
}

/// Take `ptr` off its span, if it was allocated in one: the span's counters.
fn take(ptr: usize) -> Option<&'static Counters> {
    let mut table = shard(ptr).lock().unwrap_or_else(|e| e.into_inner());
    let (c, bytes) = table.as_mut()?.remove(&ptr)?;
    drop(table);
    c.live_bytes.fetch_sub(bytes, Relaxed);
    Some(c)
}

/// A free of `ptr` (cold path).
pub(super) fn on_free(ptr: *mut u8) {
    if LOCAL.try_with(|l| l.untracked.get() != 0).unwrap_or(true) {
        return;
    }
    untracked(|| take(ptr as usize));
}

/// A `realloc` of `old` to `new` of `bytes` (cold path): the block stays with the span that
/// made it; one made outside any span is charged to the current span, if any.
pub(super) fn on_realloc(old: *mut u8, new: *mut u8, bytes: usize) {
    let now = current();
    if LOCAL.try_with(|l| l.untracked.get() != 0).unwrap_or(true) {
        return;
    }
    untracked(|| {
        if let Some(c) = take(old as usize).or(now) {
            charge(c, new as usize, bytes as i64);
        }
    });
}

/// One span name's totals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpanTotals {
    pub name: &'static str,
    pub allocated_bytes: i64,
    pub allocations: i64,
    /// Bytes allocated inside it and still live.
    pub live_bytes: i64,
    /// Highest `live_bytes` since the last [`reset_peaks`].
    pub peak_bytes: i64,
    pub entries: i64,
}

/// Every span name's totals, or `None` when spans are not counted.
pub fn totals() -> Option<Vec<SpanTotals>> {
    if !enabled() {
        return None;
    }
    Some(untracked(|| {
        let names = NAMES.lock().unwrap_or_else(|e| e.into_inner());
        names
            .names
            .iter()
            .map(|(name, c)| SpanTotals {
                name,
                allocated_bytes: c.allocated_bytes.load(Relaxed),
                allocations: c.allocations.load(Relaxed),
                live_bytes: c.live_bytes.load(Relaxed),
                peak_bytes: c.peak_bytes.load(Relaxed),
                entries: c.entries.load(Relaxed),
            })
            .collect()
    }))
}

/// Start a new peak window for every span name: its peak becomes its live bytes.
pub fn reset_peaks() {
    untracked(|| {
        let names = NAMES.lock().unwrap_or_else(|e| e.into_inner());
        for (_, c) in &names.names {
            c.peak_bytes.store(c.live_bytes.load(Relaxed), Relaxed);
        }
    });
}
