// Owns a program as a source of samples: its marker lines or its clock tick boundaries, its
// exit, and stopping it. Must never signal a process it did not start.

mod notes;
mod pace;
mod uncounted;

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use super::child::{self, Event};
use super::heap::{Heap, LineSnapshot};
use super::tree::{self, State, TreeProbe};
use super::{Program, Target};
use crate::engine::{Ending, Source, Step};
use crate::error::ExternalError;
use crate::model::{
    End, Exit, Failure, FailureKind, HeapScope, IntervalSample, MetricReport, Run,
    Source as SourceRecord,
};
use crate::probe::ProcessStats;
use crate::sample::{Metric, Sample, ms};
use crate::store::Thinned;
pub(crate) use notes::named;
pub(crate) use pace::MarkerPace;

/// The program's heap counters, from the preload library.
pub(super) enum HeapState {
    /// Not asked for: an attached process (nothing can be injected into it).
    Absent,
    /// Off or unavailable, with the sentence that says why.
    Off(String),
    /// Injected; the first sample checks that the library attached.
    Injected(Arc<Heap>),
    /// Attached and counting.
    On(Arc<Heap>),
}

/// The heap fields of one sample.
#[derive(Debug, Clone, Copy)]
struct HeapFields {
    live_bytes: i64,
    blocks: i64,
    peak: Option<i64>,
    allocated_bytes: Option<i64>,
    allocations: Option<i64>,
}

/// Longest wait between two looks at the program, the interrupt flag and the clock.
const POLL: Duration = Duration::from_millis(20);
/// How long the output of a program that ended may stay silent before the run closes: on a
/// busy machine hundreds of lines written in a burst can take longer than that to arrive, so
/// the wait starts again at each line, up to MAX_DRAIN in all.
const DRAIN: Duration = Duration::from_millis(500);
/// The longest the output of a program that ended is waited for, however it trickles in.
const MAX_DRAIN: Duration = Duration::from_secs(10);

/// How long a marked program may run without a line matching its marker before the user is
/// told (the run goes on).
const NO_MARKER_WARNING: Duration = Duration::from_secs(10);

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
    /// Marker lines read and not yet sampled, with the heap library's snapshot of each.
    pending: VecDeque<(Instant, Option<LineSnapshot>)>,
    pace: MarkerPace,
    /// Marker lines seen when the program could no longer be measured.
    unsampled: u32,
    exit: Option<Exit>,
    /// The program had exited by itself when the run, at its iterations, went to stop it.
    exited_first: bool,
    /// Descendants seen while sampling without --include-children, for a note.
    unmeasured_children: Vec<notes::Unmeasured>,
    /// How many times descendants were looked for.
    children_checks: u32,
    /// Of those, the ones that found the program blocked waiting for a child.
    waiting_checks: u32,
    /// Whether the program was told its output has not matched the marker yet.
    warned_no_marker: bool,
    /// Processes of its tree still running when the program exited on its own (pid, name),
    /// for a note: it daemonized, or left work in the background.
    left_running: Vec<(u32, Option<String>)>,
    /// What went wrong waiting for the program, if anything: the run's error.
    pub(super) error: Option<ExternalError>,
    heap: HeapState,
    /// Notes on how the heap was counted (e.g. PYTHONMALLOC set).
    pub(super) heap_notes: Vec<String>,
    /// A Python program that runs with its small objects in arenas the heap counters do not
    /// see one by one, and what it runs with that keeps them there ("PYTHONMALLOC=pymalloc").
    pub(super) python_arenas: Option<String>,
    /// An allocator linked into the program's executable (mimalloc, jemalloc...), whose
    /// blocks the heap counters never see.
    pub(super) own_allocator: Option<&'static str>,
    /// What was done about the retention of freed pages by that allocator, if anything
    /// ([`super::own_allocator::retention_off`]): said whether or not heap counters run.
    pub(super) allocator_note: Option<String>,
    /// The program runs a Java virtual machine (at the last look, every 8th sample), whose RSS
    /// grows as its collector uses more of its heap ([`super::jvm`]).
    pub(super) jvm: bool,
    /// Malloc's own regions (the brk heap, glibc's arena heaps) in the measured tree at each
    /// look at the live program (every 8th sample, with `jvm`).
    pub(super) malloc_regions: Vec<RegionsLook>,
    /// CPU time the sampling thread spent reading the regions' resident pages so far (see
    /// [`RESIDENT_BUDGET`]).
    resident_cost: Duration,
    /// Cumulative allocated bytes and allocations at the previous boundary.
    last_cumulative: Option<(i64, i64)>,
    /// The peak window the previous paired marker line closed.
    last_epoch: Option<u64>,
    /// Marker samples whose heap came from the line's snapshot, and those read live.
    paired: u64,
    read_live: u64,
    /// Marker samples with heap counters only: the program had exited when they were read.
    heap_only: u32,
    /// When the program was first seen ended (its last output may still be arriving).
    exited_at: Option<Instant>,
    /// When output events last arrived.
    last_event: Option<Instant>,
    /// Samples taken with the heap library, for its periodic presence check.
    samples_seen: u64,
    /// With --include-children: the tree's processes the heap library did not count.
    uncounted: uncounted::Uncounted,
}

