// Owns the `Profiler` builder: a workload in this process, its settings, the engine run and
// the attribution passes after it. Must never copy the engine's loop: it only configures it.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use crate::alloc::{self, Untracked};
use crate::attribution::{self, Attribute};
use crate::budget::Budgets;
use crate::engine::workload::WorkloadSource;
use crate::engine::{self, Plan, ProgressFn};
use crate::judge::Judging;
use crate::model::{Complexity, End, HeapScope, Report, Run};
use crate::sample::{Metric, Scope};
use crate::store::SharedStore;

pub use crate::engine::{DEFAULT_ITERATIONS, MAX_ITERATIONS, Progress};

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
    store: Option<SharedStore>,
    max_complexity: Option<Complexity>,
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
            store: None,
            max_complexity: None,
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

    /// Upper bound of iterations when extending (default 8 x `iterations`, and 64 x while the
    /// only undecided metrics are too noisy to bound yet).
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

    /// The largest growth class a [`Profiler::sweep`]'s heap peak and retained bytes may
    /// have: above it the report fails (exit 1 in `profile`; [`Report::assert_within_complexity`]
    /// panics).
    pub fn max_complexity(mut self, class: Complexity) -> Self {
        self.max_complexity = Some(class);
        self
    }

    /// Measure memory against input size. For each of `sizes`, `setup(n)` builds the input
    /// for n (unmeasured) and returns the closure measured on it, repeated until its heap
    /// peaks agree; heap peak, retained and allocated bytes, allocations and time per size
    /// are fitted to a growth class (`O(1)` ... `O(n^3)`, or "cannot tell": see
    /// [`crate::fit`]). Counted in this profiler's [`Scope`].
    ///
    /// In [`Scope::Thread`], as for [`Profiler::run`]: if other threads of the process moved
    /// memory during the sweep (threads the routine spawns, or other tests), it is swept again
    /// alone in a child process, in process scope; where that cannot be done, no heap class
    /// is decided. Under `cargo nextest` the thread scope is the process scope from the start.
    ///
    /// With the counting allocator installed the heap is counted exactly and fitted; without
    /// it only RSS is, which at these sizes is too coarse to tell O(n) from O(n log n).
    ///
    /// # Panics
    /// When an option of [`Profiler::run`] was set that a sweep cannot apply (iterations,
    /// warm-up, extension, budgets, interval, timeout, attribution, isolation): a limit never
    /// applied must not pass as kept, as `profile --sweep` refuses them too.
    ///
    /// ```
    /// #[global_allocator]
    /// static ALLOC: profiler::Alloc = profiler::Alloc::new();
    ///
    /// # fn main() {
    /// use profiler::model::Complexity;
    /// let report = profiler::Profiler::new("sort")
    ///     .max_complexity(Complexity::Linear)
    ///     .sweep(&[1_000, 10_000, 100_000], |n| {
    ///         let input: Vec<u64> = (0..n).rev().collect();
    ///         move || {
    ///             let mut copy = input.clone();
    ///             copy.sort_unstable();
    ///             copy
    ///         }
    ///     });
    /// report.assert_within_complexity();
    /// let sweep = report.runs[0].sweep.as_ref().unwrap();
    /// assert_eq!(sweep.points.len(), 3);
    /// # }
    /// ```
    pub fn sweep<F, R>(self, sizes: &[u64], mut setup: impl FnMut(u64) -> F) -> Report
    where
        F: FnMut() -> R,
    {
        let defaults = Profiler::new("");
        let not_in_a_sweep = [
            (".iterations()", self.iterations != defaults.iterations),
            (".warmup()", self.warmup.is_some()),
            (".interval()", self.interval.is_some()),
            (".extend(false)", !self.extend),
            (".max_iterations()", self.max_iterations.is_some()),
            (
                ".max_peak(), .max_allocated() or .max_rss()",
                !self.budgets.is_empty(),
            ),
            (".isolated()", self.isolated),
            (".attribute()", self.attribute != Attribute::Off),
            (".timeout()", self.timeout.is_some()),
        ];
        if let Some((option, _)) = not_in_a_sweep.iter().find(|(_, set)| *set) {
            panic!(
                "profiler: {option} does not apply to Profiler::sweep, which repeats each size \
                 until its memory agrees (hold the growth with .max_complexity())"
            );
        }
        let mut sizes = sizes.to_vec();
        sizes.sort_unstable();
        sizes.dedup();
        // As for a run: a child process checking again, and a process running this test
        // alone (cargo nextest), see the whole process.
        let occurrence = crate::isolate::occurrence(&self.name);
        let mut scope = self.scope;
        let alone_here = scope == Scope::Thread && crate::isolate::one_test_per_process();
        if crate::isolate::is_child() || alone_here {
            scope = Scope::Process;
        }
        let mut make = |n: u64| -> Result<Box<dyn FnMut() + '_>, String> {
            let mut f = setup(n);
            Ok(Box::new(move || drop(f())))
        };
        let (mut run, others_moved) = engine::sweep::in_process(
            &self.name,
            &sizes,
            &mut make,
            scope,
            self.max_complexity,
            &mut |_| {},
        );
        if scope == Scope::Thread && others_moved {
            run = sweep_again(run, &self.name, occurrence);
        }
        if alone_here {
            run.source.notes.push(
                "thread scope asked for, process scope used: this process runs this test \
                 alone (cargo nextest), so every thread it sees is the test's"
                    .to_string(),
            );
        }
        run.description = self.description;
        let report = Report::new(vec![run]);
        crate::isolate::hand_back(&report, occurrence);
        report
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

    /// Name the call sites that leak, in `Run::leak_sites`. [`Attribute::OnGrowth`] and
    /// [`Attribute::Always`] sample allocations during the run itself (a few percent of its
    /// time while looking, more while a leak is confirmed) and name sites with 95% bounds when
    /// the heap grows, or always; [`Attribute::Exact`] runs passes of k, 2k and 4k iterations
    /// under dhat after the run when the heap grows (about 20-30x slower per iteration).
    pub fn attribute(mut self, when: Attribute) -> Self {
        self.attribute = when;
        self
    }

    /// k, the iterations of the first dhat pass of [`Attribute::Exact`] (default 4; then 2k
    /// and 4k).
    pub fn attribute_iterations(mut self, k: u32) -> Self {
        self.attribute_iterations = k.max(1);
        self
    }

    /// Where dhat's file of the longest pass of [`Attribute::Exact`] is kept (default
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

    /// Keep the run's samples in `store`, which a watcher shares (the CLI's guard of a run
    /// that may hang): the samples so far can be reported without a second copy.
    pub(crate) fn share_samples(mut self, store: SharedStore) -> Self {
        self.store = Some(store);
        self
    }

    /// Called after every iteration, outside the measured heap: what the call allocates and
    /// frees is not counted, so it should not keep what it allocates (a vector it grows would
    /// later be freed counted, below where the heap was). The callback and what it captured
    /// are dropped counted, once the run is over, as any value of yours.
    pub fn on_progress(mut self, f: impl FnMut(Progress) + 'static) -> Self {
        self.progress = Some(Box::new(f));
        self
    }

    /// Run `workload` and judge it. Its result is dropped before each boundary sample. A
    /// panicking workload ends the run; the report keeps the samples so far and the message.
    ///
    /// In [`Scope::Thread`], if other threads of the process allocated or freed memory during
    /// the run (threads the workload spawns or hands work to: the scope cannot see what they
    /// do for it), the check is made again where the whole process is seen: in a child
    /// process running this test alone (as [`Profiler::isolated`] does). Where that cannot be
    /// done, the heap verdicts are neither leak nor clean, and [`Report::assert_no_leaks`]
    /// fails saying what to use instead. Under `cargo nextest`, which runs each test in a
    /// process of its own, the thread scope is the process scope from the start (a note says
    /// so).
    pub fn run<R>(mut self, mut workload: impl FnMut() -> R) -> Report {
        let occurrence = crate::isolate::occurrence(&self.name);
        if self.isolated
            && let Some(report) = crate::isolate::in_child_process(&self.name, occurrence)
        {
            return report;
        }
        if crate::isolate::is_child() {
            // A check made again in a child process sees the whole process: that is why.
            self.scope = Scope::Process;
        }
        // Where the process runs this test alone (cargo nextest), the whole process is the
        // test's from the start. A thread-scope run checked again there ran the workload a
        // second time in the same process: a HashMap growing 10 keys per call leaked by
        // capacity doublings in the first run and was clean in the second, whose 20 calls
        // fell between two doublings (an evaluator's, every run).
        let alone_here = self.scope == Scope::Thread && crate::isolate::one_test_per_process();
        if alone_here {
            self.scope = Scope::Process;
        }
        let again = (self.scope == Scope::Thread).then(|| self.with_scope(Scope::Process));
        let confirm = self.name.clone();
        let own_judging = Judging::in_process(HeapScope::Thread, self.warmup);
        let (run, seen) = self.run_seeing(&mut workload);
        let run = match again {
            Some(again) if seen.others_moved => again.recheck(run, occurrence),
            _ => {
                let why = hidden_by_other_tests(&run, &seen, &own_judging)
                    .map(|own| {
                        format!(
                            "other tests' allocations moved the heap while what this test's \
                             own thread allocated grew ({own}): a leak, or memory handed to \
                             other threads that free it"
                        )
                    })
                    .or_else(|| unsettled_beside_others(&run, &seen))
                    .or_else(|| fell_beside_others(&run, &seen));
                drop(seen);
                confirm_alone(run, &confirm, occurrence, why)
            }
        };
        let mut run = run;
        if alone_here {
            run.source.notes.push(
                "thread scope asked for, process scope used: this process runs this test \
                 alone (cargo nextest), so every thread it sees is the test's"
                    .to_string(),
            );
        }
        let report = Report::new(vec![run]);
        crate::isolate::hand_back(&report, occurrence);
        report
    }

    /// The same settings in another scope (no progress callback, no shared store).
    fn with_scope(&self, scope: Scope) -> Profiler {
        Profiler {
            name: self.name.clone(),
            description: self.description.clone(),
            iterations: self.iterations,
            warmup: self.warmup,
            interval: self.interval,
            extend: self.extend,
            max_iterations: self.max_iterations,
            budgets: self.budgets,
            scope,
            isolated: false,
            attribute: self.attribute,
            attribute_iterations: self.attribute_iterations,
            attribute_file: self.attribute_file.clone(),
            timeout: self.timeout,
            progress: None,
            store: None,
            max_complexity: self.max_complexity,
        }
    }

    /// A thread-scope run saw other threads move memory: check again where the whole process
    /// is seen (a child process running this test alone), or say that this scope cannot tell.
    fn recheck(self, blind: Run, occurrence: u32) -> Run {
        const WHY: &str = "thread scope: other threads of the process allocated or freed \
            memory during the run (threads this code spawns or hands work to, or other tests \
            beside it), which this scope cannot attribute";
        match crate::isolate::second_look(&self.name, occurrence) {
            Some(Ok(mut report)) if !report.runs.is_empty() => {
                let mut run = report.runs.swap_remove(0);
                run.source.notes.push(format!(
                    "{WHY}: checked again alone in a child process, in process scope (threads \
                     it spawns included)"
                ));
                run
            }
            Some(Err(no_child)) => crate::judge::blind_because(
                blind,
                &format!("{WHY}; {no_child}; so it can tell neither a leak nor a clean run"),
            ),
            Some(Ok(_)) => crate::judge::blind_because(
                blind,
                &format!("{WHY}; {NO_RUN}; so it can tell neither a leak nor a clean run"),
            ),
            None => crate::judge::blind(blind, WHY),
        }
    }

    /// Like [`Profiler::run`], returning the [`Run`] alone (to gather several in one report).
    /// It makes no second check: in [`Scope::Thread`] the run is what the thread saw.
    pub fn run_one<R>(self, workload: impl FnMut() -> R) -> Run {
        self.run_seeing(workload).0
    }

    /// The run, and what it saw of the other threads.
    fn run_seeing<R>(mut self, mut workload: impl FnMut() -> R) -> (Run, Seen) {
        let heap_scope = match (alloc::is_installed(), self.scope) {
            (false, _) => HeapScope::None,
            (true, Scope::Process) => HeapScope::Process,
            (true, Scope::Thread) => HeapScope::Thread,
        };
        let plan = Plan {
            iterations: Some(self.iterations),
            max_iterations: self.max_iterations,
            extend: self.extend,
            budgets: self.budgets,
            timeout: self.timeout,
            progress: self.progress.take(),
            store: self.store.take(),
            ..Plan::new(
                self.name.clone(),
                Judging::in_process(heap_scope, self.warmup),
            )
        };
        let mut source = WorkloadSource::new(&mut workload, self.scope, self.interval)
            .describe(self.description.clone());
        // Beside other tests, what the process gives back during an idle look may be theirs (a
        // neighbour freeing its memory would clear a leak): a leak seen there is checked again
        // alone in a child process, which looks. Their allocations can also hide a leak in the
        // process's counters: this thread's own heap is kept beside them.
        if crate::isolate::shared_with_other_tests() {
            source = source.without_idle_looks().watching_own_thread();
        }
        let sampled = self.attribute.sampled() && heap_scope == HeapScope::Process;
        if sampled {
            source = source.sampled(self.attribute == Attribute::OnGrowth);
        }
        let mut run = engine::drive(&mut source, plan);
        let seen = Seen {
            others_moved: source.saw_other_threads(),
            own_thread: source.own_thread(),
        };
        drop(source);
        if run.source.end == Some(End::Interrupted) {
            return (run, seen);
        }
        self.attribute_sites(&mut run, &mut workload);
        (run, seen)
    }

    /// The dhat passes of the exact mode, when the heap grows; for the sampled modes, why
    /// there are no sites when the run could not sample.
    fn attribute_sites<R>(&self, run: &mut Run, workload: &mut impl FnMut() -> R) {
        let heap_grows = run.heap_grows();
        if self.attribute.sampled() && run.heap_scope != HeapScope::Process {
            run.attribution_note =
                Some("attribution skipped: it needs profiler::Alloc and the process scope".into());
            return;
        }
        if self.attribute != Attribute::Exact || !heap_grows || run.failure.is_some() {
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
                run.attribution_note = Some(format!(
                    "attribution failed: the workload panicked under dhat: {}",
                    crate::engine::workload::panic_message(payload.as_ref())
                ));
            }
        }
    }
}

