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
//! merged pairwise (see [`crate::store`]), and the samples between marker lines are thinned
//! to every other one past [`MAX_INTERVAL_SAMPLES`].
//!
//! There are no heap counters outside the process: RSS is the memory signal, and a leak in
//! RSS fails the run (see [`crate::judge::gates`]). A program stopped by the profiler gets
//! SIGTERM, then SIGKILL after a grace period (2 s); an attached pid is only ever read.

mod child;
mod tree;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use regex::bytes::Regex;

use crate::budget::Budgets;
use crate::judge::{self, Next};
use crate::model::{
    End, Exit, Extension, Failure, HeapScope, IntervalSample, MetricReport, Run, Source,
    SourceKind, XAxis,
};
use crate::probe::ProcessStats;
use crate::sample::{Metric, Sample};
use crate::store::{MAX_STORED_SAMPLES, SampleStore};
use crate::verdict::Verdict;
use child::Event;
use tree::{State, TreeProbe};

/// Sampling period of a program when none is given.
pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(100);
/// Time a stopped program gets between SIGTERM and SIGKILL.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(2);
/// Longest wait between two looks at the program, the interrupt flag and the clock.
const POLL: Duration = Duration::from_millis(20);
/// How long the output of a program that ended may keep arriving before the run closes.
const DRAIN: Duration = Duration::from_millis(500);
/// Samples between marker lines kept before every other one is dropped: 262,144 x 48 B =
/// 12 MiB at most, like the boundary samples (see [`crate::store`]).
pub const MAX_INTERVAL_SAMPLES: usize = 1 << 18;

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
    grace: Duration,
    budgets: Budgets,
    caps: Caps,
}

