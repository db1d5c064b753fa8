// Owns one point of a sweep: a source's repetitions at one input size, run by the one engine
// loop until their memory agrees, and the point made of their samples. Must never fit nor
// print; a workload's setup for the size is the caller's, outside the samples.

//! A point of a sweep is an engine run whose iterations are **repetitions** at one size.
//!
//! [`Settling`] wraps any [`Source`] and ends the run once the memory of the last
//! [`MIN_REPETITIONS`] repetitions agrees within [`AGREEMENT`] (or [`AGREEMENT_BYTES`]), after
//! [`MAX_REPETITIONS`], or once the size has taken [`SIZE_BUDGET`] with at least one
//! repetition done. [`point_of`] then reads the samples: a repetition's peak is its heap peak
//! above the heap it started from (a whole program run: its own peak), what the first
//! repetition left live is the retained memory, and allocated bytes, allocations and time are
//! medians over the repetitions.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::workload::WorkloadSource;
use super::{Ending, Plan, Source, Step, drive};
use crate::alloc::untracked;
use crate::judge::Judging;
use crate::model::{
    Complexity, End, Failure, FailureKind, Fit, HeapScope, IntervalSample, MetricReport, NO_CLASS,
    Point, Run,
};
use crate::sample::{Metric, Sample, Scope};
use crate::stats::median;
use crate::store::Thinned;

/// Repetitions whose memory must agree before a size is settled.
pub const MIN_REPETITIONS: usize = 3;
/// Repetitions at most per size.
pub const MAX_REPETITIONS: u32 = 20;
/// The spread allowed between those repetitions, as a share of the largest...
pub const AGREEMENT: f64 = 0.05;
/// ...or in bytes, whichever is larger.
pub const AGREEMENT_BYTES: f64 = 1024.0;
/// A size stops repeating once it has taken this long (after at least one repetition).
pub const SIZE_BUDGET: Duration = Duration::from_secs(5);

/// What a source's samples measure for a sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repetition {
    /// An iteration of a workload in this process: its peak counts from the heap it began at.
    InProcess,
    /// A whole program run per iteration: each sample is that run's own totals.
    WholeProgram,
}

/// The memory of repetition `i` (1-based) that must settle: its heap peak, else its RSS.
fn memory_of(samples: &[Sample], i: usize, kind: Repetition) -> Option<f64> {
    let s = samples.get(i)?;
    let peak = match kind {
        Repetition::InProcess => s
            .heap_peak_bytes
            .zip(samples.get(i - 1).and_then(|p| p.heap_bytes))
            .map(|(peak, start)| (peak - start) as f64),
        Repetition::WholeProgram => s.heap_peak_bytes.map(|p| p as f64),
    };
    peak.or(s.rss_bytes.map(|r| r as f64))
}

/// Whether the last [`MIN_REPETITIONS`] repetitions of `samples` agree.
pub fn settled(samples: &[Sample], kind: Repetition) -> bool {
    let done = samples.len().saturating_sub(1);
    if done < MIN_REPETITIONS {
        return false;
    }
    let last: Vec<f64> = (done + 1 - MIN_REPETITIONS..=done)
        .filter_map(|i| memory_of(samples, i, kind))
        .collect();
    if last.len() < MIN_REPETITIONS {
        // Nothing to settle on (no memory measured): the repetitions are all there is.
        return true;
    }
    let (lo, hi) = last
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    hi - lo <= (AGREEMENT * hi.abs()).max(AGREEMENT_BYTES)
}

/// A source whose run ends once its repetitions settle (see the module's documentation).
pub struct Settling<S> {
    inner: S,
    kind: Repetition,
    samples: Vec<Sample>,
    started: Option<Instant>,
}

impl<S: Source> Settling<S> {
    pub fn new(inner: S, kind: Repetition) -> Self {
        Settling {
            inner,
            kind,
            samples: untracked(|| Vec::with_capacity(MAX_REPETITIONS as usize + 1)),
            started: None,
        }
    }

    /// The wrapped source.
    pub fn inner(&mut self) -> &mut S {
        &mut self.inner
    }

    fn keep(&mut self, step: Step) -> Step {
        if let Step::Sample(s) = &step
            && self.samples.len() < self.samples.capacity()
        {
            self.samples.push(*s);
        }
        step
    }
}

impl<S> Drop for Settling<S> {
    /// Made untracked, freed untracked: freed counted, each size took it off the heap.
    fn drop(&mut self) {
        let samples = std::mem::take(&mut self.samples);
        untracked(move || drop(samples));
    }
}

impl<S: Source> Source for Settling<S> {
    fn first(&mut self, between: &mut Thinned<IntervalSample>) -> Step {
        self.started = Some(Instant::now());
        let step = self.inner.first(between);
        self.keep(step)
    }

