// Owns sampled attribution: the sampling rate of a run (chosen per iteration within a cost
// budget, raised while a leak is being confirmed) and the leaking call sites estimated from
// the sampled blocks still live at its end. Must never take a sample itself: the allocator does.

//! Where is it leaking, from the run itself.
//!
//! While a run with `--attribute` goes, `profiler::Alloc` samples allocations by bytes (see
//! `alloc::sampled`) and keeps a backtrace for each sampled block until it is freed. This
//! module chooses the mean interval, iteration by iteration:
//!
//! - **Looking** (until a leak is suspected): sampling may take about [`LOOK_BUDGET`] of an
//!   iteration's time, at least one and at most [`LOOK_SAMPLES_MAX`] samples per iteration,
//!   from the bytes the last iteration allocated and the measured cost of a sample.
//! - **Confirming** (the engine runs on from N to 2N iterations because the heap seems to
//!   leak): the interval drops so that the suspected leak itself, at the slope the counters
//!   measured, is sampled about [`CONFIRM_SAMPLES`] times over the confirmation, within
//!   [`CONFIRM_SAMPLES_MAX`] samples per iteration; past [`MAX_LIVE_SAMPLES`] sampled blocks
//!   live, the interval grows fourfold per iteration. A small leak under heavy churn is found
//!   this way; the cost falls on runs that leak.
//!
//! At the end, the sampled blocks still live that were born after warm-up are grouped by the
//! first frames of your code. A site that leaked one block of `b` bytes per iteration would
//! leave `E(b)` sampled blocks expected over the window (the sum over its iterations of the
//! probability of sampling `b` bytes at that iteration's interval), so each of its samples
//! stands for `1 / E(b)` blocks and `b / E(b)` bytes per iteration: the site's estimates
//! are those sums (a ratio estimator that stays fair when the rate changes mid-window), and
//! its 95% bounds come from the Poisson count of its samples. A site leaks when it has at least
//! [`MIN_SITE_SAMPLES`] samples and they are spread over the window the way a steady leak's
//! are: born in at least three iterations, in both halves of the window, in shares (expected
//! from each half's sampling rates) that a binomial test does not reject at 1%. A buffer or a cache that turns over keeps only its recent blocks (all in the
//! second half) and is not named.
//!
//! **Against the counters.** When the exact counters judged the heap clean, a site whose
//! lower bound exceeds twice the heap's 95% upper bound of growth (plus 64 B) is dropped: its
//! recent blocks are balanced by older ones being freed (a cache turning over slowly).
//!
//! **Regrown sites.** A container that grows by reallocation (a `Vec` or a set doubling its
//! table) or an arena adding ever larger chunks keeps a few large blocks, born whenever it
//! last grew: never steady. A block so large for the interval it was sampled at that it was
//! certain to be sampled ([`CERTAIN`]) is counted as such; when the heap's verdict is a leak
//! and one site's certain blocks born in the window hold at least half of what the heap grew
//! by over the window (and at most 2.5 times it: a buffer merely replaced by one as large is
//! not growth), that site is named too, as `regrown`, its bytes spread over the
//! window's iterations.

use std::collections::HashMap;
use std::time::Instant;

use super::{Frame, resolve_stack, shown_backtrace, site_key, user_frames};
use crate::alloc::{sampled, untracked};
use crate::model::{AttributionInfo, LeakSite, Run, Verdict};
use crate::sample::Metric;
use crate::stats::{binomial_two_sided, poisson_bounds, weighted_poisson_bounds};

