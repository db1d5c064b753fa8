// Owns `Sample`, the one record everything downstream reads, and taking one (heap + probe).
// Must never allocate while sampling: it runs between a workload's iterations.

use serde::{Deserialize, Serialize};

use crate::alloc::{self, HeapCounters, Untracked};
use crate::probe::{Probe, ProcessStats};

/// The state of the process at one iteration boundary. A field that could not be measured is
/// `None` (JSON `null`), never 0.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Iterations completed when the sample was taken; 0 is the state before the first one.
    pub iteration: u32,
    /// Iterations this sample covers: 1, unless a very long run merged neighbours to stay
    /// within its memory bound (then per-iteration fields are means over the span and the
    /// peak is the highest within it).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub span: u32,
    /// Milliseconds since the run started (after setup).
    pub elapsed_ms: f64,
    /// Live heap bytes of the process (null without `profiler::Alloc`).
    pub heap_bytes: Option<i64>,
    /// Live heap blocks (allocations not yet freed).
    pub heap_blocks: Option<i64>,
    /// Peak of live heap bytes during this iteration.
    pub heap_peak_bytes: Option<i64>,
    /// Bytes allocated during this iteration (freed or not).
    pub allocated_bytes: Option<i64>,
    /// Allocations made during this iteration.
    pub allocations: Option<i64>,
    /// Resident set size of the process.
    pub rss_bytes: Option<u64>,
    /// The part of `rss_bytes` that is pages of mapped files (the kernel's `RssFile`: code,
    /// libraries, files read through mmap), which the kernel drops and reads again at will.
    /// The RSS verdict judges `rss_bytes` without them. Null where it cannot be read.
    #[serde(default)]
    pub rss_file_bytes: Option<u64>,
    /// Virtual memory size of the process.
    pub vsize_bytes: Option<u64>,
    /// Open file descriptors (handles) of the process.
    pub fds: Option<u64>,
    /// Threads of the process, the profiler's own excluded.
    pub threads: Option<u64>,
    /// Wall time of this iteration (null for iteration 0).
    pub duration_ms: Option<f64>,
    /// CPU time (user + system) of the process during this iteration (null for iteration 0).
    pub cpu_ms: Option<f64>,
}

impl Sample {
    /// RSS as the verdict judges it: without the pages of mapped files (`rss_file_bytes`),
    /// that is the kernel's anonymous and shared-memory pages; all of RSS where the file pages
    /// are unknown.
    pub fn judged_rss(&self) -> Option<f64> {
        judged_rss(self.rss_bytes, self.rss_file_bytes)
    }

    /// The lower of `self`'s and `other`'s heap bytes, blocks, RSS, fds and threads, each on
    /// its own (the floor of a look at the process over a while); the rest is `self`'s. RSS
    /// and judged RSS (without file pages) are each the lower one; the file pages are what
    /// lies between them.
    pub(crate) fn floor(self, other: &Sample) -> Sample {
        fn lower<T: Ord + Copy>(a: Option<T>, b: Option<T>) -> Option<T> {
            match (a, b) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        }
        let rss_bytes = lower(self.rss_bytes, other.rss_bytes);
        let judged = lower(
            self.judged_rss().map(|r| r as u64),
            other.judged_rss().map(|r| r as u64),
        );
        let rss_file_bytes = match (rss_bytes, judged) {
            (Some(rss), Some(judged)) if self.rss_file_bytes.is_some() => {
                Some(rss.saturating_sub(judged))
            }
            _ => self.rss_file_bytes,
        };
        Sample {
            heap_bytes: lower(self.heap_bytes, other.heap_bytes),
            heap_blocks: lower(self.heap_blocks, other.heap_blocks),
            rss_bytes,
            rss_file_bytes,
            fds: lower(self.fds, other.fds),
            threads: lower(self.threads, other.threads),
            ..self
        }
    }
}

impl Default for Sample {
    /// Iteration 0, span 1, nothing measured.
    fn default() -> Self {
        Sample {
            iteration: 0,
            span: 1,
            elapsed_ms: 0.0,
            heap_bytes: None,
            heap_blocks: None,
            heap_peak_bytes: None,
            allocated_bytes: None,
            allocations: None,
            rss_bytes: None,
            rss_file_bytes: None,
            vsize_bytes: None,
            fds: None,
            threads: None,
            duration_ms: None,
            cpu_ms: None,
        }
    }
}

