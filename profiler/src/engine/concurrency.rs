// Owns K copies of a workload at once in this process (one thread each, each its own setup and
// its own engine run in thread scope), and turning copies' runs into a level (shared with
// programs). Must never print, nor let a panicking iteration end a copy's run.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use super::workload::WorkloadSource;
use super::{Plan, drive};
use crate::alloc::{self, untracked};
use crate::judge::Judging;
use crate::model::{
    Failure, FailureKind, HeapScope, Level, MetricReport, PerCopy, Run, Verdict, XAxis, combine,
};
use crate::probe::{Probe, Target};
use crate::sample::Scope;

/// Makes one copy's iteration (its setup, run on the copy's thread).
pub type CopySetup<'a> = &'a (dyn Fn() -> Result<Box<dyn FnMut()>, String> + Sync);

/// How long each copy runs: what `Plan` takes for one run.
#[derive(Debug, Clone, Copy)]
pub struct CopyPlan {
    pub iterations: u32,
    pub max_iterations: Option<u32>,
    pub extend: bool,
    pub warmup: Option<u32>,
    pub timeout: Option<Duration>,
    /// Each copy's budgets (`--max-peak` and `--max-allocated` of its own iterations,
    /// `--max-rss` of the process).
    pub budgets: crate::budget::Budgets,
}

/// One copy's run, with what only the level knows of it.
#[derive(Debug)]
pub struct CopyRun {
    pub run: Run,
    /// Failed iterations (counted in `run.iterations` too).
    pub failures: u64,
    /// Its heap before the first sample (its setup), added to its peak.
    pub setup_bytes: i64,
    /// When its iterations began and ended (in process).
    pub span: Option<(Instant, Instant)>,
    /// Its thread's heap once set up and once done (in process, with the allocator): what it
    /// allocated and freed itself over the level.
    pub own: Option<(alloc::HeapCounters, alloc::HeapCounters)>,
}

/// What the whole (the process, or all programs) did during a level.
#[derive(Debug, Clone, Copy, Default)]
pub struct Whole {
    pub wall: Duration,
    pub heap_peak_bytes: Option<u64>,
    pub rss_peak_bytes: Option<u64>,
    pub cpu_ms: Option<f64>,
}

/// Run `copies` copies of the workload made by `setup` at once, each on its own thread with
/// its own setup; a panic in an iteration is a failed iteration, not the end of the copy.
pub fn run_level(
    name: &str,
    copies: u32,
    setup: CopySetup<'_>,
    plan: &CopyPlan,
) -> (Level, Vec<Run>) {
    let scope = if alloc::is_installed() {
        HeapScope::Thread
    } else {
        HeapScope::None
    };
    let before = alloc::heap().map(|h| h.live_bytes);
    alloc::reset_peak();
    let mut probe = untracked(|| Probe::new(Target::Current));
    let cpu0 = probe.read().cpu_ms;
    let monitor = untracked(RssMonitor::start);
    let gates = Gates::new(copies);
    let mut heap_between = (None, None);
    let mut heap_peak = None;
    let mut results: Vec<CopyRun> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..copies)
            .map(|i| {
                let gates = &gates;
                std::thread::Builder::new()
                    .name(format!("copy-{i}"))
                    .spawn_scoped(s, move || {
                        run_copy(name, i, copies, setup, plan, scope, gates)
                    })
                    .expect("profiler: could not start a copy's thread")
            })
            .collect();
        // The process's heap once every copy is set up and once every copy is done, each
        // while no copy is inside an iteration.
        gates.set_up.wait();
        heap_between.0 = alloc::heap();
        gates.go.wait();
        // Every copy's last sample taken, before any copy builds its report (its samples,
        // adopted: ~200 B per iteration once read into the level's heap peak).
        gates.sampled.wait();
        heap_peak = alloc::heap().map(|h| h.peak_bytes);
        gates.peak_read.wait();
        gates.done.wait();
        heap_between.1 = alloc::heap();
        gates.release.wait();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .expect("a copy's thread panicked outside its iterations")
            })
            .collect()
    });
    if let (Some(start), Some(end)) = heap_between {
        unseen_by_the_process(&mut results, start, end);
    }
    let first = results.iter().filter_map(|r| r.span.map(|s| s.0)).min();
    let last = results.iter().filter_map(|r| r.span.map(|s| s.1)).max();
    let wall = match (first, last) {
        (Some(a), Some(b)) => b.saturating_duration_since(a),
        _ => Duration::ZERO,
    };
    let whole = Whole {
        wall,
        heap_peak_bytes: match (before, heap_peak) {
            (Some(b), Some(peak)) => Some((peak - b).max(0) as u64),
            _ => None,
        },
        rss_peak_bytes: untracked(|| monitor.stop()),
        cpu_ms: match (cpu0, probe.read().cpu_ms) {
            (Some(a), Some(b)) => Some(b - a),
            _ => None,
        },
    };
    untracked(|| drop(probe));
    level_of(copies, results, whole, PerCopy::Heap)
}