/// Sampling probability from which a block counts as certain to have been sampled.
pub const CERTAIN: f64 = 0.99;
/// Mean interval in bytes before the first iteration has been measured.
const FIRST_INTERVAL: u64 = 256 * 1024;
/// The smallest interval ever used.
const MIN_INTERVAL: u64 = 64;
/// The largest interval used while looking.
const MAX_INTERVAL: u64 = 64 * 1024 * 1024;
/// Share of an iteration's time sampling may take while looking.
pub const LOOK_BUDGET: f64 = 0.03;
/// Most samples per iteration while looking.
pub const LOOK_SAMPLES_MAX: f64 = 256.0;
/// Samples of the suspected leak wanted over a confirmation.
pub const CONFIRM_SAMPLES: f64 = 48.0;
/// Most samples per iteration while confirming.
pub const CONFIRM_SAMPLES_MAX: f64 = 20_000.0;
/// Sampled blocks live beyond which a confirmation samples less.
pub const MAX_LIVE_SAMPLES: f64 = 50_000.0;
/// Fewest samples a site must have to be named.
pub const MIN_SITE_SAMPLES: u64 = 4;
/// Room made in the side table before a run's first sample: sampled blocks live at once, and
/// distinct backtraces.
const RESERVED_BLOCKS: usize = 4096;
const RESERVED_STACKS: usize = 1024;
/// What a sample is assumed to cost before one was timed.
const DEFAULT_SAMPLE_NS: f64 = 5_000.0;

/// Epochs handed to runs: each run stamps its iteration n with `base + n`.
static NEXT_BASE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1 << 32);

/// The sampling of one run in this process.
pub struct Sampling {
    /// This run's epoch of iteration 0.
    base: u64,
    /// Interval in effect during iteration n, at index n - 1.
    intervals: Vec<u64>,
    current: u64,
    confirming: bool,
    /// Bytes the last measured iteration allocated.
    last_allocated: f64,
    /// Samples and their time before the run.
    cost_before: (u64, std::time::Duration),
}

impl Sampling {
    /// Start sampling (at [`FIRST_INTERVAL`] until the first iteration is measured).
    pub fn start() -> Self {
        // Resident before the first sample, so that sampling does not step RSS.
        sampled::reserve(RESERVED_BLOCKS, RESERVED_STACKS);
        sampled::set_interval(Some(FIRST_INTERVAL));
        sampled::set_epoch(0);
        let base = NEXT_BASE.fetch_add(1 << 32, std::sync::atomic::Ordering::Relaxed);
        Sampling {
            base,
            intervals: untracked(|| Vec::with_capacity(64)),
            current: FIRST_INTERVAL,
            confirming: false,
            last_allocated: 0.0,
            cost_before: sampled::cost(),
        }
    }

    /// Iteration `n` begins.
    pub fn begin(&mut self, n: u32) {
        sampled::set_epoch(self.base + u64::from(n));
        // The interval in force: finer than ours while heap per span is sampled finer.
        let interval = sampled::interval().unwrap_or(self.current);
        untracked(|| self.intervals.push(interval));
    }

    /// The iteration in progress ended. What is allocated between iterations (the toolkit's
    /// own tracked work, such as the report) is stamped 0: never in the window.
    pub fn end(&mut self) {
        sampled::set_epoch(0);
    }

    /// The boundary sample measured the iteration: `allocated_bytes` in `duration_ms`.
    /// Choose the interval for the next one.
    pub fn measured(&mut self, allocated_bytes: Option<i64>, duration_ms: Option<f64>) {
        let (Some(allocated), Some(ms)) = (allocated_bytes, duration_ms) else {
            return;
        };
        let (bytes, nanos) = (allocated.max(0) as f64, ms * 1e6);
        self.last_allocated = bytes;
        if !self.confirming {
            let samples = (LOOK_BUDGET * nanos / self.sample_ns()).clamp(1.0, LOOK_SAMPLES_MAX);
            self.set((bytes / samples) as u64, MAX_INTERVAL);
        } else if sampled::live_count() as f64 > MAX_LIVE_SAMPLES {
            // The workload keeps more sampled blocks than the table should hold: sample less.
            self.set(self.current.saturating_mul(4), MAX_INTERVAL);
        }
    }

