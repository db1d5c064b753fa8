// Owns a program as a source of samples: its marker lines or its clock tick boundaries, its
// exit, and stopping it. Must never signal a process it did not start.

use std::collections::VecDeque;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use super::child::{self, Event};
use super::tree::{self, State, TreeProbe};
use super::{Program, Target};
use crate::engine::{Ending, Source, Step};
use crate::error::ExternalError;
use crate::model::{End, Exit, Failure, FailureKind, IntervalSample, Run, Source as SourceRecord};
use crate::probe::ProcessStats;
use crate::sample::{Sample, ms};
use crate::store::Thinned;

/// Longest wait between two looks at the program, the interrupt flag and the clock.
const POLL: Duration = Duration::from_millis(20);
/// How long the output of a program that ended may keep arriving before the run closes.
const DRAIN: Duration = Duration::from_millis(500);

/// A started or attached program, sampled at its marker lines or every interval.
pub(super) struct ProgramSource {
    program: Program,
    pid: u32,
    started: Option<child::Started>,
    probe: TreeProbe,
    t0: Instant,
    next_tick: Instant,
    deadline: Option<Instant>,
    last_time: Instant,
    last_cpu_ms: Option<f64>,
    sampled: bool,
    /// Marker lines read and not yet sampled.
    pending: VecDeque<Instant>,
    pace: MarkerPace,
    /// Marker lines seen when the program could no longer be measured.
    unsampled: u32,
    exit: Option<Exit>,
    /// Descendants seen while sampling without --include-children (pid, name), for a note.
    unmeasured_children: Vec<(u32, Option<String>)>,
    /// What went wrong waiting for the program, if anything: the run's error.
    pub(super) error: Option<ExternalError>,
}

impl ProgramSource {
    pub(super) fn new(program: Program, pid: u32, started: Option<child::Started>) -> Self {
        let t0 = Instant::now();
        ProgramSource {
            probe: TreeProbe::new(pid, program.include_children),
            next_tick: t0 + program.interval,
            deadline: program.duration.map(|d| t0 + d),
            program,
            pid,
            started,
            t0,
            last_time: t0,
            last_cpu_ms: None,
            sampled: false,
            pending: VecDeque::new(),
            pace: MarkerPace::default(),
            unsampled: 0,
            exit: None,
            unmeasured_children: Vec::new(),
            error: None,
        }
    }

    fn marked(&self) -> bool {
        self.program.marker.is_some()
    }

    /// Wait for the boundary that ends iteration `n` (0: the first sample): a marker line, or
    /// with none the next tick. Between markers, ticks are samples between boundaries.
    fn boundary_of(&mut self, n: u32, between: &mut Thinned<IntervalSample>) -> Step {
        loop {
            if crate::interrupt::requested() {
                return Step::Ended(End::Interrupted);
            }
            let now = Instant::now();
            if now >= self.next_tick {
                while self.next_tick <= now {
                    self.next_tick += self.program.interval;
                }
                if !self.marked() {
                    if let Some(s) = self.sample(n) {
                        return Step::Sample(s);
                    }
                } else if n > 0
                    && let Some(stats) = self.probe.read()
                {
                    // Before the first marker the program is starting up: nothing to place.
                    between.push(IntervalSample {
                        elapsed_ms: ms(self.t0.elapsed()),
                        iteration: n,
                        heap_bytes: None,
                        rss_bytes: stats.rss_bytes,
                    });
                }
            }
            if self.deadline.is_some_and(|d| now >= d) {
                return Step::Ended(End::Duration);
            }
            // Markers already read are sampled before looking for the exit: a program that
            // prints its last marker and exits is then still measurable.
            self.receive(Duration::ZERO);
            if let Some(at) = self.pending.pop_front() {
                self.pace.record(at);
                match self.sample(n) {
                    Some(s) => return Step::Sample(s),
                    None => {
                        self.unsampled += 1;
                        continue;
                    }
                }
            }
            if let Some(end) = self.ended() {
                // Ctrl-C in a terminal reaches the program too: if it died of it before our
                // handler ran, the run was still interrupted, not a crash.
                if crate::interrupt::requested() {
                    return Step::Ended(End::Interrupted);
                }
                return Step::Ended(end);
            }
            let mut wake = self.next_tick.min(now + POLL);
            if let Some(d) = self.deadline {
                wake = wake.min(d);
            }
            self.receive(wake.saturating_duration_since(Instant::now()));
        }
    }

