// Owns `--sweep`: for each size of the list, a sized workload set up at that size (or the
// program with `{n}` replaced) repeated until settled, then one Run holding the points, the
// fitted classes and `--max-complexity`. Must never print nor write an output.

use crate::engine::sweep::{AGREEMENT, MAX_REPETITIONS, MIN_REPETITIONS, SIZE_BUDGET};
use crate::error::Error;
use crate::external::{ExternalError, Target};
use crate::model::{End, Failure, FailureKind, HeapScope, Point, Run, SourceKind};
use crate::options::{Settings, SweepSettings};
use crate::sample::Scope;
use crate::workload::Workload;

/// The placeholder a program's command takes each size in.
pub const SIZE_PLACEHOLDER: &str = "{n}";

/// Check `--sweep` against the rest of the settings before anything runs.
pub fn check(settings: &Settings) -> Result<(), Error> {
    let bad = |argument: &'static str, reason: &str| Error::InvalidArgument {
        argument,
        reason: reason.to_string(),
    };
    let Some(sweep) = &settings.sweep else {
        return Ok(());
    };
    if sweep.sizes.len() < 2 {
        return Err(bad(
            "--sweep",
            "one size is not a sweep: give at least two, e.g. 1000,10000,100000",
        ));
    }
    if sweep.sizes.contains(&0) {
        return Err(bad(
            "--sweep",
            "a size of 0 measures nothing: sizes start at 1",
        ));
    }
    if settings.concurrency.is_some() {
        return Err(bad(
            "--sweep",
            "it cannot run with --concurrency: sweep sizes or copies, one at a time",
        ));
    }
    if let Some(p) = &settings.program {
        let Target::Command(cmd) = &p.target else {
            return Err(bad(
                "--sweep",
                "it starts the program once per size: give one after `--`, not --pid",
            ));
        };
        if !cmd
            .iter()
            .any(|a| a.to_string_lossy().contains(SIZE_PLACEHOLDER))
        {
            return Err(bad(
                "--sweep",
                "the command has no {n} to put each size in, e.g. `-- ./tool --count {n}`",
            ));
        }
        if p.marker.is_some() {
            return Err(bad(
                "--marker",
                "a sweep measures each run of the program whole, not its iterations",
            ));
        }
    }
    Ok(())
}

/// What a sweep's run notes on how each size was measured.
fn settling_note(what: &str) -> String {
    format!(
        "each size repeated until {what} of {MIN_REPETITIONS} repetitions in a row agreed \
         within {:.0}% (at most {MAX_REPETITIONS}, or {} s at one size)",
        AGREEMENT * 100.0,
        SIZE_BUDGET.as_secs()
    )
}

/// Run the sized `workload` at every size of `s` in this process, counted in `scope`.
pub fn run_workload_sweep(workload: &Workload, s: &SweepSettings, scope: Scope) -> Run {
    let heap_scope = if !crate::alloc::is_installed() {
        HeapScope::None
    } else if scope == Scope::Thread {
        HeapScope::Thread
    } else {
        HeapScope::Process
    };
    let mut points = Vec::new();
    let mut failed: Option<Run> = None;
    let limit = workload.size_limit().unwrap_or(u64::MAX);
    let skipped: Vec<String> = s
        .sizes
        .iter()
        .filter(|&&n| n > limit)
        .map(|&n| crate::sizes::short(n))
        .collect();
    for &n in s.sizes.iter().filter(|&&n| n <= limit) {
        if crate::interrupt::requested() {
            break;
        }
        tracing::info!("{}: size {n}", workload.name());
        let mut iteration = match workload.setup_at(n) {
            Some(Ok(f)) => f,
            Some(Err(e)) => {
                let mut run = Run::new(workload.name(), heap_scope);
                run.failure = Some(Failure::new(
                    FailureKind::Setup,
                    0,
                    format!("at n = {n}: {e}"),
                ));
                failed = Some(run);
                break;
            }
            None => break,
        };
        let point = crate::engine::sweep::run_point(workload.name(), n, &mut iteration, scope);
        drop(iteration);
        match point {
            Ok(p) => points.push(p),
            Err(run) => {
                failed = Some(*run);
                break;
            }
        }
    }
    let mut run = Run::new(workload.name(), heap_scope);
    run.description = Some(workload.description().to_string());
    if !skipped.is_empty() {
        run.source.notes.push(format!(
            "sizes above {} skipped, the largest this workload takes: {}",
            crate::sizes::short(limit),
            skipped.join(", ")
        ));
    }
    run.source
        .notes
        .push(settling_note("the heap peaks (RSS without heap counters)"));
    finish(run, points, failed, s)
}

