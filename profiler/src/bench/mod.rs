// Owns `MemoryBench`: each routine's memory profile, then criterion's timing and counts as far
// as its verdict allows. Never reads a clock of its own: times are criterion's or the profile's.

//! Memory beside criterion's timings (feature `criterion`).
//!
//! ```no_run
//! # use criterion::Criterion;
//! #[global_allocator]
//! static ALLOC: profiler::Alloc = profiler::Alloc::new();
//!
//! fn main() {
//!     let mut c = Criterion::default().configure_from_args();
//!     let mut memory = profiler::bench::MemoryBench::new("parsing");
//!     memory.bench(&mut c, "parse", || "1,2,3".split(',').count());
//!     c.final_summary();
//!     memory.finish(); // prints the table and the files written; see MEMCREEP_FAIL_ON_LEAK
//! }
//! ```
//!
//! For each benchmark, in this order:
//!
//! 1. the toolkit's memory profile of the routine (20 iterations, extended when the verdict
//!    needs it; `report.json` and `memory.png` in `target/criterion/<group>/<bench>/memory/`),
//!    taken first, in a heap that criterion's millions of calls have not filled;
//! 2. criterion's time per iteration, as far as the memory verdict allows: a clean routine is
//!    timed as `c` is configured; one whose heap leaks (or whose verdict is inconclusive) is
//!    timed on a capped number of calls, so that it leaks at most [`MemoryBench::leak_budget`]
//!    (16 MiB by default) while criterion times it; one that leaks file descriptors or threads,
//!    or panicked, is not timed (the table shows the profile's own time per iteration);
//! 3. for a clean routine, criterion estimates of bytes allocated and allocations per
//!    iteration ([`AllocatedBytes`], [`Allocations`]: custom criterion measurements); the
//!    others show the profile's (exact) counts.
//!
//! [`MemoryBench::finish`] prints the summary table (the timing column says how each routine
//! was timed and why), writes it as `target/criterion/<group>/memory-summary.md`, prints one
//! `wrote PATH` line per file, and says whether anything leaked. `cargo bench` exits 0 on a
//! leak unless `MEMCREEP_FAIL_ON_LEAK=1` is set: then `finish` exits the process with 1 (3 if
//! a routine panicked) after writing everything.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::measurement::{Measurement, WallTime};
use criterion::{Criterion, SamplingMode};

use crate::model::Outcome;
use crate::profiler::Profiler;
use crate::report::{Report, write_atomic};

mod measurement;
mod sizes;
mod summary;
mod timing;

pub use measurement::{AllocatedBytes, Allocations};
use summary::{Row, fresh_median, outcome, summary, write_memory};
pub use summary::{criterion_dir, criterion_median};
use timing::{CAPPED_SAMPLES, Cap, Timing, timing};

/// The environment variable that makes [`MemoryBench::finish`] exit the process with 1 when a
/// benchmark leaks (3 when one panicked), after everything is written: `1`, `true` or `yes`.
pub const FAIL_ON_LEAK_VAR: &str = "MEMCREEP_FAIL_ON_LEAK";

/// Heap a leaking routine may leak while criterion times it, by default.
pub const DEFAULT_LEAK_BUDGET: u64 = 16 << 20;

/// Benchmarks a group of routines for their memory over iterations (first), time (criterion,
/// as far as the memory verdict allows), and bytes and allocations per iteration.
pub struct MemoryBench {
    group: String,
    dir: PathBuf,
    bytes: Criterion<AllocatedBytes>,
    allocations: Criterion<Allocations>,
    filter: Selection,
    iterations: u32,
    leak_budget: u64,
    /// Criterion runs with `--quick` or `--profile-time`: calls cannot be capped.
    uncappable: bool,
    /// `MEMCREEP_FAIL_ON_LEAK` is set: `finish` exits the process on a leak.
    fail_on_leak: bool,
    /// Errors writing a profile's files, printed by `finish`.
    errors: Vec<String>,
    rows: Vec<Row>,
    /// The growth class `bench_sizes` holds its routines to.
    max_complexity: Option<crate::model::Complexity>,
}

