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
        {
            let mut group = c.benchmark_group(&group_name);
            for &n in sizes {
                let mut routine = setup(n);
                group.throughput(Throughput::Elements(n));
                group.bench_function(BenchmarkId::from_parameter(n), |b| b.iter(&mut routine));
            }
            group.finish();
        }
        let run = &report.runs[0];
        let sweep = run.sweep.as_ref();
        let largest = sweep.and_then(|s| s.points.last());
        let time_ms = largest.and_then(|p| {
            let dir = self
                .dir
                .join(group_name.replace('/', "_"))
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
        self.push_sized_row(
            name,
            &report,
            time_ms,
            leaking,
            format!("criterion at each size (shown: n = {at}); memory against n: {classes}"),
        );
    }

    /// The largest growth class [`MemoryBench::bench_sizes`]'s heap peak and retained bytes
    /// may have: above it the group leaks (exit 1 with `MEMCREEP_FAIL_ON_LEAK`).
    pub fn max_complexity(mut self, class: Complexity) -> Self {
        self.max_complexity = Some(class);
        self
    }
}
