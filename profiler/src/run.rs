// Owns the `Profiler` builder and the iteration loop: warm-up, boundary and interval sampling,
// extension and confirmation, panics. Must never allocate tracked memory between samples.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::alloc::{self, untracked};
use crate::attribution::{self, Attribute};
use crate::budget::Budgets;
use crate::interrupt;
use crate::judge::{self, Next};
use crate::model::{End, Extension, Failure, FailureKind, HeapScope, IntervalSample, Report, Run};
use crate::probe::{Probe, Target};
use crate::sample::{Metric, Sample, Sampler, Scope, ms};
use crate::store::{MAX_STORED_SAMPLES, SampleStore};
use crate::verdict::Verdict;

/// Iterations run when none are asked for.
pub const DEFAULT_ITERATIONS: u32 = 20;
/// A run never extends past this many times the iterations asked for, unless told otherwise.
pub const DEFAULT_EXTENSION_FACTOR: u32 = 8;
/// The most iterations a run accepts.
pub const MAX_ITERATIONS: u32 = 10_000_000;

/// Progress of a run, given to the callback set with [`Profiler::on_progress`].
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

type ProgressFn = Box<dyn FnMut(Progress)>;

/// Runs a workload for a number of iterations and samples it at every boundary.
///
/// ```no_run
/// #[global_allocator]
/// static ALLOC: profiler::Alloc = profiler::Alloc::new();
///
/// let report = profiler::Profiler::new("parse")
///     .iterations(20)
///     .run(|| "1,2,3".split(',').map(|s| s.parse::<u32>().unwrap()).sum::<u32>());
/// report.assert_no_leaks();
/// ```
pub struct Profiler {
    name: String,
    description: Option<String>,
    iterations: u32,
    warmup: Option<u32>,
    interval: Option<Duration>,
    extend: bool,
    max_iterations: Option<u32>,
    budgets: Budgets,
    scope: Scope,
    isolated: bool,
    attribute: Attribute,
    attribute_iterations: u32,
    attribute_file: Option<std::path::PathBuf>,
    timeout: Option<Duration>,
    progress: Option<ProgressFn>,
}

impl Profiler {
    /// A profiler for the workload called `name`, with the defaults: 20 iterations, automatic
    /// warm-up, extension and confirmation on, no interval sampling.
    pub fn new(name: impl Into<String>) -> Self {
        Profiler {
            name: name.into(),
            description: None,
            iterations: DEFAULT_ITERATIONS,
            warmup: None,
            interval: None,
            extend: true,
            max_iterations: None,
            budgets: Budgets::default(),
            scope: Scope::Process,
            isolated: false,
            attribute: Attribute::Off,
            attribute_iterations: 4,
            attribute_file: None,
            timeout: None,
            progress: None,
        }
    }

    /// A sentence saying what the workload does (shown in reports).
    pub fn description(mut self, text: impl Into<String>) -> Self {
        self.description = Some(text.into());
        self
    }

    /// Iterations to run before the first verdict (default 20; at least 1). The run may go on
    /// to confirm a leak or resolve an inconclusive metric, see [`Profiler::extend`].
    pub fn iterations(mut self, n: u32) -> Self {
        self.iterations = n.clamp(1, MAX_ITERATIONS);
        self
    }

    /// Leave at least this many leading iterations out of the analysis (default: automatic;
    /// the warm-up still grows past it while growth is slowing down, like a cache filling).
    pub fn warmup(mut self, n: u32) -> Self {
        self.warmup = Some(n);
        self
    }

    /// Also sample heap and RSS every `period` in the background, between boundaries.
    pub fn interval(mut self, period: Duration) -> Self {
        self.interval = (!period.is_zero()).then_some(period);
        self
    }

    /// Whether the run may go on past `iterations` (default true): doubling while a gating
    /// metric is inconclusive, and once more to confirm a leak. Off: exactly `iterations`.
    pub fn extend(mut self, on: bool) -> Self {
        self.extend = on;
        self
    }

    /// Upper bound of iterations when extending (default 8 x `iterations`).
    pub fn max_iterations(mut self, n: u32) -> Self {
        self.max_iterations = Some(n.clamp(1, MAX_ITERATIONS));
        self
    }

    /// Fail the run (exit 1, [`Report::assert_within_budget`]) if the heap peak of any
    /// iteration, above the live heap at the run's start, exceeds `bytes`.
    pub fn max_peak(mut self, bytes: u64) -> Self {
        self.budgets.peak = Some(bytes);
        self
    }

