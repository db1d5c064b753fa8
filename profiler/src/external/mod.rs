// Owns profiling a program outside this process: a command it starts or a pid it attaches to,
// sampled per marker line or in time, into a Run. Must never signal a process it did not start.

//! Profile any program: its RSS, virtual size, fds, threads and CPU time, from outside.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! // Start a program; every output line matching the marker ends an iteration.
//! let run = profiler::external::Program::command(["python3", "worker.py"])
//!     .marker("^done")?
//!     .iterations(20)
//!     .run()?;
//! let report = profiler::Report::new(vec![run]);
//! println!("{:?}", report.verdict());
//!
//! // Or watch a running process for ten seconds, read-only.
//! let run = profiler::external::Program::pid(4242)
//!     .duration(Duration::from_secs(10))
//!     .run()?;
//! # Ok::<(), profiler::external::ExternalError>(())
//! ```
//!
//! **With a marker**, the program's stdout and stderr are read (every byte is forwarded to
//! ours as it arrives) and each line matching the regular expression is an iteration boundary,
//! sampled at that moment (the first one ends the start-up: it is sample 0); the verdict is the in-process one, per iteration, with extension
//! and confirmation (a leak seen at N iterations is confirmed at 2N before the program is
//! stopped). The program must flush its output after each marker line: most runtimes buffer
//! output that is not a terminal (Python: `print(..., flush=True)` or `PYTHONUNBUFFERED=1`).
//!
//! **Without a marker**, the process is sampled every interval (100 ms by default; a started
//! program first one interval in, once it runs) and each metric's growth per second after a
//! warm-up (max(1 s, 20% of the run)) is judged.
//!
//! Memory stays bounded however long the program runs: past 65,536 samples neighbours are
//! merged pairwise, and the samples between marker lines are thinned to every other one past
//! [`MAX_INTERVAL_SAMPLES`] (see [`crate::store`]); the one engine ([`crate::engine`]) keeps them.
//!
//! **Heap counters.** A started command gets the `memcreep-preload` library with
//! `LD_PRELOAD` (see [`heap`]): its samples then carry exact heap bytes, blocks, allocations
//! and per-iteration peak, `heap_scope` is `program`, and heap bytes and blocks gate like RSS,
//! fds and threads. A marker sample's heap is the program's state when it wrote the line,
//! even when it runs far ahead of the profiler. Where the library cannot work (a static or
//! setuid binary, a program that clears `LD_PRELOAD`, a runtime without malloc, or
//! [`Program::heap`]`(false)`) the run goes on with RSS as the memory signal and a note says
//! why. An attached pid has no heap counters. A leak in RSS fails the run either way (see
//! [`crate::judge::gates`]): growth outside malloc must still be found. A program stopped by
//! the profiler gets SIGTERM, then SIGKILL after a grace period (2 s); an attached pid is
//! only ever read.

mod arenas;
mod child;
pub mod concurrency;
#[cfg(unix)]
pub mod heap;
mod jvm;
mod own_allocator;
mod python;
mod source;
pub mod sweep;
mod tree;

use std::ffi::OsString;
use std::time::Duration;

use regex::bytes::Regex;

use crate::budget::Budgets;
use crate::engine::{self, Caps, Plan};
use crate::judge::Judging;
use crate::model::{HeapScope, Run, SourceKind, XAxis};
use source::{HeapState, ProgramSource};
use tree::State;

pub use crate::store::MAX_INTERVAL_SAMPLES;

/// Sampling period of a program when none is given.
pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(100);
/// Time a stopped program gets between SIGTERM and SIGKILL.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(2);

pub use crate::error::ExternalError;

/// What to profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Start this command line (program first).
    Command(Vec<OsString>),
    /// Attach to this running process, read-only.
    Pid(u32),
}

/// A program to profile from outside, and how. Build with [`Program::command`] or
/// [`Program::pid`], then [`Program::run`].
#[derive(Debug, Clone)]
pub struct Program {
    target: Target,
    interval: Duration,
    marker: Option<Regex>,
    iterations: Option<u32>,
    max_iterations: Option<u32>,
    extend: bool,
    warmup: Option<u32>,
    warmup_secs: Option<f64>,
    duration: Option<Duration>,
    include_children: bool,
    heap: bool,
    grace: Duration,
    budgets: Budgets,
    caps: Caps,
    /// One of several copies run at once: what its tree leaves running cannot be told from
    /// what the others' do.
    beside_others: bool,
}