/// Where the copies and the thread running the level meet: every copy set up, then all go;
/// every copy's sampling over, then the level's heap peak read; every copy done, then all drop their iterations.
struct Gates {
    set_up: Barrier,
    go: Barrier,
    sampled: Barrier,
    peak_read: Barrier,
    done: Barrier,
    release: Barrier,
}

impl Gates {
    fn new(copies: u32) -> Self {
        let n = copies as usize + 1;
        Gates {
            set_up: Barrier::new(n),
            go: Barrier::new(n),
            sampled: Barrier::new(n),
            peak_read: Barrier::new(n),
            done: Barrier::new(n),
            release: Barrier::new(n),
        }
    }

    /// A copy that has no iterations (its setup failed) goes through the rest at once.
    fn pass(&self) {
        self.sampled.wait();
        self.peak_read.wait();
        self.done.wait();
        self.release.wait();
    }
}

/// A copy's heap is its thread's counters: memory other threads free for it (a pool's workers
/// freeing the jobs it hands them) reads as its leak, and memory other threads keep for it (a
/// runtime's workers inserting into a global map) is in none of the copies' heaps. `thread-pool`,
/// clean, leaked 2.3 KiB per iteration under `--concurrency`; tokio tasks keeping 4 KiB per
/// iteration in a global map were clean at K = 2. Over the level (from every copy set up to
/// every copy done, while none is inside an iteration), the process's heap grew by what the
/// copies' threads kept themselves plus what the other threads did. When the other threads'
/// share fell by at least half of what the copies' leaks at their lower bounds add up to, they
/// freed what the copies allocated; when it rose by a leak's worth per iteration (the heap
/// thresholds' floors: 128 B, half a block), they kept what the copies' work allocated. Either
/// way the copies' heap verdicts cannot be told, saying why. (A copy freeing its own setup's
/// memory lowers its own share, not the others'.)
fn unseen_by_the_process(
    results: &mut [CopyRun],
    start: alloc::HeapCounters,
    end: alloc::HeapCounters,
) {
    use crate::sample::Metric;
    let claimed = |metric: Metric| -> f64 {
        results
            .iter()
            .filter_map(|c| {
                let m = c.run.metrics.get(&metric)?;
                let low = m.ci?[0];
                let judged = c.run.iterations.saturating_sub(m.warmup);
                (m.verdict == Verdict::Leak).then(|| low.max(0.0) * f64::from(judged))
            })
            .sum()
    };
    let (bytes, blocks) = (claimed(Metric::HeapBytes), claimed(Metric::HeapBlocks));
    // What the copies' threads kept themselves over the level.
    let (mut own_bytes, mut own_blocks) = (0.0, 0.0);
    for (a, b) in results.iter().filter_map(|c| c.own) {
        own_bytes += (b.live_bytes - a.live_bytes) as f64;
        own_blocks += (b.live_blocks - a.live_blocks) as f64;
    }
    // What the other threads kept, net (negative: they freed).
    let kept_by_others = (
        (end.live_bytes - start.live_bytes) as f64 - own_bytes,
        (end.live_blocks - start.live_blocks) as f64 - own_blocks,
    );
    let handed = |claim: f64, kept: f64| claim > 0.0 && -kept >= claim / 2.0;
    let freed = handed(bytes, kept_by_others.0) || handed(blocks, kept_by_others.1);
    let iterations = results.iter().map(|c| c.run.iterations).max().unwrap_or(0);
    let per_iteration = |kept: f64| kept / f64::from(iterations.max(1));
    let kept = iterations > 0
        && (per_iteration(kept_by_others.0) > crate::verdict::Thresholds::heap_bytes(0.0).tau
            || per_iteration(kept_by_others.1) > 0.5);
    let verb = |v: f64| if v >= 0.0 { "kept" } else { "freed" };
    let moved = |(bytes, blocks): (f64, f64)| {
        let second = if verb(bytes) == verb(blocks) {
            String::new()
        } else {
            format!("{} ", verb(blocks))
        };
        format!(
            "{} {} and {second}{:.0} blocks over the level",
            verb(bytes),
            crate::format::format_bytes(bytes.abs()),
            blocks.abs()
        )
    };
    let why = if freed {
        format!(
            "thread scope: the copies' threads claim a leak of {} and {blocks:.0} blocks \
             between them, and the process's other threads {}: they freed what the copies \
             allocated (threads the copies hand work to)",
            crate::format::format_bytes(bytes),
            moved(kept_by_others)
        )
    } else if kept {
        format!(
            "thread scope: the process's other threads {} ({} per iteration), which no \
             copy's heap includes: what the copies' work allocated there (a runtime's \
             workers, a pool) is not seen by copy; a run without --concurrency judges the \
             workload in process scope",
            moved(kept_by_others),
            crate::format::format_bytes(per_iteration(kept_by_others.0).max(0.0))
        )
    } else {
        return;
    };
    for c in results.iter_mut() {
        // A copy that leaks, when others freed for it. One that does not, when others kept
        // for it: a leak its own thread kept stands whatever other threads also kept.
        let judged = [Metric::HeapBytes, Metric::HeapBlocks].iter().any(|m| {
            c.run
                .metrics
                .get(m)
                .is_some_and(|m| (m.verdict == Verdict::Leak) == freed)
        });
        if judged {
            let run = std::mem::replace(&mut c.run, Run::new("", HeapScope::None));
            c.run = crate::judge::blind_because(run, &why);
        }
    }
}

