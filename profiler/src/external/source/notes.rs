// Owns what a program's report says about how it was measured: notes on markers, heap
// counters, children, and what samples taken in a burst cannot show. Never samples anything.

use super::{HeapState, ProgramSource, RegionsLook};
use crate::external::Target;
use crate::external::tree;
use crate::model::{End, MetricReport, Run, Verdict};
use crate::sample::{Metric, ms};
use std::collections::BTreeMap;

impl ProgramSource {
    /// Samples taken together show no growth between them: where most marker lines came in
    /// bursts, what is read at the moment of sampling (RSS, fds, threads) cannot be called
    /// clean. (Heap counters from the lines' own snapshots are exact and keep their verdict.)
    pub(super) fn no_clean_from_bunched_samples(&self, run: &mut Run) {
        if self.pace.bunched().is_none() {
            return;
        }
        for metric in [Metric::RssBytes, Metric::Fds, Metric::Threads] {
            if let Some(m) = run.metrics.get_mut(&metric)
                && m.verdict == Verdict::Clean
            {
                m.verdict = Verdict::Inconclusive;
                m.reason = format!(
                    "{}; but most samples were taken within 2 ms of the previous one, which \
                     shows no growth between them: not clean",
                    m.reason
                );
            }
        }
    }

    /// No clean verdict from what could not be seen:
    /// - a Python program run with its own PYTHONMALLOC (or `-E`, `-I`, which ignore the one
    ///   profile set): a leak of small objects stays in
    ///   CPython's arenas, which the heap counters see only as they grow by 256 KiB (a
    ///   tester's 1.3 KiB per iteration of strings read as clean, exit 0);
    /// - a program with an allocator of its own linked in (mimalloc, jemalloc): the heap
    ///   counters see only its calls to libc's malloc (a Rust program leaking 1 KB an
    ///   iteration through mimalloc, resolving a hostname each iteration, read as clean);
    /// - most marker lines written when the program could no longer be measured (a program
    ///   that daemonises: its parent exits after 9 iterations, the child writes 300 more
    ///   lines and leaks 1 KiB each; clean, exit 0).
    pub(super) fn no_clean_where_unseen(&self, run: &mut Run) {
        let mut unseen: Vec<(&[Metric], String)> = Vec::new();
        if let (Some(cause), HeapState::On(_)) = (&self.python_arenas, &self.heap) {
            unseen.push((
                &[Metric::HeapBytes, Metric::HeapBlocks],
                format!(
                    "but the program runs with {cause}, which keeps CPython's small objects in \
                     arenas the heap counters do not see one by one, so a leak of them reads as \
                     this: not clean (PYTHONMALLOC=malloc counts them)"
                ),
            ));
        }
        if let (Some(name), HeapState::On(_)) = (self.own_allocator, &self.heap) {
            unseen.push((
                &[Metric::HeapBytes, Metric::HeapBlocks],
                format!(
                    "but the heap counters do not see what the program's own allocator \
                     ({name}) allocates, so a leak there reads as this: not clean"
                ),
            ));
        }
        if let (Some(outside), HeapState::On(_)) = (
            outside_malloc(run, self.malloc_regions.last().map(|look| look.mapped)),
            &self.heap,
        ) {
            unseen.push((
                &[Metric::HeapBytes, Metric::HeapBlocks],
                format!("but {outside}, so a leak there reads as this: not clean"),
            ));
        }
        if let Some(uncounted) = self.uncounted_heap() {
            unseen.push((
                &[Metric::HeapBytes, Metric::HeapBlocks],
                format!("but {uncounted}, so a leak there reads as this: not clean"),
            ));
        }
        if self.unsampled > run.iterations {
            // A fast program that wrote all its lines and exited before they were read left
            // no one else to write them: not a child's lines (as a note once said of a
            // program that had none).
            let who = if self.exited_first
                && self.left_running.is_empty()
                && self.unmeasured_children.is_empty()
            {
                "it had written them faster than they were read, and exited"
            } else {
                "another process went on writing them, e.g. a child it left running: \
                 --include-children follows descendants"
            };
            unseen.push((
                &Metric::ALL,
                format!(
                    "but {} of {} marker lines came when the program could no longer be \
                     measured ({who}): not clean",
                    self.unsampled,
                    u64::from(self.unsampled) + u64::from(run.iterations)
                ),
            ));
        }
        if let Some(why) = self.idle_beside_children(run) {
            unseen.push((&Metric::ALL, why));
        }
        for (metrics, why) in unseen {
            for metric in metrics {
                if let Some(m) = run.metrics.get_mut(metric)
                    && m.verdict == Verdict::Clean
                {
                    m.verdict = Verdict::Inconclusive;
                    m.reason = format!("{}; {why}", m.reason);
                }
            }
        }
    }

