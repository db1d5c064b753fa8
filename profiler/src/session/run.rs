// Owns running one workload (guarded on a worker thread: interrupted or hung, its samples still
// make a run) and a program. Must never write an output: the session's finish does.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use crate::alloc::Untracked;
use crate::engine::Progress;
use crate::external::ExternalError;
use crate::options::Settings;
use crate::report::{End, Failure, FailureKind, HeapScope, Run};
use crate::sample::Sample;
use crate::store::{MAX_STORED_SAMPLES, SampleStore, SharedStore};
use crate::verdict::Verdict;
use crate::workload::Workload;

/// Run one workload: its setup (unmeasured), then the iterations. A setup that fails or
/// panics becomes a failed run with no samples.
pub fn run_workload(
    workload: &Workload,
    settings: &Settings,
    progress: impl FnMut(Progress) + 'static,
) -> Run {
    run_workload_into(workload, settings, progress, None)
}

/// [`run_workload`], keeping the samples in `store` when given (shared with a watcher).
fn run_workload_into(
    workload: &Workload,
    settings: &Settings,
    progress: impl FnMut(Progress) + 'static,
    store: Option<SharedStore>,
) -> Run {
    let setup = catch_unwind(AssertUnwindSafe(|| workload.setup()));
    let iteration = match setup {
        Ok(Ok(f)) => f,
        Ok(Err(e)) => return failed_setup(workload, e.to_string()),
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".into());
            return failed_setup(workload, message);
        }
    };
    let mut profiler = settings
        .profiler(workload.name())
        .description(workload.description())
        .on_progress(progress);
    if let Some(limit) = settings.timeout {
        profiler = profiler.timeout(limit);
    }
    if let Some(store) = store {
        profiler = profiler.share_samples(store);
    }
    profiler.run_one(iteration)
}

/// Run one workload of `catalog` on a worker thread, so that it can be abandoned: on SIGINT
/// or SIGTERM (after [`crate::interrupt::install`]) the run stops after the current
/// iteration, and if that iteration has not returned within a second the samples so far make
/// the run (marked interrupted) while the worker is left behind; with `settings.timeout`, an
/// iteration still running a second past the limit is reported as hung (a failure). The
/// caller should end the process soon after an abandoned run.
pub fn run_workload_guarded(
    catalog: &Arc<Vec<Workload>>,
    index: usize,
    settings: &Settings,
    mut progress: impl FnMut(Progress) + Send + 'static,
) -> Run {
    // The run's one store of samples, shared: if the worker is abandoned, the samples so far
    // are read from it (no second copy grows beside the run).
    // Made untracked and dropped untracked: the worker keeps a clone of it until after the
    // run's own clone is gone, and this one may be the last (a worker that ended without a
    // report).
    let seen = Untracked::make(|| SampleStore::shared(MAX_STORED_SAMPLES, 0));
    // When the iterations began and whether they are over: only they can hang here (setup
    // and attribution passes run before and after them, outside --timeout).
    // Dropped untracked wherever its last clone goes (the run drops the callback counted).
    let phase = Untracked::make(|| Arc::new(Mutex::new((None::<Instant>, false))));
    let (tx, rx) = mpsc::channel();
    let worker = {
        let (catalog, settings) = (Arc::clone(catalog), settings.clone());
        let (seen, phase) = (seen.clone(), phase.clone());
        std::thread::Builder::new()
            .name("profile-workload".into())
            .spawn(move || {
                let watch = move |p: Progress| {
                    // Called untracked by the run loop.
                    if let Ok(mut ph) = phase.lock() {
                        if p.done == 0 && !p.last {
                            ph.0 = Some(Instant::now());
                        }
                        ph.1 |= p.last;
                    }
                    progress(p);
                };
                let store: SharedStore = Arc::clone(&seen);
                let run = run_workload_into(&catalog[index], &settings, watch, Some(store));
                let _ = tx.send(run);
                drop(seen);
            })
    };
    let workload = &catalog[index];
    let Ok(worker) = worker else {
        return run_workload(workload, settings, |_| {});
    };
    let mut got = None;
    let began = || {
        let (began, over) = phase.lock().map(|p| *p).unwrap_or((None, false));
        began.filter(|_| !over)
    };
    let watched = watch(&rx, settings.timeout, began, |run| {
        got = Some(run);
        true
    });
    let outcome = match (watched, got) {
        (Ok(()), Some(run)) => {
            let _ = worker.join();
            Ok(run)
        }
        (Ok(()), None) => Err("the worker thread ended without a report".to_string()),
        (Err(GaveUp::Interrupted), _) => Err(String::new()),
        (Err(GaveUp::Hung(limit)), _) => Err(format!(
            "hung: an iteration was still running {} s after --timeout {} s; abandoned",
            GRACE.as_secs(),
            limit.as_secs_f64()
        )),
    };
    let samples =
        || crate::alloc::untracked(|| seen.lock().map(|s| s.snapshot()).unwrap_or_default());
    match outcome {
        Ok(run) => run,
        Err(why) if why.is_empty() => {
            let mut run = partial_run(workload, settings, crate::alloc::adopt(samples()));
            run.source.end = Some(End::Interrupted);
            run.source.notes.push(format!(
                "interrupted while iteration {} was running; abandoned after {} s",
                run.iterations + 1,
                GRACE.as_secs()
            ));
            run
        }
        Err(why) => {
            let mut run = partial_run(workload, settings, crate::alloc::adopt(samples()));
            run.failure = Some(Failure::new(FailureKind::Hung, run.iterations + 1, why));
            run
        }
    }
}