    /// The engine runs on for `iterations` more to confirm a leak of `bytes_per_iteration`
    /// (heap bytes' slope; for a leak of blocks alone, a floor of 16 B per block): sample it
    /// often enough to name its site.
    pub fn confirm(&mut self, bytes_per_iteration: f64, iterations: u32) {
        if bytes_per_iteration <= 0.0 || iterations == 0 {
            return;
        }
        self.confirming = true;
        let wanted = bytes_per_iteration * f64::from(iterations) / CONFIRM_SAMPLES;
        let interval = wanted.max(self.last_allocated / CONFIRM_SAMPLES_MAX) as u64;
        if interval < self.current {
            self.set(interval, self.current);
        }
    }

    fn set(&mut self, interval: u64, max: u64) {
        let interval = interval.clamp(MIN_INTERVAL, max.max(MIN_INTERVAL));
        if interval != self.current {
            self.current = interval;
            sampled::set_interval(Some(interval));
        }
    }

    /// Measured cost of one sample (ns), or the default before any.
    fn sample_ns(&self) -> f64 {
        let (n, time) = sampled::cost();
        let n = n - self.cost_before.0;
        if n < 8 {
            return DEFAULT_SAMPLE_NS;
        }
        (time - self.cost_before.1).as_nanos() as f64 / n as f64
    }

    /// Stop sampling and name the sites that leak in `run` (judged: its warm-up and verdicts
    /// are known). With `only_if_growing`, no site is named unless the heap grows.
    pub fn finish(self, run: &Run, only_if_growing: bool) -> (Vec<LeakSite>, AttributionInfo) {
        sampled::set_interval(None);
        let blocks = sampled::live();
        let stacks = sampled::stacks();
        let (taken, time) = sampled::cost();
        let info = AttributionInfo {
            method: "sampled".into(),
            interval_bytes: self
                .intervals
                .iter()
                .min()
                .zip(self.intervals.iter().max())
                .map(|(lo, hi)| [*lo, *hi]),
            samples: Some(taken - self.cost_before.0),
            sampling_ms: Some((time - self.cost_before.1).as_secs_f64() * 1e3),
            passes: Vec::new(),
            dhat_file: None,
            slowdown: None,
            cross_check: None,
        };
        let sites = if only_if_growing && !run.heap_grows() {
            Vec::new()
        } else {
            let window = Window::new(&self.intervals, run.warmup + 1, run.iterations);
            let own: Vec<(u32, sampled::Block)> = untracked(|| {
                blocks
                    .iter()
                    .filter(|b| b.born > self.base && b.born - self.base <= u64::from(u32::MAX))
                    .map(|b| ((b.born - self.base) as u32, *b))
                    .collect()
            });
            let started = Instant::now();
            let clean = clean_heap_bound(run);
            let mut sites = leaking_sites(&own, &stacks, &window, heap_growth(run, &window), clean);
            sites.retain(|site| within(site, clean));
            tracing::debug!(
                "{}: {} sampled blocks of this run live, {} sites, found in {:.1} ms",
                run.workload,
                own.len(),
                sites.len(),
                started.elapsed().as_secs_f64() * 1e3
            );
            untracked(move || drop(own));
            sites
        };
        untracked(move || drop((blocks, stacks, self.intervals)));
        (sites, info)
    }
}

/// Whether `site` is consistent with the heap's own verdict: when the exact counters judged
/// the heap clean, with a 95% upper bound `hi` on its growth per iteration, a site whose
/// lower bound is above `2 hi + 64 B` is not retaining memory in proportion to the
/// iterations: older blocks are freed meanwhile (a cache turning over slowly, whose recent
/// blocks look born steadily within one window).
fn within(site: &LeakSite, clean_bound: Option<f64>) -> bool {
    match (clean_bound, site.bytes_per_iteration_ci) {
        (Some(bound), Some([lo, _])) => lo <= bound,
        _ => true,
    }
}

