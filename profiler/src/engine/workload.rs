// Owns the source of a workload run in this process: its iterations, boundary samples and the
// background sampler. Must never allocate tracked memory of its own between two samples.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::{Ending, Source, Step};
use crate::alloc::{self, Untracked, untracked};
use crate::attribution::sampled::Sampling;
use crate::model::{End, Failure, FailureKind, IntervalSample, MetricReport, Run, Verdict};
use crate::probe::{Probe, Target};
use crate::quiet::{MAX_WAIT, QuietPoint, QuietStats};
use crate::sample::{Metric, Sample, Sampler, Scope, ms};
use crate::store::{MAX_INTERVAL_SAMPLES, Thinned};

/// A closure run once per iteration, its result dropped before the boundary sample.
pub struct WorkloadSource<'a, F> {
    workload: &'a mut F,
    scope: Scope,
    interval: Option<Duration>,
    description: Option<String>,
    sampler: Option<Sampler>,
    background: Option<BackgroundSampler>,
    /// Waits for the process's other threads before each boundary (process scope only: in
    /// thread scope the other threads are other tests').
    quiet: Option<QuietPoint>,
    /// The iteration in progress, for the background sampler's labels (allocated untracked,
    /// so freed untracked in `stop`).
    in_progress: Option<Arc<AtomicU32>>,
    waited: Option<QuietStats>,
    saw_other_threads: bool,
    /// Sampled attribution, when asked for: the sampling, and whether sites are named only
    /// when the heap grows.
    sampling: Option<(Sampling, bool)>,
    /// Called once the last sample is taken, before the run's report allocates anything.
    on_stop: Option<&'a (dyn Fn() + Sync)>,
    /// Whether the process may idle to show what it gives back (see [`Source::idle`]).
    idle_looks: bool,
    /// Whether to keep the calling thread's own heap beside the process's (process scope
    /// beside other tests), and what was kept once the run is over.
    watch_own_thread: bool,
    own_thread: Option<Untracked<Vec<(u32, i64, i64)>>>,
    /// What the process's heap grew by in the look after the last iteration (see
    /// [`AFTER_LOOK`]).
    grew_after: i64,
}

/// How long a run looks at the heap once its iterations are over, none running: a worker that
/// batches on a timer (every 10 ms) did the work the iterations handed it only after a run of
/// 20 fast iterations had ended, and its leak of 1 KiB per message read clean every time.
const AFTER_LOOK: Duration = Duration::from_millis(50);

/// Growth of the process's heap in [`AFTER_LOOK`] that makes a clean heap verdict blind.
const AFTER_LOOK_GROWTH: i64 = 4096;

impl<'a, F, R> WorkloadSource<'a, F>
where
    F: FnMut() -> R,
{
    /// `workload` counted in `scope`, also sampled every `interval` between boundaries.
    pub fn new(workload: &'a mut F, scope: Scope, interval: Option<Duration>) -> Self {
        WorkloadSource {
            workload,
            scope,
            interval,
            description: None,
            sampler: None,
            background: None,
            quiet: None,
            waited: None,
            saw_other_threads: false,
            sampling: None,
            in_progress: Some(untracked(|| Arc::new(AtomicU32::new(0)))),
            on_stop: None,
            idle_looks: true,
            watch_own_thread: false,
            own_thread: None,
            grew_after: 0,
        }
    }

    /// In process scope, also keep the calling thread's own live heap at every boundary, and
    /// whether the other threads' heap moved ([`WorkloadSource::saw_other_threads`]): beside
    /// other tests, theirs can hide a leak of this thread's (see
    /// [`WorkloadSource::own_thread`]).
    pub(crate) fn watching_own_thread(mut self) -> Self {
        self.watch_own_thread = true;
        self
    }

    /// The calling thread's own live bytes and blocks at each boundary, `(iteration, bytes,
    /// blocks)`, when [`WorkloadSource::watching_own_thread`] asked for them; once the run is
    /// over.
    pub(crate) fn own_thread(&mut self) -> Option<Untracked<Vec<(u32, i64, i64)>>> {
        self.own_thread.take()
    }

    /// No idle looks: the process is not the run's alone (other tests may run beside it, and
    /// what they free during a look would read as given back).
    pub fn without_idle_looks(mut self) -> Self {
        self.idle_looks = false;
        self
    }

    /// Call `f` once sampling has stopped, before the report is built (whose allocations
    /// would otherwise be in what the process's heap reads meanwhile).
    pub fn on_stop(mut self, f: &'a (dyn Fn() + Sync)) -> Self {
        self.on_stop = Some(f);
        self
    }

    /// In thread scope (or process scope watching its own thread): other threads allocated
    /// or freed memory during the run (see `Sampler::saw_other_threads`); known once the run
    /// is over.
    pub fn saw_other_threads(&self) -> bool {
        self.saw_other_threads
    }

    /// Sample allocations during the run and name the leaking call sites in its report
    /// (always, or with `only_if_growing` only when the heap grows). Needs `profiler::Alloc`
    /// and the process scope.
    pub fn sampled(mut self, only_if_growing: bool) -> Self {
        self.sampling = Some((Sampling::start(), only_if_growing));
        self
    }

    /// A sentence saying what the workload does, for the report.
    pub fn describe(mut self, description: Option<String>) -> Self {
        self.description = description;
        self
    }
}

