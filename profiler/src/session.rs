// Owns running a set of catalog workloads with `Settings` into one Report, writing the
// outputs, and the exit status. Must never parse arguments or print tables: cli.rs does.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use crate::engine::Progress;
use crate::error::Error;
use crate::external::{ExternalError, Target};
use crate::options::{Outputs, Settings};
use crate::report::{End, Failure, FailureKind, HeapScope, Report, Run};
use crate::sample::Sample;
use crate::store::{MAX_STORED_SAMPLES, SampleStore, SharedStore};
use crate::verdict::Verdict;
use crate::workload::Workload;

/// How a session ended, as the documented exit codes (decided by [`Report::outcome`]).
pub use crate::model::Outcome;

/// A profiling session: settings checked, workloads chosen and baseline read before anything
/// runs, then [`Session::run`] and [`Session::finish`]. Everything the `profile` command
/// does between parsing its arguments and printing, usable from any binary.
pub struct Session {
    catalog: Arc<Vec<Workload>>,
    settings: Settings,
    chosen: Vec<usize>,
    baseline: Option<Report>,
}

/// What [`Session::finish`] did.
#[derive(Debug)]
pub struct Finished {
    /// The exit status the session earned (a failed output write makes it at least 2).
    pub outcome: Outcome,
    /// Files written.
    pub written: Vec<PathBuf>,
    /// Outputs that could not be written (the others were still written).
    pub errors: Vec<Error>,
    /// `--save-baseline` was asked for but the run did not pass: the old file is untouched.
    pub baseline_kept: bool,
}

