//! The profiler's own cost, measured side by side in one run:
//! - the counting allocator against the system allocator on allocation-heavy loops, 1 and 2
//!   threads (the global allocator of this binary switches between the two at run time, so
//!   both sides pay the same switch);
//! - one full sample (heap counters + RSS + fds + threads), /proc fast path against sysinfo;
//! - the verdict on 20, 160 and 10,000 samples.
//!
//! Run: `cargo bench --bench overhead`; the ratios are printed at the end.
//!
//! Instruction counts, repeatable where timings are noisy: `OVERHEAD_CALLGRIND=system` or
//! `=profiler` runs only `OVERHEAD_ITERS` (default 100) rounds of the mixed loop on one thread
//! on that side, without criterion. Under `valgrind --tool=callgrind`, the difference of two
//! runs with different `OVERHEAD_ITERS` over 20,000 x their difference is the instructions per
//! allocation+free pair (the bench binary is `target/release/deps/overhead-*`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bench_suite::alloc_loop;
use criterion::{BenchmarkId, Criterion, criterion_group};
use profiler::bench::{criterion_dir, criterion_median as median_ns};
use profiler::probe::{Backend, Probe, Target};
use profiler::verdict::{Thresholds, judge};

/// Forwards to profiler::Alloc or to System, chosen at run time.
struct Switch;

static COUNTING: AtomicBool = AtomicBool::new(false);
static PROFILER: profiler::Alloc = profiler::Alloc::new();

unsafe impl GlobalAlloc for Switch {
    #[inline]
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            unsafe { PROFILER.alloc(l) }
        } else {
            unsafe { System.alloc(l) }
        }
    }
    #[inline]
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            unsafe { PROFILER.alloc_zeroed(l) }
        } else {
            unsafe { System.alloc_zeroed(l) }
        }
    }
    #[inline]
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // Both sides free through System: profiler::Alloc forwards there too.
        if COUNTING.load(Ordering::Relaxed) {
            unsafe { PROFILER.dealloc(p, l) }
        } else {
            unsafe { System.dealloc(p, l) }
        }
    }
    #[inline]
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            unsafe { PROFILER.realloc(p, l, n) }
        } else {
            unsafe { System.realloc(p, l, n) }
        }
    }
}

#[global_allocator]
static GLOBAL: Switch = Switch;

/// 20,000 allocations of 8..512 B with a rotating live set of 256 blocks (the same loop as the
/// whole-process comparison, `bench_suite::alloc_loop`).
fn mixed_sizes(seed: u64) {
    alloc_loop::mixed(20_000, seed);
}

/// A HashMap of 1,000 String values with 10,000 inserts and removes.
fn hashmap_churn(seed: u64) {
    alloc_loop::hashmap(10_000, seed);
}

/// Time `iters` rounds of `work` on `threads` threads under the chosen allocator.
fn timed(counting: bool, threads: usize, iters: u64, work: fn(u64)) -> Duration {
    COUNTING.store(counting, Ordering::SeqCst);
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            s.spawn(move || {
                for i in 0..iters {
                    work(i * 31 + t as u64);
                }
            });
        }
    });
    let elapsed = start.elapsed();
    COUNTING.store(false, Ordering::SeqCst);
    elapsed
}

fn allocator(c: &mut Criterion) {
    type Loop = (&'static str, fn(u64));
    let loops: [Loop; 2] = [
        ("mixed_8_512", mixed_sizes),
        ("hashmap_churn", hashmap_churn),
    ];
    for (name, work) in loops {
        let mut group = c.benchmark_group(format!("allocator/{name}"));
        for threads in [1usize, 2] {
            for (label, counting) in [("system", false), ("profiler", true)] {
                group.bench_with_input(
                    BenchmarkId::new(label, format!("{threads}_threads")),
                    &threads,
                    |b, &threads| b.iter_custom(|iters| timed(counting, threads, iters, work)),
                );
            }
        }
        group.finish();
    }
}

fn sample(c: &mut Criterion) {
    COUNTING.store(true, Ordering::SeqCst);
    let mut group = c.benchmark_group("sample");
    let mut procfs = Probe::with_backend(Target::Current, Backend::Procfs);
    group.bench_function("full_procfs", |b| {
        b.iter(|| {
            let heap = profiler::alloc::heap();
            let stats = procfs.read();
            profiler::alloc::reset_peak();
            black_box((heap, stats))
        })
    });
    let mut sysinfo = Probe::with_backend(Target::Current, Backend::Sysinfo);
    group.bench_function("full_sysinfo", |b| {
        b.iter(|| {
            let heap = profiler::alloc::heap();
            let stats = sysinfo.read();
            profiler::alloc::reset_peak();
            black_box((heap, stats))
        })
    });
    group.bench_function("heap_counters_only", |b| {
        b.iter(|| black_box(profiler::alloc::heap()))
    });
    group.finish();
    COUNTING.store(false, Ordering::SeqCst);
}

fn verdict(c: &mut Criterion) {
    let mut group = c.benchmark_group("verdict");
    for n in [20usize, 160, 10_000] {
        // A noisy plateau: the most common series, and the one that exercises every rule.
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let series: Vec<f64> = (0..=n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                1e6 + (x % 65_536) as f64
            })
            .collect();
        let th = Thresholds::heap_bytes(1e6);
        group.bench_with_input(BenchmarkId::new("judge", n), &series, |b, s| {
            b.iter(|| black_box(judge(s, &th, None)))
        });
    }
    group.finish();
}

/// Print System vs profiler::Alloc ratios from criterion's estimates, and the report's size.
fn ratios() {
    let root = criterion_dir();
    println!("\nallocator cost, profiler::Alloc / System (median time ratio):");
    for name in ["mixed_8_512", "hashmap_churn"] {
        for threads in ["1_threads", "2_threads"] {
            let read =
                |side: &str| median_ns(&root.join(format!("allocator_{name}/{side}/{threads}")));
            if let (Some(sys), Some(prof)) = (read("system"), read("profiler")) {
                println!("  {name:<14} {threads:<10} {:.3}x", prof / sys);
            }
        }
    }
    for (name, dir) in [
        ("one sample (/proc)", "sample/full_procfs"),
        ("one sample (sysinfo)", "sample/full_sysinfo"),
        ("judge 160 samples", "verdict/judge/160"),
    ] {
        if let Some(ns) = median_ns(&root.join(dir)) {
            println!("  {name:<22} {:.1} us", ns / 1e3);
        }
    }
    // Report size: a real run's JSON, per boundary sample.
    COUNTING.store(true, Ordering::SeqCst);
    let report = profiler::Profiler::new("size")
        .iterations(1000)
        .extend(false)
        .run(|| vec![0u8; 100]);
    COUNTING.store(false, Ordering::SeqCst);
    let json = report.to_json().map_or(0, |j| j.len()) as f64;
    let samples = report.runs[0].samples.len() as f64;
    println!(
        "  report size            {:.0} B of JSON per sample ({} samples), {} B in memory per sample",
        json / samples,
        samples,
        std::mem::size_of::<profiler::Sample>()
    );
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30)
        .configure_from_args()
}

criterion_group! { name = benches; config = config(); targets = allocator, sample, verdict }

fn main() {
    if let Ok(side) = std::env::var("OVERHEAD_CALLGRIND") {
        let iters = std::env::var("OVERHEAD_ITERS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(100);
        timed(side == "profiler", 1, iters, mixed_sizes);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
    ratios();
}