impl MemoryBench {
    /// A group called `group` (criterion's group name; results under `target/criterion/<group>`).
    /// Reads criterion's command line (the filter, `--quick`...) and `MEMCREEP_FAIL_ON_LEAK`.
    pub fn new(group: impl Into<String>) -> Self {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let mut bench = MemoryBench::in_dir(group, criterion_dir(), true);
        bench.filter = Selection::from_args(&args);
        bench.uncappable = args
            .iter()
            .any(|a| a == "--quick" || a.starts_with("--profile-time"));
        bench.fail_on_leak = fail_on_leak_from_env();
        bench
    }

    /// A group writing under `dir`, without reading the command line or the environment.
    fn in_dir(group: impl Into<String>, dir: PathBuf, from_args: bool) -> Self {
        MemoryBench {
            group: group.into(),
            bytes: quick(
                Criterion::default().with_measurement(AllocatedBytes),
                &dir,
                from_args,
            ),
            allocations: quick(
                Criterion::default().with_measurement(Allocations),
                &dir,
                from_args,
            ),
            dir,
            filter: Selection::All,
            iterations: crate::engine::DEFAULT_ITERATIONS,
            leak_budget: DEFAULT_LEAK_BUDGET,
            uncappable: false,
            fail_on_leak: false,
            errors: Vec::new(),
            rows: Vec::new(),
            max_complexity: None,
        }
    }

    /// Iterations of the memory profile (default 20; the verdict may extend).
    pub fn iterations(mut self, n: u32) -> Self {
        self.iterations = n;
        self
    }

    /// Heap a routine whose memory profile leaks may leak while criterion times it (default
    /// 16 MiB): criterion's calls are capped at this over the leak per call (and at 100,000).
    pub fn leak_budget(mut self, bytes: u64) -> Self {
        self.leak_budget = bytes;
        self
    }

    fn selected(&self, name: &str) -> bool {
        self.filter.selects(&format!("{}/{name}", self.group))
    }

    /// Profile the memory of `routine`, then time it with `c` as far as the memory verdict
    /// allows (fully when clean, on capped calls when its heap leaks, not at all when it leaks
    /// descriptors or threads or panicked), then, when clean, measure its bytes and
    /// allocations per iteration with criterion.
    pub fn bench<R>(&mut self, c: &mut Criterion, name: &str, mut routine: impl FnMut() -> R) {
        if !self.selected(name) {
            return;
        }
        let report = self.profile(name, &mut routine);
        let run = &report.runs[0];
        let timing = timing(run, self.leak_budget, self.uncappable);
        let group_dir = filename_safe(&self.group);
        // Only estimates criterion writes from now on count (`--test` and `--list` write none,
        // and one left by an earlier `cargo bench` is not this run's).
        let since = std::time::SystemTime::now();
        let dir = self.dir.clone();
        let crit = |sub: &str| fresh_median(&dir.join(sub).join(filename_safe(name)), since);
        let (mut time_ns, mut bytes, mut allocations) = (None, None, None);
        match &timing {
            Timing::Full => {}
            Timing::Capped { calls, why } => println!(
                "{}/{name}: {why}: criterion's timing capped at {calls} calls (the iterations \
                 it counts beyond them are extrapolated from their mean)",
                self.group
            ),
            Timing::Skipped { why } => println!("{}/{name}: not timed: {why}", self.group),
        }
        match &timing {
            Timing::Full if allocates_nothing(run) => {
                // Every iteration after the warm-up allocated nothing, counted exactly: 0. As a
                // criterion measurement, 0 per iteration is an error ("took zero time"), no
                // estimate is written, and a later `--baseline` run panicked on the missing one.
                c.benchmark_group(&self.group)
                    .bench_function(name, |b| b.iter(&mut routine));
                time_ns = crit(&group_dir);
                (bytes, allocations) = (Some(0.0), Some(0.0));
            }
            Timing::Full => {
                c.benchmark_group(&self.group)
                    .bench_function(name, |b| b.iter(&mut routine));
                self.bytes
                    .benchmark_group(format!("{}/allocated", self.group))
                    .bench_function(name, |b| b.iter(&mut routine));
                self.allocations
                    .benchmark_group(format!("{}/allocations", self.group))
                    .bench_function(name, |b| b.iter(&mut routine));
                time_ns = crit(&group_dir);
                bytes = crit(&format!("{group_dir}_allocated"));
                allocations = crit(&format!("{group_dir}_allocations"));
            }
            Timing::Capped { calls, .. } => {
                let mut group = c.benchmark_group(&self.group);
                capped_group(&mut group);
                group.bench_function(name, capped_timing(*calls, &mut routine));
                group.finish();
                time_ns = crit(&group_dir);
            }
            Timing::Skipped { .. } => {}
        }
        let time_ms = match timing {
            Timing::Skipped { .. } => run.median_duration_ms(),
            _ => time_ns.map(|ns| ns / 1e6),
        };
        self.push_row(
            name,
            &report,
            time_ms,
            bytes,
            allocations,
            timing.describe(),
        );
    }