/// `2 hi + 64 B` when the heap was judged clean with a 95% upper bound `hi` of its growth per
/// iteration: the most a site's lower bound may be (see [`within`]).
fn clean_heap_bound(run: &Run) -> Option<f64> {
    let heap = run.metrics.get(&Metric::HeapBytes)?;
    match (heap.verdict, heap.ci) {
        (Verdict::Clean, Some([_, hi])) => Some(2.0 * hi.max(0.0) + 64.0),
        _ => None,
    }
}

/// Bytes the heap grew by over `window`, when its verdict is a leak.
fn heap_growth(run: &Run, window: &Window) -> Option<f64> {
    let leak = run
        .metrics
        .get(&Metric::HeapBytes)
        .is_some_and(|m| m.verdict == Verdict::Leak);
    let at = |n: u32| {
        run.samples
            .iter()
            .rev()
            .find(|s| s.iteration <= n)
            .and_then(|s| s.heap_bytes)
    };
    let growth = at(window.last)? - at(window.first.checked_sub(1)?)?;
    (leak && growth > 0).then_some(growth as f64)
}

/// The iterations whose sampled blocks are judged, with the sampling rate of each.
struct Window<'a> {
    first: u32,
    last: u32,
    /// The interval in effect during iteration n, at index n - 1.
    intervals: &'a [u64],
    /// The iteration that ends the first half (by expected samples of small blocks).
    split: u32,
}

impl<'a> Window<'a> {
    fn new(intervals: &'a [u64], first: u32, last: u32) -> Self {
        let rate = |n: u32| {
            intervals
                .get(n as usize - 1)
                .map_or(0.0, |s| 1.0 / (*s).max(1) as f64)
        };
        let total: f64 = (first..=last).map(rate).sum();
        let (mut split, mut below) = (first, 0.0);
        for n in first..=last {
            if below + rate(n) / 2.0 > total / 2.0 && n > first {
                break;
            }
            below += rate(n);
            split = n;
        }
        Window {
            first,
            last,
            intervals,
            split,
        }
    }

    /// Expected samples of a site that leaks one block of `size` bytes per iteration: over the
    /// first half of the window, and over all of it.
    fn expected(&self, size: usize) -> (f64, f64) {
        let p = |n: u32| {
            self.intervals
                .get(n as usize - 1)
                .map_or(0.0, |s| sampled::probability(size, *s))
        };
        let first: f64 = (self.first..=self.split).map(p).sum();
        let rest: f64 = (self.split + 1..=self.last).map(p).sum();
        (first, first + rest)
    }

    fn contains(&self, n: u32) -> bool {
        (self.first..=self.last).contains(&n)
    }
}

/// One call site's sampled blocks in the window.
#[derive(Default)]
struct Tally {
    frames: Vec<Frame>,
    samples: u64,
    in_first_half: u64,
    /// Sums over its samples of 1 / E and size / E, E being the samples expected over the
    /// window from one block of that size per iteration: blocks and bytes per iteration.
    bytes: f64,
    blocks: f64,
    /// The sums of their squares and the largest terms (for the bounds: a site's few
    /// samples of tiny blocks weigh far more in its blocks than the rest).
    bytes_sq: f64,
    blocks_sq: f64,
    bytes_max: f64,
    blocks_max: f64,
    /// Sums over its samples of the first half's share of E.
    first_share: f64,
    /// The iterations its samples were born in.
    iterations: std::collections::BTreeSet<u32>,
    /// Its samples certain to have been sampled ([`CERTAIN`]): their count and bytes.
    certain_blocks: u64,
    certain_bytes: f64,
}

impl Tally {
    /// Count `block` among the certain ones if it is.
    fn count_certain(&mut self, block: &sampled::Block) {
        if sampled::probability(block.size, block.interval) >= CERTAIN {
            self.certain_blocks += 1;
            self.certain_bytes += block.size as f64;
        }
    }