/// How long a watched worker's iteration may run on after an interrupt or past `--timeout`
/// before it is abandoned.
pub(super) const GRACE: Duration = Duration::from_secs(1);

/// Why a watched worker was given up on.
pub(super) enum GaveUp {
    /// Still iterating [`GRACE`] after an interrupt.
    Interrupted,
    /// Still iterating [`GRACE`] past this `--timeout`.
    Hung(Duration),
}

/// Hand what a worker sends to `take` until it says it has all it needs (`true`) or the worker
/// drops its sender (`Ok`), or give the worker up: [`GRACE`] after an interrupt, or [`GRACE`]
/// past `timeout` since `began()`, both only while `began()` is some (the part that can hang).
pub(super) fn watch<T>(
    rx: &mpsc::Receiver<T>,
    timeout: Option<Duration>,
    began: impl Fn() -> Option<Instant>,
    mut take: impl FnMut(T) -> bool,
) -> Result<(), GaveUp> {
    let mut interrupted_at: Option<Instant> = None;
    loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(message) => {
                if take(message) {
                    return Ok(());
                }
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        let Some(began) = began() else { continue };
        if crate::interrupt::requested()
            && interrupted_at.get_or_insert_with(Instant::now).elapsed() > GRACE
        {
            return Err(GaveUp::Interrupted);
        }
        if let Some(limit) = timeout
            && began.elapsed() > limit + GRACE
        {
            return Err(GaveUp::Hung(limit));
        }
    }
}

/// A run made of the samples an abandoned worker had published.
fn partial_run(workload: &Workload, settings: &Settings, samples: Vec<Sample>) -> Run {
    let mut run = blank_run(workload);
    run.iterations = samples.last().map_or(0, |s| s.iteration);
    run.samples = samples;
    if !run.samples.is_empty() {
        crate::judge::rejudge(&mut run, settings.warmup);
    }
    run
}

fn failed_setup(workload: &Workload, message: String) -> Run {
    Run {
        failure: Some(Failure::new(FailureKind::Setup, 0, message)),
        verdict: Verdict::Inconclusive,
        ..blank_run(workload)
    }
}

/// The run of `workload` before anything was measured.
fn blank_run(workload: &Workload) -> Run {
    let scope = if crate::alloc::is_installed() {
        HeapScope::Process
    } else {
        HeapScope::None
    };
    Run {
        description: Some(workload.description().to_string()),
        ..Run::new(workload.name(), scope)
    }
}

/// Profile the program of `settings.program` (a command to start, or a pid to attach to).
/// SIGINT, SIGTERM and SIGHUP are caught for the run: they stop it (and the started program), and
/// the samples so far still make a report
/// ([`Outcome::Interrupted`](crate::model::Outcome::Interrupted)).
pub fn run_program(settings: &Settings) -> Result<Run, ExternalError> {
    let Some(program) = settings.external() else {
        return Err(ExternalError::EmptyCommand);
    };
    let program = program?;
    if let Err(e) = crate::interrupt::install() {
        tracing::warn!("Ctrl-C will end profile without a report: {e}");
    }
    program.run()
}