    /// Profile memory only, without criterion, whatever the verdict (code criterion must not
    /// call millions of times). `why` is shown in the table; the time per iteration is the
    /// profile's.
    pub fn profile_only<R>(&mut self, name: &str, mut routine: impl FnMut() -> R, why: &str) {
        if !self.selected(name) {
            return;
        }
        let report = self.profile(name, &mut routine);
        let time_ms = report.runs[0].median_duration_ms();
        let timing = Timing::Skipped {
            why: why.to_string(),
        };
        self.push_row(name, &report, time_ms, None, None, timing.describe());
    }

    /// The memory profile of `routine` (written to `<group>/<name>/memory/` by `push_row`).
    fn profile<R>(&self, name: &str, routine: impl FnMut() -> R) -> Report {
        Profiler::new(name).iterations(self.iterations).run(routine)
    }

    /// A sweep's row: the largest size's numbers, the fields that fail it as `leaking`.
    fn push_sized_row(
        &mut self,
        name: &str,
        report: &Report,
        time_ms: Option<f64>,
        leaking: Vec<&'static str>,
        timing: String,
    ) {
        let out = self.dir.join(&self.group).join(name).join("memory");
        let (written, errors) = write_memory(report, &out);
        self.errors.extend(errors.iter().map(ToString::to_string));
        let run = &report.runs[0];
        let largest = run.sweep.as_ref().and_then(|s| s.points.last());
        self.rows.push(Row {
            name: name.to_string(),
            time_ms: time_ms.or(largest.map(|p| p.duration_ms)),
            bytes: largest.and_then(|p| p.allocated_bytes).map(|v| v as f64),
            allocations: largest.and_then(|p| p.allocations).map(|v| v as f64),
            peak: largest.and_then(|p| p.peak_bytes).map(|v| v as f64),
            verdict: run.verdict,
            leaking,
            failure: run.failure.as_ref().map(|f| f.sentence()),
            timing,
            written,
        });
    }

    fn push_row(
        &mut self,
        name: &str,
        report: &Report,
        time_ms: Option<f64>,
        bytes: Option<f64>,
        allocations: Option<f64>,
        timing: String,
    ) {
        let out = self.dir.join(&self.group).join(name).join("memory");
        let (written, errors) = write_memory(report, &out);
        self.errors.extend(errors.iter().map(ToString::to_string));
        let run = &report.runs[0];
        let measure = |c| crate::baseline::measure(run, c);
        use crate::baseline::Compared;
        self.rows.push(Row {
            name: name.to_string(),
            time_ms,
            bytes: bytes.or_else(|| measure(Compared::Allocated)),
            allocations: allocations.or_else(|| measure(Compared::Allocations)),
            peak: peak_per_call(run).or_else(|| measure(Compared::Peak)),
            verdict: run.verdict,
            leaking: run.leaking_metrics(),
            failure: run.failure.as_ref().map(|f| f.sentence()),
            timing,
            written,
        });
    }