    /// Whether it holds, in blocks certain to have been sampled, at least half of `growth`
    /// and no more than a container that doubled within it could (twice, with slack): a
    /// large buffer merely replaced by one of its size is not the heap's growth.
    fn holds_half_of(&self, growth: Option<f64>) -> bool {
        growth.is_some_and(|g| (g / 2.0..=2.5 * g).contains(&self.certain_bytes))
    }
}

/// The sites leaking in `window`, from the run's sampled blocks still live (each with the
/// iteration it was born in).
fn leaking_sites(
    blocks: &[(u32, sampled::Block)],
    stacks: &[sampled::Stack],
    window: &Window,
    heap_growth: Option<f64>,
    clean_bound: Option<f64>,
) -> Vec<LeakSite> {
    if window.last < window.first {
        return Vec::new();
    }
    // Resolving symbols costs milliseconds the first time (debug info is read): skip it when
    // even all the window's samples together could not make a steady site, or when none could
    // stay under a clean heap's bound: a steady site has n >= MIN_SITE_SAMPLES samples, and
    // its lower bound is lo(n) / n times the sum of their shares, at least lo(MIN_SITE_SAMPLES)
    // times the smallest share.
    let mut all = Tally::default();
    let mut smallest_share = f64::INFINITY;
    for (born, block) in blocks.iter().filter(|(born, _)| window.contains(*born)) {
        all.samples += 1;
        all.in_first_half += u64::from(*born <= window.split);
        all.iterations.insert(*born);
        all.count_certain(block);
        let (_, expected) = window.expected(block.size);
        if expected > 0.0 {
            smallest_share = smallest_share.min(block.size as f64 / expected);
        }
    }
    let lowest_bound = poisson_bounds(MIN_SITE_SAMPLES).0 * smallest_share;
    let none_within = clean_bound.is_some_and(|bound| lowest_bound > bound);
    if (!could_be_steady(&all) || none_within) && !all.holds_half_of(heap_growth) {
        return Vec::new();
    }
    let mut resolved: HashMap<usize, Vec<Frame>> = HashMap::new();
    let mut tallies: HashMap<String, Tally> = HashMap::new();
    for (born, block) in blocks.iter().filter(|(born, _)| window.contains(*born)) {
        let Some(stack) = stacks.get(block.stack as usize) else {
            continue;
        };
        let frames = resolve_stack(stack.ips(), &mut resolved);
        let user = user_frames(&frames);
        if user.is_empty() {
            continue;
        }
        let key = site_key(&user);
        let tally = tallies.entry(key).or_default();
        if tally.frames.is_empty() {
            tally.frames = user;
        }
        tally.count_certain(block);
        let (first, expected) = window.expected(block.size);
        if expected <= 0.0 {
            continue;
        }
        tally.samples += 1;
        tally.in_first_half += u64::from(*born <= window.split);
        tally.iterations.insert(*born);
        let (bytes, blocks) = (block.size as f64 / expected, 1.0 / expected);
        tally.bytes += bytes;
        tally.blocks += blocks;
        tally.bytes_sq += bytes * bytes;
        tally.blocks_sq += blocks * blocks;
        tally.bytes_max = tally.bytes_max.max(bytes);
        tally.blocks_max = tally.blocks_max.max(blocks);
        tally.first_share += first / expected;
    }
    let iterations = f64::from(window.last - window.first + 1);
    let mut sites: Vec<LeakSite> = tallies
        .into_values()
        .filter_map(|t| {
            if steady(&t) {
                Some(site(t))
            } else if t.holds_half_of(heap_growth) {
                Some(regrown_site(t, iterations))
            } else {
                None
            }
        })
        .collect();
    sites.sort_by(|x, y| y.bytes_per_iteration.total_cmp(&x.bytes_per_iteration));
    sites
}

