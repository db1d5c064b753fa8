// Owns the one loop every run goes through: samples from a Source, checkpoints, extension and
// confirmation, budgets, interruption, timeouts, bounded storage, the judged Run. Must never
// allocate tracked memory between a workload's samples, nor know what its source measures.

//! The engine: one loop over a [`Source`] of samples.
//!
//! A source is anything that can take a sample before the first iteration and at the end of
//! each next one: a workload run in this process ([`workload::WorkloadSource`]), a program
//! started or attached to (`crate::external`), and what later sources add (a program with heap
//! counters, K copies at once, a point of a sweep). The engine owns everything around it, once:
//!
//! - **Checkpoints**: after `iterations` the samples are judged; a leak seen there must hold at
//!   twice the iterations before it is reported, and an inconclusive gating metric doubles the
//!   run, both bounded by `max_iterations` (docs/VERDICT.md). Without `iterations` (a program
//!   run until it ends) the run is judged once, at its end.
//! - **Stops**: interruption (SIGINT, SIGTERM, SIGHUP), a budget exceeded, `timeout`, a failed
//!   iteration, the source ending.
//! - **Storage**: boundary samples merge pairwise past a bound, samples between boundaries are
//!   thinned (see [`crate::store`]): a run of any length keeps a bounded amount.

pub mod concurrency;
mod spans;
pub mod sweep;
pub mod workload;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::alloc::{self, untracked};
use crate::budget::Budgets;
use crate::judge::{self, Judging, Next};
use crate::model::{
    End, Extension, Failure, FailureKind, IntervalSample, MetricReport, Run, Verdict,
};
use crate::sample::{Metric, Sample};
use crate::store::{MAX_INTERVAL_SAMPLES, MAX_STORED_SAMPLES, SampleStore, SharedStore, Thinned};

/// Iterations run when none are asked for.
pub const DEFAULT_ITERATIONS: u32 = 20;
/// A run never extends past this many times the iterations asked for, unless told otherwise.
pub const DEFAULT_EXTENSION_FACTOR: u32 = 8;
/// A run whose only undecided metrics are too noisy to bound yet (no significant trend, bounds
/// still wider than the clean limit) may go on to this many times the iterations asked for,
/// unless told otherwise: their bounds narrow with every sample, while a structure that frees
/// late (epoch-based reclamation) can need several hundred samples to show it is flat.
pub const NOISY_EXTENSION_FACTOR: u32 = 64;
/// ...nor stops extending below this many, so that a run asked for very few iterations can
/// still decide an obvious leak (a verdict needs a warm-up and a tail of several samples, a
/// leak then its confirmation at twice the iterations).
pub const MIN_EXTENSION_BOUND: u32 = 2 * DEFAULT_ITERATIONS;
/// The most iterations a run accepts.
pub const MAX_ITERATIONS: u32 = 10_000_000;
/// How long a run whose checkpoint found a leak lets the process idle, to see whether other
/// threads give the growth back (see `judge::idle_verdicts`); every look takes all of it.
pub const IDLE_WAIT: Duration = Duration::from_millis(250);

/// What a source gives for one step of the run.
#[derive(Debug)]
pub enum Step {
    /// The boundary sample at the end of the iteration (or the first one, before any).
    Sample(Sample),
    /// The iteration failed (a panic): the run ends with the samples so far.
    Failed(Failure),
    /// The source has no more samples: the program exited, the duration passed, it was
    /// interrupted while the source waited.
    Ended(End),
}

/// Where a run's samples come from.
pub trait Source {
    /// The sample before the first iteration (after an unmeasured start-up).
    fn first(&mut self, between: &mut Thinned<IntervalSample>) -> Step;
    /// Run or await iteration `n` and sample its end. Samples taken between boundaries go to
    /// `between`.
    fn next(&mut self, n: u32, between: &mut Thinned<IntervalSample>) -> Step;
    /// The engine runs on to `to` iterations, the verdicts at this checkpoint being `metrics`
    /// (a source that samples allocations samples more while a leak is confirmed).
    fn extending(&mut self, _to: u32, _metrics: &BTreeMap<Metric, MetricReport>) {}
    /// The iterations are over and some metric leaked: without running an iteration, read
    /// the process every few ms for `look`; the lowest each metric read (see
    /// `Sample::floor`) and the time waited. `None` where the source cannot wait without the
    /// workload moving on (a program runs on by itself).
    fn idle(&mut self, _look: Duration) -> Option<(Sample, Duration)> {
        None
    }
    /// The iterations are over: stop what the source started (a program, a sampler thread).
    fn stop(&mut self, _between: &mut Thinned<IntervalSample>) {}
    /// Verdicts as judged from the samples alone, at a checkpoint or at the end, before the
    /// engine decides whether to run on: a source may weigh what it knows beyond the samples
    /// (a program's malloc regions), so that a verdict it changes is extended like any other.
    fn review(&self, _metrics: &mut BTreeMap<Metric, MetricReport>) {}
    /// Fill in what the source knows of the run (its description, how it ended, its notes)
    /// once the engine has judged it.
    fn finish(&mut self, _run: &mut Run, _end: Ending) {}
}