    fn next(&mut self, n: u32, between: &mut Thinned<IntervalSample>) -> Step {
        let over_budget = n > 1 && self.started.is_some_and(|t| t.elapsed() >= SIZE_BUDGET);
        // Untracked: it runs between the boundary samples of the point's repetitions.
        if over_budget || untracked(|| settled(&self.samples, self.kind)) {
            return Step::Ended(End::Iterations);
        }
        let step = self.inner.next(n, between);
        self.keep(step)
    }

    fn review(&self, metrics: &mut BTreeMap<Metric, MetricReport>) {
        self.inner.review(metrics);
    }

    fn stop(&mut self, between: &mut Thinned<IntervalSample>) {
        self.inner.stop(between);
    }

    fn finish(&mut self, run: &mut Run, end: Ending) {
        self.inner.finish(run, end);
    }
}

/// The plan of one size's repetitions: no extension, no verdict worth reading.
pub fn repetitions_plan(name: String, judging: Judging) -> Plan {
    Plan {
        iterations: Some(MAX_REPETITIONS),
        extend: false,
        ..Plan::new(name, judging)
    }
}

/// Repeat `iteration` (a workload already set up at `size`) in this process until settled,
/// counted in `scope`; the point, or the run when it failed (a panic, an interruption).
pub fn run_point<F, R>(
    name: &str,
    size: u64,
    iteration: &mut F,
    scope: Scope,
) -> Result<Point, Box<Run>>
where
    F: FnMut() -> R,
{
    run_point_seeing(name, size, iteration, scope, &mut false)
}

/// [`run_point`], setting `others_moved` when, in [`Scope::Thread`], other threads of the
/// process allocated or freed memory during the repetitions (threads the routine spawns or
/// hands work to, whose memory this scope cannot see; or other tests beside it).
fn run_point_seeing<F, R>(
    name: &str,
    size: u64,
    iteration: &mut F,
    scope: Scope,
    others_moved: &mut bool,
) -> Result<Point, Box<Run>>
where
    F: FnMut() -> R,
{
    let heap_scope = heap_scope_of(scope);
    let rss = crate::probe::PeakRss::start();
    let mut source = Settling::new(
        WorkloadSource::new(iteration, scope, None),
        Repetition::InProcess,
    );
    let plan = repetitions_plan(
        format!("{name} at n = {size}"),
        Judging::in_process(heap_scope, Some(0)),
    );
    let run = drive(&mut source, plan);
    *others_moved |= source.inner().saw_other_threads();
    if run.failure.is_some() || run.source.end == Some(End::Interrupted) {
        return Err(Box::new(run));
    }
    Ok(point_of(
        size,
        &run.samples,
        Repetition::InProcess,
        rss.peak(),
    ))
}

/// Makes the closure measured at a size (building its input, unmeasured).
pub type SizedSetup<'a> = &'a mut dyn FnMut(u64) -> Result<Box<dyn FnMut() + 'a>, String>;

/// A sweep in this process: for each of `sizes` (distinct, smallest first), `setup(n)`, then
/// its repetitions until settled, counted in `scope`, telling `on_point` each point as it is
/// made (a watcher that must report the points so far if a repetition never returns); the
/// sweep's run, fitted and judged. A failed setup or repetition ends the sweep with the points
/// before it kept. With it, whether in [`Scope::Thread`] other threads of the process moved
/// memory during any size's repetitions (see `run_point_seeing`).
pub fn in_process(
    name: &str,
    sizes: &[u64],
    setup: SizedSetup<'_>,
    scope: Scope,
    max_complexity: Option<Complexity>,
    on_point: &mut dyn FnMut(&Point),
) -> (Run, bool) {
    let mut others_moved = false;
    let heap_scope = heap_scope_of(scope);
    let mut points = Vec::new();
    let mut failed: Option<Run> = None;
    for &n in sizes {
        if crate::interrupt::requested() {
            break;
        }
        tracing::info!("{name}: size {n}");
        let mut iteration = match setup(n) {
            Ok(f) => f,
            Err(e) => {
                let mut run = Run::new(name, heap_scope);
                run.failure = Some(Failure::new(
                    FailureKind::Setup,
                    0,
                    format!("at n = {n}: {e}"),
                ));
                failed = Some(run);
                break;
            }
        };
        let point = run_point_seeing(name, n, &mut iteration, scope, &mut others_moved);
        drop(iteration);
        match point {
            Ok(p) => {
                on_point(&p);
                points.push(p);
            }
            Err(run) => {
                failed = Some(*run);
                break;
            }
        }
    }
    let run = finish(in_process_run(name, scope), points, failed, max_complexity);
    (run, others_moved)
}