    /// Without --include-children, a program that only waited while a child of its own ran
    /// through the run (a shell running `./server; true`, a launcher): its numbers are the
    /// waiting's, the work and any leak are in the child. A leak of 100 B an iteration behind
    /// `sh -c './leak 3000 100; true'` read as clean, exit 0, 4 of 4. Waiting: blocked in
    /// `waitpid` at most of the checks for children, and CPU time under 2% of the run's wall
    /// time (a light program that sleeps between iterations beside a helper it keeps, or
    /// zombies it has not reaped, is not waiting for them).
    fn idle_beside_children(&self, run: &Run) -> Option<String> {
        if self.program.include_children || 2 * self.waiting_checks <= self.children_checks {
            return None;
        }
        // The same child at two checks or more: a shell loop's `sleep`s, one per iteration,
        // are no process that did the work.
        let Unmeasured { pid, name, .. } = self
            .unmeasured_children
            .iter()
            .find(|u| u.last_check > u.first_check)?;
        // After the warm-up: a Python launcher's own start-up took 50 ms of CPU, 2.5% of a
        // 2 s run, before it settled into waiting.
        let warmup = run.metrics.values().map(|m| m.warmup).max().unwrap_or(0);
        let tail = &run.samples[run.warmup_index(warmup).min(run.samples.len() - 1)..];
        let cpu_ms: f64 = tail.iter().skip(1).filter_map(|s| s.cpu_ms).sum();
        let (first, last) = (tail.first()?, tail.last()?);
        let wall_ms = last.elapsed_ms - first.elapsed_ms;
        let measured = tail.iter().skip(1).any(|s| s.cpu_ms.is_some());
        if !measured || wall_ms <= 0.0 || cpu_ms > 0.02 * wall_ms {
            return None;
        }
        let child = match name {
            Some(name) => format!("{name} (pid {pid})"),
            None => format!("pid {pid}"),
        };
        Some(format!(
            "but the program was idle (CPU {} over {}) while its child {child} ran: the work, \
             and any leak, is in a process not measured (--include-children measures it): \
             not clean",
            crate::format::format_ms(cpu_ms),
            crate::format::format_ms(wall_ms)
        ))
    }

    /// With --include-children, the processes of the tree the heap library did not count and
    /// that were still running at the end, as a clause ("the heap library did not count
    /// <who> ..."). One that exited took whatever it kept with it.
    fn uncounted_heap(&self) -> Option<String> {
        let HeapState::On(_) = &self.heap else {
            return None;
        };
        let (who, n) = self.uncounted.present()?;
        let (it, its) = if n == 1 {
            ("it", "its")
        } else {
            ("them", "their")
        };
        Some(format!(
            "the heap library did not count {who} of the measured tree (a statically linked \
             or setuid program, one started with LD_PRELOAD or the profiler's variables \
             removed from {its} environment, one whose loader refused the library, or one \
             started once the library's slots ran out): RSS, fds and threads include {it}, the \
             heap numbers do not"
        ))
    }

    /// Remember the program's live descendants (at most a few), which are not measured.
    pub(super) fn note_children(&mut self) {
        self.children_checks += 1;
        if tree::waits_for_a_child(self.pid) {
            self.waiting_checks += 1;
        }
        let check = self.children_checks;
        for child in tree::descendants(self.pid).into_iter().take(8) {
            let known = &mut self.unmeasured_children;
            if let Some(seen) = known.iter_mut().find(|u| u.pid == child) {
                seen.last_check = check;
            } else if known.len() < 8 {
                known.push(Unmeasured {
                    pid: child,
                    name: tree::name(child),
                    first_check: check,
                    last_check: check,
                });
            }
        }
    }

    /// The descendants worth a note, at most 3: those found by two checks or more, or by the
    /// last one. A helper that ran for an instant of the start-up and was gone at the next
    /// check (a pyenv shim's version lookups) does the program's work nowhere.
    fn lasting_children(&self) -> Vec<(u32, Option<String>)> {
        (self.unmeasured_children.iter())
            .filter(|u| u.last_check > u.first_check || u.last_check == self.children_checks)
            .take(3)
            .map(|u| (u.pid, u.name.clone()))
            .collect()
    }