    /// Print the summary table, write it as `target/criterion/<group>/memory-summary.md`, and
    /// print one `wrote PATH` line per file written (the summary, each `report.json` and
    /// `memory.png`). Returns [`Outcome::Leak`] if a benchmark leaks,
    /// [`Outcome::WorkloadFailed`] if one panicked, else [`Outcome::Clean`]; with
    /// `MEMCREEP_FAIL_ON_LEAK=1` in the environment, a leak exits the process with 1 (a
    /// panic with 3) once everything is written and printed.
    pub fn finish(self) -> Outcome {
        if self.rows.is_empty() {
            // A gate given a filter that selects nothing checks nothing: say so.
            if let Selection::Regex(_) | Selection::Exact(_) = &self.filter {
                eprintln!(
                    "profiler: no benchmark of group `{}` matches the filter {}: its memory was \
                     not profiled",
                    self.group, self.filter
                );
            }
            return Outcome::Clean;
        }
        let outcome = outcome(&self.rows);
        let table = summary(&self.group, &self.rows, self.fail_on_leak);
        println!("\n{table}");
        let path = self.dir.join(&self.group).join("memory-summary.md");
        let mut written: Vec<&Path> = Vec::new();
        match write_atomic(&path, table.as_bytes()) {
            Ok(()) => written.push(&path),
            Err(e) => eprintln!("profiler: {e}"),
        }
        written.extend(
            self.rows
                .iter()
                .flat_map(|r| r.written.iter().map(|p| p.as_path())),
        );
        for p in written {
            println!("wrote {}", p.display());
        }
        for e in &self.errors {
            eprintln!("profiler: {e}");
        }
        if self.fail_on_leak && !outcome.passed() {
            eprintln!(
                "profiler: {FAIL_ON_LEAK_VAR} is set and {}: exiting with {}",
                match outcome {
                    Outcome::WorkloadFailed => "a benchmark failed",
                    _ => "a benchmark leaks",
                },
                outcome.code()
            );
            use std::io::Write;
            let _ = std::io::stdout().flush();
            std::process::exit(i32::from(outcome.code()));
        }
        outcome
    }
}

/// A name as criterion makes it a directory's (its `make_filename_safe`): `?"/\*<>:|^` become
/// `_`, and it is cut at 64 bytes. A benchmark `ns::clean`, timed, showed no time: criterion
/// wrote `ns__clean`.
fn filename_safe(name: &str) -> String {
    let mut safe: String = name
        .chars()
        .map(|c| match c {
            '?' | '"' | '/' | '\\' | '*' | '<' | '>' | ':' | '|' | '^' => '_',
            c => c,
        })
        .collect();
    let mut end = safe.len().min(64);
    while !safe.is_char_boundary(end) {
        end -= 1;
    }
    safe.truncate(end);
    safe
}

/// A group set to time capped routines: one warm-up call (criterion's warm-up stops once its
/// time has passed), then ten samples of equal size.
fn capped_group(group: &mut criterion::BenchmarkGroup<'_, WallTime>) {
    group
        .warm_up_time(Duration::from_nanos(1))
        .sample_size(CAPPED_SAMPLES as usize)
        .sampling_mode(SamplingMode::Flat);
}

/// What criterion calls to time `routine` on at most `calls` calls in all, each sample
/// capped (see [`Cap`]).
fn capped_timing<R>(
    calls: u64,
    routine: &mut impl FnMut() -> R,
) -> impl FnMut(&mut criterion::Bencher<'_, WallTime>) {
    let mut cap = Cap::new(calls);
    move |b| {
        b.iter_custom(|iters| {
            let n = cap.take(iters);
            let start = WallTime.start();
            for _ in 0..n {
                black_box(routine());
            }
            let took = WallTime.end(start);
            cap.scale(iters, n, took)
        })
    }
}

/// `MEMCREEP_FAIL_ON_LEAK` is set to something other than empty, `0`, `false` or `no`.
fn fail_on_leak_from_env() -> bool {
    std::env::var(FAIL_ON_LEAK_VAR).is_ok_and(|v| {
        let v = v.trim().to_ascii_lowercase();
        !matches!(v.as_str(), "" | "0" | "false" | "no")
    })
}

/// Counted quantities of a deterministic routine vary little: short criterion runs suffice.
/// Whether every iteration of `run` after its warm-up allocated nothing (and there were some).
fn allocates_nothing(run: &crate::Run) -> bool {
    let mut after = run
        .samples
        .iter()
        .filter(|s| s.iteration > run.warmup.max(1))
        .peekable();
    after.peek().is_some()
        && after.all(|s| s.allocated_bytes == Some(0) && s.allocations == Some(0))
}

fn quick<M: Measurement>(c: Criterion<M>, dir: &Path, from_args: bool) -> Criterion<M> {
    let c = c
        .output_directory(dir)
        .warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_millis(400))
        .sample_size(10)
        .without_plots();
    if from_args {
        c.configure_from_args()
    } else {
        c
    }
}

/// Which benchmarks run, read from criterion's command line as criterion reads it: its filter
/// is a regular expression (`--exact`: the whole id), `--ignored` runs none and `--list` only
/// lists. Read as a substring, `'parse$'` profiled nothing and the gate passed; `-s base`
/// (criterion's short `--save-baseline`) was taken for a filter; `--exact` was ignored, so a
/// benchmark the user left out failed the run.
#[derive(Debug, Clone)]
enum Selection {
    All,
    None,
    Regex(regex::Regex),
    Exact(String),
}