impl<F, R> Source for WorkloadSource<'_, F>
where
    F: FnMut() -> R,
{
    fn first(&mut self, _between: &mut Thinned<IntervalSample>) -> Step {
        let started = Instant::now();
        let sampler = untracked(|| {
            let labels = self.in_progress.clone().unwrap_or_default();
            self.background = self
                .interval
                .map(|period| BackgroundSampler::start(period, started, self.scope, labels));
            let mut sampler = Sampler::new(Probe::new(Target::Current), self.scope, started);
            sampler.set_own_threads(self.background.is_some() as u64);
            if self.watch_own_thread {
                sampler.watch_own_thread();
            }
            if self.scope == Scope::Process {
                let own: Vec<u32> = self.background.iter().map(|b| b.tid).collect();
                let quiet = QuietPoint::new(&own);
                sampler.set_own_fds(quiet.open_fds());
                self.quiet = Some(quiet);
            }
            // Judge once before the first sample so that the verdict code's pages are
            // resident: judging at a checkpoint must not show up as RSS growth.
            crate::judge::fault_in_code();
            sampler
        });
        let sampler = self.sampler.insert(sampler);
        Step::Sample(sampler.boundary(0))
    }

    fn next(&mut self, n: u32, _between: &mut Thinned<IntervalSample>) -> Step {
        if let Some(label) = &self.in_progress {
            label.store(n, Ordering::Relaxed);
        }
        if let Some(sampler) = self.sampler.as_mut() {
            sampler.begin();
        }
        if let Some((sampling, _)) = self.sampling.as_mut() {
            sampling.begin(n);
        }
        let workload = &mut *self.workload;
        // Sampled backtraces stop at this frame: what calls the workload is the toolkit's.
        let anchor = 0u8;
        let floor =
            alloc::sampled::set_stack_floor(std::hint::black_box(&anchor) as *const u8 as usize);
        let result = catch_unwind(AssertUnwindSafe(|| drop(workload())));
        alloc::sampled::set_stack_floor(floor);
        if let Some((sampling, _)) = self.sampling.as_mut() {
            sampling.end();
        }
        if let Err(payload) = result {
            let failure =
                untracked(|| Failure::new(FailureKind::Panic, n, panic_message(payload.as_ref())));
            // The payload was allocated by the workload: freeing it is the workload's.
            drop(payload);
            return Step::Failed(failure);
        }
        let Some(sampler) = self.sampler.as_mut() else {
            return Step::Ended(End::Exited);
        };
        sampler.end();
        if let Some(quiet) = self.quiet.as_mut() {
            untracked(|| quiet.wait(MAX_WAIT));
            sampler.set_own_fds(quiet.open_fds());
        }
        let sample = sampler.boundary(n);
        if let Some((sampling, _)) = self.sampling.as_mut() {
            sampling.measured(sample.allocated_bytes, sample.duration_ms);
        }
        Step::Sample(sample)
    }

    fn extending(&mut self, to: u32, metrics: &BTreeMap<Metric, MetricReport>) {
        let Some((sampling, _)) = self.sampling.as_mut() else {
            return;
        };
        let slope = |metric| {
            metrics
                .get(&metric)
                .filter(|m| m.verdict != Verdict::Clean)
                .and_then(|m| m.slope_per_iteration)
                .unwrap_or(0.0)
        };
        // A leak of blocks alone: at least 16 bytes each.
        let bytes = slope(Metric::HeapBytes).max(16.0 * slope(Metric::HeapBlocks));
        let done = self
            .in_progress
            .as_ref()
            .map_or(0, |n| n.load(Ordering::Relaxed));
        sampling.confirm(bytes, to.saturating_sub(done));
    }

    fn idle(&mut self, look: Duration) -> Option<(Sample, Duration)> {
        // In thread scope the heap is this thread's, which no other thread gives back, and
        // fds and threads do not gate.
        if self.scope != Scope::Process || !self.idle_looks {
            return None;
        }
        let sampler = self.sampler.as_mut()?;
        let (started, step) = (Instant::now(), Duration::from_millis(10));
        let mut floor: Option<Sample> = None;
        loop {
            std::thread::sleep(step);
            let now = sampler.now(u32::MAX);
            floor = Some(floor.map_or(now, |f| f.floor(&now)));
            let waited = started.elapsed();
            if waited >= look {
                return floor.map(|f| (f, waited));
            }
        }
    }

    fn stop(&mut self, between: &mut Thinned<IntervalSample>) {
        untracked(|| {
            // Thread scope re-checks a run where other threads moved memory, but a thread the
            // workload handed work to may not have run yet: on a busy machine a starved worker
            // leaking 1 KiB per message did nothing during the run, which read clean 3 times in
            // 5 beside two CPU burners. One last look once the other threads are idle (at most
            // MAX_WAIT, and only while nothing moved: beside other tests something always has).
            // A worker sleeping on a timer is not runnable: the look waits AFTER_LOOK first.
            if self.scope == Scope::Thread
                && let Some(sampler) = self.sampler.as_mut()
                && !sampler.saw_other_threads()
            {
                let own: Vec<u32> = self.background.iter().map(|b| b.tid).collect();
                std::thread::sleep(AFTER_LOOK);
                QuietPoint::new(&own).wait(MAX_WAIT);
                sampler.now(0);
            }
            // In process scope, where the process is the run's (no other tests beside it),
            // what the heap does once no iteration runs is work the iterations handed on and
            // the samples missed.
            if self.scope == Scope::Process
                && self.idle_looks
                && self.sampler.is_some()
                && let Some(before) = alloc::heap()
            {
                std::thread::sleep(AFTER_LOOK);
                if let Some(quiet) = self.quiet.as_mut() {
                    quiet.wait(MAX_WAIT);
                }
                if let Some(after) = alloc::heap() {
                    self.grew_after = after.live_bytes - before.live_bytes;
                }
            }
            if let Some(background) = self.background.take() {
                for s in background.stop() {
                    between.push(s);
                }
            }
            if let Some(mut sampler) = self.sampler.take() {
                self.saw_other_threads = sampler.saw_other_threads();
                self.own_thread = sampler.own_thread();
            }
            drop(self.in_progress.take());
            if let Some(quiet) = self.quiet.take() {
                self.waited = Some(quiet.stats());
                drop(quiet);
            }
        });
        if let Some(f) = self.on_stop.take() {
            f();
        }
    }

    fn finish(&mut self, run: &mut Run, ending: Ending) {
        run.description = self.description.clone();
        // A workload in this process ends when the engine stops it; only an interruption is
        // worth recording.
        run.source.end = (ending.end == End::Interrupted).then_some(End::Interrupted);
        if let Some(note) = self.waited.and_then(|w| quiet_note(&w, run.iterations)) {
            run.source.notes.push(note);
        }
        let heap_clean = run
            .metrics
            .get(&Metric::HeapBytes)
            .is_some_and(|m| m.verdict == crate::verdict::Verdict::Clean);
        if heap_clean && self.grew_after >= AFTER_LOOK_GROWTH {
            let why = format!(
                "after the last iteration, with none running, the process's heap grew by {} \
                 within {} ms: work the iterations handed to other threads (a timer, a batch) \
                 is done later than the samples, which miss it; give each iteration time for \
                 it, or more iterations",
                crate::format::format_bytes(self.grew_after as f64),
                AFTER_LOOK.as_millis()
            );
            *run = crate::judge::blind_as(run.clone(), &why, "the samples alone");
        }
        if let Some((sampling, only_if_growing)) = self.sampling.take() {
            let (sites, info) = sampling.finish(run, only_if_growing);
            run.leak_sites = sites;
            run.attribution_note = if run.leak_sites.is_empty() {
                unnamed_leak(run, &info)
            } else {
                unnamed_rest(run)
            };
            run.attribution = Some(info);
        }
    }
}