impl Session {
    /// Check everything that can be checked before running: arguments that do not go
    /// together, the workloads named, every output's directory, the baseline file.
    pub fn prepare(catalog: &Arc<Vec<Workload>>, settings: Settings) -> Result<Session, Error> {
        let bad =
            |argument: &'static str, reason: String| Error::InvalidArgument { argument, reason };
        check_program(&settings)?;
        if settings.max_iterations.is_some() && !settings.extend {
            return Err(bad(
                "--max-iterations",
                "it bounds extension, which --no-extend turns off: use one or the other".into(),
            ));
        }
        // The first checkpoint: --iterations, unless a program runs until it exits.
        let iterations = match &settings.program {
            None => Some(settings.iterations),
            Some(p) => p.iterations,
        };
        if let (Some(max), Some(n)) = (settings.max_iterations, iterations)
            && max < n
        {
            return Err(bad(
                "--max-iterations",
                format!("{max} is below --iterations {n}"),
            ));
        }
        if let (Some(w), Some(n)) = (settings.warmup, iterations)
            && w.saturating_add(crate::verdict::MIN_TAIL as u32) > n
        {
            return Err(bad(
                "--warmup",
                format!(
                    "{w} leaves fewer than {} of --iterations {n} to judge",
                    crate::verdict::MIN_TAIL
                ),
            ));
        }
        let chosen = if settings.program.is_some() {
            Vec::new()
        } else {
            let chosen = select_indices(catalog, &settings.workloads)?;
            if chosen.is_empty() {
                return Err(bad(
                    "--workload",
                    "the catalog has no workloads to run".into(),
                ));
            }
            chosen
        };
        check_outputs(&settings.outputs)?;
        if let Some(path) = &settings.save_baseline {
            check_writable("--save-baseline", path)?;
        }
        let baseline = load_baseline(&settings).map_err(|e| bad("--baseline", e.to_string()))?;
        Ok(Session {
            catalog: Arc::clone(catalog),
            settings,
            chosen,
            baseline,
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Run the program or every chosen workload (each on a worker thread, see
    /// [`run_workload_guarded`]; SIGINT and SIGTERM stop the session and still make a
    /// report), compare with the baseline. `progress` makes a progress callback per workload.
    pub fn run<P>(&self, progress: impl Fn(&str) -> P) -> Result<Report, Error>
    where
        P: FnMut(Progress) + Send + 'static,
    {
        let mut runs = Vec::new();
        if self.settings.program.is_some() {
            let run = run_program(&self.settings)?;
            runs.push(run);
        }
        if !self.chosen.is_empty()
            && let Err(e) = crate::interrupt::install()
        {
            tracing::warn!("Ctrl-C will end profile without a report: {e}");
        }
        for &index in &self.chosen {
            if crate::interrupt::requested() {
                break;
            }
            let workload = &self.catalog[index];
            tracing::info!("running {}", workload.name());
            let run = run_workload_guarded(
                &self.catalog,
                index,
                &self.settings,
                progress(workload.name()),
            );
            tracing::info!(
                "{}: {} iterations, verdict {:?}",
                run.workload,
                run.iterations,
                run.verdict
            );
            let abandoned = run
                .failure
                .as_ref()
                .is_some_and(|f| f.kind == FailureKind::Hung);
            runs.push(run);
            if abandoned {
                // Its iteration still runs in this process and would disturb the next
                // workloads' process-wide numbers.
                let left: Vec<&str> = self
                    .chosen
                    .iter()
                    .map(|&i| self.catalog[i].name())
                    .skip(runs.len() - usize::from(self.settings.program.is_some()))
                    .collect();
                if !left.is_empty()
                    && let Some(last) = runs.last_mut()
                {
                    last.source.notes.push(format!(
                        "not run, since this hung iteration still runs in the process: {}",
                        left.join(", ")
                    ));
                }
                break;
            }
        }
        let mut report = Report::new(runs);
        report.fail_on_inconclusive = self.settings.fail_on_inconclusive;
        if let Some(base) = &self.baseline {
            compare_with_baseline(&mut report, base, &self.settings);
        }
        Ok(report)
    }

    /// Write every output, decide the exit status, and save the baseline if the run passed.
    pub fn finish(&self, report: &Report) -> Finished {
        let (written, mut errors) =
            write_outputs(report, &self.settings.outputs, self.baseline.as_ref());
        let mut outcome = report.outcome();
        // Evidence that could not be written is an error of its own (exit 2), unless the run
        // already ended worse: a failed workload (3) or an interruption (130).
        if !errors.is_empty() && matches!(outcome, Outcome::Clean | Outcome::Leak) {
            outcome = Outcome::Usage;
        }
        // Only a run that passes, outputs included, becomes the baseline.
        let mut baseline_kept = false;
        match save_baseline(report, &self.settings, outcome) {
            Ok(saved) => baseline_kept = self.settings.save_baseline.is_some() && !saved,
            Err(e) => {
                errors.push(e);
                outcome = Outcome::Usage;
            }
        }
        Finished {
            outcome,
            written,
            errors,
            baseline_kept,
        }
    }
}

/// The workloads named in `names` (all of them if empty), as indices into `catalog`: in
/// catalog order for "all", in the order given otherwise, each once. An unknown name is an
/// error naming it and the known ones.
pub fn select_indices(catalog: &[Workload], names: &[String]) -> Result<Vec<usize>, Error> {
    if names.is_empty() {
        return Ok((0..catalog.len()).collect());
    }
    let mut chosen = Vec::new();
    for name in names {
        let index = catalog
            .iter()
            .position(|w| w.name() == name)
            .ok_or_else(|| {
                let known: Vec<&str> = catalog.iter().map(|w| w.name()).collect();
                Error::InvalidArgument {
                    argument: "--workload",
                    reason: format!(
                        "no workload is called '{name}' (known: {}; see `profile list`)",
                        known.join(", ")
                    ),
                }
            })?;
        if !chosen.contains(&index) {
            chosen.push(index);
        }
    }
    Ok(chosen)
}

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
    const GRACE: Duration = Duration::from_secs(1);
    // The run's one store of samples, shared: if the worker is abandoned, the samples so far
    // are read from it (no second copy grows beside the run).
    let seen: SharedStore = crate::alloc::untracked(|| SampleStore::shared(MAX_STORED_SAMPLES, 0));
    // When the iterations began and whether they are over: only they can hang here (setup
    // and attribution passes run before and after them, outside --timeout).
    let phase: Arc<Mutex<(Option<Instant>, bool)>> =
        crate::alloc::untracked(|| Arc::new(Mutex::new((None, false))));
    let (tx, rx) = mpsc::channel();
    let worker = {
        let (catalog, settings, store) = (Arc::clone(catalog), settings.clone(), Arc::clone(&seen));
        let phase = Arc::clone(&phase);
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
                let run = run_workload_into(&catalog[index], &settings, watch, Some(store));
                let _ = tx.send(run);
            })
    };
    let workload = &catalog[index];
    let Ok(worker) = worker else {
        return run_workload(workload, settings, |_| {});
    };
    let mut interrupted_at: Option<Instant> = None;
    let outcome = loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(run) => {
                let _ = worker.join();
                break Ok(run);
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                break Err("the worker thread ended without a report".to_string());
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        let (began, over) = phase.lock().map(|p| *p).unwrap_or((None, false));
        let iterating = began.is_some() && !over;
        if crate::interrupt::requested() && iterating {
            let at = *interrupted_at.get_or_insert_with(Instant::now);
            if at.elapsed() > GRACE {
                break Err(String::new());
            }
        }
        if let (Some(limit), Some(began), true) = (settings.timeout, began, iterating)
            && began.elapsed() > limit + GRACE
        {
            break Err(format!(
                "hung: an iteration was still running {} s after --timeout {} s; abandoned",
                GRACE.as_secs(),
                limit.as_secs_f64()
            ));
        }
    };
    let samples =
        || crate::alloc::untracked(|| seen.lock().map(|s| s.snapshot()).unwrap_or_default());
    match outcome {
        Ok(run) => {
            crate::alloc::untracked(move || drop((seen, phase)));
            run
        }
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
/// SIGINT and SIGTERM are caught for the run: they stop it (and the started program), and
/// the samples so far still make a report ([`Outcome::Interrupted`]).
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

/// Check that the settings of a program run make sense together, before anything starts:
/// each error names the argument that does not apply and says what to use instead.
pub fn check_program(settings: &Settings) -> Result<(), Error> {
    let Some(p) = &settings.program else {
        return Ok(());
    };
    let bad = |argument: &'static str, reason: &str| {
        Err(Error::InvalidArgument {
            argument,
            reason: reason.to_string(),
        })
    };
    let is_pid = matches!(p.target, Target::Pid(_));
    if !settings.workloads.is_empty() {
        return bad(
            "--workload",
            "a catalog workload cannot be combined with a program (-- COMMAND or --pid)",
        );
    }
    if is_pid && p.marker.is_some() {
        return bad(
            "--marker",
            "the output of a process attached with --pid cannot be read; start it with \
             `profile --marker REGEX -- COMMAND` instead",
        );
    }
    if p.marker.is_none() {
        if p.iterations.is_some() {
            return bad(
                "--iterations",
                "a program's iterations are the output lines matching --marker REGEX; \
                 without one it is sampled in time (bound it with --duration SECS)",
            );
        }
        if settings.warmup.is_some() {
            return bad(
                "--warmup",
                "counts marked iterations (with --marker); in time use --warmup-secs SECS",
            );
        }
    } else if p.warmup_secs.is_some() {
        return bad(
            "--warmup-secs",
            "applies to a time series; with --marker use --warmup N (iterations)",
        );
    }
    if settings.budgets.peak.is_some() || settings.budgets.allocated.is_some() {
        return bad(
            if settings.budgets.peak.is_some() {
                "--max-peak"
            } else {
                "--max-allocated"
            },
            "needs heap counters, which a program outside this process does not have; \
             --max-rss applies",
        );
    }
    if settings.timeout.is_some() {
        return bad(
            "--timeout",
            "bounds a workload's run; a program's is bounded with --duration SECS",
        );
    }
    if settings.attribute != crate::attribution::Attribute::Off {
        return bad(
            "--attribute",
            "finds Rust call sites with dhat in process; it cannot see into another program",
        );
    }
    if let Some(d) = p.duration
        && d.is_zero()
    {
        return bad("--duration", "must be more than 0 seconds");
    }
    if let (Some(w), Some(d)) = (p.warmup_secs, p.duration)
        && w >= d.as_secs_f64()
    {
        return bad(
            "--warmup-secs",
            "leaves nothing of --duration to judge: make it shorter",
        );
    }
    Ok(())
}

/// Check up front that every output can be written, so a long run never ends in a lost
/// result: the directory exists and accepts a new file, and the path is not a directory.
pub fn check_outputs(outputs: &Outputs) -> Result<(), Error> {
    for (flag, path) in outputs.all() {
        check_writable(flag, path)?;
    }
    if let Some(plot) = &outputs.plot {
        #[cfg(feature = "plot")]
        crate::figure::check_plot_path("--plot", plot)?;
        #[cfg(not(feature = "plot"))]
        return Err(Error::InvalidArgument {
            argument: "--plot",
            reason: format!(
                "cannot draw '{}': profiler was built without its `plot` feature",
                plot.display()
            ),
        });
    }
    Ok(())
}

/// Check that `path` (given with `flag`) can be written.
pub fn check_writable(flag: &'static str, path: &Path) -> Result<(), Error> {
    let bad = |reason: String| Error::InvalidArgument {
        argument: flag,
        reason,
    };
    if path.is_dir() {
        return Err(bad(format!("'{}' is a directory", path.display())));
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(bad(format!(
            "cannot write '{}': directory '{}' does not exist",
            path.display(),
            dir.display()
        )));
    }
    let probe = dir.join(format!(".profile-write-check.{}", std::process::id()));
    match std::fs::File::create(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(bad(format!("cannot write '{}': {e}", path.display()))),
    }
}

/// Read and check the baseline named in the settings, before anything runs: a baseline that
/// is missing, corrupt, truncated, of another tool or schema version is a usage error.
pub fn load_baseline(settings: &Settings) -> Result<Option<Report>, Error> {
    settings
        .baseline
        .as_ref()
        .map(Report::read_json)
        .transpose()
}

/// Compare `report` with `baseline` (loaded by [`load_baseline`]) as the settings say.
pub fn compare_with_baseline(report: &mut Report, baseline: &Report, settings: &Settings) {
    let path = settings
        .baseline
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    crate::baseline::compare(report, baseline, &path, &settings.tolerances);
}

/// Save `report` as the next baseline if it passed; a failed run never replaces a baseline.
/// Returns whether it was saved.
pub fn save_baseline(
    report: &Report,
    settings: &Settings,
    outcome: Outcome,
) -> Result<bool, Error> {
    match (&settings.save_baseline, outcome) {
        (Some(path), Outcome::Clean) => report.write_json(path).map(|()| true),
        _ => Ok(false),
    }
}

/// Write every output asked for (each atomically); returns the files written. `baseline`
/// runs are drawn under the current ones in plots.
///
/// One output failing does not stop the others: the evidence that can be kept is kept. The
/// result lists the files written and the errors, if any.
pub fn write_outputs(
    report: &Report,
    outputs: &Outputs,
    baseline: Option<&Report>,
) -> (Vec<PathBuf>, Vec<Error>) {
    let mut written = Vec::new();
    let mut errors = Vec::new();
    let mut keep = |result: Result<Vec<PathBuf>, Error>| match result {
        Ok(paths) => written.extend(paths),
        Err(e) => errors.push(e),
    };
    if let Some(p) = &outputs.json {
        keep(report.write_json(p).map(|()| vec![p.clone()]));
    }
    if let Some(p) = &outputs.csv {
        keep(report.write_csv(p).map(|()| vec![p.clone()]));
    }
    #[cfg(feature = "plot")]
    if let Some(p) = &outputs.plot {
        let (paths, failed) = crate::figure::write_plots_each(report, p, baseline);
        keep(Ok(paths));
        for e in failed {
            keep(Err(e));
        }
    }
    #[cfg(not(feature = "plot"))]
    let _ = baseline;
    if let Some(p) = &outputs.markdown {
        keep(report.write_markdown(p).map(|()| vec![p.clone()]));
        if let Some(summary) = &outputs.step_summary {
            keep(append(summary, report.to_markdown().as_bytes()).map(|()| Vec::new()));
        }
    }
    (written, errors)
}

/// Append to a file that others write too (a CI step summary): appending is its protocol.
fn append(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(bytes))
        .map_err(|source| Error::Write {
            path: path.to_path_buf(),
            source,
        })
}