/// How the iterations of a run ended, as the engine saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ending {
    pub end: End,
    /// Stopped because a budget was exceeded.
    pub over_budget: bool,
}

/// Progress of a run, given to the callback set with `Profiler::on_progress`.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Iterations completed.
    pub done: u32,
    /// Iterations the run currently intends to reach (grows when the run extends).
    pub target: u32,
    pub elapsed: Duration,
    /// The boundary sample just taken.
    pub sample: Sample,
    /// The iterations are over (this repeats the last sample); what follows is judging and,
    /// if asked for, attribution.
    pub last: bool,
}

pub type ProgressFn = Box<dyn FnMut(Progress)>;

/// How long a run goes and what stops it.
pub struct Plan {
    /// The name the run gets in reports.
    pub name: String,
    /// The first checkpoint; `None` runs until the source ends, judged once at the end.
    pub iterations: Option<u32>,
    /// Bound of extension (default [`DEFAULT_EXTENSION_FACTOR`] x `iterations`, at least
    /// [`MIN_EXTENSION_BOUND`]; [`NOISY_EXTENSION_FACTOR`] x while the only undecided metrics
    /// are too noisy to bound yet).
    pub max_iterations: Option<u32>,
    /// Whether the run may go on past `iterations` (to confirm a leak or resolve an
    /// inconclusive metric).
    pub extend: bool,
    pub budgets: Budgets,
    /// End the run with a failure after the iteration during which this passed.
    pub timeout: Option<Duration>,
    pub judging: Judging,
    pub progress: Option<ProgressFn>,
    /// Keep the samples in this store (shared with a watcher) instead of a new one.
    pub(crate) store: Option<SharedStore>,
    pub caps: Caps,
}

/// How many samples a run keeps before thinning them: the memory bound of a run of any length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// Boundary samples after the first (merged pairwise past it).
    pub samples: usize,
    /// Samples between boundaries (every other one dropped past it).
    pub between: usize,
}

impl Default for Caps {
    fn default() -> Self {
        Caps {
            samples: MAX_STORED_SAMPLES,
            between: MAX_INTERVAL_SAMPLES,
        }
    }
}

impl Plan {
    /// A plan with no limits but the defaults, judged as `judging` says.
    pub fn new(name: impl Into<String>, judging: Judging) -> Self {
        Plan {
            name: name.into(),
            iterations: Some(DEFAULT_ITERATIONS),
            max_iterations: None,
            extend: true,
            budgets: Budgets::default(),
            timeout: None,
            judging,
            progress: None,
            store: None,
            caps: Caps::default(),
        }
    }

    /// The most iterations this run may reach to confirm a leak or resolve an inconclusive
    /// metric.
    pub fn max(&self) -> u32 {
        self.bound(DEFAULT_EXTENSION_FACTOR)
    }

    /// The most iterations this run may reach while its only undecided metrics are too noisy
    /// to bound yet ([`NOISY_EXTENSION_FACTOR`]); `max_iterations` bounds both.
    pub fn max_noisy(&self) -> u32 {
        self.bound(NOISY_EXTENSION_FACTOR)
    }

    /// The most iterations this run may reach to confirm a leak first seen at or past
    /// [`Plan::max_noisy`]: twice it; `max_iterations` bounds this too.
    pub fn max_confirming(&self) -> u32 {
        self.bound(2 * NOISY_EXTENSION_FACTOR)
    }