    /// Fail the run if any iteration allocates more than `bytes` (freed or not).
    pub fn max_allocated(mut self, bytes: u64) -> Self {
        self.budgets.allocated = Some(bytes);
        self
    }

    /// Fail the run if the process's RSS exceeds `bytes` at any boundary.
    pub fn max_rss(mut self, bytes: u64) -> Self {
        self.budgets.rss = Some(bytes);
        self
    }

    /// Set every budget at once.
    pub fn budgets(mut self, budgets: Budgets) -> Self {
        self.budgets = budgets;
        self
    }

    /// Whose allocations the heap metrics count (default [`Scope::Process`]). Use
    /// [`Scope::Thread`] inside ordinary parallel `cargo test` when the workload allocates on
    /// the calling thread only; see also [`Profiler::isolated`].
    pub fn scope(mut self, scope: Scope) -> Self {
        self.scope = scope;
        self
    }

    /// Run the check alone in a child process, for a process-wide view (heap, fds, threads,
    /// threads the workload spawns) inside parallel `cargo test`: the test binary is started
    /// again filtered to the calling test, which runs this profile there and hands the report
    /// back. Under `cargo nextest` (one process per test already) it runs in place.
    ///
    /// Must be called from a `#[test]` function (it finds the test by its thread's name);
    /// elsewhere it runs in place.
    pub fn isolated(mut self) -> Self {
        self.isolated = true;
        self
    }

    /// Find the call sites that leak with dhat after the counting run: [`Attribute::OnGrowth`]
    /// when the heap grows, [`Attribute::Always`]. Passes of k, 2k and 4k iterations run
    /// under dhat (about 20-30x slower per iteration); the sites land in `Run::leak_sites`.
    pub fn attribute(mut self, when: Attribute) -> Self {
        self.attribute = when;
        self
    }

    /// k, the iterations of the first attribution pass (default 4; then 2k and 4k).
    pub fn attribute_iterations(mut self, k: u32) -> Self {
        self.attribute_iterations = k.max(1);
        self
    }

    /// Where dhat's file of the longest attribution pass is kept (default
    /// `./<workload>.dhat-heap.json`).
    pub fn attribute_file(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.attribute_file = Some(path.into());
        self
    }