impl Selection {
    fn from_args(args: &[String]) -> Selection {
        let mut args = args.iter();
        let (mut filter, mut exact, mut none) = (None, false, false);
        while let Some(a) = args.next() {
            match a.as_str() {
                // Options of criterion's command line that take a value.
                "--save-baseline"
                | "-s"
                | "--baseline"
                | "-b"
                | "--baseline-lenient"
                | "--load-baseline"
                | "--sample-size"
                | "--warm-up-time"
                | "--measurement-time"
                | "--nresamples"
                | "--noise-threshold"
                | "--confidence-level"
                | "--significance-level"
                | "--profile-time"
                | "--plotting-backend"
                | "--output-format"
                | "--color"
                | "--colour"
                | "-c"
                | "--format" => {
                    args.next();
                }
                "--exact" => exact = true,
                "--ignored" | "--list" => none = true,
                a if a.starts_with('-') => {}
                a => filter = Some(a.to_string()),
            }
        }
        match filter {
            _ if none => Selection::None,
            None => Selection::All,
            Some(f) if exact => Selection::Exact(f),
            // Criterion panics on a filter that is not a regular expression; so would the
            // first benchmark: none is profiled meanwhile.
            Some(f) => regex::Regex::new(&f).map_or(Selection::None, Selection::Regex),
        }
    }

    fn selects(&self, id: &str) -> bool {
        match self {
            Selection::All => true,
            Selection::None => false,
            Selection::Regex(r) => r.is_match(id),
            Selection::Exact(e) => id == e,
        }
    }
}

impl std::fmt::Display for Selection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Selection::All => write!(f, "(none)"),
            Selection::None => write!(f, "(--list or --ignored)"),
            Selection::Regex(r) => write!(f, "`{}`", r.as_str()),
            Selection::Exact(e) => write!(f, "`{e}` (--exact)"),
        }
    }
}