fn run_copy(
    name: &str,
    index: u32,
    copies: u32,
    setup: CopySetup<'_>,
    plan: &CopyPlan,
    scope: HeapScope,
    gates: &Gates,
) -> CopyRun {
    let before = alloc::thread_heap().map_or(0, |h| h.live_bytes);
    let made = catch_unwind(AssertUnwindSafe(setup));
    let setup_bytes = alloc::thread_heap().map_or(0, |h| h.live_bytes) - before;
    let own_start = alloc::thread_heap();
    gates.set_up.wait();
    gates.go.wait();
    let copy_name = format!("{name} (copy {index} of {copies})");
    let mut iteration = match made {
        Ok(Ok(f)) => f,
        Ok(Err(e)) => {
            gates.pass();
            return failed_setup(copy_name, scope, e);
        }
        Err(payload) => {
            gates.pass();
            let message = super::workload::panic_message(payload.as_ref());
            return failed_setup(copy_name, scope, message);
        }
    };
    let began = Instant::now();
    let failures = Cell::new(0u64);
    let mut counted = || {
        if catch_unwind(AssertUnwindSafe(&mut iteration)).is_err() {
            failures.set(failures.get() + 1);
        }
    };
    let run_plan = Plan {
        iterations: Some(plan.iterations),
        max_iterations: plan.max_iterations,
        extend: plan.extend,
        timeout: plan.timeout,
        budgets: plan.budgets,
        // The copies are all this process runs: its fds and threads are theirs, and a leak of
        // them in any copy is the level's.
        ..Plan::new(copy_name, Judging::in_process(scope, plan.warmup).alone())
    };
    let thread_scope = if scope == HeapScope::Thread {
        Scope::Thread
    } else {
        Scope::Process
    };
    let sampled = || {
        gates.sampled.wait();
        gates.peak_read.wait();
    };
    // No idle looks: while one copy idled, the others run on and move the process's memory,
    // fds and threads.
    let mut source = WorkloadSource::new(&mut counted, thread_scope, None)
        .without_idle_looks()
        .on_stop(&sampled);
    let run = drive(&mut source, run_plan);
    let ended = Instant::now();
    drop(source);
    let own = own_start.zip(alloc::thread_heap());
    // Every copy lives until all are done: K copies at once, to the end.
    gates.done.wait();
    gates.release.wait();
    drop(iteration);
    CopyRun {
        run,
        failures: failures.get(),
        setup_bytes: setup_bytes.max(0),
        span: Some((began, ended)),
        own,
    }
}