    /// End the run after the iteration during which `limit` passed: a failure saying so, with
    /// the samples so far judged. (An iteration that never returns is the caller's to abandon:
    /// `session::run_workload_guarded` does.)
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.timeout = Some(limit);
        self
    }

    /// Called after every iteration, outside the measured heap.
    pub fn on_progress(mut self, f: impl FnMut(Progress) + 'static) -> Self {
        self.progress = Some(Box::new(f));
        self
    }

    /// Run `workload` and judge it. Its result is dropped before each boundary sample. A
    /// panicking workload ends the run; the report keeps the samples so far and the message.
    pub fn run<R>(self, workload: impl FnMut() -> R) -> Report {
        if self.isolated
            && let Some(report) = crate::isolate::in_child_process(&self.name)
        {
            return report;
        }
        let report = Report::new(vec![self.run_one(workload)]);
        crate::isolate::hand_back(&report);
        report
    }

    /// Like [`Profiler::run`], returning the [`Run`] alone (to gather several in one report).
    pub fn run_one<R>(mut self, mut workload: impl FnMut() -> R) -> Run {
        let max_iterations = self.max_iterations.unwrap_or(
            self.iterations
                .saturating_mul(DEFAULT_EXTENSION_FACTOR)
                .min(MAX_ITERATIONS),
        );
        let max_iterations = max_iterations.max(self.iterations);
        // No room to run on is the same as no extension: a leak is then reported unconfirmed
        // (saying so) rather than turned inconclusive for want of room.
        self.extend &= max_iterations > self.iterations;
        let capacity = if self.extend {
            max_iterations
        } else {
            self.iterations
        };
        let heap_scope = match (alloc::is_installed(), self.scope) {
            (false, _) => HeapScope::None,
            (true, Scope::Process) => HeapScope::Process,
            (true, Scope::Thread) => HeapScope::Thread,
        };

        // The iteration in progress, for the background sampler's labels.
        let in_progress = untracked(|| Arc::new(AtomicU32::new(0)));
        let started = Instant::now();
        let (mut sampler, mut samples, background) = untracked(|| {
            let samples = SampleStore::new(MAX_STORED_SAMPLES, capacity as usize + 1);
            let background = self.interval.map(|period| {
                BackgroundSampler::start(period, started, self.scope, Arc::clone(&in_progress))
            });
            let mut sampler = Sampler::new(Probe::new(Target::Current), self.scope, started);
            sampler.set_own_threads(background.is_some() as u64);
            // Judge once before the first sample so that the verdict code's pages are
            // resident: judging at a checkpoint must not show up as RSS growth.
            judge::fault_in_code();
            (sampler, samples, background)
        });
        let first = sampler.boundary(0);
        untracked(|| {
            samples.push(first);
            if let Some(progress) = self.progress.as_mut() {
                progress(Progress {
                    done: 0,
                    target: self.iterations,
                    elapsed: started.elapsed(),
                    sample: first,
                    last: false,
                });
            }
        });

        let mut target = self.iterations;
        let mut done = 0u32;
        let mut failure = None;
        let mut interrupted = false;
        let mut over_budget = false;
        let mut extensions = Vec::new();
        let mut leaks_before: Vec<Metric> = Vec::new();
        let mut metrics;
        loop {
            while done < target {
                in_progress.store(done + 1, Ordering::Relaxed);
                let outcome = catch_unwind(AssertUnwindSafe(|| drop(workload())));
                if let Err(payload) = outcome {
                    failure = Some(untracked(|| {
                        Failure::new(
                            FailureKind::Panic,
                            done + 1,
                            panic_message(payload.as_ref()),
                        )
                    }));
                    // The payload was allocated by the workload: freeing it is the workload's.
                    drop(payload);
                    break;
                }
                done += 1;
                let sample = sampler.boundary(done);
                untracked(|| {
                    samples.push(sample);
                    if let Some(progress) = self.progress.as_mut() {
                        progress(Progress {
                            done,
                            target,
                            elapsed: started.elapsed(),
                            sample,
                            last: false,
                        });
                    }
                });
                if interrupt::requested() {
                    interrupted = true;
                    break;
                }
                // A budget exceeded fails the run whatever comes next: stop extending.
                if self.budgets.exceeded_by(&sample, first.heap_bytes) {
                    over_budget = true;
                    break;
                }
                if let Some(limit) = self.timeout
                    && started.elapsed() > limit
                {
                    failure = Some(untracked(|| {
                        Failure::new(
                            FailureKind::Timeout,
                            done,
                            format!(
                                "timed out: the run passed --timeout {} s after {done} iterations",
                                limit.as_secs_f64()
                            ),
                        )
                    }));
                    break;
                }
            }
            let (judged, next) = untracked(|| {
                let judged = judge::judge_samples(samples.as_slice(), self.warmup, heap_scope);
                for (metric, m) in &judged {
                    tracing::debug!(
                        "{}: {metric} at {done}: {:?}, {}",
                        self.name,
                        m.verdict,
                        m.reason
                    );
                }
                let next = if failure.is_some() || interrupted || over_budget || !self.extend {
                    Next::Stop
                } else {
                    judge::next_step(&judged, &leaks_before, done, max_iterations)
                };
                (judged, next)
            });
            match next {
                Next::Stop => {
                    metrics = judged;
                    break;
                }
                Next::ExtendTo(to, reason) => untracked(|| {
                    tracing::info!("{}: extending to {to} iterations: {reason}", self.name);
                    leaks_before = judged
                        .iter()
                        .filter(|(_, m)| m.verdict == Verdict::Leak)
                        .map(|(k, _)| *k)
                        .collect();
                    extensions.push(Extension {
                        from: done,
                        to,
                        reason,
                    });
                    drop(judged);
                    target = to;
                }),
            }
        }
        // The last sample is taken: from here on allocations are the report's own, tracked
        // normally so that whoever drops the report frees them consistently.
        untracked(|| {
            if let (Some(progress), Some(&sample)) =
                (self.progress.as_mut(), samples.as_slice().last())
            {
                progress(Progress {
                    done,
                    target: done,
                    elapsed: started.elapsed(),
                    sample,
                    last: true,
                });
            }
        });
        let interval_samples = background.map(|b| untracked(|| b.stop()));
        untracked(|| {
            drop(sampler);
            drop(in_progress);
            drop(self.progress.take());
        });
        if failure.is_none() {
            // Interrupted, a new leak could not be confirmed either: settle it the same way. A run
            // stopped by a budget never reached a checkpoint: report its leaks as seen.
            let extend = (self.extend || interrupted) && !over_budget;
            untracked(|| judge::settle_unconfirmed(&mut metrics, &leaks_before, extend));
        }
        let run = Run {
            description: self.description.clone(),
            iterations: done,
            samples: alloc::adopt(untracked(|| samples.finish())),
            interval_samples: interval_samples.map(alloc::adopt).unwrap_or_default(),
            metrics: adopt_map(metrics),
            extensions: alloc::adopt(extensions),
            failure: failure.map(|f| {
                let adopted = f.clone();
                untracked(move || drop(f));
                adopted
            }),
            ..Run::new(self.name.clone(), heap_scope)
        };
        let mut run = finish(run);
        run.budgets = self.budgets.check(&run);
        if interrupted {
            run.source.end = Some(End::Interrupted);
            return run;
        }
        self.attribute_sites(&mut run, &mut workload);
        run
    }

    /// The dhat passes, when asked for and (by default) only when the heap grows.
    fn attribute_sites<R>(&self, run: &mut Run, workload: &mut impl FnMut() -> R) {
        let heap_grows = [Metric::HeapBytes, Metric::HeapBlocks].iter().any(|m| {
            run.metrics
                .get(m)
                .is_some_and(|m| m.verdict != Verdict::Clean)
        });
        let wanted = match self.attribute {
            Attribute::Off => false,
            Attribute::OnGrowth => heap_grows,
            Attribute::Always => true,
        };
        if !wanted || run.failure.is_some() {
            return;
        }
        if run.heap_scope != HeapScope::Process {
            run.attribution_note =
                Some("attribution skipped: it needs profiler::Alloc and the process scope".into());
            return;
        }
        let keep = self
            .attribute_file
            .clone()
            .unwrap_or_else(|| attribution::dhat_path(&run.workload, None));
        let passes = catch_unwind(AssertUnwindSafe(|| {
            attribution::attribute(
                workload,
                self.attribute_iterations,
                &keep,
                run.median_duration_ms(),
            )
        }));
        match passes {
            Ok(Ok((sites, info))) => {
                run.leak_sites = sites;
                run.attribution = Some(info);
            }
            Ok(Err(e)) => {
                if matches!(e, crate::Error::Interrupted) {
                    run.source.end = Some(End::Interrupted);
                }
                run.attribution_note = Some(format!("attribution failed: {e}"));
            }
            Err(payload) => {
                alloc::route_to_dhat(false);
                run.attribution_note = Some(format!(
                    "attribution failed: the workload panicked under dhat: {}",
                    panic_message(payload.as_ref())
                ));
            }
        }
    }
}