    fn bound(&self, factor: u32) -> u32 {
        match (self.max_iterations, self.iterations) {
            (Some(m), Some(n)) => m.max(n),
            (Some(m), None) => m,
            (None, Some(n)) if self.extend => n
                .saturating_mul(factor)
                .clamp(MIN_EXTENSION_BOUND, MAX_ITERATIONS)
                .max(n),
            (None, Some(n)) => n,
            (None, None) => u32::MAX,
        }
    }
}

/// Why the iterations stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Halt {
    /// A checkpoint was reached.
    Checkpoint,
    Interrupted,
    OverBudget,
    Failed,
    Ended(End),
}

/// Run `source` as `plan` says, and judge it: the one loop of every run.
pub fn drive(source: &mut dyn Source, mut plan: Plan) -> Run {
    let limits = judge::Limits {
        max: plan.max(),
        noisy: plan.max_noisy(),
        confirm: plan.max_confirming(),
    };
    let max = limits.max;
    // No room to run on is the same as no extension: a leak is then reported unconfirmed
    // (saying so) rather than turned inconclusive for want of room.
    let extend = plan.extend && plan.iterations.is_some_and(|n| max > n);
    let expected = if extend {
        max
    } else {
        plan.iterations.unwrap_or(1024)
    };
    let started = Instant::now();
    let (store, mut between) = untracked(|| {
        let store = match plan.store.take() {
            Some(shared) => {
                if let Ok(mut s) = shared.lock() {
                    s.reserve(expected as usize + 1);
                }
                shared
            }
            None => SampleStore::shared(plan.caps.samples, expected as usize + 1),
        };
        (store, Thinned::new(plan.caps.between))
    });
    let push = |sample: Sample| {
        untracked(|| {
            if let Ok(mut s) = store.lock() {
                s.push(sample);
            }
        })
    };

    // Heap per span (SpanMemory): what the spans held before, for a run in this process.
    // Made and dropped untracked: neither this run's figures nor the peak of copies run at
    // once hold them.
    let spans_before = (plan.judging.source == crate::model::SourceKind::InProcess)
        .then(alloc::spans::totals_untracked)
        .flatten();
    let lost_exits_before = alloc::span_stack::lost_exits();
    // Held until the run's span records are taken (the end of this function): the peaks are
    // the highest over this run, whatever runs open meanwhile.
    let spans_window = spans_before
        .as_ref()
        .map(|_| alloc::spans::RunWindow::open());
    let mut done = 0u32;
    let mut target = plan.iterations;
    let mut failure = None;
    let mut extensions = Vec::new();
    let mut earlier = judge::Earlier::default();
    let mut judged: Option<(u32, BTreeMap<Metric, MetricReport>)> = None;
    let mut idle_look: Option<judge::IdleLook> = None;
    let halt = 'run: {
        let first = match source.first(&mut between) {
            Step::Sample(s) => s,
            Step::Failed(f) => {
                failure = Some(f);
                break 'run Halt::Failed;
            }
            Step::Ended(end) => break 'run halt_for(end),
        };
        push(first);
        report_progress(&mut plan, first, 0, target.unwrap_or(0), started, false);
        loop {
            let halt = loop {
                if target.is_some_and(|t| done >= t) || done >= limits.most() {
                    break Halt::Checkpoint;
                }
                let sample = match source.next(done + 1, &mut between) {
                    Step::Sample(s) => s,
                    Step::Failed(f) => {
                        failure = Some(f);
                        break Halt::Failed;
                    }
                    Step::Ended(end) => break halt_for(end),
                };
                done += 1;
                push(sample);
                report_progress(
                    &mut plan,
                    sample,
                    done,
                    target.unwrap_or(done),
                    started,
                    false,
                );
                if crate::interrupt::requested() {
                    break Halt::Interrupted;
                }
                // A budget exceeded fails the run whatever comes next: stop extending.
                if plan.budgets.exceeded_by(&sample, first.heap_bytes) {
                    break Halt::OverBudget;
                }
                if let Some(limit) = plan.timeout
                    && started.elapsed() > limit
                {
                    failure = Some(untracked(|| {
                        Failure::new(
                            FailureKind::Timeout,
                            done,
                            format!(
                                "timed out: the run passed --timeout {} s after {}",
                                limit.as_secs_f64(),
                                crate::format::iterations_of(u64::from(done), "")
                            ),
                        )
                    }));
                    break Halt::Failed;
                }
            };
            if halt != Halt::Checkpoint || target.is_none() {
                break 'run halt;
            }
            let (metrics, next) = untracked(|| {
                let mut metrics = judge_store(&store, &plan.judging);
                source.review(&mut metrics);
                look_since(&mut earlier, &store, &plan.judging, &extensions);
                for (metric, m) in &metrics {
                    tracing::debug!(
                        "{}: {metric} at {done}: {:?}, {}",
                        plan.name,
                        m.verdict,
                        m.reason
                    );
                }
                let next = if extend {
                    judge::next_step(&metrics, &earlier, done, limits)
                } else {
                    Next::Stop
                };
                (metrics, next)
            });
            // A leak at a checkpoint: what the process holds once it idled (see
            // `judge::idle_verdicts`); at the last, compared with the look at the checkpoint
            // before it, if one was taken there (one from further back spans what a cache
            // filled since).
            let mut metrics = metrics;
            let previous = extensions.last().map(|e: &Extension| e.from);
            // All of it untracked, the wait included: the looks' own vectors must never be
            // counted in the workload's heap, neither made nor freed there.
            untracked(|| {
                let before = idle_look.take().filter(|b| Some(b.iterations) == previous);
                let held = judge::held(&metrics, before.as_ref(), next == Next::Stop);
                if held.is_empty() {
                    return;
                }
                let Some((sample, waited)) = source.idle(IDLE_WAIT) else {
                    return;
                };
                let look = judge::IdleLook {
                    iterations: done,
                    sample,
                    waited,
                    held,
                };
                if next == Next::Stop
                    && let Ok(s) = store.lock()
                {
                    let (before, how) = (before.as_ref(), &plan.judging);
                    judge::idle_verdicts(&mut metrics, s.as_slice(), how, before, &look);
                    // A leak the idle look took back may have kept the review from acting.
                    source.review(&mut metrics);
                }
                idle_look = Some(look);
            });
            match next {
                Next::Stop => {
                    judged = Some((done, metrics));
                    break 'run Halt::Checkpoint;
                }
                Next::ExtendTo(to, reason) => {
                    source.extending(to, &metrics);
                    untracked(|| {
                        tracing::info!("{}: extending to {to} iterations: {reason}", plan.name);
                        // Past the ordinary bound (noise): room for the samples to come now, in
                        // one step at a checkpoint, rather than regrowing the store mid-run.
                        if to > max
                            && let Ok(mut s) = store.lock()
                        {
                            s.reserve(to as usize + 1);
                        }
                        earlier = earlier.after(&metrics);
                        extensions.push(Extension {
                            from: done,
                            to,
                            reason,
                        });
                        drop(metrics);
                        target = Some(to);
                    })
                }
            }
        }
    };
    // Made untracked, freed untracked (see the looks above).
    untracked(|| drop(idle_look.take()));
    source.stop(&mut between);
    // What the spans did, read as the workload is done (untracked, dropped untracked): what
    // the report's making allocates next is the caller's, charged to whatever span the caller
    // is in, not to this run.
    let spans_after = spans_window
        .as_ref()
        .and_then(|w| Some((w.totals_untracked()?, w.retained_untracked())));
    let last = untracked(|| store.lock().ok().and_then(|s| s.as_slice().last().copied()));
    if let Some(sample) = last {
        report_progress(&mut plan, sample, done, done, started, true);
    }

    // From here on allocations are the report's own, tracked normally, so that whoever drops
    // the report frees them consistently.
    let (samples, mut metrics) = untracked(|| {
        let samples = store.lock().map(|mut s| s.take()).unwrap_or_default();
        let metrics = match judged.take() {
            Some((at, metrics)) if at == done => metrics,
            _ => {
                let mut metrics = judge::judge(&samples, &plan.judging);
                source.review(&mut metrics);
                // Judged afresh (the source ended between checkpoints): look again too.
                if let Some(previous) = extensions.last() {
                    earlier.look_since(&samples, &plan.judging, previous.from);
                }
                metrics
            }
        };
        (samples, metrics)
    });
    let interrupted = halt == Halt::Interrupted || halt == Halt::Ended(End::Interrupted);
    let over_budget = halt == Halt::OverBudget;
    // A leak the run could not confirm at twice the iterations: inconclusive (saying so)
    // where the run stopped itself, interrupted or at its bound. A run stopped by a budget
    // never reached a checkpoint: its leaks are reported as seen. A source that ended gave
    // every sample it had: there is nothing more to confirm with.
    let stopped_itself = matches!(halt, Halt::Checkpoint | Halt::OverBudget) || interrupted;
    if failure.is_none() && plan.iterations.is_some() && stopped_itself {
        let why = if over_budget {
            judge::Unconfirmed::OverBudget { iteration: done }
        } else if extend || interrupted {
            judge::Unconfirmed::MayExtend
        } else {
            judge::Unconfirmed::ExtensionOff
        };
        untracked(|| judge::settle(&mut metrics, &earlier, why));
    }
    let end = match halt {
        Halt::Checkpoint | Halt::OverBudget => End::Iterations,
        Halt::Interrupted => End::Interrupted,
        Halt::Failed => End::Exited,
        Halt::Ended(end) => end,
    };
    let mut run = Run {
        iterations: done,
        samples: alloc::adopt(samples),
        interval_samples: alloc::adopt(untracked(|| between.into_items())),
        metrics: adopt_map(metrics),
        // Built untracked (their reasons too): handed over as tracked copies.
        extensions: {
            let tracked = extensions.clone();
            untracked(move || drop(extensions));
            tracked
        },
        failure: failure.map(|f| {
            let adopted = f.clone();
            untracked(move || drop(f));
            adopted
        }),
        x_axis: plan.judging.axis,
        ..Run::new(plan.name.clone(), plan.judging.scope)
    };
    run.source.kind = plan.judging.source;
    if let (Some(before), Some((after, retained))) = (&spans_before, &spans_after) {
        run.spans = spans::records(before, after, retained.as_deref());
        let lost = alloc::span_stack::lost_exits() - lost_exits_before;
        if lost > 0 {
            run.source.notes.push(spans::lost_exits_note(lost));
        }
    }
    untracked(move || drop((spans_before, spans_after)));
    source.finish(&mut run, Ending { end, over_budget });
    conclude(&mut run, &plan.budgets);
    // The caller's, made counted: freed counted. (The toolkit's own callbacks keep what they
    // make untracked in an `alloc::Untracked`.)
    drop(plan.progress.take());
    // Made untracked (or shared by a watcher that made it untracked), freed untracked: it
    // used to be freed counted, one block of 256 B off the process heap per run.
    untracked(move || drop((store, earlier)));
    run
}

