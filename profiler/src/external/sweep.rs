// Owns a program's point of a sweep: the command (its `{n}` already replaced) run whole once per
// repetition through the engine loop, each run's heap counters read after it exits and its RSS
// high-water mark from the kernel. Must never print nor fit.

use std::ffi::OsString;
use std::sync::Arc;
use std::time::Instant;

use super::heap::Heap;
use super::source::HeapState;
use super::{ExternalError, Program, Target, child};
use crate::engine::sweep::{Repetition, Settling, point_of, repetitions_plan};
use crate::engine::{Ending, Source, Step, drive};
use crate::judge::Judging;
use crate::model::{
    End, Failure, FailureKind, HeapScope, IntervalSample, Point, Run, SourceKind, XAxis,
};
use crate::sample::Sample;
use crate::store::Thinned;

/// One whole run of the program per iteration.
struct WholeRuns {
    program: Program,
    command: Vec<OsString>,
    started: Instant,
    /// Why heap counters are missing, once known.
    missing: Option<String>,
    heap_notes: Vec<String>,
    /// The program's own allocator and what is set for it, read once.
    allocator: super::OwnAllocator,
    /// Runs whose RSS peak could not be told from the profiler's own (see `rss_peak`).
    rss_unknown: u32,
    /// The most processes of one run that loaded the heap library and were not counted, as the
    /// library tallies them (a fork that then execs is tallied twice: only "none" or "some" is
    /// told).
    declined: u32,
    error: Option<ExternalError>,
    /// `--timeout`: how long one run may take before it is stopped.
    timeout: Option<std::time::Duration>,
    /// Whether a run that exited left processes running (a daemon's double fork).
    left_running: bool,
}

impl WholeRuns {
    /// Run the program once to its end: its totals as a sample.
    fn run_once(&mut self, n: u32) -> Result<Sample, Box<Step>> {
        let (heap, mut env, mut notes) = self.program.heap_setup();
        env.extend(self.allocator.env.iter().cloned());
        notes.extend(self.allocator.note.iter().cloned());
        if self.heap_notes.is_empty() {
            self.heap_notes = notes;
        }
        let injected: Option<Arc<Heap>> = match heap {
            HeapState::Injected(h) | HeapState::On(h) => Some(h),
            HeapState::Off(why) => {
                self.missing.get_or_insert(why);
                None
            }
            HeapState::Absent => None,
        };
        let began = Instant::now();
        let started = match child::start(&self.command, None, &env, injected.as_ref()) {
            Ok(s) => s,
            Err(e) => {
                self.error = Some(e);
                return Err(Box::new(Step::Ended(End::Exited)));
            }
        };
        let mut started = started;
        let pid = started.child.id();
        let deadline = self.timeout.map(|limit| began + limit);
        let Some((status, max_rss)) = wait_with_rusage(pid, deadline) else {
            // Its descendants too (a wrapper's child) and what left its tree, then the program.
            let mut also = super::tree::descendants(pid);
            also.extend(child::adopted(&started));
            let _ = child::stop(
                &mut started.child,
                &also,
                std::time::Duration::from_millis(500),
            );
            child::adopted(&started);
            return Err(Box::new(Step::Failed(Failure::new(
                FailureKind::Hung,
                n,
                format!(
                    "a run of the program did not end within --timeout {} s: it was stopped",
                    self.timeout.unwrap_or_default().as_secs_f64()
                ),
            ))));
        };
        // What it left running is left alone (and reaped once it ends), and said.
        self.left_running |= !child::adopted(&started).is_empty();
        // Read after: the profiler's peak only grows, so it is at least what it was when the
        // program was exec'd from it.
        let own_peak = crate::probe::high_water_mark();
        let duration_ms = began.elapsed().as_secs_f64() * 1e3;
        let attached = injected.as_ref().filter(|h| h.attached(pid));
        if let Some(h) = attached {
            self.declined = self.declined.max(h.declined());
        }
        let rss_bytes = rss_peak(attached.and_then(|h| h.high_water()), max_rss, own_peak);
        if rss_bytes.is_none() {
            self.rss_unknown += 1;
        }
        let totals = injected.as_ref().and_then(|h| {
            if h.attached(pid) {
                Some(h.totals(&[pid]))
            } else {
                self.missing.get_or_insert_with(|| {
                    "heap counters are missing: the heap library did not attach (a static or \
                     setuid binary, or a program that clears LD_PRELOAD); RSS is the memory \
                     signal"
                        .to_string()
                });
                None
            }
        });
        if let Some(exit) = status
            && !exit.success()
        {
            return Err(Box::new(Step::Failed(Failure::new(
                FailureKind::Program,
                n,
                format!("the program {exit}"),
            ))));
        }
        Ok(Sample {
            iteration: n,
            elapsed_ms: self.started.elapsed().as_secs_f64() * 1e3,
            heap_bytes: totals.map(|t| t.live_bytes),
            heap_blocks: totals.map(|t| t.blocks),
            heap_peak_bytes: totals.map(|t| t.peak.max(t.live_bytes)),
            allocated_bytes: totals.map(|t| t.allocated_bytes),
            allocations: totals.map(|t| t.allocations),
            rss_bytes,
            duration_ms: Some(duration_ms),
            ..Sample::default()
        })
    }
}