/// Derive the run's warm-up and verdict from its metrics (a failed run is at best inconclusive).
fn finish(mut run: Run) -> Run {
    run.warmup = judge::run_warmup(&run.metrics);
    run.verdict = judge::run_verdict(&run.metrics);
    if run.failure.is_some() && run.verdict == Verdict::Clean {
        run.verdict = Verdict::Inconclusive;
    }
    run
}

fn adopt_map<K: Ord + Clone, V: Clone>(
    map: std::collections::BTreeMap<K, V>,
) -> std::collections::BTreeMap<K, V> {
    let adopted = map.clone();
    untracked(move || drop(map));
    adopted
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_string()
    }
}

/// The profiler's own thread sampling heap and RSS every period. Everything it allocates is
/// untracked; the owner starts and stops it untracked too.
struct BackgroundSampler {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<Vec<IntervalSample>>,
}

impl BackgroundSampler {
    fn start(period: Duration, start: Instant, scope: Scope, in_progress: Arc<AtomicU32>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("profiler-sampler".into())
            .spawn(move || {
                untracked(|| {
                    let mut probe = Probe::new(Target::Current);
                    let mut out = Vec::new();
                    let _ = ready_tx.send(());
                    while !flag.load(Ordering::Relaxed) {
                        std::thread::park_timeout(period);
                        if flag.load(Ordering::Relaxed) {
                            break;
                        }
                        // Another thread's own counters cannot be read from here.
                        let heap = (scope == Scope::Process).then(alloc::heap).flatten();
                        let stats = probe.read();
                        out.push(IntervalSample {
                            elapsed_ms: ms(start.elapsed()),
                            iteration: in_progress.load(Ordering::Relaxed),
                            heap_bytes: heap.map(|h| h.live_bytes),
                            rss_bytes: stats.rss_bytes,
                        });
                    }
                    out
                })
            })
            .expect("profiler: could not start the sampler thread");
        // Wait until the thread runs inside `untracked`, so its start-up is not in sample 0.
        let _ = ready_rx.recv();
        BackgroundSampler { stop, handle }
    }

    fn stop(self) -> Vec<IntervalSample> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.thread().unpark();
        self.handle.join().unwrap_or_default()
    }
}