impl Program {
    /// Start `command` (program first, then its arguments) when the run begins.
    pub fn command<I, S>(command: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        Self::new(Target::Command(
            command.into_iter().map(Into::into).collect(),
        ))
    }

    /// Attach to the running process `pid`: sampled, never signalled.
    pub fn pid(pid: u32) -> Self {
        Self::new(Target::Pid(pid))
    }

    fn new(target: Target) -> Self {
        Program {
            target,
            interval: DEFAULT_INTERVAL,
            marker: None,
            iterations: None,
            max_iterations: None,
            extend: true,
            warmup: None,
            warmup_secs: None,
            duration: None,
            include_children: false,
            heap: true,
            grace: DEFAULT_GRACE,
            budgets: Budgets::default(),
            caps: Caps::default(),
            beside_others: false,
        }
    }

    /// Run as one of several copies at once (`--concurrency`).
    pub(crate) fn beside_others(mut self) -> Self {
        self.beside_others = true;
        self
    }

    /// Lower memory bounds, so that a test reaches them in a second rather than in hours.
    #[cfg(test)]
    fn caps(mut self, samples: usize, interval_samples: usize) -> Self {
        self.caps = Caps {
            samples,
            between: interval_samples,
        };
        self
    }

    /// Sample every `period` (default 100 ms): the time series without a marker, the samples
    /// between iteration boundaries with one.
    pub fn interval(mut self, period: Duration) -> Self {
        if !period.is_zero() {
            self.interval = period;
        }
        self
    }

    /// Each line of the program's stdout or stderr matching `pattern` (a regular expression,
    /// `regex` crate syntax, matched without the line ending) ends an iteration. The first
    /// such line ends the program's start-up, its setup: it is sample 0, as before the first
    /// iteration in process. Only for a started command: an attached process's output cannot
    /// be read.
    pub fn marker(mut self, pattern: &str) -> Result<Self, ExternalError> {
        let regex = Regex::new(pattern).map_err(|e| ExternalError::InvalidMarker {
            pattern: pattern.to_string(),
            reason: regex_fault(&e),
        })?;
        self.marker = Some(regex);
        Ok(self)
    }

    /// With a marker: judge after `n` marked iterations and stop the program once the verdict
    /// is settled (extension and confirmation as in process). Default: until the program exits.
    pub fn iterations(mut self, n: u32) -> Self {
        self.iterations = Some(n.max(1));
        self
    }

    /// Upper bound of marked iterations when extending (default 8 x `iterations`, and 64 x
    /// while the only undecided metrics are too noisy to bound yet).
    pub fn max_iterations(mut self, n: u32) -> Self {
        self.max_iterations = Some(n.max(1));
        self
    }

    /// Whether the run may go on past `iterations` to confirm a leak (default true).
    pub fn extend(mut self, on: bool) -> Self {
        self.extend = on;
        self
    }

    /// With a marker: leave at least `n` leading iterations out of the analysis.
    pub fn warmup(mut self, n: u32) -> Self {
        self.warmup = Some(n);
        self
    }

    /// Without a marker: leave the first `secs` seconds out (default max(1 s, 20% of the run)).
    pub fn warmup_secs(mut self, secs: f64) -> Self {
        self.warmup_secs = Some(secs.max(0.0));
        self
    }

    /// Stop sampling after `d`; a started program is then stopped, an attached one left alone.
    pub fn duration(mut self, d: Duration) -> Self {
        self.duration = Some(d);
        self
    }

    /// Sum the process's live descendants into every sample (children, grandchildren, ...).
    pub fn include_children(mut self, on: bool) -> Self {
        self.include_children = on;
        self
    }

    /// Count a started program's heap with the preload library (default true; `--no-heap`
    /// turns it off). No effect on an attached pid, which has no heap counters.
    pub fn heap(mut self, on: bool) -> Self {
        self.heap = on;
        self
    }