    /// Wait up to `timeout` for output events; marker lines join `pending`.
    fn receive(&mut self, timeout: Duration) {
        let Some(events) = self.started.as_ref().and_then(|s| s.events.as_ref()) else {
            if !timeout.is_zero() {
                std::thread::sleep(timeout);
            }
            return;
        };
        let first = if timeout.is_zero() {
            events.try_recv().map_err(|_| RecvTimeoutError::Timeout)
        } else {
            events.recv_timeout(timeout)
        };
        let mut got = Vec::new();
        match first {
            Ok(e) => got.push(e),
            Err(RecvTimeoutError::Timeout) => return,
            Err(RecvTimeoutError::Disconnected) => {
                // Both streams closed: nothing more will come; wait like a time series.
                if let Some(s) = self.started.as_mut() {
                    s.events = None;
                }
                std::thread::sleep(timeout);
                return;
            }
        }
        got.extend(events.try_iter());
        for event in got {
            match event {
                Event::Closed => {
                    if let Some(s) = self.started.as_mut() {
                        s.open_streams = s.open_streams.saturating_sub(1);
                    }
                }
                Event::Marker(at) => self.pending.push_back(at),
            }
        }
    }

    /// How the program ended, once it did: reaped (a started one) or gone (an attached one).
    fn ended(&mut self) -> Option<End> {
        match self.started.as_mut() {
            Some(s) => match s.child.try_wait() {
                Ok(Some(status)) => {
                    self.exit = Some(child::exit_of(status));
                    Some(End::Exited)
                }
                Ok(None) => None,
                Err(source) => {
                    self.error = Some(self.wait_error(source));
                    Some(End::Exited)
                }
            },
            None => (tree::state(self.pid) != State::Alive).then_some(End::Vanished),
        }
    }

    fn wait_error(&self, source: std::io::Error) -> ExternalError {
        ExternalError::Wait {
            program: self.program.name(),
            source,
        }
    }

    /// A sample of the process (tree), or `None` once it can no longer be measured.
    fn sample(&mut self, iteration: u32) -> Option<Sample> {
        let stats = self.probe.read()?;
        let now = Instant::now();
        let first = !self.sampled;
        let sample = sample_of(
            stats,
            iteration,
            ms(now - self.t0),
            (!first).then(|| ms(now - self.last_time)),
            match (stats.cpu_ms, self.last_cpu_ms) {
                (Some(c), Some(prev)) if !first => Some((c - prev).max(0.0)),
                _ => None,
            },
        );
        // Look for children the samples leave out (a shell or launcher whose child does the
        // work): at the first sample and every 64th, which costs a read of /proc each.
        if !self.program.include_children && iteration.is_multiple_of(64) {
            self.note_children();
        }
        self.sampled = true;
        self.last_time = now;
        self.last_cpu_ms = stats.cpu_ms;
        Some(sample)
    }

    /// Remember the program's live descendants (at most a few), which are not measured.
    fn note_children(&mut self) {
        for child in tree::descendants(self.pid).into_iter().take(3) {
            if !self
                .unmeasured_children
                .iter()
                .any(|(pid, _)| *pid == child)
            {
                self.unmeasured_children.push((child, tree::name(child)));
            }
        }
    }

