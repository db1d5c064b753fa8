// Owns `--concurrency`: for each K of the list, K copies of a catalog workload (threads) or of
// the program (processes, `{copy}` replaced by the copy's index), then one Run holding the
// levels, the scaling verdict and the load limits. Must never print nor write an output.

use std::sync::{Arc, Mutex, mpsc};
use std::time::Instant;

use super::run::{GRACE, GaveUp, watch};
use crate::alloc::Untracked;
use crate::engine::concurrency::{CopyPlan, run_level};
use crate::external::ExternalError;
use crate::model::{
    Concurrency, End, Failure, FailureKind, Level, MAX_COPIES, Run, Verdict, combine,
};
use crate::options::{ConcurrencySettings, Settings};
use crate::workload::Workload;

/// Check a `--concurrency` list: at least one level, each from 1 to [`MAX_COPIES`].
pub fn check_levels(levels: &[u32]) -> Result<(), String> {
    if levels.is_empty() {
        return Err("the list of copies is empty: give numbers of copies, e.g. 1,3,5".into());
    }
    if let Some(bad) = levels.iter().find(|&&k| k == 0 || k > MAX_COPIES) {
        return Err(format!(
            "{bad} copies is out of range: each level runs from 1 to {MAX_COPIES} copies at once"
        ));
    }
    Ok(())
}

/// Parse `1,3,5` (what the command line gives) into levels, checked.
pub fn parse_levels(text: &str) -> Result<Vec<u32>, String> {
    let mut levels = Vec::new();
    for part in text.split(',').map(str::trim) {
        if part.is_empty() && text.trim().is_empty() {
            break;
        }
        match part.parse::<u32>() {
            Ok(k) => levels.push(k),
            Err(_) => {
                return Err(format!(
                    "'{part}' is not a number of copies: give whole numbers from 1 to \
                     {MAX_COPIES} separated by commas, e.g. 1,3,5"
                ));
            }
        }
    }
    check_levels(&levels)?;
    Ok(levels)
}

/// Run `workload` at every level of `c`: K threads, each with its own setup. An iteration that
/// never returns holds this call forever; see [`run_workload_levels_guarded`].
pub fn run_workload_levels(
    workload: &Workload,
    settings: &Settings,
    c: &ConcurrencySettings,
) -> Run {
    let mut levels = Vec::new();
    each_level(workload, settings, c, |level| levels.push(level), |_| {});
    let mut run = combined(workload.name(), levels, c);
    run.description = Some(workload.description().to_string());
    run
}

/// Run the levels of `c` in turn, handing each to `done`; `starting(K)` before each.
fn each_level(
    workload: &Workload,
    settings: &Settings,
    c: &ConcurrencySettings,
    mut done: impl FnMut((Level, Vec<Run>)),
    mut starting: impl FnMut(u32),
) {
    let plan = CopyPlan {
        iterations: settings.iterations,
        max_iterations: settings.max_iterations,
        extend: settings.extend,
        warmup: settings.warmup,
        timeout: settings.timeout,
        budgets: settings.budgets,
    };
    let setup = || workload.setup().map_err(|e| e.to_string());
    for &k in &c.levels {
        if crate::interrupt::requested() {
            break;
        }
        tracing::info!("{}: {k} copies at once", workload.name());
        starting(k);
        done(run_level(workload.name(), k, &setup, &plan));
    }
}

/// [`run_workload_levels`] on a worker thread, watched as a plain run is
/// ([`run_workload_guarded`](super::run_workload_guarded)): when a copy's iteration is still
/// running a second after `--timeout` (counted from its level's start), or a second after
/// Ctrl-C or SIGTERM, the level is abandoned (its copies still run in the process) and the
/// levels done make the run, hung (exit 3) or interrupted (exit 130).
pub fn run_workload_levels_guarded(
    catalog: &Arc<Vec<Workload>>,
    index: usize,
    settings: &Settings,
    c: &ConcurrencySettings,
) -> Run {
    let workload = &catalog[index];
    // The level running and when it began, for the watch below.
    // Made untracked and dropped untracked, by whichever of the two threads lets it go last.
    let running = Untracked::make(|| Arc::new(Mutex::new(None::<(u32, Instant)>)));
    // Room for every level before any runs: the watch's first push would otherwise allocate
    // while the next level runs, on the peak it measures.
    let mut levels = Vec::with_capacity(c.levels.len());
    let (tx, rx) = mpsc::channel();
    let worker = {
        let (catalog, settings, c) = (Arc::clone(catalog), settings.clone(), c.clone());
        let running = running.clone();
        std::thread::Builder::new()
            .name("profile-levels".into())
            .spawn(move || {
                let starting = |k| {
                    if let Ok(mut r) = running.lock() {
                        *r = Some((k, Instant::now()));
                    }
                };
                let done = |level| {
                    let _ = tx.send(level);
                };
                each_level(&catalog[index], &settings, &c, done, starting);
            })
    };
    let Ok(worker) = worker else {
        return run_workload_levels(workload, settings, c);
    };
    let began = || running.lock().map(|r| r.map(|(_, at)| at)).unwrap_or(None);
    let watched = watch(&rx, settings.timeout, began, |level| {
        levels.push(level);
        false
    });
    // Levels that ended just before the watch gave up are still theirs.
    levels.extend(rx.try_iter());
    let mut run = combined(workload.name(), levels, c);
    run.description = Some(workload.description().to_string());
    let k = running.lock().map(|r| r.map_or(0, |(k, _)| k)).unwrap_or(0);
    let at = format!("{k} {}", if k == 1 { "copy" } else { "copies" });
    match watched {
        Ok(()) => {
            if let Err(payload) = worker.join() {
                let message = crate::engine::workload::panic_message(payload.as_ref());
                run.failure = Some(Failure::new(FailureKind::Panic, 0, message));
            }
        }
        Err(GaveUp::Interrupted) => {
            run.source.notes.push(format!(
                "interrupted while {at} ran; abandoned after {} s",
                GRACE.as_secs()
            ));
            run.source.end = Some(End::Interrupted);
        }
        Err(GaveUp::Hung(limit)) => {
            let why = format!(
                "hung: at {at}, an iteration was still running {} s after --timeout {} s; \
                 abandoned",
                GRACE.as_secs(),
                limit.as_secs_f64()
            );
            run.failure = Some(Failure::new(FailureKind::Hung, 0, why));
        }
    }
    run
}