fn failed_setup(name: String, scope: HeapScope, message: String) -> CopyRun {
    CopyRun {
        run: Run {
            failure: Some(Failure::new(FailureKind::Setup, 0, message)),
            verdict: Verdict::Inconclusive,
            ..Run::new(name, scope)
        },
        failures: 0,
        setup_bytes: 0,
        span: None,
        own: None,
    }
}

/// The level of `copies` copies from their runs and what the whole did.
pub fn level_of(
    copies: u32,
    results: Vec<CopyRun>,
    whole: Whole,
    per_copy: PerCopy,
) -> (Level, Vec<Run>) {
    let mut times: Vec<f64> = Vec::new();
    let mut iterations = 0u64;
    let mut failures = 0u64;
    let mut marked = false;
    let mut peaks = Vec::new();
    let mut rss_peaks = Vec::new();
    for c in &results {
        let run = &c.run;
        failures += c.failures;
        if run.x_axis == XAxis::Iteration {
            marked = true;
            iterations += u64::from(run.iterations);
            for s in run.samples.iter().skip(1) {
                if let Some(d) = s.duration_ms {
                    // A merged sample stands for `span` iterations of about that mean time.
                    times.extend(std::iter::repeat_n(d, s.span.max(1) as usize));
                }
            }
        }
        let heap_peak = run
            .samples
            .iter()
            .flat_map(|s| [s.heap_peak_bytes, s.heap_bytes])
            .flatten()
            .max()
            .map(|p| (p + c.setup_bytes).max(0) as u64);
        let rss_peak = run
            .samples
            .iter()
            .filter_map(|s| s.rss_bytes)
            .chain(run.interval_samples.iter().filter_map(|s| s.rss_bytes))
            .max();
        match per_copy {
            PerCopy::Heap => peaks.extend(heap_peak),
            PerCopy::Rss => peaks.extend(rss_peak),
        }
        if run.is_program() {
            rss_peaks.extend(rss_peak);
        }
    }
    // A program copy's failure is one failed iteration beside its marked ones.
    if results.iter().any(|c| c.run.is_program()) {
        iterations += failures;
    }
    times.sort_by(f64::total_cmp);
    let pick = |q: f64| -> Option<f64> {
        (!times.is_empty()).then(|| {
            let i = ((times.len() as f64 * q).ceil() as usize).clamp(1, times.len()) - 1;
            times[i]
        })
    };
    let secs = whole.wall.as_secs_f64();
    let (verdict, reason) = level_verdict(&results);
    let level = Level {
        copies,
        iterations,
        failures,
        throughput_per_s: (marked && secs > 0.0).then(|| iterations as f64 / secs),
        p50_ms: pick(0.50),
        p95_ms: pick(0.95),
        max_ms: times.last().copied(),
        heap_peak_bytes: whole.heap_peak_bytes,
        rss_peak_bytes: whole.rss_peak_bytes,
        peak_per_copy_bytes: peaks.iter().max().copied(),
        per_copy,
        rss_peak_per_copy_bytes: rss_peaks.iter().max().copied(),
        copy_peaks_bytes: peaks,
        cpu_ms: whole.cpu_ms,
        wall_ms: secs * 1e3,
        verdict,
        reason,
    };
    (level, results.into_iter().map(|c| c.run).collect())
}