/// The share of the run's time the looks may spend reading malloc's regions' resident pages.
const RESIDENT_BUDGET: f64 = 0.05;

/// One look at malloc's own regions ([`super::arenas`]) in the measured tree.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct RegionsLook {
    /// The sample's index.
    pub iteration: u32,
    /// Bytes the regions span (their read-write part).
    pub mapped: u64,
    /// Bytes of them resident, when the page map could be read.
    pub resident: Option<u64>,
    /// The sample's RSS without file pages.
    pub anon: Option<u64>,
}

impl ProgramSource {
    pub(super) fn new(
        program: Program,
        pid: u32,
        started: Option<child::Started>,
        heap: HeapState,
    ) -> Self {
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
            exited_first: false,
            unmeasured_children: Vec::new(),
            children_checks: 0,
            waiting_checks: 0,
            warned_no_marker: false,
            left_running: Vec::new(),
            error: None,
            heap,
            heap_notes: Vec::new(),
            python_arenas: None,
            own_allocator: None,
            allocator_note: None,
            jvm: false,
            malloc_regions: Vec::new(),
            resident_cost: Duration::ZERO,
            last_cumulative: None,
            last_epoch: None,
            paired: 0,
            read_live: 0,
            heap_only: 0,
            exited_at: None,
            last_event: None,
            samples_seen: 0,
            uncounted: Default::default(),
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
                    if let Some(s) = self.sample(n, None) {
                        return Step::Sample(s);
                    }
                } else if n > 0
                    && let Some(stats) = self.probe.read()
                {
                    // Before the first marker the program is starting up: nothing to place.
                    let heap_bytes = match &self.heap {
                        HeapState::On(heap) => Some(heap.totals(self.probe.members()).live_bytes),
                        _ => None,
                    };
                    let elapsed_ms = ms(self.t0.elapsed());
                    // Untracked, as the in-process sampler's: the engine adopts them all at
                    // the end (counted once, there).
                    crate::alloc::untracked(|| {
                        between.push(IntervalSample {
                            elapsed_ms,
                            iteration: n,
                            heap_bytes,
                            rss_bytes: stats.rss_bytes,
                            rss_file_bytes: stats.rss_file_bytes,
                        })
                    });
                }
            }
            if self.deadline.is_some_and(|d| now >= d) {
                return Step::Ended(End::Duration);
            }
            self.warn_if_no_marker_yet();
            // Markers already read are sampled before looking for the exit: a program that
            // prints its last marker and exits is then still measurable.
            self.receive(Duration::ZERO);
            if let Some((at, snapshot)) = self.pending.pop_front() {
                self.pace.record(at);
                match self.sample(n, Some(snapshot)) {
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
                // Lines it wrote before it ended may still be on their way: with the heap
                // library each has its snapshot, so let them arrive (bounded by DRAIN).
                let exited = *self.exited_at.get_or_insert(now);
                let open = self
                    .started
                    .as_ref()
                    .is_some_and(|s| s.events.is_some() && s.open_streams > 0);
                let quiet_since = self.last_event.filter(|&t| t > exited).unwrap_or(exited);
                let left = (quiet_since + DRAIN)
                    .min(exited + MAX_DRAIN)
                    .saturating_duration_since(now);
                if self.marked() && open && !left.is_zero() {
                    self.receive(left.min(POLL));
                    continue;
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
        self.last_event = Some(Instant::now());
        for event in got {
            match event {
                Event::Closed => {
                    if let Some(s) = self.started.as_mut() {
                        s.open_streams = s.open_streams.saturating_sub(1);
                    }
                }
                Event::Marker(at, snapshot) => self.pending.push_back((at, snapshot)),
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

    /// A program whose output has not matched the marker after [`NO_MARKER_WARNING`] is said
    /// to, once, on stderr: a run that waits for a marker that never comes otherwise prints
    /// nothing until the program exits, if it ever does.
    fn warn_if_no_marker_yet(&mut self) {
        let Some(marker) = &self.program.marker else {
            return;
        };
        if self.warned_no_marker || self.pace.count() > 0 || self.t0.elapsed() < NO_MARKER_WARNING {
            return;
        }
        self.warned_no_marker = true;
        tracing::warn!(
            "no output line of the program has matched --marker '{}' in {} s: each \
             iteration must end with a line matching it, flushed (Python: print(..., \
             flush=True); C: fflush(stdout))",
            marker.as_str(),
            NO_MARKER_WARNING.as_secs()
        );
    }

    fn wait_error(&self, source: std::io::Error) -> ExternalError {
        ExternalError::Wait {
            program: self.program.name(),
            source,
        }
    }

    /// A sample of the process (tree), or `None` once it can no longer be measured. `line`
    /// is set for a marker line: the heap library's snapshot of it, if it has one. A
    /// program that already exited still gives the heap counters of its snapshot.
    fn sample(&mut self, iteration: u32, line: Option<Option<LineSnapshot>>) -> Option<Sample> {
        let read = self.probe.read();
        let first = !self.sampled;
        let alive = read.is_some();
        let heap = self.heap_fields(first, line, alive);
        let stats = match (read, heap) {
            (Some(stats), _) => stats,
            (None, Some(_)) => {
                self.heap_only += 1;
                ProcessStats::default()
            }
            (None, None) => return None,
        };
        let now = Instant::now();
        let mut sample = sample_of(
            stats,
            iteration,
            ms(now - self.t0),
            (!first).then(|| ms(now - self.last_time)),
            match (stats.cpu_ms, self.last_cpu_ms) {
                (Some(c), Some(prev)) if !first => Some((c - prev).max(0.0)),
                _ => None,
            },
        );
        if let Some(h) = heap {
            sample.heap_bytes = Some(h.live_bytes);
            sample.heap_blocks = Some(h.blocks);
            sample.heap_peak_bytes = h.peak;
            sample.allocated_bytes = h.allocated_bytes;
            sample.allocations = h.allocations;
        }
        // Look for children the samples leave out (a shell or launcher whose child does the
        // work): at the first sample, the 8th, 16th, 32nd and every 64th, which costs a read of
        // /proc each. (At the first, the 8th and every 64th only, a launcher whose child
        // started after the 8th sample, on a busy machine, was looked at waiting once in three
        // by the 64th: too few to tell it only waited.)
        let early = iteration >= 8 && iteration.is_power_of_two();
        if !self.program.include_children && (early || iteration.is_multiple_of(64)) {
            self.note_children();
        }
        // Reap what the program's tree orphaned and has ended since (this process adopts it,
        // see `child::adopted`): a program that double-forks a short-lived process per
        // request must not fill the process table with zombies over a long run.
        if iteration.is_multiple_of(16)
            && let Some(started) = &self.started
        {
            child::adopted(started);
        }
        if first {
            self.check_python_arenas();
        }
        // Every 8th sample (a read of the tree's maps): a `java` launcher loads the JVM's
        // library within its first milliseconds; a program may execute a JVM later, or start
        // one as a child (measured with --include-children) and see it end. What the last
        // look at a live program found counts: a JVM that ran for a while and ended explains
        // no later growth. (Heap samples read after the program exited look at nothing.)
        // The same look measures malloc's own regions (`super::arenas`), for the share of RSS
        // outside malloc.
        if alive && iteration.is_multiple_of(8) {
            let maps: Vec<Vec<u8>> = (self.probe.members().iter())
                .filter_map(|pid| std::fs::read(format!("/proc/{pid}/maps")).ok())
                .collect();
            self.jvm = maps.iter().any(|m| super::jvm::maps_name_a_jvm(m));
            let members = self.probe.members();
            let ranges: Vec<Vec<(u64, u64)>> = maps
                .iter()
                .map(|m| super::arenas::malloc_ranges(m))
                .collect();
            let mapped = ranges
                .iter()
                .flatten()
                .map(|(start, end)| end - start)
                .sum();
            // Their resident pages, for the pids whose maps were read (a member that ended
            // in between makes the look's unknown), within a budget of the run's time: the
            // kernel walks the regions' page tables (0.5 ms for 115 MiB of them, every 8th
            // sample of 2 ms iterations: 3% of the sampling thread's time, and ten times that
            // at ten times the heap). A look over budget reads their span only. (At 1%, the
            // debug build read too few looks in 80 iterations for the rule to use them.) The
            // cost is the thread's CPU time, not the wall clock's: beside two CPU burners, a
            // read kept waiting for the CPU went over budget, and too few looks were left
            // for the rule (a clean first-touch fill read as a leak in 2 debug runs of 8).
            let resident = (maps.len() == members.len()
                && self.resident_cost.as_secs_f64()
                    <= RESIDENT_BUDGET * self.t0.elapsed().as_secs_f64())
            .then(|| {
                let (started, wall) = (crate::probe::thread_cpu_ms(), Instant::now());
                let anon = || {
                    (members.iter())
                        .map(|&pid| crate::probe::anon_bytes(pid))
                        .sum::<Option<u64>>()
                };
                let before = anon();
                let resident = (members.iter().zip(&ranges))
                    .map(|(&pid, r)| super::arenas::resident(pid, r))
                    .sum::<Option<u64>>();
                let after = anon();
                self.resident_cost += match (started, crate::probe::thread_cpu_ms()) {
                    (Some(a), Some(b)) => Duration::from_secs_f64((b - a).max(0.0) / 1e3),
                    _ => wall.elapsed(),
                };
                // RSS without file pages read around the page map, not at the sample: a
                // program filling 400 KiB per iteration moves it by that much between the
                // two reads, more when the sampling thread waits for the CPU.
                Some((resident?, before?.midpoint(after?)))
            })
            .flatten();
            let (resident, anon) = match resident {
                Some((resident, anon)) => (Some(resident), Some(anon)),
                None => (
                    None,
                    (sample.rss_bytes.zip(sample.rss_file_bytes))
                        .map(|(rss, file)| rss.saturating_sub(file)),
                ),
            };
            self.malloc_regions.push(RegionsLook {
                iteration,
                mapped,
                resident,
                anon,
            });
        }
        self.sampled = true;
        self.last_time = now;
        if stats.cpu_ms.is_some() {
            self.last_cpu_ms = stats.cpu_ms;
        }
        Some(sample)
    }

    /// Whether the program, once running, undid the PYTHONMALLOC=malloc it was started with
    /// (`env PYTHONMALLOC=pymalloc python3`, `python3 -E`, a `#!...python3 -Es` line): its
    /// note then says so instead, and its heap cannot be called clean. A tester's program
    /// keeping 2 tuples an iteration under `python3 -E` passed as clean, exit 0, beside a
    /// note saying its objects were counted.
    fn check_python_arenas(&mut self) {
        if self.python_arenas.is_some()
            || !matches!(self.heap, HeapState::On(_))
            || !matches!(self.program.target, Target::Command(_))
        {
            return;
        }
        let Some(cause) = super::python::arenas_of(self.pid) else {
            return;
        };
        self.heap_notes
            .retain(|n| !n.starts_with("PYTHONMALLOC=malloc was set"));
        self.heap_notes.push(format!(
            "PYTHONMALLOC=malloc was set for this program, but it runs with {cause}: CPython \
             keeps its small objects in arenas the heap counters do not see one by one"
        ));
        self.python_arenas = Some(cause);
    }

    /// The heap fields of a sample: from a marker line's snapshot when the library recorded
    /// it, else the counters now. The first sample checks that the library attached.
    fn heap_fields(
        &mut self,
        first: bool,
        line: Option<Option<LineSnapshot>>,
        alive: bool,
    ) -> Option<HeapFields> {
        // Is the library counting in the program? At the first sample, and every 64th after: a
        // program may clear LD_PRELOAD and execute itself anew at any time. Also at a marker
        // line without a snapshot (at most every 8th sample): an image without the library
        // writes none, and the counters left are the old image's, frozen. A C program that
        // did so after 3 lines, then leaked 4 KiB per iteration, read as clean at 20.
        let unsnapped = matches!(line, Some(None)) && self.samples_seen.is_multiple_of(8);
        let check = match &self.heap {
            HeapState::Injected(heap) => Some((Arc::clone(heap), true)),
            HeapState::On(heap) if alive && (self.samples_seen.is_multiple_of(64) || unsnapped) => {
                Some((Arc::clone(heap), false))
            }
            _ => None,
        };
        self.samples_seen += 1;
        if let Some((heap, first_look)) = check {
            // An ended program's maps are empty: only a live one is looked at.
            let attached = (!first_look || heap.attached(self.pid))
                && (!alive || heap.counting_in(self.pid) != Some(false));
            self.heap = if attached {
                HeapState::On(heap)
            } else {
                HeapState::Off(
                    "heap counters are missing: the heap library is not counting in the \
                     program (it executed itself anew without LD_PRELOAD or \
                     MEMCREEP_HEAP_FILE, or its loader refused the library); RSS is the \
                     memory signal"
                        .to_string(),
                )
            };
        }
        let HeapState::On(heap) = &self.heap else {
            return None;
        };
        let members = self.probe.members();
        let (live_bytes, blocks, allocated, allocations, peak) = match line.flatten() {
            Some(s) => {
                self.paired += 1;
                // Other processes measured with it (--include-children): as they are now.
                let others: Vec<u32> = members.iter().copied().filter(|&p| p != s.pid).collect();
                let o = if others.is_empty() || !alive {
                    Default::default()
                } else {
                    heap.totals(&others)
                };
                let window = self
                    .last_epoch
                    .and_then(|prev| heap.peak_between(prev, s.epoch));
                self.last_epoch = Some(s.epoch);
                (
                    s.live_bytes + o.live_bytes,
                    s.blocks + o.blocks,
                    s.allocated_bytes + o.allocated_bytes,
                    s.allocations + o.allocations,
                    window.unwrap_or(s.live_bytes).max(s.live_bytes) + o.live_bytes,
                )
            }
            None => {
                if !alive {
                    return None;
                }
                if line.is_some() {
                    self.read_live += 1;
                }
                let t = if self.marked() {
                    heap.totals(members)
                } else {
                    heap.take_window(members)
                };
                (
                    t.live_bytes,
                    t.blocks,
                    t.allocated_bytes,
                    t.allocations,
                    t.peak,
                )
            }
        };
        // With its children: what every process that counted allocated, the ones that exited
        // since the last sample included (a fork server's children, each living for one
        // request, read "0 B allocated per iteration" beside 900 KB of their churn). A line's
        // snapshot holds the tree's as it was written; a line read live, the tree's now.
        let (allocated, allocations) = match (self.program.include_children, line.flatten()) {
            (true, Some(s)) => (s.allocated_bytes, s.allocations),
            (true, None) => heap.cumulative(),
            (false, _) => (allocated, allocations),
        };
        // After the heap is read, so that the sample's numbers stay together in time.
        if self.program.include_children && alive {
            self.uncounted
                .look(heap, self.probe.members(), self.pid, Instant::now());
        }
        let last = self.last_cumulative.replace((allocated, allocations));
        let delta = |now: i64, before: Option<i64>| before.map(|b| (now - b).max(0));
        Some(HeapFields {
            live_bytes,
            blocks,
            peak: (!first).then_some(peak),
            allocated_bytes: if first {
                None
            } else {
                delta(allocated, last.map(|l| l.0))
            },
            allocations: if first {
                None
            } else {
                delta(allocations, last.map(|l| l.1))
            },
        })
    }

    /// Settle the run's heap after its iterations: its scope, and no heap fields at all for a
    /// program that made no malloc call while it was sampled (its runtime allocates some
    /// other way, so the counters saw nothing they could judge).
    fn settle_heap(&mut self, run: &mut Run) {
        run.heap_scope = match self.heap {
            HeapState::On(_) => HeapScope::Program,
            _ => HeapScope::None,
        };
        let allocations: i64 = run.samples.iter().filter_map(|s| s.allocations).sum();
        let idle =
            run.heap_scope == HeapScope::Program && run.samples.len() >= 3 && allocations == 0;
        // Off after some samples had heap fields (the library left the program): none at all.
        let dropped =
            run.heap_scope == HeapScope::None && run.samples.iter().any(|s| s.heap_bytes.is_some());
        if !idle && !dropped {
            return;
        }
        for s in &mut run.samples {
            s.heap_bytes = None;
            s.heap_blocks = None;
            s.heap_peak_bytes = None;
            s.allocated_bytes = None;
            s.allocations = None;
        }
        for s in &mut run.interval_samples {
            s.heap_bytes = None;
        }
        run.metrics.remove(&Metric::HeapBytes);
        run.metrics.remove(&Metric::HeapBlocks);
        run.heap_scope = HeapScope::None;
        if dropped {
            return;
        }
        self.heap = HeapState::Off(
            "heap counters are missing: the program made no malloc call while it was sampled \
             (it was idle, allocated all it needed before, or its runtime allocates some other \
             way: Go, the JVM's heap, a statically linked jemalloc or mimalloc); RSS is the \
             memory signal"
                .to_string(),
        );
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
            && let Some(s) = self.sample(0, None)
        {
            return Step::Sample(s);
        }
        self.boundary_of(0, between)
    }

    fn next(&mut self, n: u32, between: &mut Thinned<IntervalSample>) -> Step {
        self.boundary_of(n, between)
    }

    /// At every checkpoint, not only at the end: an RSS leak that malloc's regions explain
    /// is inconclusive, so the run goes on (a heap leak a cache still filling hides shows
    /// later; RSS that filled settles), instead of stopping at a leak it then takes back.
    /// (Applied after the run settled its unconfirmed leaks, it took back an RSS leak that a
    /// heap leak, unconfirmed, had explained: a 4 KiB-per-iteration leak passed, exit 0.)
    /// Not where a process of the tree goes uncounted (`--include-children`: a static or
    /// setuid child): its malloc grows the regions with no counter to say so.
    fn review(&self, metrics: &mut BTreeMap<Metric, MetricReport>) {
        if !self.uncounted.any() {
            notes::no_leak_from_mallocs_regions(metrics, &self.malloc_regions);
        }
    }

    /// Stop a started program that is still running (never an attached one), then let its
    /// remaining output through.
    fn stop(&mut self, _between: &mut Thinned<IntervalSample>) {
        let grace = self.program.grace;
        let pid = self.pid;
        if self.started.is_none() {
            return;
        }
        // Lines drained after the profiler stopped the program were written before it was
        // stopped, faster than they were read: not lines of a process it could not measure.
        // (One that exited by itself after its last sampled line, not looked at since, did
        // not wait to be stopped: lines after that are a descendant's.)
        if self.exit.is_none() {
            let _ = self.ended();
        }
        let stopped_here = self.exit.is_none();
        // Only while the program runs: once it exited, its pid names no tree (and may name
        // another process), and what was found uncounted must stay found.
        if let (true, true, HeapState::On(heap)) =
            (stopped_here, self.program.include_children, &self.heap)
        {
            // The live ones, as a sample sums them: a zombie kept nothing.
            let live = || {
                let mut members = tree::descendants(pid);
                members.retain(|&p| tree::state(p) == State::Alive);
                members
            };
            self.uncounted.last_look(heap, live, pid);
        }
        // One whose exit is already under way (not yet reapable, flagged exiting) ended by
        // itself too: a SIGTERM now finds it past signals, and it exits with its own code.
        self.exited_first = !stopped_here || tree::state(pid) == State::Ending;
        let Some(started) = self.started.as_mut() else {
            return;
        };
        if stopped_here {
            // The program's descendants too, summed into the samples or not: stopping
            // `sh -c 'python3 grow.py'` must not leave grow.py running after the run. And
            // what left its tree while it ran (a double fork, a background job whose parent
            // ended), adopted by this process.
            let mut also = tree::descendants(pid);
            also.extend(child::adopted(started));
            let stopped = child::stop(&mut started.child, &also, grace);
            // Reaps what ended of the adopted.
            child::adopted(started);
            match stopped {
                Ok(status) => self.exit = Some(child::exit_of(status)),
                Err(source) => {
                    self.error = Some(self.wait_error(source));
                    return;
                }
            }
        } else {
            // It exited on its own: what it left running is named, not stopped (a daemon
            // is meant to outlive its starter).
            self.left_running = child::adopted(started)
                .into_iter()
                .take(3)
                .map(|child| (child, tree::name(child)))
                .collect();
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
                Ok(Event::Marker(..)) if !stopped_here => self.unsampled += 1,
                Ok(Event::Marker(..)) => {}
                Err(_) => break,
            }
        }
        // Join the readers that are done: both once both said so (joining them does not wait),
        // else those already ended; one a descendant keeps reading is left to it.
        if let Some(s) = self.started.as_mut() {
            let all_closed = s.open_streams == 0;
            let (done, reading): (Vec<_>, Vec<_>) =
                (s.pumps.drain(..)).partition(|h| all_closed || h.is_finished());
            s.pumps = reading;
            for h in done {
                let _ = h.join();
            }
        }
    }

    fn finish(&mut self, run: &mut Run, ending: Ending) {
        // A program that had exited by itself when the run reached its iterations ended by
        // itself: "stopped by profile after 20 marked iterations; it exited with code 0" said
        // both of a fast program that wrote its 3,000 lines before the 20th was read. As any
        // program's own end, a non-zero exit is then a failure.
        let end = match ending.end {
            End::Iterations if self.exited_first => End::Exited,
            end => end,
        };
        self.settle_heap(run);
        self.no_clean_from_bunched_samples(run);
        self.no_clean_where_unseen(run);
        if self.jvm {
            notes::no_leak_from_a_jvms_rss(run);
        }
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
            marker_lines: self.program.marker.as_ref().map(|_| self.pace.count()),
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
    // Heap fields are filled in by the caller when the preload library counts them.
    Sample {
        iteration,
        span: 1,
        elapsed_ms,
        rss_bytes: stats.rss_bytes,
        rss_file_bytes: stats.rss_file_bytes,
        vsize_bytes: stats.vsize_bytes,
        fds: stats.fds,
        threads: stats.threads,
        duration_ms,
        cpu_ms,
        ..Sample::default()
    }
}