/// `rss` less `file` (the pages of mapped files), or all of `rss` where `file` is unknown.
pub(crate) fn judged_rss(rss: Option<u64>, file: Option<u64>) -> Option<f64> {
    Some(rss?.saturating_sub(file.unwrap_or(0)) as f64)
}

fn one() -> u32 {
    1
}

fn is_one(v: &u32) -> bool {
    *v == 1
}

/// The metrics a verdict is given for, in the order reports show them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    HeapBytes,
    HeapBlocks,
    RssBytes,
    Fds,
    Threads,
}

impl Metric {
    pub const ALL: [Metric; 5] = [
        Metric::HeapBytes,
        Metric::HeapBlocks,
        Metric::RssBytes,
        Metric::Fds,
        Metric::Threads,
    ];

    /// The JSON name, as in `metrics.<name>`.
    pub fn name(self) -> &'static str {
        match self {
            Metric::HeapBytes => "heap_bytes",
            Metric::HeapBlocks => "heap_blocks",
            Metric::RssBytes => "rss_bytes",
            Metric::Fds => "fds",
            Metric::Threads => "threads",
        }
    }

    /// Does a leak of this metric fail the run? RSS only warns (allocator arenas, fragmentation).
    pub fn gates(self) -> bool {
        self != Metric::RssBytes
    }

    /// Measured in bytes (formatted as KiB/MiB) rather than a count.
    pub fn is_bytes(self) -> bool {
        matches!(self, Metric::HeapBytes | Metric::RssBytes)
    }

    /// This metric's value in a sample.
    pub fn of(self, s: &Sample) -> Option<f64> {
        match self {
            Metric::HeapBytes => s.heap_bytes.map(|v| v as f64),
            Metric::HeapBlocks => s.heap_blocks.map(|v| v as f64),
            Metric::RssBytes => s.judged_rss(),
            Metric::Fds => s.fds.map(|v| v as f64),
            Metric::Threads => s.threads.map(|v| v as f64),
        }
    }
}

impl std::fmt::Display for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Metric {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Metric::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| format!("unknown metric '{s}'"))
    }
}

/// Whose allocations the heap metrics count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scope {
    /// Every thread of the process (the default). Exact when nothing else runs in the
    /// process: a binary, `cargo nextest`, `cargo test -- --test-threads=1`, or
    /// [`Profiler::isolated`](crate::Profiler::isolated).
    #[default]
    Process,
    /// Only the calling thread: what it allocates and frees. Safe beside other tests running
    /// in parallel threads of the same process; blind to threads the workload spawns and to
    /// memory they free for it. fds and threads stay process-wide.
    Thread,
}

/// Takes samples of the current process: heap counters, probe, clocks.
pub(crate) struct Sampler {
    probe: Probe,
    scope: Scope,
    /// Thread scope: the thread's counters at the first sample, subtracted from every read.
    origin: Option<HeapCounters>,
    start: std::time::Instant,
    last_heap: Option<HeapCounters>,
    last_time: std::time::Instant,
    last_cpu_ms: Option<f64>,
    /// When the iteration in progress began, and the process's CPU time then: set by
    /// [`Sampler::begin`] right before the workload runs, so that an iteration's time is its
    /// own, not the profiler's sampling after it.
    began: Option<(std::time::Instant, Option<f64>)>,
    /// When it ended, if [`Sampler::end`] was called (before waiting for a quiet point).
    ended: Option<(std::time::Instant, Option<f64>)>,
    /// Threads the profiler itself runs (sampler, progress), subtracted from the count.
    own_threads: u64,
    /// Descriptors the profiler itself holds open, subtracted from the count.
    own_fds: u64,
    /// Thread scope: what the process's other threads held (live bytes, blocks) at the first
    /// sample, and whether that ever changed at a later one.
    others: Option<(i64, i64)>,
    others_moved: bool,
    /// Process scope beside other tests: the sampling thread's own live bytes and blocks at
    /// each boundary, `(iteration, bytes, blocks)` (see [`Sampler::watch_own_thread`]).
    own: Option<Untracked<Vec<(u32, i64, i64)>>>,
}