/// A thread-scope sweep during which other threads moved memory (threads the routine spawns,
/// whose memory this scope cannot see: n×n bytes on a helper thread read as "≈ 120 B, O(1)"
/// and passed an O(n) gate; or other tests beside it): swept again alone in a child process,
/// in process scope. Where that cannot be done, no heap fit is decided: every class is a
/// candidate, so a gate on it is undecided.
fn sweep_again(blind: Run, name: &str, occurrence: u32) -> Run {
    const WHY: &str = "thread scope: other threads of the process allocated or freed memory \
        during the sweep (threads the routine spawns or hands work to, or other tests beside \
        it), which this scope cannot attribute";
    match crate::isolate::second_look(name, occurrence) {
        Some(Ok(mut report)) if !report.runs.is_empty() => {
            let mut run = report.runs.swap_remove(0);
            run.source.notes.push(format!(
                "{WHY}: swept again alone in a child process, in process scope (threads it \
                 spawns included)"
            ));
            run
        }
        Some(Err(no_child)) => {
            crate::engine::sweep::blind_heap(blind, &format!("{WHY}; {no_child}"))
        }
        Some(Ok(_)) => crate::engine::sweep::blind_heap(blind, &format!("{WHY}; {NO_RUN}")),
        None => crate::engine::sweep::blind_heap(blind, WHY),
    }
}

