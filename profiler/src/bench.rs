// Owns the criterion integration: measurements of bytes and allocations per iteration, a memory
// profile of each benchmark written beside criterion's output, and the choice of how far
// criterion may time a routine after its memory profile (fully, capped, or not at all). Never
// reads a clock of its own: times are criterion's (a capped routine through criterion's
// `WallTime`) or the memory profile's.

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

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{Criterion, SamplingMode, Throughput};

use crate::alloc;
use crate::format::{byte_unit, format_bytes, format_count, format_ms};
use crate::model::{Outcome, Run, Verdict};
use crate::profiler::Profiler;
use crate::report::{Report, write_atomic};
use crate::sample::Metric;

fn counters() -> alloc::HeapCounters {
    alloc::heap().expect(
        "profiler: bench measurements need `#[global_allocator] static ALLOC: profiler::Alloc = \
         profiler::Alloc::new();` in the bench binary",
    )
}

/// Criterion measurement: bytes allocated (freed or not) by the routine, all threads.
pub struct AllocatedBytes;

/// Criterion measurement: allocations made by the routine, all threads.
pub struct Allocations;

/// A criterion measurement reading one of the allocator's process-wide counters: the
/// difference over the routine, formatted by `$formatter`.
macro_rules! counter_measurement {
    ($name:ident, $field:ident, $formatter:ident) => {
        impl Measurement for $name {
            type Intermediate = i64;
            type Value = i64;
            fn start(&self) -> i64 {
                counters().$field
            }
            fn end(&self, start: i64) -> i64 {
                counters().$field - start
            }
            fn add(&self, a: &i64, b: &i64) -> i64 {
                a + b
            }
            fn zero(&self) -> i64 {
                0
            }
            fn to_f64(&self, v: &i64) -> f64 {
                *v as f64
            }
            fn formatter(&self) -> &dyn ValueFormatter {
                &$formatter
            }
        }
    };
}

counter_measurement!(AllocatedBytes, allocated_bytes, BYTES_FORMATTER);
counter_measurement!(Allocations, allocations, COUNT_FORMATTER);

/// Divide `values` by `factor`; returns `unit`.
fn scale(values: &mut [f64], (factor, unit): (f64, &'static str)) -> &'static str {
    for v in values.iter_mut() {
        *v /= factor;
    }
    unit
}

/// Criterion's unit for a number of allocations around `typical` (the byte units are
/// [`byte_unit`]'s, as in every other output).
fn alloc_unit(typical: f64) -> (f64, &'static str) {
    match typical.abs() {
        t if t >= 1e6 => (1e6, "M allocs"),
        t if t >= 1e3 => (1e3, "k allocs"),
        _ => (1.0, "allocs"),
    }
}

fn per_unit_of_throughput(throughput: &Throughput, values: &mut [f64]) -> &'static str {
    let (n, unit) = match throughput {
        Throughput::Bytes(n) | Throughput::BytesDecimal(n) => (*n as f64, "/byte"),
        Throughput::Elements(n) => (*n as f64, "/element"),
        Throughput::Bits(n) => (*n as f64, "/bit"),
        Throughput::ElementsAndBytes { elements, .. } => (*elements as f64, "/element"),
    };
    for v in values.iter_mut() {
        *v /= n.max(1.0);
    }
    unit
}

/// How a counter's values read in criterion's output: the unit chosen for a typical value,
/// the units per byte, bit and element of throughput, and the name for machines.
struct CounterFormatter {
    unit: fn(f64) -> (f64, &'static str),
    per: [&'static str; 3],
    machines: &'static str,
}

const BYTES_FORMATTER: CounterFormatter = CounterFormatter {
    unit: byte_unit,
    per: ["B allocated/byte", "B allocated/bit", "B allocated/element"],
    machines: "bytes",
};

const COUNT_FORMATTER: CounterFormatter = CounterFormatter {
    unit: alloc_unit,
    per: ["allocs/byte", "allocs/bit", "allocs/element"],
    machines: "allocations",
};

impl ValueFormatter for CounterFormatter {
    fn scale_values(&self, typical: f64, values: &mut [f64]) -> &'static str {
        scale(values, (self.unit)(typical))
    }
    fn scale_throughputs(&self, _typical: f64, t: &Throughput, values: &mut [f64]) -> &'static str {
        match per_unit_of_throughput(t, values) {
            "/byte" => self.per[0],
            "/bit" => self.per[1],
            _ => self.per[2],
        }
    }
    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        self.machines
    }
}