/// At most this many boundaries of the own thread are kept (a run that long was thinned, and
/// its samples no longer match them one to one).
const MAX_OWN: usize = 1 << 16;

impl Sampler {
    pub(crate) fn new(probe: Probe, scope: Scope, start: std::time::Instant) -> Self {
        Sampler {
            probe,
            scope,
            origin: None,
            start,
            last_heap: None,
            last_time: start,
            last_cpu_ms: None,
            began: None,
            ended: None,
            own_threads: 0,
            own_fds: 0,
            others: None,
            others_moved: false,
            own: None,
        }
    }

    /// In process scope, also keep the sampling thread's own live heap at every boundary and
    /// note whether the other threads' heap moved: beside other tests, their allocations
    /// can hide a leak of this thread's in the process's counters (see
    /// [`Sampler::own_thread`]).
    pub(crate) fn watch_own_thread(&mut self) {
        if self.scope == Scope::Process {
            self.own = Some(Untracked::make(|| Vec::with_capacity(256)));
        }
    }

    /// What [`Sampler::watch_own_thread`] kept, if it was asked for.
    pub(crate) fn own_thread(&mut self) -> Option<Untracked<Vec<(u32, i64, i64)>>> {
        self.own.take()
    }

    /// An iteration starts now (two clock reads, no allocation).
    pub(crate) fn begin(&mut self) {
        // CPU time first (a system call), then the wall clock: the call is not in the time.
        let cpu = crate::probe::own_cpu_ms();
        self.began = Some((std::time::Instant::now(), cpu));
    }

    /// Descriptors the profiler holds open itself, left out of `fds` like its threads.
    pub(crate) fn set_own_fds(&mut self, n: u64) {
        self.own_fds = n;
    }

    pub(crate) fn set_own_threads(&mut self, n: u64) {
        self.own_threads = n;
    }

    /// The iteration in progress ended now: its clocks stop here, whatever the profiler does
    /// before the boundary sample (waiting for a quiet point).
    pub(crate) fn end(&mut self) {
        let now = std::time::Instant::now();
        self.ended = Some((now, crate::probe::own_cpu_ms()));
    }

    /// A boundary sample: deltas since the previous boundary, then a new peak window.
    pub(crate) fn boundary(&mut self, iteration: u32) -> Sample {
        // The clocks first: what follows is the profiler's own work.
        let began = self.began.take();
        let (now, cpu_now) = match self.ended.take() {
            Some(ended) => ended,
            None => {
                let now = std::time::Instant::now();
                (now, began.and_then(|_| crate::probe::own_cpu_ms()))
            }
        };
        let heap = self.heap();
        if let (Some(own), Some(all), Some(mine)) = (self.own.as_mut(), heap, alloc::thread_heap())
        {
            let others = (
                all.live_bytes - mine.live_bytes,
                all.live_blocks - mine.live_blocks,
            );
            self.others_moved |= *self.others.get_or_insert(others) != others;
            if own.len() < MAX_OWN {
                own.with_mut(|v| v.push((iteration, mine.live_bytes, mine.live_blocks)));
            }
        }
        let stats = self.probe.read();
        let first = iteration == 0;
        let delta = |f: fn(&HeapCounters) -> i64| match (heap.as_ref(), self.last_heap.as_ref()) {
            (Some(h), Some(prev)) if !first => Some(f(h) - f(prev)),
            _ => None,
        };
        let sample = Sample {
            iteration,
            elapsed_ms: ms(now - self.start),
            heap_bytes: heap.map(|h| h.live_bytes),
            heap_blocks: heap.map(|h| h.live_blocks),
            heap_peak_bytes: if first {
                None
            } else {
                heap.map(|h| h.peak_bytes)
            },
            allocated_bytes: delta(|h| h.allocated_bytes),
            allocations: delta(|h| h.allocations),
            duration_ms: match began {
                _ if first => None,
                Some((at, _)) => Some(ms(now.saturating_duration_since(at))),
                None => Some(ms(now - self.last_time)),
            },
            cpu_ms: match (began, cpu_now) {
                _ if first => None,
                (Some((_, Some(from))), Some(to)) => Some((to - from).max(0.0)),
                _ => match (stats.cpu_ms, self.last_cpu_ms) {
                    (Some(c), Some(prev)) => Some((c - prev).max(0.0)),
                    _ => None,
                },
            },
            ..self.process_fields(stats)
        };
        self.last_heap = heap;
        self.last_time = now;
        self.last_cpu_ms = stats.cpu_ms;
        match self.scope {
            Scope::Process => alloc::reset_peak(),
            Scope::Thread => alloc::reset_thread_peak(),
        }
        sample
    }