/// Why a re-check in a child has no answer when the report it handed back holds no run (the
/// child writes one file per run, so only a damaged file does).
const NO_RUN: &str = "the isolated run's report held no run";

/// What a run saw of the process's other threads.
struct Seen {
    /// Other threads allocated or freed memory they still hold (or no longer hold) between two
    /// samples (thread scope; process scope when watching its own thread).
    others_moved: bool,
    /// Process scope beside other tests: this thread's own live bytes and blocks at each
    /// boundary, `(iteration, bytes, blocks)`.
    own_thread: Option<Untracked<Vec<(u32, i64, i64)>>>,
}

/// In process scope beside other tests of a parallel `cargo test`: a leak of this test's own
/// thread that the other tests' heap hid from the process's counters, as a sentence. A
/// neighbour holding a varying number of blocks turns one block leaked per call into a
/// sawtooth read as clean, while the thread's own counters rise by exactly one per call.
/// `None` when the other threads' heap never moved, when the process's counters already
/// show a leak (checked alone anyway), or when the thread's own heap shows none.
///
/// The thread's own heap is not the verdict (what it hands to another thread to free reads as
/// kept): a leak there only sends the test to be checked again alone, whose run is the answer.
fn hidden_by_other_tests(run: &Run, seen: &Seen, judging: &Judging) -> Option<String> {
    let own = seen.own_thread.as_ref()?;
    if !seen.others_moved
        || run.heap_scope != HeapScope::Process
        || !leaks_alone_would_gate(run).is_empty()
    {
        return None;
    }
    // Kept in the order of the boundaries, so by iteration.
    let mut samples = run.samples.clone();
    for s in &mut samples {
        let at = own.binary_search_by_key(&s.iteration, |&(i, ..)| i).ok()?;
        let (_, bytes, blocks) = own[at];
        s.heap_bytes = Some(bytes);
        s.heap_blocks = Some(blocks);
    }
    let metrics = crate::judge::judge(&samples, judging);
    let leaks: Vec<String> = [Metric::HeapBytes, Metric::HeapBlocks]
        .into_iter()
        .filter_map(|metric| {
            let m = metrics.get(&metric)?;
            (m.verdict == crate::model::Verdict::Leak)
                .then(|| format!("{} {}", metric.name(), m.reason))
        })
        .collect();
    (!leaks.is_empty()).then(|| leaks.join("; "))
}