/// The run an in-process sweep's points go into, before [`finish`].
pub fn in_process_run(name: &str, scope: Scope) -> Run {
    let mut run = Run::new(name, heap_scope_of(scope));
    run.source
        .notes
        .push(settling_note("the heap peaks (RSS without heap counters)"));
    run
}

fn heap_scope_of(scope: Scope) -> HeapScope {
    if !crate::alloc::is_installed() {
        HeapScope::None
    } else if scope == Scope::Thread {
        HeapScope::Thread
    } else {
        HeapScope::Process
    }
}

/// What a sweep's run notes on how each size was measured.
pub fn settling_note(what: &str) -> String {
    format!(
        "each size repeated until {what} of {MIN_REPETITIONS} repetitions in a row agreed \
         within {:.0}% (at most {MAX_REPETITIONS}, or {} s at one size)",
        AGREEMENT * 100.0,
        SIZE_BUDGET.as_secs()
    )
}

/// The sweep's run: its points fitted, its verdict, the failure or interruption that cut
/// it short (the points before it kept).
pub fn finish(
    mut run: Run,
    points: Vec<Point>,
    failed: Option<Run>,
    max_complexity: Option<Complexity>,
) -> Run {
    run.iterations = points.iter().map(|p| p.repetitions).sum();
    if let Some(f) = failed {
        if f.source.end == Some(End::Interrupted) {
            run.source.end = Some(End::Interrupted);
        }
        if let Some(mut failure) = f.failure {
            if let Some((_, at)) = f.workload.rsplit_once(" at n = ")
                && !failure.message.starts_with("at n = ")
            {
                failure.message = if failure.kind == FailureKind::Panic {
                    // "panicked in iteration 2: at n = 1000: ..." (the repetition).
                    format!("at n = {at}: {}", failure.message)
                } else {
                    // The repetition says where; the run's iterations are no axis here.
                    let repetition = std::mem::take(&mut failure.iteration);
                    format!("at n = {at}, repetition {repetition}: {}", failure.message)
                };
            }
            run.failure = Some(failure);
        }
    }
    if crate::interrupt::requested() {
        run.source.end = Some(End::Interrupted);
    }
    // Sizes whose repetitions never agreed (the bound reached) measured noise as much as the
    // memory that settles them: the heap's peak, else the RSS.
    let unsettled = 2 * points
        .iter()
        .filter(|p| p.repetitions >= MAX_REPETITIONS)
        .count()
        > points.len();
    let settling = if points.iter().any(|p| p.peak_bytes.is_some()) {
        "peak_bytes"
    } else {
        "rss_peak_bytes"
    };
    let mut sweep = crate::fit::sweep(points, max_complexity, unsettled.then_some(settling));
    if !run.is_program() && run.heap_scope != HeapScope::None {
        // The allocator keeps pages earlier sizes freed: the process's RSS at a size depends
        // on the sizes before it, so it is shown but not fitted; the heap says what grows.
        sweep.fits.remove("rss_peak_bytes");
    } else if run.is_program()
        && sweep.fits.contains_key("rss_peak_bytes")
        && !sweep.gated.iter().any(|g| g == "rss_peak_bytes")
        && grows_outside_malloc(&sweep.points)
    {
        // A program starts anew at every size, so its RSS peak is that size's own, and memory
        // outside malloc (an mmap'd arena, a runtime with an allocator of its own) is only
        // there: a program mapping 1 KiB per n anonymously passed `--max-complexity O(1)` on
        // its O(1) heap. Held beside the heap where most of the growth is outside it; where
        // the heap explains it, the heap's fit says more (RSS adds the allocator's overhead
        // and pages: 40 B blocks read as O(n log n) in RSS against O(n) in the heap).
        sweep.gated.push("rss_peak_bytes".to_string());
    }
    run.verdict = sweep.verdict();
    // A sweep cut short saw only the sizes before: at best inconclusive, as any failed run.
    if run.failure.is_some() && run.verdict == crate::model::Verdict::Clean {
        run.verdict = crate::model::Verdict::Inconclusive;
    }
    run.sweep = Some(sweep);
    run
}

/// A sweep whose heap this scope could not see whole (`why`): no heap fit is decided, every
/// class a candidate, so that neither a clean bill nor a gate rests on it; the run's verdict
/// follows.
pub fn blind_heap(mut run: Run, why: &str) -> Run {
    let Some(sweep) = run.sweep.as_mut() else {
        return run;
    };
    for (field, fit) in sweep.fits.iter_mut() {
        if !matches!(field.as_str(), "peak_bytes" | "retained_bytes") {
            continue;
        }
        *fit = Fit {
            model: None,
            coefficient: None,
            intercept: None,
            r2: None,
            candidates: Complexity::ALL.to_vec(),
            sentence: format!(
                "{NO_CLASS} {why} (seen in this thread: {}); use Scope::Process, or cargo \
                 nextest",
                fit.sentence
            ),
        };
    }
    let verdict = sweep.verdict();
    run.verdict = if run.verdict == crate::model::Verdict::Leak {
        run.verdict
    } else {
        verdict
    };
    run
}