/// The heap peak of one call above the heap at its start, median over the profile's
/// iterations: what a sweep's point says of a repetition. The run's peak above its start
/// grows with the calls for a leaking routine (40 KiB for 1 KiB a call), and the table's
/// column mixed the two meanings.
fn peak_per_call(run: &crate::model::Run) -> Option<f64> {
    let peaks: Vec<f64> = run
        .samples
        .windows(2)
        .filter_map(|w| Some((w[1].heap_peak_bytes? - w[0].heap_bytes?).max(0) as f64))
        .collect();
    (!peaks.is_empty()).then(|| crate::stats::median(&peaks))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_heap_peak_of_a_call_is_above_its_start_not_the_run_s() {
        use crate::model::{HeapScope, Run};
        use crate::sample::Sample;
        // 1 KiB kept per call, 4 KiB of scratch at its highest: the run's peak above its start
        // adds the calls up; a call's is the same every time.
        let samples = (0..=40i64)
            .map(|i| Sample {
                iteration: i as u32,
                heap_bytes: Some(1024 * i),
                heap_peak_bytes: (i > 0).then_some(1024 * (i - 1) + 4096 + 1024),
                ..Sample::default()
            })
            .collect();
        let run = Run {
            samples,
            ..Run::new("keeps", HeapScope::Process)
        };
        assert_eq!(peak_per_call(&run), Some(5120.0));
    }

    #[test]
    fn names_become_criterion_directories_as_criterion_makes_them() {
        assert_eq!(filename_safe("ns::clean"), "ns__clean");
        assert_eq!(filename_safe("a/b?c"), "a_b_c");
        assert_eq!(filename_safe(&"é".repeat(40)).len(), 64);
    }

    #[test]
    fn benchmarks_are_selected_as_criterion_selects_them() {
        let select =
            |a: &[&str]| Selection::from_args(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        let ids = ["parsing/parse", "parsing/parse-and-keep", "boxes/box"];
        let chosen = |a: &[&str]| -> Vec<&str> {
            let s = select(a);
            ids.iter().copied().filter(|id| s.selects(id)).collect()
        };
        assert_eq!(
            chosen(&["--bench", "--sample-size", "10", "box"]),
            ["boxes/box"]
        );
        assert_eq!(chosen(&["--bench", "--profile-time", "5"]), ids);
        // A regular expression, as criterion reads it.
        assert_eq!(chosen(&["--bench", "parse$"]), ["parsing/parse"]);
        assert_eq!(
            chosen(&["--bench", "^parsing/"]),
            ["parsing/parse", "parsing/parse-and-keep"]
        );
        // Criterion's short options take their values.
        assert_eq!(chosen(&["--bench", "-s", "mybase"]), ids);
        assert_eq!(chosen(&["--bench", "-b", "mybase", "box"]), ["boxes/box"]);
        // --exact, --list, --ignored.
        assert_eq!(
            chosen(&["--bench", "--exact", "parsing/parse"]),
            ["parsing/parse"]
        );
        assert!(chosen(&["--bench", "--list"]).is_empty());
        assert!(chosen(&["--bench", "--ignored", "parse"]).is_empty());
    }

    /// Set in the child process of `finish_writes_everything_then_fails_on_a_leak_if_asked`.
    const CHILD_DIR: &str = "MEMCREEP_BENCH_TEST_CHILD_DIR";

    /// Run in a child process only (it leaks threads): a group whose one benchmark leaks a
    /// thread per call, finished with `MEMCREEP_FAIL_ON_LEAK` as the parent set it.
    #[test]
    fn leaking_child() {
        let Some(dir) = std::env::var_os(CHILD_DIR) else {
            return;
        };
        let mut memory = MemoryBench::in_dir("g", PathBuf::from(dir), false);
        memory.fail_on_leak = fail_on_leak_from_env();
        let mut c = Criterion::default();
        let mut kept = Vec::new();
        // Without profiler::Alloc in this test binary, threads are what leaks: never timed.
        memory.bench(&mut c, "threads", || {
            kept.push(std::thread::spawn(std::thread::park))
        });
        let outcome = memory.finish();
        println!("outcome: {outcome:?}");
    }

    #[test]
    fn finish_writes_everything_then_fails_on_a_leak_if_asked() {
        let child = |fail: Option<&str>| {
            let dir = tempfile::tempdir().unwrap();
            let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
            cmd.args([
                "--exact",
                "bench::tests::leaking_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DIR, dir.path())
            .env_remove(FAIL_ON_LEAK_VAR);
            if let Some(v) = fail {
                cmd.env(FAIL_ON_LEAK_VAR, v);
            }
            let out = cmd.output().unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout).to_string();
            let stderr = String::from_utf8_lossy(&out.stderr).to_string();
            let summary = std::fs::read_to_string(dir.path().join("g/memory-summary.md"))
                .unwrap_or_else(|e| panic!("no summary ({e}): {stdout}\n{stderr}"));
            (out.status.code(), stdout, stderr, summary, dir)
        };

        let (code, stdout, stderr, summary, dir) = child(None);
        assert_eq!(code, Some(0), "{stdout}\n{stderr}");
        assert!(stdout.contains("outcome: Leak"), "{stdout}");
        assert!(summary.contains("| `threads` |"), "{summary}");
        assert!(summary.contains("leak (threads)"), "{summary}");
        assert!(
            summary.contains("not timed (leaks threads per call"),
            "{summary}"
        );
        assert!(summary.contains("still exits 0"), "{summary}");
        let wrote = |p: PathBuf| format!("wrote {}", p.display());
        let g = dir.path().join("g");
        assert!(
            stdout.contains(&wrote(g.join("memory-summary.md"))),
            "{stdout}"
        );
        assert!(
            stdout.contains(&wrote(g.join("threads/memory/report.json"))),
            "{stdout}"
        );
        #[cfg(feature = "plot")]
        assert!(
            stdout.contains(&wrote(g.join("threads/memory/memory.png"))),
            "{stdout}"
        );

        let (code, stdout, stderr, summary, _dir) = child(Some("1"));
        assert_eq!(code, Some(1), "{stdout}\n{stderr}");
        assert!(!stdout.contains("outcome:"), "{stdout}");
        assert!(stdout.contains("wrote "), "{stdout}");
        assert!(
            summary.contains("MEMCREEP_FAIL_ON_LEAK is set"),
            "{summary}"
        );
        assert!(stderr.contains("exiting with 1"), "{stderr}");

        let (code, ..) = child(Some("0"));
        assert_eq!(code, Some(0));
    }
}