/// A heap verdict left inconclusive in process scope while other threads moved memory, inside
/// a test binary where other tests may run beside it: their allocations may be what kept it
/// from being decided, so it is checked again alone too. A tokio task keeping 300 B per call
/// beside a test holding thousands of vectors ended inconclusive at 160 or 640 iterations in 4
/// runs of 6 (the test passed); alone it is a leak.
fn unsettled_beside_others(run: &Run, seen: &Seen) -> Option<String> {
    let unsettled = heap_beside_others(run, seen, |m| {
        m.verdict == crate::model::Verdict::Inconclusive
            && !matches!(
                m.shape,
                crate::verdict::Shape::Blind | crate::verdict::Shape::TooShort
            )
    })?;
    Some(format!(
        "{unsettled} inconclusive while other threads moved the heap (other tests beside this \
         one, or threads this code uses)"
    ))
}

/// The heap metrics of a process-scope run that other threads disturbed inside a test binary
/// shared with other tests, whose verdict `which` picks, named; `None` when there are none
/// or the run is not such a run. A run that failed or went over a budget ended early, and a
/// second run would too: its answer is the failure.
fn heap_beside_others(
    run: &Run,
    seen: &Seen,
    which: impl Fn(&crate::model::MetricReport) -> bool,
) -> Option<String> {
    if !seen.others_moved
        || run.heap_scope != HeapScope::Process
        || run.failure.is_some()
        || run.budgets.iter().any(|b| b.exceeded)
        || !crate::isolate::shared_with_other_tests()
    {
        return None;
    }
    let picked: Vec<&str> = [Metric::HeapBytes, Metric::HeapBlocks]
        .into_iter()
        .filter(|metric| run.metrics.get(metric).is_some_and(&which))
        .map(Metric::name)
        .collect();
    (!picked.is_empty()).then(|| picked.join(", "))
}