    /// Time between SIGTERM and SIGKILL when the profiler stops the program (default 2 s).
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Budgets checked against the samples (`peak` and `allocated` need the heap counters of
    /// a started program; `rss` always applies).
    pub fn budgets(mut self, budgets: Budgets) -> Self {
        self.budgets = budgets;
        self
    }

    /// The name the run gets in reports: the command line, or "pid N (name)".
    pub fn name(&self) -> String {
        match &self.target {
            Target::Command(cmd) => command_line(cmd),
            Target::Pid(pid) => match tree::name(*pid) {
                Some(comm) => format!("pid {pid} ({comm})"),
                None => format!("pid {pid}"),
            },
        }
    }

    /// Start or attach, sample until the program ends, enough iterations were seen, the
    /// duration passed or [`crate::interrupt::requested`] turns true, then judge.
    ///
    /// A program that exits non-zero or is killed by a signal on its own is a failed run
    /// ([`Run::failure`]) with the samples taken so far; one the profiler stopped is not.
    pub fn run(self) -> Result<Run, ExternalError> {
        let name = self.name();
        let (heap, mut env, heap_notes) = self.heap_setup();
        let allocator = self.own_allocator();
        env.extend(allocator.env.iter().cloned());
        let injected = match &heap {
            HeapState::Injected(h) => Some(h),
            _ => None,
        };
        let (pid, started) = match &self.target {
            Target::Command(cmd) => {
                let mut started = child::start(cmd, self.marker.as_ref(), &env, injected)?;
                started.beside_others = self.beside_others;
                (started.child.id(), Some(started))
            }
            Target::Pid(pid) => {
                if tree::state(*pid) != State::Alive {
                    return Err(ExternalError::NoSuchProcess { pid: *pid });
                }
                (*pid, None)
            }
        };
        tracing::info!("sampling {name} (pid {pid})");
        let marked = self.marker.is_some();
        let judging = Judging {
            axis: if marked {
                XAxis::Iteration
            } else {
                XAxis::Second
            },
            scope: if injected.is_some() {
                HeapScope::Program
            } else {
                HeapScope::None
            },
            source: match self.target {
                Target::Command(_) => SourceKind::Command,
                Target::Pid(_) => SourceKind::Pid,
            },
            warmup: if marked {
                self.warmup.map(f64::from)
            } else {
                self.warmup_secs
            },
            process_alone: false,
        };
        let plan = Plan {
            iterations: self.iterations.filter(|_| marked),
            max_iterations: self.max_iterations.filter(|_| marked),
            extend: self.extend,
            budgets: self.budgets,
            caps: self.caps,
            ..Plan::new(name, judging)
        };
        let python_arenas = match &self.target {
            Target::Command(cmd) if heap::runs_python(cmd) => std::env::var_os("PYTHONMALLOC")
                .filter(|v| v != "malloc")
                .map(|v| format!("PYTHONMALLOC={}", v.to_string_lossy())),
            _ => None,
        };
        let own_allocator = allocator.name.filter(|_| self.heap);
        let mut source = ProgramSource::new(self, pid, started, heap);
        source.heap_notes = heap_notes;
        source.python_arenas = python_arenas;
        source.allocator_note = allocator.note;
        if let Some(name) = own_allocator {
            source.heap_notes.push(format!(
                "the program's executable has an allocator of its own linked in ({name}): the \
                 heap counters see only what goes through libc's malloc, not what {name} \
                 allocates, so its heap is never called clean; RSS sees both"
            ));
            source.own_allocator = Some(name);
        }
        let run = engine::drive(&mut source, plan);
        match source.error.take() {
            Some(e) => Err(e),
            None => Ok(run),
        }
    }
}

/// An allocator linked into a program's executable, if any, with the environment it is
/// started with and the note that says what was set ([`Program::own_allocator`]).
#[derive(Debug, Clone, Default)]
struct OwnAllocator {
    name: Option<&'static str>,
    env: Vec<(OsString, OsString)>,
    note: Option<String>,
}

impl Program {
    /// The allocator linked into the executable of the program to start, and what is set for
    /// it or for a jemalloc it loads as a shared library ([`own_allocator::retention_off`]).
    /// The linked-in one is not looked for in CPython, which carries mimalloc (3.13) for its
    /// own object allocator, which PYTHONMALLOC=malloc turns off (and which is checked on the
    /// running interpreter); a shared jemalloc is, in any program (a Python service is often
    /// run with jemalloc in LD_PRELOAD). Reads the executable: once per run, or per sweep
    /// size.
    fn own_allocator(&self) -> OwnAllocator {
        let Target::Command(cmd) = &self.target else {
            return OwnAllocator::default();
        };
        let executable = heap::executable(cmd);
        let linked = executable
            .as_deref()
            .filter(|path| !path.file_name().is_some_and(heap::is_python))
            .and_then(own_allocator::linked_into);
        let jemalloc = match linked {
            Some("jemalloc") => executable
                .as_deref()
                .and_then(own_allocator::jemalloc_options_variable)
                .map(|var| (var, None)),
            Some(_) => None,
            None => own_allocator::shared_jemalloc(executable.as_deref())
                .map(|(library, var)| (var, Some(library))),
        };
        let (env, note) = jemalloc
            .map(|(var, library)| own_allocator::retention_off(&var, library.as_deref()))
            .map_or((None, None), |(env, note)| (env, Some(note)));
        OwnAllocator {
            name: linked,
            env: env.map(|(k, v)| (k.into(), v.into())).into_iter().collect(),
            note,
        }
    }