/// How many samples a run keeps before thinning them: the memory bound of a run of any length.
#[derive(Debug, Clone, Copy)]
struct Caps {
    /// Boundary or time samples after the first (merged pairwise past it).
    samples: usize,
    /// Samples between marker lines (every other one dropped past it).
    interval_samples: usize,
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
            grace: DEFAULT_GRACE,
            budgets: Budgets::default(),
            caps: Caps {
                samples: MAX_STORED_SAMPLES,
                interval_samples: MAX_INTERVAL_SAMPLES,
            },
        }
    }

    /// Lower memory bounds, so that a test reaches them in a second rather than in hours.
    #[cfg(test)]
    fn caps(mut self, samples: usize, interval_samples: usize) -> Self {
        self.caps = Caps {
            samples,
            interval_samples,
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

    /// Upper bound of marked iterations when extending (default 8 x `iterations`).
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

    /// Time between SIGTERM and SIGKILL when the profiler stops the program (default 2 s).
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Budgets checked against the samples (only `rss` applies: there is no heap counter).
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
        let (pid, started) = match &self.target {
            Target::Command(cmd) => {
                let started = child::start(cmd, self.marker.as_ref())?;
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
        let mut session = Session::new(self, pid, started);
        session.sample_loop()?;
        Ok(session.finish(name))
    }
}

/// A run in progress.
struct Session {
    program: Program,
    pid: u32,
    started: Option<child::Started>,
    probe: TreeProbe,
    t0: Instant,
    last_time: Instant,
    last_cpu_ms: Option<f64>,
    samples: SampleStore,
    /// Time samples taken (without a marker), merged ones counted one by one.
    taken: u32,
    interval_samples: Thinned<IntervalSample>,
    /// Marked iterations sampled (with a marker).
    done: u32,
    /// The iteration count of the next checkpoint (with a marker and `iterations`).
    target: Option<u32>,
    leaks_before: Vec<Metric>,
    extensions: Vec<Extension>,
    pace: MarkerPace,
    /// Marker lines seen when the program could no longer be measured.
    unsampled: u32,
    end: End,
    exit: Option<Exit>,
}

impl Session {
    fn new(program: Program, pid: u32, started: Option<child::Started>) -> Self {
        let t0 = Instant::now();
        let target = program.marker.as_ref().and(program.iterations);
        let caps = program.caps;
        Session {
            probe: TreeProbe::new(pid, program.include_children),
            program,
            pid,
            started,
            t0,
            last_time: t0,
            last_cpu_ms: None,
            samples: SampleStore::new(caps.samples, 1024),
            taken: 0,
            interval_samples: Thinned::new(caps.interval_samples),
            done: 0,
            target,
            leaks_before: Vec::new(),
            extensions: Vec::new(),
            pace: MarkerPace::default(),
            unsampled: 0,
            end: End::Exited,
            exit: None,
        }
    }

    fn marked(&self) -> bool {
        self.program.marker.is_some()
    }

    fn sample_loop(&mut self) -> Result<(), ExternalError> {
        // With a marker, the program's start-up is its setup: the first marker line is
        // iteration 0, each later one ends an iteration. In time, start-up is warm-up. A
        // started program is first sampled at the first tick, one interval in: at once it may
        // still be in exec (no memory at all) or loading its libraries, which would show as
        // growth. An attached process is already running.
        if !self.marked() && matches!(self.program.target, Target::Pid(_)) {
            self.time_sample();
        }
        let interval = self.program.interval;
        let deadline = self.program.duration.map(|d| self.t0 + d);
        let mut next_tick = self.t0 + interval;
        loop {
            if crate::interrupt::requested() {
                self.end = End::Interrupted;
                break;
            }
            let now = Instant::now();
            if now >= next_tick {
                self.tick();
                while next_tick <= now {
                    next_tick += interval;
                }
            }
            if deadline.is_some_and(|d| now >= d) {
                self.end = End::Duration;
                break;
            }
            // Markers already read are sampled before looking for the exit: a program that
            // prints its last marker and exits is then still measurable.
            if self.take_markers(Duration::ZERO) {
                break;
            }
            if self.ended()? {
                break;
            }
            let mut wake = next_tick.min(now + POLL);
            if let Some(d) = deadline {
                wake = wake.min(d);
            }
            if self.take_markers(wake.saturating_duration_since(Instant::now())) {
                break;
            }
        }
        self.stop_program()?;
        // Ctrl-C in a terminal reaches the program too: if it died of it before our handler
        // ran, the run was still interrupted, not a crash.
        if self.end == End::Exited && crate::interrupt::requested() {
            self.end = End::Interrupted;
        }
        Ok(())
    }

    /// Wait up to `timeout` for output events, sampling each marker. `true` when the run has
    /// seen enough iterations.
    fn take_markers(&mut self, timeout: Duration) -> bool {
        let Some(events) = self.started.as_ref().and_then(|s| s.events.as_ref()) else {
            if !timeout.is_zero() {
                std::thread::sleep(timeout);
            }
            return false;
        };
        let first = if timeout.is_zero() {
            events.try_recv().map_err(|_| RecvTimeoutError::Timeout)
        } else {
            events.recv_timeout(timeout)
        };
        let mut pending = Vec::new();
        match first {
            Ok(e) => pending.push(e),
            Err(RecvTimeoutError::Timeout) => return false,
            Err(RecvTimeoutError::Disconnected) => {
                // Both streams closed: nothing more will come; wait like a time series.
                if let Some(s) = self.started.as_mut() {
                    s.events = None;
                }
                std::thread::sleep(timeout);
                return false;
            }
        }
        pending.extend(events.try_iter());
        for event in pending {
            match event {
                Event::Closed => {
                    if let Some(s) = self.started.as_mut() {
                        s.open_streams = s.open_streams.saturating_sub(1);
                    }
                }
                Event::Marker(at) => {
                    if self.marker(at) {
                        return true;
                    }
                }
            }
        }
        false
    }

    /// Sample a marked iteration boundary; `true` when the run should stop here.
    fn marker(&mut self, at: Instant) -> bool {
        self.pace.record(at);
        let first = self.samples.as_slice().is_empty();
        let Some(sample) = self.boundary(if first { 0 } else { self.done + 1 }) else {
            self.unsampled += 1;
            return false;
        };
        self.samples.push(sample);
        if first {
            return false;
        }
        self.done += 1;
        let max = self.max_iterations();
        if self.target != Some(self.done) && self.done < max {
            return false;
        }
        if self.done >= max {
            self.end = End::Iterations;
            return true;
        }
        let judged = self.judge_iterations();
        let next = if self.program.extend {
            judge::next_step(&judged, &self.leaks_before, self.done, max)
        } else {
            Next::Stop
        };
        match next {
            Next::Stop => {
                self.end = End::Iterations;
                true
            }
            Next::ExtendTo(to, reason) => {
                self.leaks_before = leaks(&judged);
                self.extensions.push(Extension {
                    from: self.done,
                    to,
                    reason,
                });
                self.target = Some(to);
                false
            }
        }
    }

    fn max_iterations(&self) -> u32 {
        match (self.program.max_iterations, self.program.iterations) {
            (Some(m), Some(n)) => m.max(n),
            (Some(m), None) => m,
            (None, Some(n)) if self.program.extend => {
                n.saturating_mul(crate::run::DEFAULT_EXTENSION_FACTOR)
            }
            (None, Some(n)) => n,
            (None, None) => u32::MAX,
        }
    }

    /// A time sample (without a marker) or a sample between boundaries (with one).
    fn tick(&mut self) {
        if self.marked() {
            // Before the first marker the program is starting up: nothing to place.
            if !self.samples.as_slice().is_empty()
                && let Some(stats) = self.probe.read()
            {
                self.interval_samples.push(IntervalSample {
                    elapsed_ms: crate::sample::ms(self.t0.elapsed()),
                    iteration: self.done + 1,
                    heap_bytes: None,
                    rss_bytes: stats.rss_bytes,
                });
            }
        } else {
            self.time_sample();
        }
    }

    fn time_sample(&mut self) {
        if let Some(s) = self.boundary(self.taken) {
            self.samples.push(s);
            self.taken += 1;
        }
    }

    /// `true` once the program ended: reaped (a started one) or gone (an attached one).
    fn ended(&mut self) -> Result<bool, ExternalError> {
        match self.started.as_mut() {
            Some(s) => match s.child.try_wait() {
                Ok(Some(status)) => {
                    self.exit = Some(child::exit_of(status));
                    self.end = End::Exited;
                    Ok(true)
                }
                Ok(None) => Ok(false),
                Err(source) => Err(self.wait_error(source)),
            },
            None => {
                let gone = tree::state(self.pid) != State::Alive;
                if gone {
                    self.end = End::Vanished;
                }
                Ok(gone)
            }
        }
    }

    fn wait_error(&self, source: std::io::Error) -> ExternalError {
        ExternalError::Wait {
            program: self.program.name(),
            source,
        }
    }

    /// Stop a started program that is still running (never an attached one), then let its
    /// remaining output through.
    fn stop_program(&mut self) -> Result<(), ExternalError> {
        let include_children = self.program.include_children;
        let grace = self.program.grace;
        let Some(started) = self.started.as_mut() else {
            return Ok(());
        };
        if self.exit.is_none() {
            let also = if include_children {
                tree::descendants(self.pid)
            } else {
                Vec::new()
            };
            match child::stop(&mut started.child, &also, grace) {
                Ok(status) => self.exit = Some(child::exit_of(status)),
                Err(source) => return Err(self.wait_error(source)),
            }
        }
        // Let the last output through; a descendant still holding the pipes open is not
        // waited for beyond DRAIN.
        let drain_until = Instant::now() + DRAIN;
        while let Some(s) = self.started.as_mut() {
            let Some(events) = s.events.as_ref() else {
                break;
            };
            if s.open_streams == 0 {
                break;
            }
            let left = drain_until.saturating_duration_since(Instant::now());
            match events.recv_timeout(left) {
                Ok(Event::Closed) => s.open_streams -= 1,
                Ok(Event::Marker(_)) => self.unsampled += 1,
                Err(_) => break,
            }
        }
        Ok(())
    }

    /// A sample of the process (tree), or `None` once it can no longer be measured.
    fn boundary(&mut self, iteration: u32) -> Option<Sample> {
        let stats = self.probe.read()?;
        let now = Instant::now();
        let first = self.samples.as_slice().is_empty();
        let sample = sample_of(
            stats,
            iteration,
            crate::sample::ms(now - self.t0),
            (!first).then(|| crate::sample::ms(now - self.last_time)),
            match (stats.cpu_ms, self.last_cpu_ms) {
                (Some(c), Some(prev)) if !first => Some((c - prev).max(0.0)),
                _ => None,
            },
        );
        self.last_time = now;
        self.last_cpu_ms = stats.cpu_ms;
        Some(sample)
    }

    fn judge_iterations(&self) -> BTreeMap<Metric, MetricReport> {
        judge::judge_samples_from(
            self.samples.as_slice(),
            self.program.warmup,
            HeapScope::None,
            self.kind(),
        )
    }

    fn kind(&self) -> SourceKind {
        match self.program.target {
            Target::Command(_) => SourceKind::Command,
            Target::Pid(_) => SourceKind::Pid,
        }
    }

    fn finish(self, name: String) -> Run {
        let kind = self.kind();
        let marked = self.marked();
        // The store's partly filled last bucket joins the samples here; the verdict leaves it
        // out (it is not spaced like the others), the report keeps it.
        let samples = self.samples.finish();
        let mut metrics = if marked {
            judge::judge_samples_from(&samples, self.program.warmup, HeapScope::None, kind)
        } else {
            judge::judge_time_series(&samples, self.program.warmup_secs, kind)
        };
        // Stopped by the profiler at a checkpoint: a leak not seen at the previous one was
        // not confirmed (as in process). Ended otherwise, every sample the program gave was
        // judged: there is nothing more to confirm with.
        if marked && self.end == End::Iterations && self.program.iterations.is_some() {
            judge::settle_unconfirmed(&mut metrics, &self.leaks_before, self.program.extend);
        }
        let mut notes = Vec::new();
        if let Some(marker) = &self.program.marker {
            match self.pace.count {
                0 => notes.push(format!(
                    "no output line matched --marker '{}': no iteration to judge",
                    marker.as_str()
                )),
                1 => notes.push(
                    "one output line matched --marker: it starts the first iteration, whose \
                     end no line marked"
                        .to_string(),
                ),
                _ => {}
            }
            if let Some(note) = self.pace.bunched() {
                notes.push(note);
            }
            if let (Some(to), End::Exited) = (self.target, self.end)
                && self.done > 0
                && self.done < to
                && !self.extensions.is_empty()
            {
                notes.push(format!(
                    "the program exited after {} marked iterations, before the {to} the run \
                     extended to: judged on what it gave",
                    self.done
                ));
            }
        }
        if !marked && samples.is_empty() {
            notes.push(match kind {
                SourceKind::Pid => "the process could not be measured (it ended, or has no \
                                    memory of its own): nothing to judge"
                    .to_string(),
                _ => format!(
                    "the program ended before its first sample, taken one interval ({:.0} ms) \
                     after its start: nothing to judge; a shorter --interval samples sooner",
                    crate::sample::ms(self.program.interval)
                ),
            });
        }
        if self.unsampled > 0 {
            notes.push(format!(
                "{} marker line(s) arrived when the program could no longer be measured \
                 (exiting or stopped): not sampled",
                self.unsampled
            ));
        }
        let failure = match (self.end, self.exit) {
            (End::Exited, Some(exit)) if !exit.success() => Some(Failure {
                iteration: if marked { self.done + 1 } else { self.taken },
                message: format!("the program {exit}"),
                kind: crate::model::FailureKind::Program,
            }),
            _ => None,
        };
        let command = match &self.program.target {
            Target::Command(cmd) => cmd
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect(),
            Target::Pid(_) => Vec::new(),
        };
        let iterations = if marked {
            self.done
        } else {
            self.taken.saturating_sub(1)
        };
        let mut run = Run {
            iterations,
            warmup: judge::run_warmup(&metrics),
            samples,
            interval_samples: self.interval_samples.items,
            verdict: judge::run_verdict(&metrics),
            metrics,
            extensions: self.extensions,
            failure,
            source: Source {
                kind,
                command,
                pid: Some(self.pid),
                marker: self.program.marker.as_ref().map(|m| m.as_str().to_string()),
                include_children: self.program.include_children,
                interval_ms: Some(crate::sample::ms(self.program.interval)),
                end: Some(self.end),
                exit: self.exit,
                notes,
            },
            x_axis: if marked {
                XAxis::Iteration
            } else {
                XAxis::Second
            },
            ..Run::new(name, HeapScope::None)
        };
        if run.failure.is_some() && run.verdict == Verdict::Clean {
            run.verdict = Verdict::Inconclusive;
        }
        run.budgets = self.program.budgets.check(&run);
        run
    }
}

fn sample_of(
    stats: ProcessStats,
    iteration: u32,
    elapsed_ms: f64,
    duration_ms: Option<f64>,
    cpu_ms: Option<f64>,
) -> Sample {
    // Heap fields stay unmeasured (null): no counter sees into another process.
    Sample {
        iteration,
        span: 1,
        elapsed_ms,
        rss_bytes: stats.rss_bytes,
        vsize_bytes: stats.vsize_bytes,
        fds: stats.fds,
        threads: stats.threads,
        duration_ms,
        cpu_ms,
        ..Sample::default()
    }
}

fn leaks(metrics: &BTreeMap<Metric, MetricReport>) -> Vec<Metric> {
    metrics
        .iter()
        .filter(|(_, m)| m.verdict == Verdict::Leak)
        .map(|(k, _)| *k)
        .collect()
}

/// How marker lines arrived: counted, not kept, so that a run of any length stays bounded.
#[derive(Debug, Default)]
struct MarkerPace {
    /// Marker lines seen.
    count: u64,
    /// Marker lines that came within 2 ms of the previous one.
    close: u64,
    last: Option<Instant>,
}

impl MarkerPace {
    fn record(&mut self, at: Instant) {
        if self
            .last
            .is_some_and(|last| at.saturating_duration_since(last) < Duration::from_millis(2))
        {
            self.close += 1;
        }
        self.count += 1;
        self.last = Some(at);
    }

    /// A note when most marker lines arrived within 2 ms of the previous one: the program
    /// very likely buffers its output, and the samples then do not fall at its iteration
    /// boundaries.
    fn bunched(&self) -> Option<String> {
        if self.count < 5 {
            return None;
        }
        let (close, gaps) = (self.close, self.count - 1);
        (close * 2 > gaps).then(|| {
            format!(
                "{close} of {gaps} marker lines arrived within 2 ms of the previous one: the \
                 program probably buffers its output when it is not a terminal, so samples miss \
                 its iteration boundaries; flush after each marker line (Python: print(..., \
                 flush=True) or PYTHONUNBUFFERED=1; C: fflush(stdout))"
            )
        })
    }
}

/// A stream of items kept within `cap`, evenly: when full, every other item is dropped and
/// from then on only every other one offered is kept (the stride doubles).
#[derive(Debug)]
struct Thinned<T> {
    items: Vec<T>,
    cap: usize,
    /// Items offered per item kept.
    stride: u64,
    offered: u64,
}

impl<T> Thinned<T> {
    fn new(cap: usize) -> Self {
        Thinned {
            items: Vec::new(),
            cap: cap.max(2),
            stride: 1,
            offered: 0,
        }
    }

    fn push(&mut self, item: T) {
        // Item k offered is kept when k is a multiple of the stride: items[i] is the
        // (i x stride)-th offered, so dropping the odd ones keeps that true at twice the stride.
        let k = self.offered;
        self.offered += 1;
        if !k.is_multiple_of(self.stride) {
            return;
        }
        if self.items.len() >= self.cap {
            let mut i = 0;
            self.items.retain(|_| {
                i += 1;
                i % 2 == 1
            });
            self.stride *= 2;
            if !k.is_multiple_of(self.stride) {
                return;
            }
        }
        self.items.push(item);
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
    use super::*;

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
        assert!(run.iterations > 100, "{} samples taken", run.iterations);
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

    #[test]
    fn thinned_items_stay_bounded_and_evenly_spaced() {
        let mut kept = Thinned::new(8);
        for i in 0..1000u64 {
            kept.push(i);
        }
        assert!(kept.items.len() <= 8, "{:?}", kept.items);
        let stride = kept.items[1] - kept.items[0];
        assert_eq!(kept.items[0], 0);
        assert!(
            kept.items.windows(2).all(|w| w[1] - w[0] == stride),
            "{:?}",
            kept.items
        );
        assert!(
            kept.items.last().unwrap() + stride >= 1000,
            "{:?}",
            kept.items
        );
    }
}
