// Owns a profiling session: settings checked up front, its runs into one Report, writing the
// outputs, and the exit status. Must never parse arguments or print tables: cli.rs does.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::engine::Progress;
use crate::error::Error;
use crate::options::{Outputs, Settings};
use crate::report::{End, FailureKind, Report, Run};
use crate::workload::Workload;

mod checks;
pub mod concurrency;
mod run;
pub mod sweep;

pub use checks::{
    check_distinct, check_outputs, check_program, check_writable, load_baseline, select_indices,
};
pub use run::{run_program, run_workload, run_workload_guarded};

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
        sweep::check(&settings)?;
        if let Some(c) = &settings.concurrency {
            concurrency::check_levels(&c.levels).map_err(|reason| bad("--concurrency", reason))?;
            if matches!(
                settings.program.as_ref().map(|p| &p.target),
                Some(crate::external::Target::Pid(_))
            ) {
                return Err(bad(
                    "--concurrency",
                    "it starts copies of a program: give one after `--`, not --pid".into(),
                ));
            }
            if !(0.0..=100.0).contains(&c.limits.max_failure_rate_pct) {
                return Err(bad(
                    "--max-failure-rate",
                    format!(
                        "{} is not a percentage from 0 to 100",
                        c.limits.max_failure_rate_pct
                    ),
                ));
            }
        }
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
            let mut chosen = select_indices(catalog, &settings.workloads)?;
            if settings.sweep.is_some() {
                let unsized_: Vec<&str> = chosen
                    .iter()
                    .map(|&i| &catalog[i])
                    .filter(|w| w.default_size().is_none())
                    .map(|w| w.name())
                    .collect();
                if settings.workloads.is_empty() {
                    chosen.retain(|&i| catalog[i].default_size().is_some());
                } else if !unsized_.is_empty() {
                    let sized: Vec<&str> = catalog
                        .iter()
                        .filter(|w| w.default_size().is_some())
                        .map(|w| w.name())
                        .collect();
                    return Err(bad(
                        "--workload",
                        format!(
                            "{} {} no input size, so --sweep cannot run it (sized: {})",
                            unsized_.join(", "),
                            if unsized_.len() == 1 { "takes" } else { "take" },
                            if sized.is_empty() {
                                "none".to_string()
                            } else {
                                sized.join(", ")
                            }
                        ),
                    ));
                }
                // Sizes above a workload's limit are skipped: what is left must still be a
                // sweep. All of them skipped reported "0 sizes" and clean, exit 0. Over the
                // whole catalog such a workload is left out, as an unsized one is; named, it
                // is an error.
                if let Some(sweep) = &settings.sweep {
                    let within = |i: usize| {
                        let limit = catalog[i].size_limit().unwrap_or(u64::MAX);
                        sweep.sizes.iter().filter(|&&n| n <= limit).count()
                    };
                    if settings.workloads.is_empty() {
                        chosen.retain(|&i| {
                            let kept = within(i) >= 2;
                            if !kept {
                                tracing::warn!(
                                    "{} is left out of the sweep: it takes sizes up to {}, and \
                                     fewer than two of the sizes given are within it",
                                    catalog[i].name(),
                                    crate::sizes::short(catalog[i].size_limit().unwrap_or(0))
                                );
                            }
                            kept
                        });
                    }
                    for w in chosen.iter().map(|&i| &catalog[i]) {
                        let Some(limit) = w.size_limit() else {
                            continue;
                        };
                        let within = sweep.sizes.iter().filter(|&&n| n <= limit).count();
                        if within < 2 {
                            return Err(bad(
                                "--sweep",
                                format!(
                                    "{} takes sizes up to {}, and {within} of the sizes given \
                                     {} within it: a sweep needs two at least",
                                    w.name(),
                                    crate::sizes::short(limit),
                                    if within == 1 { "is" } else { "are" }
                                ),
                            ));
                        }
                    }
                }
            }
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
        check_distinct(&settings)?;
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
    /// [`run_workload_guarded`]; SIGINT, SIGTERM and SIGHUP stop the session and still make a
    /// report), compare with the baseline. `progress` makes a progress callback per workload.
    pub fn run<P>(&self, progress: impl Fn(&str) -> P) -> Result<Report, Error>
    where
        P: FnMut(Progress) + Send + 'static,
    {
        let mut runs = Vec::new();
        if self.settings.program.is_some() {
            let run = match (&self.settings.concurrency, &self.settings.sweep) {
                (Some(c), _) => concurrency::run_program_levels(&self.settings, c)?,
                (None, Some(s)) => sweep::run_program_sweep(&self.settings, s)?,
                (None, None) => run_program(&self.settings)?,
            };
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
            if let Some(s) = &self.settings.sweep {
                runs.push(sweep::run_workload_sweep_guarded(
                    &self.catalog,
                    index,
                    s,
                    crate::sample::Scope::Process,
                ));
                continue;
            }
            let run = match &self.settings.concurrency {
                Some(c) => concurrency::run_workload_levels_guarded(
                    &self.catalog,
                    index,
                    &self.settings,
                    c,
                ),
                None => run_workload_guarded(
                    &self.catalog,
                    index,
                    &self.settings,
                    progress(workload.name()),
                ),
            };
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
                self.note_left(
                    &mut runs,
                    "not run, since this hung iteration still runs in the process",
                );
                break;
            }
        }
        // A signal that came after a run's last iteration (while it was judged, or between
        // workloads) still ends the session as interrupted, not as the verdicts so far.
        if !self.chosen.is_empty() && crate::interrupt::requested() {
            self.note_left(&mut runs, "not run, since profile was interrupted");
            if let Some(last) = runs.last_mut() {
                last.source.end = Some(End::Interrupted);
            }
        }
        let mut report = Report::new(runs);
        report.fail_on_inconclusive = self.settings.fail_on_inconclusive;
        if let Some(base) = &self.baseline {
            compare_with_baseline(&mut report, base, &self.settings);
        }
        Ok(report)
    }

    /// Note on the last run which chosen workloads were not run after it, and `why`.
    fn note_left(&self, runs: &mut [Run], why: &str) {
        let done = runs.len() - usize::from(self.settings.program.is_some());
        let left: Vec<&str> = self
            .chosen
            .iter()
            .map(|&i| self.catalog[i].name())
            .skip(done)
            .collect();
        if !left.is_empty()
            && let Some(last) = runs.last_mut()
        {
            last.source
                .notes
                .push(format!("{why}: {}", left.join(", ")));
        }
    }

    /// Write every output, decide the exit status, and save the baseline if the run passed.
    pub fn finish(&self, report: &Report) -> Finished {
        let (mut written, mut errors) =
            write_outputs(report, &self.settings.outputs, self.baseline.as_ref());
        let mut outcome = report.outcome();
        // Evidence that could not be written is an error of its own (exit 2), unless the run
        // already ended worse: a failed workload (3) or an interruption (130).
        if !errors.is_empty() && matches!(outcome, Outcome::Clean | Outcome::Leak) {
            outcome = Outcome::Usage;
        }
        // Only a run that passes, outputs included, becomes the baseline.
        let mut baseline_kept = false;
        match save_baseline(report, &self.settings, outcome, self.baseline.as_ref()) {
            Ok(saved) => {
                baseline_kept = self.settings.save_baseline.is_some() && !saved;
                if saved && let Some(path) = &self.settings.save_baseline {
                    written.push(path.clone());
                }
            }
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

/// Compare `report` with `baseline` (loaded by [`load_baseline`]) as the settings say.
pub fn compare_with_baseline(report: &mut Report, baseline: &Report, settings: &Settings) {
    let path = settings
        .baseline
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    crate::baseline::compare(report, baseline, &path, &settings.tolerances);
    let updated = match (&settings.baseline, &settings.save_baseline) {
        (Some(b), Some(s)) => crate::paths::same_file(b, s),
        _ => false,
    };
    if let Some(info) = report.baseline.as_mut() {
        info.updated = updated;
    }
}

/// Save `report` as the next baseline if it passed; a failed run never replaces a baseline.
/// Saved over the `--baseline` it was compared with (`previous`), it keeps that baseline's
/// runs of workloads it did not run ([`crate::baseline::merged`]). Returns whether it was
/// saved.
pub fn save_baseline(
    report: &Report,
    settings: &Settings,
    outcome: Outcome,
    previous: Option<&Report>,
) -> Result<bool, Error> {
    let Some(path) = settings.save_baseline.as_ref().filter(|_| outcome.passed()) else {
        return Ok(false);
    };
    let over_previous = settings
        .baseline
        .as_ref()
        .is_some_and(|b| crate::paths::same_file(b, path));
    match previous.filter(|_| over_previous) {
        Some(previous) => crate::baseline::merged(report, previous).write_json(path),
        None => report.write_json(path),
    }
    .map(|()| true)
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
        // A run's figure never over another output (`--plot p.png --json p-a.png`).
        let others: Vec<&Path> = outputs
            .all()
            .into_iter()
            .filter(|(flag, _)| *flag != "--plot")
            .map(|(_, path)| path.as_path())
            .chain(outputs.step_summary.as_deref())
            .collect();
        let (paths, failed) = crate::figure::write_plots_each(report, p, baseline, &others);
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
            // A blank line first: the step summary's previous content may not end a block.
            let markdown = format!("\n{}", report.to_markdown());
            keep(
                append(summary, markdown.as_bytes())
                    .map(|()| Vec::new())
                    .map_err(|e| match e {
                        Error::Write { path, source } => Error::Write {
                            path: PathBuf::from(format!(
                                "{} (GITHUB_STEP_SUMMARY)",
                                path.display()
                            )),
                            source,
                        },
                        other => other,
                    }),
            );
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