/// What a steady site needs of its samples' count and births (and any set of samples that
/// contains its samples has too).
fn could_be_steady(t: &Tally) -> bool {
    t.samples >= MIN_SITE_SAMPLES
        && t.in_first_half > 0
        && t.samples > t.in_first_half
        && t.iterations.len() >= 3
}

/// Whether a site's samples are spread over the window as a steady leak's would be.
fn steady(t: &Tally) -> bool {
    could_be_steady(t)
        && binomial_two_sided(t.in_first_half, t.samples, t.first_share / t.samples as f64) >= 0.01
}

/// A site holding large blocks born in the window ([`CERTAIN`] each to be sampled): their
/// bytes and count spread over the window's `iterations`.
fn regrown_site(t: Tally, iterations: f64) -> LeakSite {
    let blocks = t.certain_blocks;
    LeakSite {
        bytes_per_iteration: t.certain_bytes / iterations,
        blocks_per_iteration: blocks as f64 / iterations,
        bytes_per_iteration_ci: None,
        blocks_per_iteration_ci: None,
        samples: Some(blocks),
        growth: Some("regrown".into()),
        ..site(t)
    }
}

fn site(t: Tally) -> LeakSite {
    let bounds = |sum: f64, sum_sq: f64, max: f64| {
        let (lo, hi) = weighted_poisson_bounds(sum, sum_sq, max);
        (sum, [lo, hi])
    };
    let (bytes, bytes_ci) = bounds(t.bytes, t.bytes_sq, t.bytes_max);
    let (blocks, blocks_ci) = bounds(t.blocks, t.blocks_sq, t.blocks_max);
    let first = t.frames.first().cloned().unwrap_or_else(|| Frame {
        function: "???".into(),
        location: String::new(),
        file: None,
    });
    LeakSite {
        function: first.function,
        location: first.location,
        bytes_per_iteration: bytes,
        blocks_per_iteration: blocks,
        backtrace: shown_backtrace(&t.frames),
        bytes_per_iteration_ci: Some(bytes_ci),
        blocks_per_iteration_ci: Some(blocks_ci),
        samples: Some(t.samples),
        growth: Some("steady".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_splits_where_half_the_expected_samples_are() {
        // Iterations 1-4 at 1 MiB, 5-8 at 1 KiB: nearly all expected samples are in 5-8.
        let intervals = [1 << 20, 1 << 20, 1 << 20, 1 << 20, 1024, 1024, 1024, 1024];
        assert_eq!(Window::new(&intervals, 2, 8).split, 6);
        let even = Window::new(&[4096; 10], 1, 10);
        assert_eq!(even.split, 5);
        let (first, all) = even.expected(64);
        assert!((first / all - 0.5).abs() < 1e-12);
        assert!((all - 10.0 * sampled::probability(64, 4096)).abs() < 1e-12);
    }

    #[test]
    fn a_site_larger_than_a_clean_heap_allows_is_dropped() {
        use crate::model::{HeapScope, MetricReport, Shape};
        let mut run = Run::new("w", HeapScope::Process);
        let heap = |verdict, ci| MetricReport {
            verdict,
            gating: true,
            slope_per_iteration: Some(0.0),
            slope_per_second: None,
            ci: Some(ci),
            warmup: 0,
            p_value: None,
            shape: Shape::default(),
            after_warmup: 0.0,
            end: 0.0,
            growth: 0.0,
            reason: String::new(),
            confirmed_within: false,
        };
        let site = |lo: f64| LeakSite {
            bytes_per_iteration_ci: Some([lo, 3.0 * lo]),
            ..regrown_site(Tally::default(), 1.0)
        };
        run.metrics
            .insert(Metric::HeapBytes, heap(Verdict::Clean, [-2.0, 10.0]));
        assert_eq!(clean_heap_bound(&run), Some(84.0));
        assert!(
            within(&site(50.0), clean_heap_bound(&run)),
            "within 2 x 10 + 64"
        );
        assert!(!within(&site(2000.0), clean_heap_bound(&run)), "a turnover");
        run.metrics
            .insert(Metric::HeapBytes, heap(Verdict::Leak, [900.0, 1100.0]));
        assert_eq!(clean_heap_bound(&run), None);
        assert!(within(&site(2000.0), None), "a leak's site stays");
    }

    #[test]
    fn a_site_whose_blocks_rest_on_a_few_tiny_samples_has_bounds_that_say_so() {
        // 40 samples of blocks standing for one block each, 3 of tiny ones standing for 20:
        // 100 blocks, most of them resting on 3 samples. Scaled from the count of 43, the
        // bounds were 100 x (0.72..1.38) and held a regex cache's true count 2 times in 10.
        let t = Tally {
            samples: 43,
            blocks: 40.0 + 3.0 * 20.0,
            blocks_sq: 40.0 + 3.0 * 400.0,
            blocks_max: 20.0,
            bytes: 43.0 * 64.0,
            bytes_sq: 43.0 * 64.0 * 64.0,
            bytes_max: 64.0,
            ..Tally::default()
        };
        let site = site(t);
        let [lo, hi] = site.blocks_per_iteration_ci.expect("bounds");
        assert_eq!(site.blocks_per_iteration, 100.0);
        assert!(lo < 50.0 && hi > 180.0, "{lo} {hi}");
        // Bytes that each sample stands for alike keep the count's bounds.
        let (count_lo, count_hi) = poisson_bounds(43);
        let [lo, hi] = site.bytes_per_iteration_ci.expect("bounds");
        assert!((lo - count_lo * 64.0).abs() < 1e-6 && (hi - count_hi * 64.0).abs() < 1e-6);
    }

    #[test]
    fn certain_blocks_holding_half_the_growth_make_a_regrown_site() {
        // A block of 5 intervals is sampled with probability 0.993; one of 1 interval, 0.63.
        assert!(sampled::probability(5 * 4096, 4096) >= CERTAIN);
        assert!(sampled::probability(4096, 4096) < CERTAIN);
        let t = Tally {
            certain_blocks: 1,
            certain_bytes: 600.0,
            ..Tally::default()
        };
        assert!(t.holds_half_of(Some(1000.0)));
        assert!(!t.holds_half_of(Some(1300.0)), "less than half the growth");
        assert!(
            !t.holds_half_of(Some(200.0)),
            "more than a doubling of the growth"
        );
        assert!(!t.holds_half_of(None), "the heap is not judged a leak");
        let site = regrown_site(t, 20.0);
        assert_eq!(site.growth.as_deref(), Some("regrown"));
        assert_eq!(site.bytes_per_iteration, 30.0);
        assert_eq!(site.bytes_per_iteration_ci, None);
    }

    #[test]
    fn a_steady_site_is_named_and_a_turnover_is_not() {
        // Samples born in iterations 1..=samples, the first `in_first_half` in 1..=10.
        let tally = |samples: u64, in_first_half: u64| Tally {
            samples,
            in_first_half,
            first_share: samples as f64 / 2.0,
            iterations: (1..=in_first_half as u32)
                .chain(11..11 + (samples - in_first_half) as u32)
                .collect(),
            ..Tally::default()
        };
        assert!(steady(&tally(12, 5)));
        assert!(steady(&tally(4, 2)));
        assert!(!steady(&tally(12, 0)), "all recent: turnover");
        assert!(!steady(&tally(6, 0)), "all recent, even when few");
        assert!(
            !steady(&tally(12, 11)),
            "nearly all early: a cache filling up"
        );
        assert!(!steady(&tally(3, 1)), "too few samples");
        let mut one_iteration = tally(6, 3);
        one_iteration.iterations = [4, 14].into();
        assert!(!steady(&one_iteration), "born in two iterations only");
    }
}
