// Owns `--sweep`: for each size of the list, a sized workload set up at that size (or the
// program with `{n}` replaced) repeated until settled, then one Run holding the points, the
// fitted classes and `--max-complexity`. Must never print nor write an output.

use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use crate::engine::sweep;
use crate::error::Error;
use crate::external::{ExternalError, Target};
use crate::model::{HeapScope, Point, Run, SourceKind};
use crate::options::{Settings, SweepSettings};
use crate::sample::Scope;
use crate::workload::Workload;

/// The placeholder a program's command takes each size in.
pub const SIZE_PLACEHOLDER: &str = "{n}";
/// The same in capitals (clap's help turns the lower-case one into a line break, so `--help`
/// can only show this one).
pub const SIZE_PLACEHOLDER_UPPER: &str = "{N}";

/// `arg` holds a size placeholder.
fn has_placeholder(arg: &str) -> bool {
    arg.contains(SIZE_PLACEHOLDER) || arg.contains(SIZE_PLACEHOLDER_UPPER)
}

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
        if !cmd.iter().any(|a| has_placeholder(&a.to_string_lossy())) {
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

/// [`run_workload_sweep`] on a worker thread, watched: when the session is interrupted
/// (Ctrl-C, SIGTERM) and a repetition does not return within a second, the points so far are
/// reported (the repetition is abandoned, still running, and the process ends soon after).
pub fn run_workload_sweep_guarded(
    catalog: &Arc<Vec<Workload>>,
    index: usize,
    s: &SweepSettings,
    scope: Scope,
) -> Run {
    const GRACE: Duration = Duration::from_secs(1);
    let seen: Arc<Mutex<Vec<Point>>> = Arc::default();
    let (tx, rx) = mpsc::channel();
    let worker = {
        let (catalog, s, seen) = (Arc::clone(catalog), s.clone(), Arc::clone(&seen));
        std::thread::Builder::new()
            .name("profile-sweep".into())
            .spawn(move || {
                let mut keep = |p: &Point| {
                    if let Ok(mut points) = seen.lock() {
                        points.push(p.clone());
                    }
                };
                let _ = tx.send(sweep_of(&catalog[index], &s, scope, &mut keep));
            })
    };
    let workload = &catalog[index];
    let Ok(worker) = worker else {
        return run_workload_sweep(workload, s, scope);
    };
    let mut interrupted_at: Option<Instant> = None;
    loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(run) => {
                let _ = worker.join();
                return run;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if crate::interrupt::requested()
            && interrupted_at.get_or_insert_with(Instant::now).elapsed() > GRACE
        {
            break;
        }
    }
    // Interrupted inside a repetition that did not return (or the worker died): the points
    // so far, as an interrupted run.
    let points = seen.lock().map(|p| p.clone()).unwrap_or_default();
    let mut run = sweep::in_process_run(workload.name(), scope);
    run.description = Some(workload.description().to_string());
    run.source.notes.push(
        "interrupted inside a repetition that did not return within a second: the sizes \
         measured before it are reported"
            .to_string(),
    );
    run.source.end = Some(crate::model::End::Interrupted);
    sweep::finish(run, points, None, s.max_complexity)
}

/// Run the sized `workload` at every size of `s` in this process, counted in `scope` (sizes
/// above its limit skipped, saying so).
pub fn run_workload_sweep(workload: &Workload, s: &SweepSettings, scope: Scope) -> Run {
    sweep_of(workload, s, scope, &mut |_| {})
}

fn sweep_of(
    workload: &Workload,
    s: &SweepSettings,
    scope: Scope,
    on_point: &mut dyn FnMut(&Point),
) -> Run {
    let limit = workload.size_limit().unwrap_or(u64::MAX);
    let (sizes, skipped): (Vec<u64>, Vec<u64>) = s.sizes.iter().partition(|&&n| n <= limit);
    let mut setup = |n: u64| -> Result<Box<dyn FnMut()>, String> {
        match workload.setup_at(n) {
            Some(made) => made.map_err(|e| e.to_string()),
            None => Err(format!("{} takes no input size", workload.name())),
        }
    };
    // Process scope (the command line's): whether other threads moved memory is a thread
    // scope's question.
    let (mut run, _) = sweep::in_process(
        workload.name(),
        &sizes,
        &mut setup,
        scope,
        s.max_complexity,
        on_point,
    );
    run.description = Some(workload.description().to_string());
    if !skipped.is_empty() {
        let skipped: Vec<String> = skipped.iter().map(|&n| crate::sizes::short(n)).collect();
        run.source.notes.insert(
            0,
            format!(
                "sizes above {} skipped, the largest this workload takes: {}",
                crate::sizes::short(limit),
                skipped.join(", ")
            ),
        );
    }
    run
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
        if let Some(p) = one.program.as_mut() {
            if let (true, Target::Command(cmd)) = (command.is_empty(), &p.target) {
                command = cmd
                    .iter()
                    .map(|a| a.to_string_lossy().into_owned())
                    .collect();
            }
            p.substitute(&[SIZE_PLACEHOLDER, SIZE_PLACEHOLDER_UPPER], &n.to_string());
        }
        let program = one.external().ok_or(ExternalError::EmptyCommand)??;
        if name.is_empty() {
            name = command.join(" ");
        }
        tracing::info!("{name}: size {n}");
        match crate::external::sweep::run_point(program, n, settings.timeout)? {
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
    run.source.notes.push(sweep::settling_note(
        "the heap peaks (RSS peaks without heap counters) of whole runs",
    ));
    Ok(sweep::finish(run, points, failed, s.max_complexity))
}