/// Derive a run's warm-up, verdict and budget checks from what it holds (a failed run is at
/// best inconclusive).
pub fn conclude(run: &mut Run, budgets: &Budgets) {
    run.warmup = judge::run_warmup(&run.metrics);
    run.verdict = judge::run_verdict(&run.metrics);
    if run.failure.is_some() && run.verdict == Verdict::Clean {
        run.verdict = Verdict::Inconclusive;
    }
    run.budgets = budgets.check(run);
}

fn halt_for(end: End) -> Halt {
    match end {
        End::Interrupted => Halt::Interrupted,
        end => Halt::Ended(end),
    }
}

/// Look at what the run sampled since its previous checkpoint, if any: whether the leaks seen
/// there went on ([`judge::Earlier::look_since`]).
fn look_since(
    earlier: &mut judge::Earlier,
    store: &SharedStore,
    judging: &Judging,
    extensions: &[Extension],
) {
    if let (Some(previous), Ok(s)) = (extensions.last(), store.lock()) {
        earlier.look_since(s.as_slice(), judging, previous.from);
    }
}

fn judge_store(store: &SharedStore, judging: &Judging) -> BTreeMap<Metric, MetricReport> {
    match store.lock() {
        Ok(s) => judge::judge(s.as_slice(), judging),
        Err(_) => BTreeMap::new(),
    }
}

fn report_progress(
    plan: &mut Plan,
    sample: Sample,
    done: u32,
    target: u32,
    started: Instant,
    last: bool,
) {
    if let Some(progress) = plan.progress.as_mut() {
        untracked(|| {
            progress(Progress {
                done,
                target,
                elapsed: started.elapsed(),
                sample,
                last,
            })
        });
    }
}

fn adopt_map<K: Ord + Clone, V: Clone>(map: BTreeMap<K, V>) -> BTreeMap<K, V> {
    let adopted = map.clone();
    untracked(move || drop(map));
    adopted
}