/// A heap verdict clean while the process's heap fell and other threads moved it, inside a
/// test binary where other tests may run beside it: a neighbour test giving memory back
/// (tearing down an index, a consumer draining a queue filled in its setup) hides a leak of
/// this one under its fall. A futures-util `FuturesUnordered` leak of 2 blocks per call,
/// beside a test freeing 300 strings every 0.5 ms, read "clean, at most -40.9 per iteration"
/// 10 times in 10; alone it is a leak. So it is checked again alone. A heap that fell in a
/// run of its own is the workload's: the child says clean too, at the cost of a second run.
fn fell_beside_others(run: &Run, seen: &Seen) -> Option<String> {
    let fell = heap_beside_others(run, seen, |m| {
        m.verdict == crate::model::Verdict::Clean && m.ci.is_some_and(|[_, hi]| hi < 0.0)
    })?;
    Some(format!(
        "{fell} clean while falling and other threads moved the heap (other tests beside this \
         one giving memory back can hide a leak under their fall)"
    ))
}

/// A leak seen in place inside a test of a parallel `cargo test` is checked again alone in a
/// child process (as [`Profiler::isolated`] does) before it fails anything: in place, other
/// tests' allocations (in process scope) and libtest's capture of the test's output (a clean
/// function printing ten lines per call read as a doubling buffer, "leaking" 451 B per
/// iteration) are in the counters. The child's run is the answer; a leak it confirms costs
/// the test a second run. So is a leak of the test's own thread that the other tests' heap
/// hid ([`hidden_by_other_tests`]), a heap verdict they may have left undecided
/// ([`unsettled_beside_others`]), and a clean one their fall may have made
/// ([`fell_beside_others`]): `why` says which.
///
/// In thread scope fds and threads do not gate in place (process-wide: other tests move them);
/// a growth of them is checked alone too, where the process is this test's and they gate.
fn confirm_alone(run: Run, name: &str, occurrence: u32, why: Option<String>) -> Run {
    let leaking = leaks_alone_would_gate(&run);
    let seen = match why {
        _ if !leaking.is_empty() => format!("a leak seen in place ({})", leaking.join(", ")),
        Some(why) => why,
        None => return run,
    };
    if crate::isolate::is_child() || run.source.end == Some(End::Interrupted) {
        return run;
    }
    // Ten times what the run took in place, and at least a minute: the child runs the whole
    // test again, setup included.
    let took: f64 = run.samples.iter().filter_map(|s| s.duration_ms).sum();
    let limit = Duration::from_secs_f64((10.0 * took / 1e3).max(60.0));
    match crate::isolate::confirmation(name, occurrence, limit) {
        Some(Ok(mut report)) if !report.runs.is_empty() => {
            let mut alone = report.runs.swap_remove(0);
            alone.source.notes.push(format!(
                "{seen}: checked again alone in a child process, without other tests or \
                 libtest's output capture: this is that run"
            ));
            alone
        }
        Some(result) => {
            let why = match result {
                Err(why) => why,
                Ok(_) => "the isolated run's report holds no run".to_string(),
            };
            let mut run = run;
            run.source.notes.push(format!(
                "{seen}: could not be checked again alone: {why}; the run in place stands"
            ));
            run
        }
        // Run in place: this is the child, or every test has its own process already.
        None => run,
    }
}