    /// Notes on how the program was measured, for the report.
    fn notes(&self, run: &Run, end: End) -> Vec<String> {
        let mut notes = Vec::new();
        if !self.unmeasured_children.is_empty() {
            let children: Vec<String> = self
                .unmeasured_children
                .iter()
                .map(|(pid, name)| match name {
                    Some(name) => format!("{name} (pid {pid})"),
                    None => format!("pid {pid}"),
                })
                .collect();
            notes.push(format!(
                "pid {} has child processes that these samples do not include: {}; if the work \
                 happens there, add --include-children to sum them",
                self.pid,
                children.join(", ")
            ));
        }
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
            if let (Some(last), End::Exited) = (run.extensions.last(), end)
                && run.iterations > 0
                && run.iterations < last.to
            {
                notes.push(format!(
                    "the program exited after {} marked iterations, before the {} the run \
                     extended to: judged on what it gave",
                    run.iterations, last.to
                ));
            }
        } else if run.samples.is_empty() {
            notes.push(match self.program.target {
                Target::Pid(_) => "the process could not be measured (it ended, or has no \
                                   memory of its own): nothing to judge"
                    .to_string(),
                Target::Command(_) => format!(
                    "the program ended before its first sample, taken one interval ({:.0} ms) \
                     after its start: nothing to judge; a shorter --interval samples sooner",
                    ms(self.program.interval)
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
        notes
    }
}

impl Source for ProgramSource {
    fn first(&mut self, between: &mut Thinned<IntervalSample>) -> Step {
        // With a marker, the program's start-up is its setup: the first marker line is
        // iteration 0. In time, start-up is warm-up: a started program is first sampled one
        // interval in (at once it may still be in exec, or loading its libraries, which would
        // show as growth); an attached process is already running.
        if !self.marked()
            && matches!(self.program.target, Target::Pid(_))
            && let Some(s) = self.sample(0)
        {
            return Step::Sample(s);
        }
        self.boundary_of(0, between)
    }

    fn next(&mut self, n: u32, between: &mut Thinned<IntervalSample>) -> Step {
        self.boundary_of(n, between)
    }

    /// Stop a started program that is still running (never an attached one), then let its
    /// remaining output through.
    fn stop(&mut self, _between: &mut Thinned<IntervalSample>) {
        let include_children = self.program.include_children;
        let grace = self.program.grace;
        let pid = self.pid;
        let Some(started) = self.started.as_mut() else {
            return;
        };
        if self.exit.is_none() {
            let also = if include_children {
                tree::descendants(pid)
            } else {
                Vec::new()
            };
            match child::stop(&mut started.child, &also, grace) {
                Ok(status) => self.exit = Some(child::exit_of(status)),
                Err(source) => {
                    self.error = Some(self.wait_error(source));
                    return;
                }
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
    }

    fn finish(&mut self, run: &mut Run, ending: Ending) {
        let end = ending.end;
        run.source = SourceRecord {
            kind: run.source.kind,
            command: match &self.program.target {
                Target::Command(cmd) => cmd
                    .iter()
                    .map(|a| a.to_string_lossy().into_owned())
                    .collect(),
                Target::Pid(_) => Vec::new(),
            },
            pid: Some(self.pid),
            marker: self.program.marker.as_ref().map(|m| m.as_str().to_string()),
            include_children: self.program.include_children,
            interval_ms: Some(ms(self.program.interval)),
            end: Some(end),
            exit: self.exit,
            notes: self.notes(run, end),
        };
        if let (End::Exited, Some(exit)) = (end, self.exit)
            && !exit.success()
        {
            run.failure = Some(Failure {
                iteration: run.iterations + 1,
                message: format!("the program {exit}"),
                kind: FailureKind::Program,
            });
        }
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

/// How marker lines arrived: counted, not kept, so that a run of any length stays bounded.
#[derive(Debug, Default)]
pub(super) struct MarkerPace {
    /// Marker lines seen.
    count: u64,
    /// Marker lines that came within 2 ms of the previous one.
    close: u64,
    last: Option<Instant>,
}

impl MarkerPace {
    pub(super) fn record(&mut self, at: Instant) {
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
    pub(super) fn bunched(&self) -> Option<String> {
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