/// A leak in any copy is a leak of the level; the reason names the copy.
fn level_verdict(results: &[CopyRun]) -> (Verdict, String) {
    let verdict = combine(results.iter().map(|c| c.run.verdict));
    if verdict == Verdict::Clean {
        return (verdict, format!("no copy of {} leaks", results.len()));
    }
    let Some(worst) = results.iter().find(|c| c.run.verdict == verdict) else {
        return (verdict, String::new());
    };
    let why = worst
        .run
        .metrics
        .iter()
        .filter(|(_, m)| m.gating && m.verdict == verdict)
        .map(|(k, m): (_, &MetricReport)| format!("{}: {}", k.name(), m.reason))
        .next()
        .or_else(|| worst.run.failure.as_ref().map(|f| f.sentence()))
        .unwrap_or_else(|| "no gating metric was measured".into());
    (verdict, format!("{}: {why}", worst.run.workload))
}

/// The process's RSS every 10 ms during a level: its peak. Allocates untracked only.
struct RssMonitor {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    handle: alloc::OwnThread<()>,
}

impl RssMonitor {
    fn start() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(0));
        let (flag, max) = (Arc::clone(&stop), Arc::clone(&peak));
        let handle = alloc::spawn_untracked("profiler-rss", move || {
            let mut probe = Probe::new(Target::Current);
            loop {
                if let Some(rss) = probe.read().rss_bytes {
                    max.fetch_max(rss, Ordering::Relaxed);
                }
                if flag.load(Ordering::Relaxed) {
                    break;
                }
                std::thread::park_timeout(Duration::from_millis(10));
            }
        })
        .expect("profiler: could not start the RSS monitor");
        RssMonitor { stop, peak, handle }
    }

    fn stop(self) -> Option<u64> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.unpark();
        let _ = self.handle.join();
        Some(self.peak.load(Ordering::Relaxed)).filter(|p| *p > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(iterations: u32) -> CopyPlan {
        CopyPlan {
            iterations,
            max_iterations: None,
            extend: false,
            warmup: None,
            timeout: None,
            budgets: Default::default(),
        }
    }

    #[test]
    fn a_panicking_iteration_is_a_failed_iteration_and_the_copies_go_on() {
        let setup = || -> Result<Box<dyn FnMut()>, String> {
            let mut n = 0u32;
            Ok(Box::new(move || {
                n += 1;
                if n.is_multiple_of(5) {
                    panic!("every fifth iteration fails");
                }
            }))
        };
        let (level, runs) = run_level("panics", 3, &setup, &plan(20));
        assert_eq!(level.copies, 3);
        assert_eq!(level.iterations, 60, "{level:?}");
        assert_eq!(level.failures, 12, "{level:?}");
        assert!((level.failure_rate_pct() - 20.0).abs() < 1e-9);
        assert_eq!(runs.len(), 3);
        assert!(
            runs.iter()
                .all(|r| r.failure.is_none() && r.iterations == 20)
        );
        assert!(level.p95_ms.is_some() && level.throughput_per_s.is_some());
    }

    #[test]
    fn a_failed_setup_is_a_copy_without_iterations_not_a_deadlock() {
        let setup = || -> Result<Box<dyn FnMut()>, String> { Err("no database".into()) };
        let (level, runs) = run_level("no-setup", 2, &setup, &plan(5));
        assert_eq!(level.iterations, 0);
        assert_eq!(level.verdict, Verdict::Inconclusive);
        assert!(runs.iter().all(|r| r.failure.is_some()));
    }
}