/// A heap leak for which sampling named no site, as a sentence: the leaked blocks were too
/// few bytes to be sampled (a tester's 16 B an iteration among heavy churn: "none retains
/// memory in proportion to the iterations" beside a confirmed leak). `None` when the heap does
/// not leak.
fn unnamed_leak(run: &Run, info: &crate::model::AttributionInfo) -> Option<String> {
    if !run.heap_leaks() {
        return None;
    }
    let [finest, _] = info.interval_bytes?;
    let slope = run.metrics.get(&Metric::HeapBytes)?.slope()?;
    let expected = slope.max(0.0) * f64::from(run.iterations) / finest.max(1) as f64;
    // A site is named on MIN_SITE_SAMPLES samples of its blocks at least (twice that expected
    // leaves room for Poisson spread); with more expected, the blocks sampled did not grow
    // steadily enough with the iterations to be told from churn.
    let why = if expected < 2.0 * crate::attribution::sampled::MIN_SITE_SAMPLES as f64 {
        "too few to name a site on"
    } else {
        "but no site's sampled blocks grew steadily enough with the iterations to be named"
    };
    Some(format!(
        "no call site named: the heap leaks {} per iteration, about {expected:.1} samples' worth \
         over {} at one sample per {} allocated, {why}; --attribute exact names every site \
         (dhat passes, slower)",
        crate::format::format_bytes(slope),
        crate::format::iterations_of(u64::from(run.iterations), ""),
        crate::format::format_bytes(finest as f64)
    ))
}