/// Whether a program's RSS peak grew over the sweep by at least 1 MiB and by more than 8
/// times what its heap can account for: its peak's growth, or 32 B (the smallest chunk
/// glibc gives) per allocation more, whichever is larger; so blocks of a few bytes, which
/// take a 32 B chunk each, are the heap's growth, not memory outside it.
fn grows_outside_malloc(points: &[Point]) -> bool {
    let growth = |field: &str| {
        let values: Vec<f64> = points.iter().filter_map(|p| p.value(field)).collect();
        match (values.first(), values.last()) {
            (Some(first), Some(last)) => last - first,
            _ => 0.0,
        }
    };
    let rss = growth("rss_peak_bytes");
    let heap = growth("peak_bytes")
        .max(32.0 * growth("allocations"))
        .max(0.0);
    rss >= (1u64 << 20) as f64 && rss > 8.0 * heap
}

/// The point of `size` from its repetitions' samples (sample 0 before the first one).
/// `rss_peak` is the RSS high-water mark over them, when known; else the highest sample.
pub fn point_of(size: u64, samples: &[Sample], kind: Repetition, rss_peak: Option<u64>) -> Point {
    let reps = samples.len().saturating_sub(1);
    let med = |f: &dyn Fn(&Sample) -> Option<f64>| -> Option<f64> {
        let values: Vec<f64> = samples.iter().skip(1).filter_map(f).collect();
        (!values.is_empty()).then(|| median(&values))
    };
    let peaks: Vec<f64> = (1..=reps)
        .filter_map(|i| match kind {
            Repetition::InProcess => samples[i]
                .heap_peak_bytes
                .zip(samples[i - 1].heap_bytes)
                .map(|(p, s)| (p - s).max(0) as f64),
            Repetition::WholeProgram => samples[i].heap_peak_bytes.map(|p| p as f64),
        })
        .collect();
    let retained = match kind {
        Repetition::InProcess => samples
            .get(1)
            .and_then(|s| s.heap_bytes)
            .zip(samples.first().and_then(|s| s.heap_bytes))
            .map(|(after, before)| after - before),
        Repetition::WholeProgram => None,
    };
    let rss = match kind {
        Repetition::InProcess => {
            rss_peak.or_else(|| samples.iter().filter_map(|s| s.rss_bytes).max())
        }
        Repetition::WholeProgram => med(&|s| s.rss_bytes.map(|r| r as f64)).map(|r| r as u64),
    };
    Point {
        size,
        peak_bytes: (!peaks.is_empty()).then(|| median(&peaks) as u64),
        retained_bytes: retained,
        allocated_bytes: med(&|s| s.allocated_bytes.map(|v| v as f64)).map(|v| v as u64),
        allocations: med(&|s| s.allocations.map(|v| v as f64)).map(|v| v as u64),
        rss_peak_bytes: rss,
        duration_ms: med(&|s| s.duration_ms).unwrap_or(0.0),
        repetitions: reps as u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(heap: i64, peak: Option<i64>) -> Sample {
        Sample {
            heap_bytes: Some(heap),
            heap_peak_bytes: peak,
            allocated_bytes: peak.map(|p| p - heap + 100),
            duration_ms: peak.map(|_| 2.0),
            ..Sample::default()
        }
    }

    #[test]
    fn repetitions_settle_when_their_peaks_agree() {
        let mut s = vec![sample(1000, None)];
        for peak in [90_000, 50_000, 50_100] {
            s.push(sample(1000, Some(1000 + peak)));
        }
        assert!(!settled(&s, Repetition::InProcess), "90k against 50k");
        s.push(sample(1000, Some(51_000)));
        assert!(settled(&s, Repetition::InProcess));
    }

    #[test]
    fn a_point_is_the_median_repetition_and_the_first_ones_leftover() {
        let s = vec![
            sample(1000, None),
            sample(1500, Some(9000)),
            sample(1500, Some(9500)),
            sample(1500, Some(9600)),
        ];
        let p = point_of(10, &s, Repetition::InProcess, None);
        assert_eq!(p.repetitions, 3);
        assert_eq!(p.retained_bytes, Some(500));
        assert_eq!(p.peak_bytes, Some(8000), "{p:?}");
        assert_eq!(p.duration_ms, 2.0);
    }
}
