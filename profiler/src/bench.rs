// Owns the criterion integration: measurements of bytes and allocations per iteration, and a
// memory profile of each benchmark written beside criterion's output. Must never time anything.

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
//!     memory.finish(); // prints the table, writes memory-summary.md
//! }
//! ```
//!
//! For each benchmark this gives criterion's time per iteration, criterion estimates of bytes
//! allocated and allocations per iteration ([`AllocatedBytes`], [`Allocations`]: custom
//! criterion measurements), and the toolkit's memory profile of the same code (20 iterations,
//! verdicts, `report.json` and `memory.png`) in `target/criterion/<group>/<bench>/memory/`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::Criterion;
use criterion::Throughput;
use criterion::measurement::{Measurement, ValueFormatter};

use crate::alloc;
use crate::format::{byte_unit, format_bytes, format_count, format_ms};
use crate::model::Verdict;
use crate::profiler::Profiler;
use crate::report::{Report, write_atomic};

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

/// One line of the summary table.
#[derive(Debug, Clone)]
struct Row {
    name: String,
    time_ns: Option<f64>,
    bytes: Option<f64>,
    allocations: Option<f64>,
    peak: Option<f64>,
    verdict: Verdict,
    note: String,
}

/// Benchmarks a group of routines for time (criterion), bytes and allocations per iteration
/// (criterion, custom measurements) and profiles their memory over iterations.
pub struct MemoryBench {
    group: String,
    dir: PathBuf,
    bytes: Criterion<AllocatedBytes>,
    allocations: Criterion<Allocations>,
    filter: Option<String>,
    iterations: u32,
    rows: Vec<Row>,
}

impl MemoryBench {
    /// A group called `group` (criterion's group name; results under `target/criterion/<group>`).
    pub fn new(group: impl Into<String>) -> Self {
        let dir = criterion_dir();
        MemoryBench {
            group: group.into(),
            bytes: quick(Criterion::default().with_measurement(AllocatedBytes), &dir),
            allocations: quick(Criterion::default().with_measurement(Allocations), &dir),
            dir,
            filter: bench_filter(),
            iterations: crate::engine::DEFAULT_ITERATIONS,
            rows: Vec::new(),
        }
    }

    /// Iterations of the memory profile (default 20; the verdict may extend).
    pub fn iterations(mut self, n: u32) -> Self {
        self.iterations = n;
        self
    }

    fn selected(&self, name: &str) -> bool {
        let id = format!("{}/{name}", self.group);
        self.filter.as_ref().is_none_or(|f| id.contains(f.as_str()))
    }

    /// Time `routine` with `c`, measure its bytes and allocations per iteration, and profile
    /// its memory over iterations.
    pub fn bench<R>(&mut self, c: &mut Criterion, name: &str, mut routine: impl FnMut() -> R) {
        if !self.selected(name) {
            return;
        }
        c.benchmark_group(&self.group)
            .bench_function(name, |b| b.iter(&mut routine));
        self.bytes
            .benchmark_group(format!("{}/allocated", self.group))
            .bench_function(name, |b| b.iter(&mut routine));
        self.allocations
            .benchmark_group(format!("{}/allocations", self.group))
            .bench_function(name, |b| b.iter(&mut routine));
        self.profile(name, routine, String::new());
    }

    /// Profile memory only, without criterion (for code that leaks threads or descriptors:
    /// criterion would run it until the process runs out of them). `why` is shown in the table.
    pub fn profile_only<R>(&mut self, name: &str, routine: impl FnMut() -> R, why: &str) {
        if self.selected(name) {
            self.profile(name, routine, why.to_string());
        }
    }

    fn profile<R>(&mut self, name: &str, routine: impl FnMut() -> R, note: String) {
        let report = Profiler::new(name).iterations(self.iterations).run(routine);
        let out = self.dir.join(&self.group).join(name).join("memory");
        if let Err(e) = write_memory(&report, &out) {
            eprintln!("profiler: {e}");
        }
        let run = &report.runs[0];
        let crit = |sub: &str| criterion_median(&self.dir.join(sub).join(name));
        let group_dir = self.group.replace('/', "_");
        self.rows.push(Row {
            name: name.to_string(),
            time_ns: crit(&group_dir),
            bytes: crit(&format!("{group_dir}_allocated"))
                .or_else(|| crate::baseline::measure(run, crate::baseline::Compared::Allocated)),
            allocations: crit(&format!("{group_dir}_allocations"))
                .or_else(|| crate::baseline::measure(run, crate::baseline::Compared::Allocations)),
            peak: crate::baseline::measure(run, crate::baseline::Compared::Peak),
            verdict: run.verdict,
            note,
        });
    }

    /// Print the summary table and write it as `target/criterion/<group>/memory-summary.md`.
    pub fn finish(self) {
        if self.rows.is_empty() {
            return;
        }
        let table = summary(&self.group, &self.rows);
        println!("\n{table}");
        let path = self.dir.join(&self.group).join("memory-summary.md");
        match write_atomic(&path, table.as_bytes()) {
            Ok(()) => println!("memory summary: {}", path.display()),
            Err(e) => eprintln!("profiler: {e}"),
        }
    }
}

/// Counted quantities of a deterministic routine vary little: short criterion runs suffice.
fn quick<M: Measurement>(c: Criterion<M>, dir: &Path) -> Criterion<M> {
    c.output_directory(dir)
        .warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_millis(400))
        .sample_size(10)
        .without_plots()
        .configure_from_args()
}

/// The benchmark filter criterion was given (`cargo bench -- <filter>`), if any.
fn bench_filter() -> Option<String> {
    let mut args = std::env::args().skip(1);
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

fn write_memory(report: &Report, dir: &Path) -> Result<(), crate::Error> {
    std::fs::create_dir_all(dir).map_err(|source| crate::Error::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    report.write_json(dir.join("report.json"))?;
    #[cfg(feature = "plot")]
    crate::figure::write_plots(report, &dir.join("memory.png"), None)?;
    Ok(())
}

fn summary(group: &str, rows: &[Row]) -> String {
    let mut out = format!(
        "## Memory beside time: {group}\n\n| benchmark | time / iteration | allocated / iteration | allocations / iteration | heap peak | verdict |\n|---|---|---|---|---|---|\n"
    );
    for r in rows {
        let time = r.time_ns.map_or_else(
            || {
                if r.note.is_empty() {
                    "–".to_string()
                } else {
                    format!("not timed: {}", r.note)
                }
            },
            |ns| format_ms(ns / 1e6),
        );
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} |\n",
            r.name,
            time,
            r.bytes.map_or("–".into(), format_bytes),
            r.allocations
                .map_or("–".into(), |a| format_count(a.round())),
            r.peak.map_or("–".into(), format_bytes),
            r.verdict.word()
        ));
    }
    out
}