/// A heap leak larger than all the sites sampling named can hold, as a sentence: a smaller
/// leak beside a large one (64 B an iteration beside 4 KiB) is too few bytes to be sampled,
/// and the sites named read as the whole story. `None` when the heap's growth is within
/// what the sites may hold (their 95% upper bounds summed).
fn unnamed_rest(run: &Run) -> Option<String> {
    if !run.heap_leaks() {
        return None;
    }
    let [heap_lo, _] = run.metrics.get(&Metric::HeapBytes)?.ci?;
    let named: f64 = run
        .leak_sites
        .iter()
        .map(|s| {
            s.bytes_per_iteration_ci
                .map_or(s.bytes_per_iteration, |[_, hi]| hi)
        })
        .sum();
    (heap_lo > named).then(|| {
        format!(
            "the sites below hold at most {} of the heap's growth of at least {} per \
             iteration; the rest was not named (sampled too rarely, or allocated outside \
             your code): --attribute exact names every site (dhat passes, slower)",
            crate::format::format_bytes(named),
            crate::format::format_bytes(heap_lo)
        )
    })
}

/// What the waits for a quiet point came to, when there is something to say.
fn quiet_note(w: &QuietStats, iterations: u32) -> Option<String> {
    if w.timed_out == 0 {
        return (w.busy > 0).then(|| {
            format!(
                "waited for the process's other threads to stop running before {} of {} \
                 samples (longest {:.1} ms), so that work handed to them is done when sampled",
                w.busy, iterations, w.longest_ms
            )
        });
    }
    let mut note = format!(
        "at {} of {} samples other threads of the process were still running after waiting \
         {:.0} ms: those samples may include work in flight",
        w.timed_out, iterations, w.longest_ms
    );
    if w.spinners > 0 {
        note.push_str(&format!(
            "; {} thread(s) that never stopped running were taken to be busy-waiting and \
             are not waited for any more",
            w.spinners
        ));
    }
    if w.gave_up {
        note.push_str(
            "; stopped waiting after 3 such samples in a row (a thread of the process is always \
             runnable)",
        );
    }
    Some(note)
}

/// The message of a panic payload.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_string()
    }
}

/// The profiler's own thread sampling heap and RSS every period. Everything it allocates is
/// untracked; the owner starts and stops it untracked too. It keeps a bounded, evenly thinned
/// series however long the run.
struct BackgroundSampler {
    /// Its kernel thread id (not waited for at quiet points).
    tid: u32,
    stop: Arc<AtomicBool>,
    handle: alloc::OwnThread<Vec<IntervalSample>>,
}