/// The metrics leaking in `run` that would fail it in process scope: the gating ones, and in
/// thread scope fds and threads too.
fn leaks_alone_would_gate(run: &Run) -> Vec<&'static str> {
    run.metrics
        .iter()
        .filter(|(metric, m)| {
            m.verdict == crate::model::Verdict::Leak
                && (m.gating
                    || (run.heap_scope == HeapScope::Thread
                        && crate::judge::gates(**metric, HeapScope::Process, run.source.kind)))
        })
        .map(|(metric, _)| metric.name())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{MetricReport, Verdict};
    use crate::verdict::Shape;

    fn heap(verdict: Verdict, shape: Shape) -> Run {
        let mut run = Run::new("w", HeapScope::Process);
        for metric in [Metric::HeapBytes, Metric::HeapBlocks] {
            run.metrics.insert(
                metric,
                MetricReport {
                    verdict,
                    gating: true,
                    slope_per_iteration: None,
                    slope_per_second: None,
                    ci: None,
                    warmup: 0,
                    p_value: None,
                    shape,
                    after_warmup: 0.0,
                    end: 0.0,
                    growth: 0.0,
                    reason: String::new(),
                    confirmed_within: false,
                },
            );
        }
        run
    }

    /// An undecided heap beside other threads' allocations, in a test binary where other
    /// tests may run, is checked again alone; a decided one, a blind one, or one no other
    /// thread disturbed is not.
    #[test]
    fn an_undecided_heap_beside_other_threads_is_checked_again_alone() {
        let moved = |others_moved| Seen {
            others_moved,
            own_thread: None,
        };
        let undecided = heap(Verdict::Inconclusive, Shape::Sawtooth);
        // Under cargo nextest every test has its process: nothing to check again.
        if crate::isolate::one_test_per_process() {
            assert!(unsettled_beside_others(&undecided, &moved(true)).is_none());
            return;
        }
        // Else these unit tests run on libtest's threads of a test binary.
        assert!(crate::isolate::shared_with_other_tests());
        let why = unsettled_beside_others(&undecided, &moved(true)).expect("checked again");
        assert!(
            why.starts_with("heap_bytes, heap_blocks inconclusive"),
            "{why}"
        );
        assert!(unsettled_beside_others(&undecided, &moved(false)).is_none());
        for (verdict, shape) in [
            (Verdict::Clean, Shape::Flat),
            (Verdict::Leak, Shape::Linear),
            (Verdict::Inconclusive, Shape::Blind),
        ] {
            assert!(unsettled_beside_others(&heap(verdict, shape), &moved(true)).is_none());
        }
        let mut thread = heap(Verdict::Inconclusive, Shape::Sawtooth);
        thread.heap_scope = HeapScope::Thread;
        assert!(unsettled_beside_others(&thread, &moved(true)).is_none());
        // A run that failed ended early, and would again.
        let mut failed = heap(Verdict::Inconclusive, Shape::TooShort);
        assert!(unsettled_beside_others(&failed, &moved(true)).is_none());
        failed
            .metrics
            .values_mut()
            .for_each(|m| m.shape = Shape::Sawtooth);
        failed.failure = Some(crate::model::Failure {
            iteration: 3,
            message: "panicked".into(),
            kind: crate::model::FailureKind::Panic,
        });
        assert!(unsettled_beside_others(&failed, &moved(true)).is_none());
    }

    /// A clean heap that fell while other threads moved it, in a test binary, is checked
    /// again alone; one that did not fall, or that no other thread moved, is not.
    #[test]
    fn a_clean_heap_that_fell_beside_other_threads_is_checked_again_alone() {
        let moved = |others_moved| Seen {
            others_moved,
            own_thread: None,
        };
        let with_ci = |ci: [f64; 2]| {
            let mut run = heap(Verdict::Clean, Shape::Sawtooth);
            run.metrics.values_mut().for_each(|m| m.ci = Some(ci));
            run
        };
        let falling = with_ci([-60.0, -40.9]);
        // Under cargo nextest every test has its process: nothing to check again.
        if crate::isolate::one_test_per_process() {
            assert!(fell_beside_others(&falling, &moved(true)).is_none());
            return;
        }
        let why = fell_beside_others(&falling, &moved(true)).expect("checked again");
        assert!(
            why.starts_with("heap_bytes, heap_blocks clean while falling"),
            "{why}"
        );
        assert!(fell_beside_others(&falling, &moved(false)).is_none());
        assert!(fell_beside_others(&with_ci([-3.0, 0.4]), &moved(true)).is_none());
        let mut thread = with_ci([-60.0, -40.9]);
        thread.heap_scope = HeapScope::Thread;
        assert!(fell_beside_others(&thread, &moved(true)).is_none());
    }
}