    /// The heap, RSS, fds and threads now, between boundaries: no deltas, no new peak window
    /// (for a look at what the process holds once the iterations stopped).
    pub(crate) fn now(&mut self, iteration: u32) -> Sample {
        let heap = self.heap();
        let stats = self.probe.read();
        Sample {
            iteration,
            elapsed_ms: ms(self.start.elapsed()),
            heap_bytes: heap.map(|h| h.live_bytes),
            heap_blocks: heap.map(|h| h.live_blocks),
            ..self.process_fields(stats)
        }
    }

    /// Thread scope (or process scope watching its own thread): whether other threads of the
    /// process allocated or freed memory that they still hold (or no longer hold) between two
    /// samples. A thread the workload spawns
    /// or hands work to does (at the least, it frees the spawn's or the message's memory);
    /// so do other tests running beside it. Either way this scope cannot tell whose it is.
    pub(crate) fn saw_other_threads(&self) -> bool {
        self.others_moved
    }

    /// Heap counters in this sampler's scope (thread scope: relative to the first read).
    fn heap(&mut self) -> Option<HeapCounters> {
        match self.scope {
            Scope::Process => alloc::heap(),
            Scope::Thread => {
                let now = alloc::thread_heap()?;
                if let Some(all) = alloc::heap() {
                    let others = (
                        all.live_bytes - now.live_bytes,
                        all.live_blocks - now.live_blocks,
                    );
                    self.others_moved |= *self.others.get_or_insert(others) != others;
                }
                let origin = *self.origin.get_or_insert(now);
                Some(HeapCounters {
                    live_bytes: now.live_bytes - origin.live_bytes,
                    live_blocks: now.live_blocks - origin.live_blocks,
                    allocations: now.allocations - origin.allocations,
                    allocated_bytes: now.allocated_bytes - origin.allocated_bytes,
                    peak_bytes: now.peak_bytes - origin.live_bytes,
                })
            }
        }
    }

    fn process_fields(&self, stats: ProcessStats) -> Sample {
        Sample {
            rss_bytes: stats.rss_bytes,
            rss_file_bytes: stats.rss_file_bytes,
            vsize_bytes: stats.vsize_bytes,
            fds: stats.fds.map(|f| f.saturating_sub(self.own_fds)),
            threads: stats.threads.map(|t| t.saturating_sub(self.own_threads)),
            ..Sample::default()
        }
    }
}

/// Milliseconds of a duration, as a float.
pub(crate) fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The floor of two looks keeps the lower RSS and the lower judged RSS (without file
    /// pages), each on its own, even when they come from different looks.
    #[test]
    fn the_floor_of_rss_and_of_judged_rss_are_each_the_lower() {
        let look = |rss: u64, file: u64| Sample {
            rss_bytes: Some(rss),
            rss_file_bytes: Some(file),
            ..Sample::default()
        };
        // The first has more RSS but less of it anonymous.
        let floor = look(100 << 20, 90 << 20).floor(&look(80 << 20, 40 << 20));
        assert_eq!(floor.rss_bytes, Some(80 << 20));
        assert_eq!(floor.judged_rss(), Some((10u64 << 20) as f64));
        assert_eq!(floor.rss_file_bytes, Some(70 << 20));
        // Without file pages known, judged RSS is RSS.
        let plain = Sample {
            rss_bytes: Some(4096),
            ..Sample::default()
        };
        assert_eq!(plain.judged_rss(), Some(4096.0));
        assert_eq!(plain.floor(&plain).rss_file_bytes, None);
    }
}