impl BackgroundSampler {
    fn start(period: Duration, start: Instant, scope: Scope, in_progress: Arc<AtomicU32>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        // Untracked for good, its start-up taken back, before sample 0.
        let handle = alloc::spawn_untracked("profiler-sampler", move || {
            let mut probe = Probe::new(Target::Current);
            let mut out = Thinned::new(MAX_INTERVAL_SAMPLES);
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
                    rss_file_bytes: stats.rss_file_bytes,
                });
            }
            out.into_items()
        })
        .expect("profiler: could not start the sampler thread");
        let tid = handle.tid();
        BackgroundSampler { tid, stop, handle }
    }

    fn stop(self) -> Vec<IntervalSample> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.unpark();
        self.handle.join().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AttributionInfo, HeapScope, LeakSite};
    use crate::sample::Sample;

    /// `n` iterations, the heap `per` bytes and one block higher after each.
    fn run_growing(per: i64, n: u32) -> Run {
        let samples = (0..=n)
            .map(|i| Sample {
                iteration: i,
                elapsed_ms: f64::from(i),
                heap_bytes: Some(10_000 + per * i64::from(i)),
                heap_blocks: Some(50 + i64::from(i) * i64::from(per != 0)),
                allocated_bytes: (i > 0).then_some(1 << 20),
                allocations: (i > 0).then_some(100_000),
                ..Sample::default()
            })
            .collect();
        let mut run = Run {
            iterations: n,
            samples,
            ..Run::new("churn", HeapScope::Process)
        };
        crate::judge::rejudge(&mut run, None);
        run
    }

    #[test]
    fn a_leak_larger_than_its_named_sites_can_hold_says_the_rest_is_unnamed() {
        // 4 KiB an iteration named, and 1 KiB beside it too rarely sampled to be: the 4 KiB
        // site read as the whole story.
        let mut run = run_growing(5120, 40);
        let heap_lo = run.metrics[&Metric::HeapBytes].ci.expect("bounds")[0];
        assert!(heap_lo > 4900.0, "{heap_lo}");
        let site = |bytes: f64, hi: f64| LeakSite {
            function: "leaky".into(),
            location: "src/lib.rs:7".into(),
            bytes_per_iteration: bytes,
            blocks_per_iteration: 1.0,
            backtrace: Vec::new(),
            bytes_per_iteration_ci: Some([bytes * 0.8, hi]),
            blocks_per_iteration_ci: None,
            samples: Some(40),
            growth: Some("steady".into()),
        };
        run.leak_sites = vec![site(4096.0, 4700.0)];
        let note = unnamed_rest(&run).expect("a note");
        assert!(
            note.starts_with("the sites below hold at most 4.6 KiB"),
            "{note}"
        );
        // Within what the site may hold: nothing to say.
        run.leak_sites = vec![site(4096.0, 5300.0)];
        assert_eq!(unnamed_rest(&run), None);
        run.leak_sites = vec![site(4096.0, 4700.0), site(512.0, 700.0)];
        assert_eq!(unnamed_rest(&run), None);
        assert_eq!(unnamed_rest(&run_growing(0, 40)), None);
    }

    #[test]
    fn a_leak_no_sample_caught_says_why_no_site_is_named() {
        let info = AttributionInfo {
            method: "sampled".into(),
            interval_bytes: Some([1 << 20, 1 << 20]),
            samples: Some(0),
            sampling_ms: Some(0.0),
            passes: Vec::new(),
            dhat_file: None,
            slowdown: None,
            cross_check: None,
        };
        // 16 B an iteration among a MiB of churn: "none retains memory in proportion to the
        // iterations" was printed beside the confirmed leak.
        let leaking = run_growing(16, 40);
        assert!(leaking.heap_leaks());
        let note = unnamed_leak(&leaking, &info).expect("a note");
        assert_eq!(
            note,
            "no call site named: the heap leaks 16 B per iteration, about 0.0 samples' worth \
             over 40 iterations at one sample per 1.0 MiB allocated, too few to name a site \
             on; --attribute exact names every site (dhat passes, slower)"
        );
        assert_eq!(unnamed_leak(&run_growing(0, 40), &info), None);
        // Many samples' worth and still no site (blocks sampled, none growing steadily):
        // "none of its blocks was sampled" was said all the same.
        let note = unnamed_leak(&run_growing(1 << 20, 40), &info).expect("a note");
        assert!(note.contains("about 40.0 samples' worth"), "{note}");
        assert!(
            note.contains("no site's sampled blocks grew steadily"),
            "{note}"
        );
    }
}