    /// Notes on how the program was measured, for the report.
    pub(super) fn notes(&self, run: &Run, end: End) -> Vec<String> {
        let mut notes = Vec::new();
        match &self.heap {
            HeapState::Off(why) => notes.push(why.clone()),
            HeapState::On(heap) => {
                notes.extend(self.heap_notes.iter().cloned());
                if heap.flags() & preload::layout::FLAG_OUT_OF_SLOTS != 0 {
                    notes.push(format!(
                        "the program ran more than {} threads (with --include-children, \
                         threads and processes) at once: later threads were counted together \
                         in one slot (totals stay exact, the peak is looser), later processes \
                         not at all",
                        preload::layout::SLOTS
                    ));
                }
                if let Some(uncounted) = self.uncounted_heap() {
                    notes.push(uncounted);
                }
                if self.uncounted.gone() > 0 {
                    notes.push(format!(
                        "{} process(es) of the measured tree ran without the heap library \
                         counting them, then exited: what they held ended with them",
                        self.uncounted.gone()
                    ));
                }
                if self.marked() && self.read_live > 0 {
                    notes.push(format!(
                        "{} of {} marker lines had no heap snapshot (written by another \
                         process, or through C stdio without fflush): their heap counters were \
                         read when the profiler got to them",
                        self.read_live,
                        self.read_live + self.paired
                    ));
                }
                if self.heap_only > 0 {
                    notes.push(format!(
                        "the program had ended when {} marker line(s) were read: their heap \
                         counters are its state when it wrote them; RSS, fds and threads, \
                         which those samples lack, are judged on the samples before them when \
                         those are at least half of the run, and not judged otherwise",
                        self.heap_only
                    ));
                }
            }
            HeapState::Absent | HeapState::Injected(_) => {}
        }
        notes.extend(self.allocator_note.iter().cloned());
        let lasting = self.lasting_children();
        if !lasting.is_empty() {
            let children: Vec<String> = lasting.iter().map(named).collect();
            notes.push(format!(
                "pid {} has child processes that these samples do not include: {}; if the work \
                 happens there, add --include-children to sum them",
                self.pid,
                children.join(", ")
            ));
        }
        if !self.left_running.is_empty() {
            let left: Vec<String> = self.left_running.iter().map(named).collect();
            let first = self.left_running[0].0;
            let whose = if self.program.include_children {
                "these samples include them (--include-children) only until the program exited"
            } else {
                "these samples are the program's alone"
            };
            notes.push(format!(
                "the program exited and left running what it started: {}; {whose}. If it \
                 daemonized, run it in the foreground, or sample that process with --pid \
                 {first}",
                left.join(", ")
            ));
        }
        if let Some(marker) = &self.program.marker {
            match self.pace.count() {
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
                if self.paired > 0 && self.read_live == 0 {
                    notes.push(format!(
                        "{note}; the heap counters are exact all the same (the program's \
                         state when it wrote each line), RSS, fds and threads are not"
                    ));
                } else {
                    notes.push(note);
                }
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

/// A descendant of the program that its samples leave out, and the checks that found it.
pub(super) struct Unmeasured {
    pid: u32,
    name: Option<String>,
    first_check: u32,
    last_check: u32,
}

/// "name (pid N)", or "pid N" without a name.
pub(crate) fn named((pid, name): &(u32, Option<String>)) -> String {
    match name {
        Some(name) => format!("{name} (pid {pid})"),
        None => format!("pid {pid}"),
    }
}

/// Most of the program's memory outside what malloc handed out, as a clause: a managed
/// runtime's heap (the JVM's, V8's), Go's, or the program's own mmap. A Java program keeping
/// 256 KiB per iteration in a list read "heap clean" (its malloc calls are the JVM's own),
/// its RSS clean too on a pre-touched heap, and the run passed. At the run's last sample,
/// RSS without file pages minus malloc's share must be at least [`OUTSIDE_MALLOC_FLOOR`] and
/// at least that share: a C program keeps ~0.5 MiB outside malloc (stack, libc), CPython
/// 2 MiB, Node.js 4-7 MiB beside a 2.5 MiB counted heap, a JVM 40-1000 MiB beside 10-35 MiB.
/// Malloc's share is the highest counted heap, or what malloc's own regions span if more
/// (`regions`, [`super::super::arenas`]): freed memory kept in glibc's per-thread arenas is
/// malloc's too (a tokio service with a 1.2 MiB heap kept 5.4 MiB in them).
fn outside_malloc(run: &Run, regions: Option<u64>) -> Option<String> {
    let last = run
        .samples
        .iter()
        .rev()
        .find(|s| s.rss_bytes.is_some() && s.heap_bytes.is_some())?;
    // Without the file pages (RssFile, Linux 4.5 on) a program's code and libraries would
    // count as outside malloc: nothing is said.
    let anon = last.rss_bytes? as i64 - last.rss_file_bytes? as i64;
    let counted = run
        .samples
        .iter()
        .filter_map(|s| s.heap_peak_bytes.or(s.heap_bytes))
        .max()?
        .max(0);
    let regions = regions.map_or(0, |r| i64::try_from(r).unwrap_or(i64::MAX));
    let mallocs = counted.max(regions);
    let outside = anon - mallocs;
    (outside >= OUTSIDE_MALLOC_FLOOR && outside >= mallocs).then(|| {
        let share = if regions > counted {
            format!(
                "malloc's own regions: {}, the heap counters' highest: {}",
                crate::format::format_bytes(regions as f64),
                crate::format::format_bytes(counted as f64)
            )
        } else {
            format!(
                "the heap counters' highest: {}",
                crate::format::format_bytes(counted as f64)
            )
        };
        format!(
            "{} of the program's {} of RSS (without file pages) is memory malloc did not hand \
             out ({share}): a garbage-collected runtime's heap (the JVM's, V8's, Go's) or the \
             program's own mmap, which only RSS sees",
            crate::format::format_bytes(outside as f64),
            crate::format::format_bytes(anon as f64),
        )
    })
}

/// The memory outside malloc that makes a clean heap verdict not clean ([`outside_malloc`]).
const OUTSIDE_MALLOC_FLOOR: i64 = 4 << 20;

/// A JVM's RSS leak that its malloc'd heap does not explain (the heap counters, where there
/// are any, grew less than half as fast): inconclusive, saying why. A JVM keeping nothing
/// grows its RSS while its collector uses more of the heap it reserved (G1's young generation,
/// up to `-Xmx`): a clean program allocating 1 MiB per iteration was an RSS leak of ~0.9 MiB
/// per iteration over 320 iterations, exit 1, in 3 runs of 3 beside two CPU burners (see
/// [`crate::external::jvm`]). A leak in the Java heap looks the same in RSS, so neither is
/// called. Native memory it keeps through malloc (direct buffers) grows the heap counters
/// too, and stays a leak.
pub(super) fn no_leak_from_a_jvms_rss(run: &mut Run) {
    // Slopes, not growths: each metric's growth runs from its own warm-up, and heap samples
    // may go on after the program exited (RSS's do not).
    let heap_slope = run
        .metrics
        .get(&Metric::HeapBytes)
        .map(|m| m.slope().unwrap_or(0.0));
    let Some(rss) = run.metrics.get_mut(&Metric::RssBytes) else {
        return;
    };
    let rss_slope = rss.slope().unwrap_or(0.0);
    if rss.verdict != Verdict::Leak || heap_slope.is_some_and(|h| h >= 0.5 * rss_slope) {
        return;
    }
    let counters = if heap_slope.is_some() {
        ", and the heap counters (its malloc calls) did not grow with it"
    } else {
        ""
    };
    rss.verdict = Verdict::Inconclusive;
    rss.reason = format!(
        "{}; but the program runs a Java virtual machine, whose RSS also grows while its \
         collector uses more of the heap it reserved (up to -Xmx) with nothing kept{counters}: \
         a leak in the Java heap reads as this too, not a leak by RSS alone (with a bounded \
         heap, -Xmx, a leak ends in OutOfMemoryError; the JVM's own view: jcmd PID \
         GC.heap_info)",
        rss.reason
    );
}

/// An RSS leak of a program whose heap counters did not grow with it (heap bytes grew less
/// than half as fast, or by less than half as much; a leak they show at that rate is theirs
/// to judge and confirm, and gates by itself), when malloc's own regions (`looks`, every 8th
/// sample: [`super::super::arenas`]) grew with it: at most a quarter of RSS's growth over its
/// tail, and at most 256 KiB, lies outside them. That is malloc's behaviour, not memory the
/// program holds, which the exact counters would show: inconclusive, saying why. Where the
/// page map was read at 3 looks of the tail or more, the regions' resident pages are compared
/// (the RSS outside them at those looks: its Theil-Sen slope over the tail, to the run's end);
/// else their span. Two ways malloc's pages grow under a flat heap:
///
/// - Pages kept after frees: each glibc thread arena keeps its own high-water mark, which
///   rises now and then as the work falls unevenly on the threads. A tokio service on glibc
///   (4 workers, a flat heap) grew its RSS 0.5-1.2 MiB in steps of 60-120 KiB, a leak (exit
///   1) in 3 runs of 40; RSS without file pages followed its arenas within ~150 KiB.
/// - Pages touched for the first time: glibc hands out blocks on pages nobody wrote yet, and
///   a program that writes only the start of its buffers (512 B of blocks up to 64 KiB)
///   touches more of them as blocks land at new offsets. A C service churning a 70 MiB table
///   that way grew its RSS from 17 to 97 MiB over 1,300 iterations, all of it in the
///   arenas' resident pages (outside them 0.2 MiB throughout), within a span that did not
///   move: a leak (exit 1) in 3 runs of 3 at 20 iterations.
///
/// Memory outside malloc (the program's own mmap, a managed heap, an allocator linked in)
/// is outside the regions and stays a leak; a leak through malloc grows the counters as fast
/// as RSS, and stays one.
pub(super) fn no_leak_from_mallocs_regions(
    metrics: &mut BTreeMap<Metric, MetricReport>,
    looks: &[RegionsLook],
) {
    // Without heap counters nothing tells malloc's pages from the program's. A heap leak
    // slower than half of RSS's growth explains little of it: a C service filling malloc's
    // pages for the first time grew RSS 350 KiB per iteration while its heap bytes leaked
    // 9.4 KiB per iteration at one checkpoint (never confirmed), and with RSS held as a leak
    // for that, the run failed (exit 1) in 2 of 6 debug runs beside two CPU burners. A real
    // malloc leak beside such a fill is confirmed by the heap counters themselves.
    let heap = [Metric::HeapBytes, Metric::HeapBlocks].map(|k| metrics.get(&k));
    if heap.iter().any(Option::is_none) {
        return;
    }
    let heap_leaks = heap.iter().flatten().any(|m| m.verdict == Verdict::Leak);
    let (heap_slope, heap_growth) =
        heap[0].map_or((0.0, 0.0), |m| (m.slope().unwrap_or(0.0), m.growth));
    let Some(rss) = metrics.get_mut(&Metric::RssBytes) else {
        return;
    };
    // As fast by its slope and by what it grew: RSS's slope may be the amortised rate of
    // steps it was read as (a fill read as containers doubling: 16 KiB per iteration where
    // it grew 25 MiB over 64 iterations, beside heap bytes drifting 9.7 KiB per iteration).
    let rss_slope = rss.slope().unwrap_or(0.0);
    let explained = heap_slope >= 0.5 * rss_slope && heap_growth >= 0.5 * rss.growth;
    if explained || rss.verdict != Verdict::Leak {
        return;
    }
    if rss.growth <= 0.0 {
        return;
    }
    // From the last look at or before the tail's start (else the first) to the last look.
    let start = looks
        .iter()
        .rposition(|look| look.iteration <= rss.warmup)
        .unwrap_or(0);
    let tail = &looks[start.min(looks.len())..];
    let (Some(before), Some(after)) = (tail.first(), tail.last()) else {
        return;
    };
    // The looks that read the resident pages (within their budget: see `RESIDENT_BUDGET`):
    // (iteration, resident, RSS outside them).
    let series: Vec<(f64, f64, f64)> = tail
        .iter()
        .filter_map(|l| {
            let (resident, anon) = (l.resident? as f64, l.anon? as f64);
            Some((f64::from(l.iteration), resident, anon - resident))
        })
        .collect();
    let (grew, outside, measure) = match series.as_slice() {
        [first, .., last] if series.len() >= 3 => {
            // The outside's Theil-Sen slope over the tail, to the run's end (up to 8 samples
            // after the last look): robust to one look that read RSS mid-burst, and a steady
            // leak outside counts whole.
            let x: Vec<f64> = series.iter().map(|s| s.0).collect();
            let y: Vec<f64> = series.iter().map(|s| s.2).collect();
            let slope = crate::stats::theil_sen(&x, &y, 0.0).map_or(0.0, |s| s.slope);
            let span = last.0 - f64::from(rss.warmup).min(first.0) + 8.0;
            (last.1 - first.1, slope * span, "resident")
        }
        _ => {
            let regions = after.mapped as f64 - before.mapped as f64;
            (regions, rss.growth - regions, "mapped")
        }
    };
    if outside > (0.25 * rss.growth).min(256.0 * 1024.0) {
        return;
    }
    rss.verdict = Verdict::Inconclusive;
    rss.reason = format!(
        "{}; but it grew in malloc's own regions (glibc's heap and per-thread arenas: {} more \
         of them {} meanwhile, {} outside them) while the heap counters did not{}: pages of \
         blocks malloc handed out, touched for the first time or kept after frees, not \
         memory the program holds, so not a leak by RSS alone",
        rss.reason,
        crate::format::format_bytes(grew),
        measure,
        crate::format::format_bytes(outside.max(0.0)),
        if heap_leaks {
            " (their own leak, less than half as fast, is theirs to judge)"
        } else {
            ""
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::HeapScope;
    use crate::sample::Sample;

    fn run_with(anon_mib: u64, heap_mib: i64) -> Run {
        let mut run = Run::new("program", HeapScope::Program);
        run.samples = (0..3)
            .map(|i| Sample {
                iteration: i,
                heap_bytes: Some(heap_mib << 20),
                heap_peak_bytes: Some(heap_mib << 20),
                rss_bytes: Some((anon_mib + 30) << 20),
                rss_file_bytes: Some(30 << 20),
                ..Sample::default()
            })
            .collect();
        run
    }

    /// A JVM (42.5 MiB outside malloc beside a 19 MiB heap) is said; a C program's half
    /// MiB, CPython's 2 MiB, a heap that holds most of the memory, or memory in malloc's own
    /// regions (glibc's arenas keeping what threads freed) are not.
    #[test]
    fn memory_outside_malloc_is_said_when_it_is_most_of_the_program() {
        let jvm = outside_malloc(&run_with(65, 19), None).expect("the JVM's heap");
        assert!(
            jvm.starts_with("46.0 MiB of the program's 65.0 MiB of RSS"),
            "{jvm}"
        );
        assert!(jvm.contains("highest: 19.0 MiB"), "{jvm}");
        assert!(outside_malloc(&run_with(7, 5), None).is_none());
        assert!(outside_malloc(&run_with(1, 0), None).is_none());
        assert!(outside_malloc(&run_with(300, 200), None).is_none());
        // A tokio service on glibc: 5.4 MiB of arenas beside a heap of 1 MiB at its highest.
        let arenas = Some(5 << 20);
        assert!(outside_malloc(&run_with(6, 1), None).is_some());
        assert!(outside_malloc(&run_with(6, 1), arenas).is_none());
        // The JVM's heap is outside them all the same.
        let jvm = outside_malloc(&run_with(65, 19), Some(24 << 20)).expect("the JVM's heap");
        assert!(
            jvm.contains("41.0 MiB of the program's 65.0 MiB of RSS")
                && jvm.contains("malloc's own regions: 24.0 MiB"),
            "{jvm}"
        );
        // Without RSS, nothing is said.
        let mut unknown = run_with(65, 19);
        unknown.samples.iter_mut().for_each(|s| s.rss_bytes = None);
        assert!(outside_malloc(&unknown, None).is_none());
        // Nor without RSS's file pages, which would count the program's code as outside.
        let mut files_unknown = run_with(65, 19);
        files_unknown
            .samples
            .iter_mut()
            .for_each(|s| s.rss_file_bytes = None);
        assert!(outside_malloc(&files_unknown, None).is_none());
    }

    fn metric(verdict: Verdict, growth: f64) -> crate::model::MetricReport {
        crate::model::MetricReport {
            verdict,
            gating: true,
            slope_per_iteration: Some(growth / 100.0),
            slope_per_second: None,
            ci: None,
            warmup: 0,
            p_value: None,
            shape: crate::model::Shape::default(),
            after_warmup: 0.0,
            end: growth,
            growth,
            reason: "grows".to_string(),
            confirmed_within: false,
        }
    }

    /// Looks at malloc's regions that read their span only (the page map unreadable).
    fn spans(looks: &[(u32, u64)]) -> Vec<RegionsLook> {
        looks
            .iter()
            .map(|&(iteration, mapped)| RegionsLook {
                iteration,
                mapped,
                resident: None,
                anon: None,
            })
            .collect()
    }

    /// `rss` judged beside heap metrics of `heap` (flat), after [`no_leak_from_mallocs_regions`]
    /// with `looks`; the RSS leak's tail starts at 32.
    fn judged_with_regions(heap: Verdict, rss_growth: f64, looks: &[RegionsLook]) -> MetricReport {
        let mut run = Run::new("server", HeapScope::Program);
        for k in [Metric::HeapBytes, Metric::HeapBlocks] {
            run.metrics.insert(k, metric(heap, 0.0));
        }
        let mut rss = metric(Verdict::Leak, rss_growth);
        rss.warmup = 32;
        run.metrics.insert(Metric::RssBytes, rss);
        no_leak_from_mallocs_regions(&mut run.metrics, looks);
        run.metrics.remove(&Metric::RssBytes).unwrap()
    }

    /// An RSS leak that malloc's regions grew with, the heap counters flat, is inconclusive;
    /// growth outside them, or a heap that grew with it, stays a leak.
    #[test]
    fn rss_growth_in_mallocs_own_regions_is_no_leak_while_the_heap_is_clean() {
        const KIB: f64 = 1024.0;
        let judge = |heap, rss_growth, looks: &[(u32, u64)]| {
            judged_with_regions(heap, rss_growth, &spans(looks))
        };
        let mib = |m: f64| (m * 1024.0 * KIB) as u64;
        // The tokio service: RSS +1.1 MiB, its arenas +1.1 MiB from the look at 32 on.
        let arenas = [
            (0, mib(3.8)),
            (24, mib(4.5)),
            (32, mib(4.6)),
            (160, mib(5.7)),
        ];
        let rss = judge(Verdict::Clean, 1.1 * 1024.0 * KIB, &arenas);
        assert_eq!(rss.verdict, Verdict::Inconclusive);
        assert!(
            rss.reason.contains("1.1 MiB more of them mapped meanwhile"),
            "{}",
            rss.reason
        );
        // 300 KiB beyond the regions' growth: memory of the program's own.
        let rss = judge(Verdict::Clean, 1.4 * 1024.0 * KIB, &arenas);
        assert_eq!(rss.verdict, Verdict::Leak);
        // Flat regions under a small RSS leak; a heap that is not clean; no look at all.
        let flat = [(0, mib(4.0)), (160, mib(4.0))];
        assert_eq!(
            judge(Verdict::Clean, 128.0 * KIB, &flat).verdict,
            Verdict::Leak
        );
        // A heap leaking far slower than RSS grows gates by itself: RSS is malloc's pages.
        let leak = judge(Verdict::Leak, 1.1 * 1024.0 * KIB, &arenas);
        assert_eq!(leak.verdict, Verdict::Inconclusive);
        assert!(leak.reason.contains("their own leak"), "{}", leak.reason);
        // A heap growing below its threshold explains none of it; one growing as fast as RSS
        // explains it all (a leak through malloc grows the arenas too).
        let below = judge(Verdict::Inconclusive, 1.1 * 1024.0 * KIB, &arenas);
        assert_eq!(below.verdict, Verdict::Inconclusive);
        let mut run = Run::new("server", HeapScope::Program);
        run.metrics.insert(
            Metric::HeapBytes,
            metric(Verdict::Inconclusive, 1024.0 * KIB),
        );
        run.metrics
            .insert(Metric::HeapBlocks, metric(Verdict::Clean, 0.0));
        run.metrics
            .insert(Metric::RssBytes, metric(Verdict::Leak, 1.1 * 1024.0 * KIB));
        no_leak_from_mallocs_regions(&mut run.metrics, &spans(&arenas));
        assert_eq!(run.metrics[&Metric::RssBytes].verdict, Verdict::Leak);
        assert_eq!(
            judge(Verdict::Clean, 1.1 * 1024.0 * KIB, &[]).verdict,
            Verdict::Leak
        );
    }

    /// Where the page map was read, what counts is the RSS outside the regions' resident
    /// pages: a C service whose blocks land on pages never touched before grew its RSS 20
    /// MiB within regions whose span did not move, 0.2 MiB outside them throughout (not a
    /// leak); the same growth beside an mmap leak of 2 MiB outside them stays a leak.
    #[test]
    fn rss_growth_on_mallocs_resident_pages_is_no_leak_while_the_heap_is_clean() {
        const MIB: f64 = 1024.0 * 1024.0;
        let looks = |outside_growth: f64| -> Vec<RegionsLook> {
            (0..8)
                .map(|i| {
                    let resident = (60.0 + 3.0 * i as f64) * MIB;
                    // +-10 KiB of noise on the RSS read beside the page map
                    let noise = if i % 2 == 0 { 10240.0 } else { -10240.0 };
                    let outside = 0.2 * MIB + outside_growth * i as f64 / 7.0 + noise;
                    RegionsLook {
                        iteration: 8 * i + 24,
                        mapped: (115.0 * MIB) as u64,
                        resident: Some(resident as u64),
                        anon: Some((resident + outside) as u64),
                    }
                })
                .collect()
        };
        let fill = judged_with_regions(Verdict::Clean, 21.0 * MIB, &looks(0.0));
        assert_eq!(fill.verdict, Verdict::Inconclusive, "{}", fill.reason);
        assert!(
            fill.reason
                .contains("18.0 MiB more of them resident meanwhile"),
            "{}",
            fill.reason
        );
        let beside = judged_with_regions(Verdict::Clean, 23.0 * MIB, &looks(2.0 * MIB));
        assert_eq!(beside.verdict, Verdict::Leak, "{}", beside.reason);
        // Looks over their budget leave the others to tell; with fewer than 3 that read
        // the page map, the span alone says: the same fill is then a leak (it did not grow).
        let mut sparse = looks(0.0);
        for i in [2, 4, 6] {
            sparse[i].resident = None;
        }
        let fill = judged_with_regions(Verdict::Clean, 21.0 * MIB, &sparse);
        assert_eq!(fill.verdict, Verdict::Inconclusive, "{}", fill.reason);
        sparse[3].resident = None;
        sparse[5].resident = None;
        let by_span = judged_with_regions(Verdict::Clean, 21.0 * MIB, &sparse);
        assert_eq!(by_span.verdict, Verdict::Leak);
    }

    /// A JVM's RSS leak is inconclusive unless its malloc'd heap grew with it (native memory it
    /// keeps, such as direct buffers); other metrics and verdicts are left alone.
    #[test]
    fn a_jvms_rss_growth_alone_is_no_leak() {
        let with = |heap: Option<(Verdict, f64)>, rss: Verdict| {
            let mut run = Run::new("java", HeapScope::Program);
            if let Some((verdict, growth)) = heap {
                run.metrics
                    .insert(Metric::HeapBytes, metric(verdict, growth));
            }
            run.metrics
                .insert(Metric::RssBytes, metric(rss, 180.0 * 1048576.0));
            no_leak_from_a_jvms_rss(&mut run);
            run
        };
        // Young generation growing, heap counters flat (or none read: --no-heap, --pid).
        for heap in [Some((Verdict::Clean, 0.0)), None] {
            let run = with(heap, Verdict::Leak);
            let rss = &run.metrics[&Metric::RssBytes];
            assert_eq!(rss.verdict, Verdict::Inconclusive);
            assert!(
                rss.reason.starts_with("grows; but the program runs a Java"),
                "{}",
                rss.reason
            );
            assert_eq!(
                rss.reason.contains("heap counters"),
                heap.is_some(),
                "{}",
                rss.reason
            );
        }
        // Direct buffers kept: malloc'd, the heap counters grew as much.
        let run = with(Some((Verdict::Leak, 170.0 * 1048576.0)), Verdict::Leak);
        assert_eq!(run.metrics[&Metric::RssBytes].verdict, Verdict::Leak);
        assert_eq!(run.metrics[&Metric::HeapBytes].verdict, Verdict::Leak);
        // Native growth as fast as RSS's, over a shorter window (the heap's warm-up ended
        // later): its slope decides, not its growth.
        let mut run = Run::new("java", HeapScope::Program);
        let mut heap = metric(Verdict::Inconclusive, 180.0 * 1048576.0);
        heap.growth = 40.0 * 1048576.0;
        run.metrics.insert(Metric::HeapBytes, heap);
        run.metrics
            .insert(Metric::RssBytes, metric(Verdict::Leak, 180.0 * 1048576.0));
        no_leak_from_a_jvms_rss(&mut run);
        assert_eq!(run.metrics[&Metric::RssBytes].verdict, Verdict::Leak);
        // A clean RSS stays clean.
        let run = with(Some((Verdict::Clean, 0.0)), Verdict::Clean);
        assert_eq!(run.metrics[&Metric::RssBytes].verdict, Verdict::Clean);
    }
}