    /// Whether and how the heap library goes into the program: its state, the environment
    /// that loads it, and notes on how it counts.
    fn heap_setup(&self) -> (HeapState, Vec<(OsString, OsString)>, Vec<String>) {
        let Target::Command(cmd) = &self.target else {
            return (HeapState::Absent, Vec::new(), Vec::new());
        };
        if !self.heap {
            let why = "heap counters are off (--no-heap): RSS is the memory signal";
            return (HeapState::Off(why.to_string()), Vec::new(), Vec::new());
        }
        let missing = |why: String| {
            let why = format!("heap counters are missing: {why}; RSS is the memory signal");
            (HeapState::Off(why), Vec::new(), Vec::new())
        };
        let Some(program) = cmd.first() else {
            return (HeapState::Absent, Vec::new(), Vec::new());
        };
        if let Some(why) = heap::obstacle(program) {
            return missing(why);
        }
        let created = match heap::Heap::create() {
            Ok(h) => h,
            Err(why) => return missing(why),
        };
        let mut env = created.env(self.marker.is_some(), self.include_children);
        let mut notes = Vec::new();
        // Set for every program, not only one recognised as Python: CPython started any other
        // way (`uv run`, a wrapper script, a child process) would otherwise hide its objects in
        // its small-object arenas, and a leak of them would read as clean. Other programs do
        // not read it.
        let python = heap::runs_python(cmd);
        match std::env::var_os("PYTHONMALLOC") {
            None => {
                env.push(("PYTHONMALLOC".into(), "malloc".into()));
                if python {
                    notes.push(
                        "PYTHONMALLOC=malloc was set for this Python program, so that each of \
                         its objects is a malloc the heap counters see (CPython's small-object \
                         arenas would hide them)"
                            .to_string(),
                    );
                }
            }
            Some(v) if v != "malloc" && python => notes.push(format!(
                "PYTHONMALLOC={} was kept as set: small objects in CPython's arenas are not \
                 counted one by one (PYTHONMALLOC=malloc counts them)",
                v.to_string_lossy()
            )),
            Some(_) => {}
        }
        if python && self.marker.is_some() {
            // Measured: 300 objects in reference cycles dropped per iteration read as a
            // heap_blocks leak at 640 iterations (CPython's full collection came every
            // ~2,200); with gc.collect() before each marker line, clean at 20.
            notes.push(
                "objects in reference cycles are freed only when CPython's cyclic \
                 collector runs, which can take thousands of iterations; call gc.collect() \
                 before printing each marker line, or such garbage reads as growth"
                    .to_string(),
            );
        }
        (
            HeapState::Injected(std::sync::Arc::new(created)),
            env,
            notes,
        )
    }
}

/// The regex crate words a syntax error over four lines (the pattern, carets under the fault,
/// then what is wrong); an argument error is one sentence: where, and what is wrong.
fn regex_fault(err: &regex::Error) -> String {
    let text = err.to_string();
    let lines: Vec<&str> = text.lines().collect();
    let Some(what) = lines.iter().rev().find_map(|l| l.strip_prefix("error: ")) else {
        // Not a syntax error (e.g. the compiled pattern is too big): one line already.
        let text = text.trim_end_matches('.');
        let mut chars = text.chars();
        return match chars.next() {
            Some(c) => c.to_lowercase().chain(chars).collect(),
            None => text.to_string(),
        };
    };
    // The pattern is shown indented by four spaces, the carets under it: the last run of
    // carets marks the fault (an earlier one, if any, what it clashes with).
    let column = lines
        .iter()
        .rev()
        .find(|l| !l.trim().is_empty() && l.trim().chars().all(|c| c == '^' || c == ' '))
        .and_then(|carets| {
            let chars: Vec<char> = carets.chars().collect();
            let end = chars.iter().rposition(|&c| c == '^')?;
            let start = chars[..end]
                .iter()
                .rposition(|&c| c != '^')
                .map_or(0, |i| i + 1);
            start.checked_sub(3)
        });
    match column {
        Some(column) => format!("at position {column}, {what}"),
        None => what.to_string(),
    }
}

/// A command line as a person would type it: arguments with spaces or quotes are quoted.
fn command_line(cmd: &[OsString]) -> String {
    cmd.iter()
        .map(|a| {
            let a = a.to_string_lossy();
            if a.is_empty() || a.contains(|c: char| c.is_whitespace() || "'\"\\$`".contains(c)) {
                format!("'{}'", a.replace('\'', r"'\''"))
            } else {
                a.into_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::source::MarkerPace;
    use super::*;
    use crate::model::Verdict;
    use crate::sample::Metric;

    #[test]
    fn command_lines_quote_what_a_shell_would_split() {
        let cmd: Vec<OsString> = ["python3", "my script.py", "it's", ""]
            .iter()
            .map(Into::into)
            .collect();
        assert_eq!(command_line(&cmd), r#"python3 'my script.py' 'it'\''s' ''"#);
    }

    #[test]
    fn markers_in_bursts_earn_a_note() {
        let t = Instant::now();
        let pace = |times: &mut dyn Iterator<Item = Instant>| {
            let mut pace = MarkerPace::default();
            times.for_each(|at| pace.record(at));
            pace.bunched()
        };
        let burst = pace(&mut (0..10).map(|i| t + Duration::from_micros(i * 50)));
        assert!(burst.unwrap().contains("flush"));
        assert_eq!(
            pace(&mut (0..10).map(|i| t + Duration::from_millis(i * 20))),
            None
        );
    }

    #[test]
    fn a_bad_marker_is_an_error_naming_it() {
        let err = Program::command(["true"]).marker("(").unwrap_err();
        assert!(err.to_string().starts_with("invalid --marker '('"), "{err}");
    }

    #[test]
    fn a_bad_marker_is_one_sentence_saying_where_and_what() {
        let fault = |pattern: &str| match Program::command(["true"]).marker(pattern) {
            Err(ExternalError::InvalidMarker { reason, .. }) => reason,
            other => panic!("{pattern}: {other:?}"),
        };
        assert_eq!(fault("ab(c"), "at position 3, unclosed group");
        assert_eq!(fault("é("), "at position 2, unclosed group");
        assert_eq!(
            fault("a{2,1}"),
            "at position 2, invalid repetition count range, the start must be <= the end"
        );
        assert_eq!(
            fault("(?P<n>a)(?P<n>b)"),
            "at position 13, duplicate capture group name"
        );
        assert_eq!(
            fault("x{99999999}"),
            "compiled regex exceeds size limit of 10485760 bytes"
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_long_run_keeps_its_samples_bounded_and_judges_them_per_second() {
        let run = Program::command(["sleep", "5"])
            .interval(Duration::from_millis(2))
            .duration(Duration::from_millis(800))
            .warmup_secs(0.1)
            .caps(16, 16)
            .run()
            .unwrap();
        // ~400 ticks; a loaded machine skips late ones: well over the caps' 16 all the same.
        assert!(run.iterations > 40, "{} samples taken", run.iterations);
        assert!(
            run.samples.len() <= 18,
            "{} samples kept",
            run.samples.len()
        );
        let span = run.samples[1].span;
        assert!(span >= 8, "span {span}");
        let rss = &run.metrics[&Metric::RssBytes];
        assert_eq!(rss.verdict, Verdict::Clean, "{}", rss.reason);
        assert!(
            rss.reason.contains(&format!("{span} intervals")),
            "{}",
            rss.reason
        );
        assert!(rss.slope_per_second.unwrap().abs() < 64.0 * 1024.0);

        // Samples between marker lines are thinned too.
        let run = Program::command(["sh", "-c", "echo done; sleep 0.5; echo done"])
            .marker("^done$")
            .unwrap()
            .interval(Duration::from_millis(1))
            .caps(16, 16)
            .run()
            .unwrap();
        let kept = run.interval_samples.len();
        assert!((8..=16).contains(&kept), "{kept} interval samples kept");
        let last = run.interval_samples[kept - 1].elapsed_ms;
        assert!(last > 300.0, "the latest ones are kept: {last} ms");
    }
}