/// Where criterion writes its results, found the way criterion finds it: `$CRITERION_HOME`,
/// `$CARGO_TARGET_DIR/criterion`, cargo's target directory, or `target/criterion`.
pub fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(target).join("criterion");
    }
    let from_cargo = std::env::var_os("CARGO").and_then(|cargo| {
        let out = std::process::Command::new(cargo)
            .args(["metadata", "--format-version", "1", "--no-deps"])
            .output()
            .ok()?;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        Some(PathBuf::from(v["target_directory"].as_str()?))
    });
    from_cargo
        .unwrap_or_else(|| PathBuf::from("target"))
        .join("criterion")
}

/// Criterion's median estimate of a benchmark, read from its `new/estimates.json`.
pub fn criterion_median(dir: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(dir.join("new/estimates.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["median"]["point_estimate"].as_f64()
}

/// The environment variable that makes [`MemoryBench::finish`] exit the process with 1 when a
/// benchmark leaks (3 when one panicked), after everything is written: `1`, `true` or `yes`.
pub const FAIL_ON_LEAK_VAR: &str = "MEMCREEP_FAIL_ON_LEAK";

/// Heap a leaking routine may leak while criterion times it, by default.
pub const DEFAULT_LEAK_BUDGET: u64 = 16 << 20;

/// Most calls criterion may make of a leaking routine, whatever its leak per call.
const MAX_CAPPED_CALLS: u64 = 100_000;

/// Samples criterion takes of a capped routine (its minimum), each of at most 1/10 of the cap.
const CAPPED_SAMPLES: u64 = 10;

/// Fewest calls a capped timing needs: one to warm up, one per sample.
const MIN_CAPPED_CALLS: u64 = 1 + CAPPED_SAMPLES;

/// How criterion may time a routine, decided from its memory profile.
#[derive(Debug, Clone, PartialEq)]
enum Timing {
    /// Clean: as criterion is configured.
    Full,
    /// The heap leaks (or may): at most `calls` calls, and why.
    Capped { calls: u64, why: String },
    /// Not timed, and why: the table shows the profile's time per iteration.
    Skipped { why: String },
}

impl Timing {
    /// The table's timing column.
    fn describe(&self) -> String {
        match self {
            Timing::Full => "criterion".to_string(),
            Timing::Capped { calls, why } => {
                format!("criterion, capped at {calls} calls: {why}")
            }
            Timing::Skipped { why } => format!("not timed ({why}); time from the memory profile"),
        }
    }
}

/// How far criterion may time the routine profiled in `run`. `budget` is the heap a leaking
/// routine may leak while timed; `uncappable` says criterion runs in a mode whose calls cannot
/// be capped (`--quick`, `--profile-time`: both call until a time has passed).
fn timing(run: &Run, budget: u64, uncappable: bool) -> Timing {
    if let Some(failure) = &run.failure {
        return Timing::Skipped {
            why: failure.sentence(),
        };
    }
    let suspect = |m: &Metric| {
        run.metrics
            .get(m)
            .is_some_and(|r| r.gating && r.verdict != Verdict::Clean)
    };
    let leaks = |m: &Metric| {
        run.metrics
            .get(m)
            .is_some_and(|r| r.gating && r.verdict == Verdict::Leak)
    };
    // A descriptor or a thread kept per call: criterion would call until the process runs out
    // of them, and no byte budget bounds that.
    let resources: Vec<Metric> = [Metric::Fds, Metric::Threads]
        .into_iter()
        .filter(|m| suspect(m))
        .collect();
    if !resources.is_empty() {
        let word = if resources.iter().any(leaks) {
            "leaks"
        } else {
            "may leak (inconclusive)"
        };
        let names: Vec<&str> = resources.iter().map(|m| m.name()).collect();
        return Timing::Skipped {
            why: format!(
                "{word} {} per call: criterion would call it until the process runs out",
                names.join(" and ")
            ),
        };
    }
    let heap = [Metric::HeapBytes, Metric::HeapBlocks];
    if !heap.iter().any(suspect) {
        return Timing::Full;
    }
    let per_call = leak_per_call(run);
    let why = if heap.iter().any(leaks) {
        format!("leaks ~{} per call", format_bytes(per_call))
    } else {
        format!(
            "heap verdict inconclusive (up to ~{} per call)",
            format_bytes(per_call)
        )
    };
    if uncappable {
        return Timing::Skipped {
            why: format!("{why}; criterion's --quick and --profile-time cannot be capped"),
        };
    }
    let calls = ((budget as f64 / per_call).floor() as u64).min(MAX_CAPPED_CALLS);
    if calls < MIN_CAPPED_CALLS {
        return Timing::Skipped {
            why: format!(
                "{why}: {MIN_CAPPED_CALLS} calls would leak more than the budget of {}",
                format_bytes(budget as f64)
            ),
        };
    }
    Timing::Capped { calls, why }
}

/// Heap bytes a call may keep: the upper 95% bound of the live-heap slope (or of the blocks'
/// slope, at 16 bytes a block at least), and at least one byte.
fn leak_per_call(run: &Run) -> f64 {
    let upper = |m: Metric| {
        run.metrics.get(&m).map_or(0.0, |r| {
            let slope = r.slope().unwrap_or(0.0);
            r.ci.map_or(slope, |[_, hi]| hi.max(slope))
        })
    };
    upper(Metric::HeapBytes)
        .max(16.0 * upper(Metric::HeapBlocks))
        .max(1.0)
}

/// The calls left to a capped routine: at most `calls` in all, `per_sample` in one of
/// criterion's samples. Criterion asks for as many iterations as fit its measurement time; a
/// sample makes at most `per_sample` calls and reports the time of the iterations asked for at
/// the mean of the calls it made, so criterion's time per iteration is that of real calls.
#[derive(Debug)]
struct Cap {
    left: u64,
    per_sample: u64,
    made: u64,
    took: Duration,
}

impl Cap {
    fn new(calls: u64) -> Self {
        Cap {
            left: calls,
            per_sample: (calls.saturating_sub(1) / CAPPED_SAMPLES).max(1),
            made: 0,
            took: Duration::ZERO,
        }
    }

    /// Calls to make for a sample of `iters` iterations.
    fn take(&mut self, iters: u64) -> u64 {
        let n = iters.min(self.per_sample).min(self.left);
        self.left -= n;
        n
    }

    /// The time criterion gets for `iters` iterations when `n` calls took `took`.
    fn scale(&mut self, iters: u64, n: u64, took: Duration) -> Duration {
        self.made += n;
        self.took += took;
        let (calls, time) = if n > 0 {
            (n, took)
        } else {
            (self.made, self.took)
        };
        if calls == 0 {
            return Duration::ZERO;
        }
        let secs = time.as_secs_f64() * (iters as f64 / calls as f64);
        Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX)
    }
}

/// [`criterion_median`] of an estimate written at or after `since`.
fn fresh_median(dir: &Path, since: std::time::SystemTime) -> Option<f64> {
    let modified = std::fs::metadata(dir.join("new/estimates.json"))
        .and_then(|m| m.modified())
        .ok()?;
    // Coarse file-system clocks: a second of slack.
    (modified + Duration::from_secs(1) >= since).then(|| criterion_median(dir))?
}

/// One line of the summary table.
#[derive(Debug, Clone)]
struct Row {
    name: String,
    /// Time per iteration: criterion's median, or the profile's median when not timed.
    time_ms: Option<f64>,
    bytes: Option<f64>,
    allocations: Option<f64>,
    peak: Option<f64>,
    verdict: Verdict,
    /// The gating metrics that leak.
    leaking: Vec<&'static str>,
    /// Why the profile did not complete, if it did not.
    failure: Option<String>,
    /// How criterion timed it (the table's timing column).
    timing: String,
    /// Files written for it (report.json, memory.png).
    written: Vec<PathBuf>,
}

/// Benchmarks a group of routines for their memory over iterations (first), time (criterion,
/// as far as the memory verdict allows), and bytes and allocations per iteration.
pub struct MemoryBench {
    group: String,
    dir: PathBuf,
    bytes: Criterion<AllocatedBytes>,
    allocations: Criterion<Allocations>,
    filter: Option<String>,
    iterations: u32,
    leak_budget: u64,
    /// Criterion runs with `--quick` or `--profile-time`: calls cannot be capped.
    uncappable: bool,
    /// `MEMCREEP_FAIL_ON_LEAK` is set: `finish` exits the process on a leak.
    fail_on_leak: bool,
    /// Errors writing a profile's files, printed by `finish`.
    errors: Vec<String>,
    rows: Vec<Row>,
}

impl MemoryBench {
    /// A group called `group` (criterion's group name; results under `target/criterion/<group>`).
    /// Reads criterion's command line (the filter, `--quick`...) and `MEMCREEP_FAIL_ON_LEAK`.
    pub fn new(group: impl Into<String>) -> Self {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let mut bench = MemoryBench::in_dir(group, criterion_dir(), true);
        bench.filter = bench_filter(&args);
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
            filter: None,
            iterations: crate::engine::DEFAULT_ITERATIONS,
            leak_budget: DEFAULT_LEAK_BUDGET,
            uncappable: false,
            fail_on_leak: false,
            errors: Vec::new(),
            rows: Vec::new(),
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
        let id = format!("{}/{name}", self.group);
        self.filter.as_ref().is_none_or(|f| id.contains(f.as_str()))
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
        let group_dir = self.group.replace('/', "_");
        // Only estimates criterion writes from now on count (`--test` and `--list` write none,
        // and one left by an earlier `cargo bench` is not this run's).
        let since = std::time::SystemTime::now();
        let dir = self.dir.clone();
        let crit = |sub: &str| fresh_median(&dir.join(sub).join(name), since);
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
                let mut cap = Cap::new(*calls);
                let mut group = c.benchmark_group(&self.group);
                // One warm-up call (criterion's warm-up stops once its time has passed), then
                // ten samples of equal size, each capped.
                group
                    .warm_up_time(Duration::from_nanos(1))
                    .sample_size(CAPPED_SAMPLES as usize)
                    .sampling_mode(SamplingMode::Flat);
                group.bench_function(name, |b| {
                    b.iter_custom(|iters| {
                        let n = cap.take(iters);
                        let start = WallTime.start();
                        for _ in 0..n {
                            black_box(routine());
                        }
                        let took = WallTime.end(start);
                        cap.scale(iters, n, took)
                    })
                });
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
            peak: measure(Compared::Peak),
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

/// `MEMCREEP_FAIL_ON_LEAK` is set to something other than empty, `0`, `false` or `no`.
fn fail_on_leak_from_env() -> bool {
    std::env::var(FAIL_ON_LEAK_VAR).is_ok_and(|v| {
        let v = v.trim().to_ascii_lowercase();
        !matches!(v.as_str(), "" | "0" | "false" | "no")
    })
}

/// A failed profile beats a leak, which beats clean (as `profile`'s exit codes).
fn outcome(rows: &[Row]) -> Outcome {
    if rows.iter().any(|r| r.failure.is_some()) {
        Outcome::WorkloadFailed
    } else if rows.iter().any(|r| !r.leaking.is_empty()) {
        Outcome::Leak
    } else {
        Outcome::Clean
    }
}

/// Counted quantities of a deterministic routine vary little: short criterion runs suffice.
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

/// The benchmark filter criterion was given (`cargo bench -- <filter>`), if any.
fn bench_filter(args: &[String]) -> Option<String> {
    let mut args = args.iter();
    let mut filter = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            // Options of criterion's command line that take a value.
            "--save-baseline"
            | "--baseline"
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
            | "-c"
            | "--format" => {
                args.next();
            }
            a if a.starts_with('-') => {}
            a => filter = Some(a.to_string()),
        }
    }
    filter
}

/// Write `report.json` and `memory.png` under `dir`: the files written, and the errors.
fn write_memory(report: &Report, dir: &Path) -> (Vec<PathBuf>, Vec<crate::Error>) {
    let mut written = Vec::new();
    let mut errors = Vec::new();
    if let Err(source) = std::fs::create_dir_all(dir) {
        errors.push(crate::Error::Write {
            path: dir.to_path_buf(),
            source,
        });
        return (written, errors);
    }
    let json = dir.join("report.json");
    match report.write_json(&json) {
        Ok(()) => written.push(json),
        Err(e) => errors.push(e),
    }
    #[cfg(feature = "plot")]
    {
        let (pictures, failed) =
            crate::figure::write_plots_each(report, &dir.join("memory.png"), None);
        written.extend(pictures);
        errors.extend(failed);
    }
    (written, errors)
}

fn summary(group: &str, rows: &[Row], fail_on_leak: bool) -> String {
    let mut out = format!(
        "## Memory beside time: {group}\n\n| benchmark | time / iteration | allocated / iteration | allocations / iteration | heap peak | verdict | timing |\n|---|---|---|---|---|---|---|\n"
    );
    for r in rows {
        let verdict = match (&r.failure, r.leaking.is_empty()) {
            (Some(_), _) => format!("{}, failed", r.verdict.word()),
            (None, false) => format!("leak ({})", r.leaking.join(", ")),
            (None, true) => r.verdict.word().to_string(),
        };
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} | {} |\n",
            r.name,
            r.time_ms.map_or("–".into(), format_ms),
            r.bytes.map_or("–".into(), format_bytes),
            r.allocations
                .map_or("–".into(), |a| format_count(a.round())),
            r.peak.map_or("–".into(), format_bytes),
            verdict,
            r.timing,
        ));
    }
    out.push('\n');
    let names = |pick: &dyn Fn(&Row) -> bool| {
        rows.iter()
            .filter(|r| pick(r))
            .map(|r| format!("`{}`", r.name))
            .collect::<Vec<_>>()
    };
    let failed = names(&|r| r.failure.is_some());
    let leaking = names(&|r| r.failure.is_none() && !r.leaking.is_empty());
    for r in rows {
        if let Some(f) = &r.failure {
            out.push_str(&format!("`{}` failed: {f}\n", r.name));
        }
    }
    if leaking.is_empty() && failed.is_empty() {
        out.push_str(&format!(
            "No leaks: {} of {} benchmarks clean{}.\n",
            rows.iter().filter(|r| r.verdict == Verdict::Clean).count(),
            rows.len(),
            match rows.iter().any(|r| r.verdict == Verdict::Inconclusive) {
                true => ", the others inconclusive",
                false => "",
            }
        ));
        return out;
    }
    if !leaking.is_empty() {
        out.push_str(&format!(
            "**{} of {} benchmarks leak**: {}. Criterion timed {} on capped calls or not at \
             all (timing column), so that it cannot fill the memory.\n",
            leaking.len(),
            rows.len(),
            leaking.join(", "),
            if leaking.len() == 1 { "it" } else { "them" }
        ));
    }
    out.push_str(&if fail_on_leak {
        format!("{FAIL_ON_LEAK_VAR} is set: the bench exits with a failure.\n")
    } else {
        format!(
            "`cargo bench` still exits 0: set {FAIL_ON_LEAK_VAR}=1 to make it exit 1 on a leak \
             (3 on a panic).\n"
        )
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Failure, FailureKind, HeapScope, MetricReport, Shape};

    fn metric(verdict: Verdict, slope: f64) -> MetricReport {
        MetricReport {
            verdict,
            gating: true,
            slope_per_iteration: Some(slope),
            slope_per_second: None,
            ci: Some([slope * 0.9, slope * 1.1]),
            warmup: 0,
            p_value: None,
            shape: Shape::Linear,
            after_warmup: 0.0,
            end: 0.0,
            growth: 0.0,
            reason: String::new(),
        }
    }

    fn run(metrics: &[(Metric, Verdict, f64)]) -> Run {
        let mut run = Run::new("r", HeapScope::Process);
        for &(m, v, slope) in metrics {
            run.metrics.insert(m, metric(v, slope));
        }
        run
    }

    #[test]
    fn timing_follows_the_memory_verdict() {
        let clean = run(&[
            (Metric::HeapBytes, Verdict::Clean, 0.0),
            (Metric::Fds, Verdict::Clean, 0.0),
        ]);
        assert_eq!(timing(&clean, DEFAULT_LEAK_BUDGET, false), Timing::Full);

        // 1 KiB a call (upper bound 1126.4 B): 16 MiB / 1126.4 B = 14894 calls.
        let heap = run(&[
            (Metric::HeapBytes, Verdict::Leak, 1024.0),
            (Metric::HeapBlocks, Verdict::Leak, 1.0),
        ]);
        match timing(&heap, DEFAULT_LEAK_BUDGET, false) {
            Timing::Capped { calls, why } => {
                assert_eq!(calls, 14894);
                assert!(why.contains("leaks ~1.1 KiB per call"), "{why}");
            }
            other => panic!("{other:?}"),
        }
        // A 30-byte leak is capped at 100,000 calls, not 16 MiB / 33 B.
        let small = run(&[(Metric::HeapBytes, Verdict::Leak, 30.0)]);
        assert!(matches!(
            timing(&small, DEFAULT_LEAK_BUDGET, false),
            Timing::Capped {
                calls: MAX_CAPPED_CALLS,
                ..
            }
        ));
        // Inconclusive heap: capped too.
        let maybe = run(&[(Metric::HeapBytes, Verdict::Inconclusive, 100.0)]);
        assert!(matches!(
            timing(&maybe, DEFAULT_LEAK_BUDGET, false),
            Timing::Capped { .. }
        ));
        // 10 MiB a call: 11 calls would be over the budget.
        let big = run(&[(Metric::HeapBytes, Verdict::Leak, 10.0 * 1048576.0)]);
        assert!(matches!(
            timing(&big, DEFAULT_LEAK_BUDGET, false),
            Timing::Skipped { .. }
        ));
        // --quick cannot be capped.
        assert!(matches!(
            timing(&heap, DEFAULT_LEAK_BUDGET, true),
            Timing::Skipped { .. }
        ));
        // Descriptors and threads are never timed.
        let fds = run(&[
            (Metric::HeapBytes, Verdict::Clean, 0.0),
            (Metric::Fds, Verdict::Leak, 1.0),
        ]);
        let Timing::Skipped { why } = timing(&fds, DEFAULT_LEAK_BUDGET, false) else {
            panic!("fds leak timed");
        };
        assert!(why.starts_with("leaks fds per call"), "{why}");
        // Nor is a routine that panicked.
        let mut failed = clean.clone();
        failed.failure = Some(Failure::new(FailureKind::Panic, 3, "boom"));
        assert!(matches!(
            timing(&failed, DEFAULT_LEAK_BUDGET, false),
            Timing::Skipped { .. }
        ));
        // A leak that does not gate (RSS) does not limit the timing.
        let mut rss = run(&[(Metric::RssBytes, Verdict::Leak, 4096.0)]);
        rss.metrics.get_mut(&Metric::RssBytes).unwrap().gating = false;
        assert_eq!(timing(&rss, DEFAULT_LEAK_BUDGET, false), Timing::Full);
    }

    #[test]
    fn a_cap_bounds_the_calls_criterion_asks_for() {
        let mut cap = Cap::new(16384);
        // Criterion: one warm-up iteration, then ten flat samples of 40,000 iterations.
        let mut calls = 0;
        let n = cap.take(1);
        assert_eq!(
            cap.scale(1, n, Duration::from_micros(3)),
            Duration::from_micros(3)
        );
        calls += n;
        for _ in 0..10 {
            let n = cap.take(40_000);
            assert_eq!(n, 1638);
            calls += n;
            // Each call takes 2 us: criterion is told 40,000 iterations took 80 ms.
            let told = cap.scale(40_000, n, Duration::from_micros(2) * n as u32);
            assert!((told.as_secs_f64() - 0.080).abs() < 1e-9, "{told:?}");
        }
        assert_eq!(calls, 16381);
        assert!(calls <= 16384);
        // Asked for more than is left: at most what is left, then none; the time stays the
        // mean of the calls made.
        let n = cap.take(40_000);
        assert_eq!(n, 3);
        cap.scale(40_000, n, Duration::from_micros(6));
        assert_eq!(cap.take(40_000), 0);
        let told = cap.scale(1000, 0, Duration::ZERO);
        assert!(told > Duration::from_micros(1900) && told < Duration::from_micros(2100));
        assert_eq!(cap.scale(0, 0, Duration::ZERO), Duration::ZERO);
    }

    fn row(name: &str, time_ms: Option<f64>, leaking: Vec<&'static str>) -> Row {
        Row {
            name: name.to_string(),
            time_ms,
            bytes: Some(1024.0),
            allocations: Some(1.0),
            peak: Some(64.0),
            verdict: if leaking.is_empty() {
                Verdict::Clean
            } else {
                Verdict::Leak
            },
            leaking,
            failure: None,
            timing: "criterion".to_string(),
            written: Vec::new(),
        }
    }

    #[test]
    fn the_summary_shows_short_times_in_ns_and_says_a_leak_exits_0() {
        let rows = vec![
            row("fast", Some(0.000_3), vec![]),
            row("slow", Some(1.5), vec![]),
            row("leaky", None, vec!["heap_bytes"]),
        ];
        let table = summary("g", &rows, false);
        assert!(table.contains("| `fast` | 300 ns |"), "{table}");
        assert!(table.contains("| `slow` | 1.5 ms |"), "{table}");
        assert!(table.contains("| `leaky` | – |"), "{table}");
        assert!(
            table.contains("| leak (heap_bytes) | criterion |"),
            "{table}"
        );
        assert!(
            table.contains("**1 of 3 benchmarks leak**: `leaky`"),
            "{table}"
        );
        assert!(
            table.contains("`cargo bench` still exits 0: set MEMCREEP_FAIL_ON_LEAK=1"),
            "{table}"
        );
        assert_eq!(outcome(&rows), Outcome::Leak);
        let set = summary("g", &rows, true);
        assert!(set.contains("MEMCREEP_FAIL_ON_LEAK is set"), "{set}");

        let clean = vec![row("fast", Some(0.000_3), vec![])];
        assert!(summary("g", &clean, false).contains("No leaks: 1 of 1 benchmarks clean."));
        assert_eq!(outcome(&clean), Outcome::Clean);
    }

    #[test]
    fn the_filter_skips_criterion_options_and_their_values() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            bench_filter(&args(&["--bench", "--sample-size", "10", "box"])).as_deref(),
            Some("box")
        );
        assert_eq!(
            bench_filter(&args(&["--bench", "--profile-time", "5"])),
            None
        );
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