/// Run the program of `settings` once per repetition at every size of `s`.
pub fn run_program_sweep(settings: &Settings, s: &SweepSettings) -> Result<Run, ExternalError> {
    if let Err(e) = crate::interrupt::install() {
        tracing::warn!("Ctrl-C will end profile without a report: {e}");
    }
    let mut points = Vec::new();
    let mut failed = None;
    let mut notes = Vec::new();
    let mut name = String::new();
    let mut command = Vec::new();
    for &n in &s.sizes {
        if crate::interrupt::requested() {
            break;
        }
        let mut one = settings.clone();
        if let Some(p) = one.program.as_mut()
            && let Target::Command(cmd) = &mut p.target
        {
            if command.is_empty() {
                command = cmd
                    .iter()
                    .map(|a| a.to_string_lossy().into_owned())
                    .collect();
            }
            for arg in cmd.iter_mut() {
                if let Some(text) = arg.to_str()
                    && text.contains(SIZE_PLACEHOLDER)
                {
                    *arg = text.replace(SIZE_PLACEHOLDER, &n.to_string()).into();
                }
            }
        }
        let program = one.external().ok_or(ExternalError::EmptyCommand)??;
        if name.is_empty() {
            name = command.join(" ");
        }
        tracing::info!("{name}: size {n}");
        match crate::external::sweep::run_point(program, n)? {
            Ok((point, how)) => {
                for note in how {
                    if !notes.contains(&note) {
                        notes.push(note);
                    }
                }
                points.push(point);
            }
            Err(run) => {
                failed = Some(*run);
                break;
            }
        }
    }
    let counted = points.iter().any(|p: &Point| p.peak_bytes.is_some());
    let mut run = Run::new(
        name,
        if counted {
            HeapScope::Program
        } else {
            HeapScope::None
        },
    );
    run.source.kind = SourceKind::Command;
    run.source.command = command;
    run.source.notes = notes;
    run.source.notes.push(settling_note(
        "the heap peaks (RSS peaks without heap counters) of whole runs",
    ));
    Ok(finish(run, points, failed, s))
}

/// The sweep's run: its points fitted, its verdict, the failure or interruption that cut
/// it short (with the points before it kept).
fn finish(mut run: Run, points: Vec<Point>, failed: Option<Run>, s: &SweepSettings) -> Run {
    run.iterations = points.iter().map(|p| p.repetitions).sum();
    if let Some(f) = failed {
        if f.source.end == Some(End::Interrupted) {
            run.source.end = Some(End::Interrupted);
        }
        if let Some(mut failure) = f.failure {
            let at = f.workload.rsplit(" at n = ").next().unwrap_or_default();
            if !failure.message.starts_with("at n = ") && f.workload.contains(" at n = ") {
                failure.message = format!("at n = {at}: {}", failure.message);
            }
            run.failure = Some(failure);
        }
    }
    if crate::interrupt::requested() {
        run.source.end = Some(End::Interrupted);
    }
    let mut sweep = crate::fit::sweep(points, s.max_complexity);
    if !run.is_program() && run.heap_scope != HeapScope::None {
        // The allocator keeps pages earlier sizes freed: the process's RSS at a size depends
        // on the sizes before it, so it is shown but not fitted; the heap says what grows.
        sweep.fits.remove("rss_peak_bytes");
    }
    run.verdict = sweep.verdict();
    run.sweep = Some(sweep);
    run
}