/// A run's RSS peak: the program's own high-water mark as the heap library read it at its
/// exit; else the kernel's `ru_maxrss`, when it is above the profiler's own high-water mark
/// (`own`, read after the program ended: at least what it was at the exec). The kernel counts in a started program's `ru_maxrss` the process
/// image it was exec'd from, which is the profiler's (14 MiB): `/bin/true` read 14 MiB, and
/// a program of 1.6 MiB at every size a flat 14 MiB, so that a linear program failed
/// `--max-complexity O(n)` as O(n^2). Below that mark, the program's own peak is unknown.
///
/// The larger of the two when both are known: `ru_maxrss` also covers the children the program
/// waited for (a wrapper such as `sh -c`), which the library's reading of the root does not.
fn rss_peak(library: Option<u64>, kernel: Option<u64>, own: Option<u64>) -> Option<u64> {
    let kernel = kernel.filter(|&k| own.is_some_and(|own| k > own));
    library.max(kernel)
}

/// Wait for `pid` to end: its exit and its RSS high-water mark (the kernel's `ru_maxrss`).
/// Wait for the program to end: how it ended and its `ru_maxrss`; `None` when it was still
/// running at `deadline` (left running: the caller stops it). With a deadline the wait polls
/// every millisecond, which is all it adds to the run's time.
fn wait_with_rusage(
    pid: u32,
    deadline: Option<Instant>,
) -> Option<(Option<crate::model::Exit>, Option<u64>)> {
    use std::os::unix::process::ExitStatusExt;
    let mut status = 0;
    // SAFETY: zeroed rusage is a valid out-value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let flags = if deadline.is_some() { libc::WNOHANG } else { 0 };
    loop {
        // SAFETY: plain FFI call with valid out-pointers; `pid` is our own child.
        let rc = unsafe { libc::wait4(pid as libc::pid_t, &mut status, flags, &mut usage) };
        if rc == pid as libc::pid_t {
            let exit = child::exit_of(std::process::ExitStatus::from_raw(status));
            let rss = u64::try_from(usage.ru_maxrss).ok().map(|kib| kib * 1024);
            return Some((Some(exit), rss.filter(|r| *r > 0)));
        }
        if rc == 0 {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
            continue;
        }
        if std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return Some((None, None));
        }
    }
}

impl Source for WholeRuns {
    fn first(&mut self, _between: &mut Thinned<IntervalSample>) -> Step {
        Step::Sample(Sample::default())
    }

    fn next(&mut self, n: u32, _between: &mut Thinned<IntervalSample>) -> Step {
        match self.run_once(n) {
            Ok(sample) => Step::Sample(sample),
            Err(step) => *step,
        }
    }

    fn finish(&mut self, run: &mut Run, _end: Ending) {
        run.source.notes.extend(self.missing.iter().cloned());
        run.source.notes.append(&mut self.heap_notes);
        if self.declined > 0 {
            run.source.notes.push(
                "the program started processes of its own whose memory is not in these \
                 numbers (the heap library counts the program's first process; --include-children \
                 is not available with --sweep): sweep the program itself, not a wrapper such \
                 as sh -c"
                    .to_string(),
            );
        }
        if self.left_running {
            run.source.notes.push(
                "runs of the program exited and left processes running (a daemon, a background \
                 job): their memory is not in these numbers, and they were left running; sweep \
                 a program that stays in the foreground"
                    .to_string(),
            );
        }
        if self.rss_unknown > 0 {
            run.source.notes.push(
                "the RSS peak of runs that did not exit through exit() with the heap library \
                 loaded (--no-heap, a static binary, a crash, _exit) is unknown below the \
                 profiler's own: the kernel's peak of a started program also counts the \
                 profiler it was started from"
                    .to_string(),
            );
        }
    }
}

/// A point with the notes on how it was counted, or the run that failed.
pub type Measured = Result<(Point, Vec<String>), Box<Run>>;

/// Run `program` (its command's `{n}` replaced by `size`) whole until its repetitions
/// settle: the point, the notes on how it was counted, or the failed run.
pub fn run_point(
    program: Program,
    size: u64,
    timeout: Option<std::time::Duration>,
) -> Result<Measured, ExternalError> {
    let Target::Command(command) = program.target.clone() else {
        return Err(ExternalError::EmptyCommand);
    };
    let name = program.name();
    let allocator = program.own_allocator();
    let mut source = Settling::new(
        WholeRuns {
            allocator,
            program,
            command,
            started: Instant::now(),
            missing: None,
            heap_notes: Vec::new(),
            rss_unknown: 0,
            declined: 0,
            error: None,
            timeout,
            left_running: false,
        },
        Repetition::WholeProgram,
    );
    let judging = Judging {
        axis: XAxis::Iteration,
        scope: HeapScope::Program,
        source: SourceKind::Command,
        warmup: Some(0.0),
        process_alone: false,
    };
    let run = drive(
        &mut source,
        repetitions_plan(format!("{name} at n = {size}"), judging),
    );
    if let Some(e) = source.inner().error.take() {
        return Err(e);
    }
    if run.failure.is_some() || run.source.end == Some(End::Interrupted) {
        return Ok(Err(Box::new(run)));
    }
    let point = point_of(size, &run.samples, Repetition::WholeProgram, None);
    Ok(Ok((point, run.source.notes)))
}