/// Run the program of `settings` at every level of `c`: K processes at once.
pub fn run_program_levels(
    settings: &Settings,
    c: &ConcurrencySettings,
) -> Result<Run, ExternalError> {
    if let Err(e) = crate::interrupt::install() {
        tracing::warn!("Ctrl-C will end profile without a report: {e}");
    }
    let mut levels = Vec::new();
    let mut name = String::new();
    for &k in &c.levels {
        if crate::interrupt::requested() {
            break;
        }
        let mut programs = Vec::new();
        for i in 0..k {
            let mut copy = settings.clone();
            if let Some(p) = copy.program.as_mut() {
                p.substitute(&["{copy}"], &i.to_string());
                // A marked program is stopped after its iterations, so that a level ends.
                if p.marker.is_some() && p.iterations.is_none() {
                    p.iterations = Some(settings.iterations);
                }
            }
            let Some(program) = copy.external() else {
                return Err(ExternalError::EmptyCommand);
            };
            let program = program?;
            if name.is_empty() {
                name = settings
                    .external()
                    .and_then(Result::ok)
                    .map(|p| p.name())
                    .unwrap_or_default();
            }
            programs.push(program);
        }
        tracing::info!("{name}: {k} copies at once");
        levels.push(crate::external::concurrency::run_level(programs)?);
    }
    Ok(combined(&name, levels, c))
}

/// One run of all levels: the samples and metrics shown are those of the copy with the worst
/// verdict (the largest level's first copy when all agree), the levels and scaling beside.
fn combined(name: &str, levels: Vec<(Level, Vec<Run>)>, c: &ConcurrencySettings) -> Run {
    // A copy over a budget fails the run as a leak does.
    let rank = |run: &Run| match run.verdict {
        _ if run.budgets.iter().any(|b| b.exceeded) => 3,
        Verdict::Leak => 2,
        Verdict::Inconclusive => 1,
        Verdict::Clean => 0,
    };
    let mut records = Vec::new();
    let mut shown: Option<Run> = None;
    // What any copy met must reach the exit status, whichever copy is shown.
    let mut failure = None;
    let mut interrupted = crate::interrupt::requested() && levels.len() < c.levels.len();
    for (level, runs) in levels {
        for (i, run) in runs.into_iter().enumerate() {
            interrupted |= run.source.end == Some(End::Interrupted);
            if failure.is_none() {
                failure = run
                    .failure
                    .clone()
                    .map(|f| (f, run.workload.clone(), level.copies));
            }
            let better = shown
                .as_ref()
                .is_none_or(|s| rank(&run) > rank(s) || (rank(&run) == rank(s) && i == 0));
            if better {
                shown = Some(run);
            }
        }
        records.push(level);
    }
    let verdict = combine(records.iter().map(|l| l.verdict));
    let scaling = crate::verdict::scaling::scaling(&records);
    let mut run = shown.unwrap_or_else(|| Run::new(name, crate::model::HeapScope::None));
    let copy = std::mem::replace(&mut run.workload, name.to_string());
    run.source
        .notes
        .push(format!("samples and metrics shown are those of {copy}"));
    run.concurrency = Some(Concurrency {
        levels: records,
        scaling,
        limits: c.limits,
    });
    run.verdict = verdict;
    if run.failure.is_none()
        && let Some((f, copy, copies)) = failure
    {
        run.source
            .notes
            .push(format!("{copy} failed at {copies} copies at once"));
        run.failure = Some(f);
    }
    if interrupted {
        let ran = run.concurrency.as_ref().map_or(0, |c| c.levels.len());
        let left: Vec<String> = c.levels[ran.min(c.levels.len())..]
            .iter()
            .map(u32::to_string)
            .collect();
        if !left.is_empty() {
            run.source.notes.push(format!(
                "levels not run, since profile was interrupted: {}",
                left.join(", ")
            ));
        }
        run.source.end = Some(End::Interrupted);
    }
    run
}
