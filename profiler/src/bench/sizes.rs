// Owns a criterion group over input sizes with memory against size beside it: the sweep first
// (its report and figure), then criterion's time at each size. Never reads a clock of its own.

use criterion::{BenchmarkId, Criterion, Throughput};

use super::MemoryBench;
use super::summary::fresh_median;
use crate::model::{Complexity, SWEEP_FIELDS};
use crate::profiler::Profiler;

impl MemoryBench {
    /// Memory and time against input size. For each of `sizes`, `setup(n)` builds the input
    /// for n (unmeasured) and returns the routine to measure on it. First the sweep: heap
    /// peak, retained and allocated bytes, allocations and time per size, each fitted to a
    /// growth class (written as `<group>/<name>/memory/report.json` and `memory.png`, memory
    /// against n on log–log axes); then criterion times the routine at every size as one
    /// group, `<group>/<name>/<n>`, with `n` elements of throughput. The summary row shows
    /// the largest size; a routine that keeps memory growing with its input, or whose class
    /// is above [`MemoryBench::max_complexity`], counts as a leak of the group.
    ///
    /// ```no_run
    /// # use criterion::Criterion;
    /// # let mut c = Criterion::default();
    /// let mut memory = profiler::bench::MemoryBench::new("sorting");
    /// memory.bench_sizes(&mut c, "sort", &[1_000, 10_000, 100_000], |n| {
    ///     let input: Vec<u64> = (0..n).rev().collect();
    ///     move || {
    ///         let mut v = input.clone();
    ///         v.sort_unstable();
    ///         v
    ///     }
    /// });
    /// memory.finish();
    /// ```
    pub fn bench_sizes<F, R>(
        &mut self,
        c: &mut Criterion,
        name: &str,
        sizes: &[u64],
        mut setup: impl FnMut(u64) -> F,
    ) where
        F: FnMut() -> R,
    {
        if !self.selected(name) {
            return;
        }
        let mut profiler = Profiler::new(name);
        if let Some(max) = self.max_complexity {
            profiler = profiler.max_complexity(max);
        }
        let report = profiler.sweep(sizes, &mut setup);
        let since = std::time::SystemTime::now();
        let group_name = format!("{}/{name}", self.group);
        let run = &report.runs[0];
        let sweep = run.sweep.as_ref();
        // A routine that keeps memory per call is timed on capped calls at each size, as
        // `bench` does, or not at all: criterion timed it in full, and one keeping a copy of
        // its 100k-element input per call took the process to 3.1 GiB.
        let retains = sweep.is_some_and(|s| s.retains_input().is_some());
        let mut skipped = Vec::new();
        let mut capped_at = Vec::new();
        {
            let mut group = c.benchmark_group(&group_name);
            if retains {
                super::capped_group(&mut group);
            }
            for &n in sizes {
                let mut routine = setup(n);
                group.throughput(Throughput::Elements(n));
                if !retains {
                    group.bench_function(BenchmarkId::from_parameter(n), |b| b.iter(&mut routine));
                    continue;
                }
                let per_call = sweep
                    .and_then(|s| s.points.iter().find(|p| p.size == n))
                    .and_then(|p| p.retained_bytes)
                    .map_or(1.0, |b| b as f64);
                let why = format!("keeps ~{} per call", crate::format::format_bytes(per_call));
                match super::timing::capped(per_call, self.leak_budget, self.uncappable, why) {
                    super::timing::Timing::Capped { calls, .. } => {
                        group.bench_function(
                            BenchmarkId::from_parameter(n),
                            super::capped_timing(calls, &mut routine),
                        );
                        capped_at.push(format!("{calls} calls at n = {}", crate::sizes::short(n)));
                    }
                    super::timing::Timing::Skipped { why } => {
                        skipped.push(format!("n = {}: {why}", crate::sizes::short(n)));
                    }
                    super::timing::Timing::Full => {}
                }
            }
            group.finish();
        }
        let largest = sweep.and_then(|s| s.points.last());
        let time_ms = largest.and_then(|p| {
            let dir = self
                .dir
                .join(super::filename_safe(&group_name))
                .join(p.size.to_string());
            fresh_median(&dir, since).map(|ns| ns / 1e6)
        });
        let mut leaking: Vec<&'static str> = Vec::new();
        if let Some(s) = sweep {
            if s.retains_input().is_some() {
                leaking.push("retained_bytes");
            }
            let above = s.above_limit();
            for field in SWEEP_FIELDS {
                if above.contains(&field) && !leaking.contains(&field) {
                    leaking.push(field);
                }
            }
        }
        let classes = sweep
            .map(|s| {
                s.gated
                    .iter()
                    .filter_map(|f| {
                        let fit = s.fit(f)?;
                        let class = fit.model.map_or("cannot tell".into(), |m| m.to_string());
                        Some(format!("{f} {class}"))
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        let at = largest.map_or(String::new(), |p| crate::sizes::short(p.size));
        let mut how = if retains {
            let mut parts = Vec::new();
            if !capped_at.is_empty() {
                parts.push(format!("capped at {}", capped_at.join(", ")));
            }
            if !skipped.is_empty() {
                parts.push(format!("not timed at {}", skipped.join("; ")));
            }
            format!("criterion, {} (it keeps memory per call)", parts.join("; "))
        } else {
            "criterion at each size".to_string()
        };
        how.push_str(&format!(" (shown: n = {at}); memory against n: {classes}"));
        self.push_sized_row(name, &report, time_ms, leaking, how);
    }

    /// The largest growth class [`MemoryBench::bench_sizes`]'s heap peak and retained bytes
    /// may have: above it the group leaks (exit 1 with `MEMCREEP_FAIL_ON_LEAK`).
    pub fn max_complexity(mut self, class: Complexity) -> Self {
        self.max_complexity = Some(class);
        self
    }
}
