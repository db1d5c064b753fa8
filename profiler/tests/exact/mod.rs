//! The exact-count checks of `profiler::Alloc`, shared by the test binaries that install it
//! over the system allocator (heap_counts.rs) and over another one (inner_allocator.rs): the
//! counts must not depend on what serves the memory.

use profiler::alloc::{self, HeapCounters};
use profiler::{Metric, Profiler, Verdict};

fn now() -> HeapCounters {
    alloc::heap().expect("profiler::Alloc is installed in this test binary")
}

/// Wait until every thread a previous check started has exited. `thread::scope` and a join
/// return once a thread's closure is done, before its exit destructors free what the thread
/// kept for itself (its handle's 136 B): freed inside the next check's window, they were
/// counted there (-50,136 for -50,000, once in CI).
fn settle_threads() {
    for _ in 0..1000 {
        let tasks = std::fs::read_dir("/proc/self/task").map_or(1, |d| d.count());
        if tasks <= 1 {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

fn delta(before: HeapCounters) -> (i64, i64, i64, i64) {
    let after = now();
    (
        after.live_bytes - before.live_bytes,
        after.live_blocks - before.live_blocks,
        after.allocations - before.allocations,
        after.allocated_bytes - before.allocated_bytes,
    )
}

pub fn heap_counts_are_exact() {
    let checks: [fn(); 11] = [
        known_pattern,
        realloc_and_zeroed,
        peak_within_a_window,
        producer_consumer_peak,
        resets_race_publishing_threads,
        frees_on_another_thread_net_out,
        exited_threads_keep_their_counts,
        untracked_work_is_invisible,
        workload_threads_are_counted,
        a_panicking_workload_keeps_its_samples,
        an_empty_workload_has_zero_heap_growth,
    ];
    for check in checks {
        settle_threads();
        check();
    }
}

fn known_pattern() {
    let before = now();
    let boxes: Vec<Box<[u8; 1000]>> = (0..100).map(|_| Box::new([0u8; 1000])).collect();
    // 100 boxes + the Vec's buffer of 100 pointers.
    let vec_bytes = 100 * std::mem::size_of::<usize>() as i64;
    assert_eq!(
        delta(before),
        (100_000 + vec_bytes, 101, 101, 100_000 + vec_bytes)
    );
    let before = now();
    drop(boxes);
    assert_eq!(delta(before), (-100_000 - vec_bytes, -101, 0, 0));
}

fn realloc_and_zeroed() {
    let before = now();
    let mut v: Vec<u8> = Vec::with_capacity(1000);
    v.reserve_exact(3000); // realloc 1000 -> 3000
    assert_eq!(delta(before), (3000, 1, 2, 4000));
    let z = vec![0u64; 512]; // alloc_zeroed
    assert_eq!(delta(before), (3000 + 4096, 2, 3, 4000 + 4096));
    drop((v, z));
    assert_eq!(delta(before).0, 0);
}

fn peak_within_a_window() {
    alloc::reset_peak();
    let base = now().live_bytes;
    {
        let big = vec![1u8; 1 << 20];
        std::hint::black_box(&big);
    }
    let small = vec![1u8; 1000];
    let peak = now().peak_bytes;
    assert_eq!(peak, base + (1 << 20), "peak is exact on one thread");
    drop(small);
}

/// A producer allocates what a consumer frees: each thread's own live bytes only go one way,
/// so the sum of per-thread peaks says the whole traffic (20 MiB here) was live at once. The
/// reported peak keeps within a check's reach of the true one (a few KiB in the channel).
fn producer_consumer_peak() {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Box<[u8; 1024]>>(8);
    let consumer = std::thread::spawn(move || {
        while let Ok(b) = rx.recv() {
            drop(b)
        }
    });
    tx.send(Box::new([0u8; 1024])).unwrap(); // the consumer is up and has allocated
    alloc::reset_peak();
    let base = now().live_bytes;
    for _ in 0..20_000 {
        tx.send(Box::new([1u8; 1024])).unwrap();
    }
    let above = now().peak_bytes - base;
    let per_thread_peaks: i64 = 20_000 * 1024;
    // What the producer may hold unpublished, and what it published before the consumer's
    // frees of it were: a check's reach each; and the boxes in the channel.
    let reach = alloc::CHECK_EVERY + alloc::PUBLISH_BEYOND;
    assert!(
        (1024..=2 * reach + (64 << 10)).contains(&above),
        "peak {above} B above the start, {per_thread_peaks} B by per-thread peaks"
    );
    drop(tx);
    consumer.join().unwrap();
}

/// Resets from two threads at once while three others allocate and free across their checks
/// (publishing) and reads go on: nothing deadlocks, and once they are done the peak of one
/// thread's window is exact again (the resets left no slot's published share behind).
fn resets_race_publishing_threads() {
    use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| {
                let mut kept = Vec::new();
                while !stop.load(Relaxed) {
                    kept.push(vec![0u8; 4096]);
                    if kept.len() > 600 {
                        kept.clear();
                    }
                }
            });
        }
        s.spawn(|| {
            while !stop.load(Relaxed) {
                alloc::reset_peak();
            }
        });
        for _ in 0..300 {
            alloc::reset_peak();
            std::hint::black_box(now());
        }
        stop.store(true, Relaxed);
    });
    alloc::reset_peak();
    let base = now().live_bytes;
    drop(std::hint::black_box(vec![1u8; 3 << 20]));
    assert_eq!(
        now().peak_bytes,
        base + (3 << 20),
        "exact again on one thread"
    );
}

fn frees_on_another_thread_net_out() {
    let data = vec![5u8; 50_000];
    let before = now();
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let consumer = std::thread::spawn(move || drop(rx.recv().unwrap()));
    tx.send(data).unwrap();
    consumer.join().unwrap();
    drop(tx);
    let after = now();
    // The thread's own bookkeeping is freed at exit; the 50,000 B freed there count.
    assert_eq!(after.live_bytes - before.live_bytes, -50_000);
}

fn exited_threads_keep_their_counts() {
    let before = now();
    let kept: Box<[u8; 4096]> = std::thread::spawn(|| Box::new([9u8; 4096])).join().unwrap();
    let d = delta(before);
    assert_eq!(
        (d.0, d.1),
        (4096, 1),
        "the exited thread's allocation is still counted"
    );
    drop(kept);
    assert_eq!(delta(before).0, 0);
}

fn untracked_work_is_invisible() {
    let before = now();
    alloc::untracked(|| {
        let v = vec![0u8; 10_000];
        std::hint::black_box(&v);
    });
    assert_eq!(delta(before), (0, 0, 0, 0));
}

fn workload_threads_are_counted() {
    let report = Profiler::new("threads-leak-heap")
        .iterations(10)
        .extend(false)
        .run(|| {
            std::thread::spawn(|| {
                Box::leak(Box::new([0u8; 512]));
            })
            .join()
            .unwrap();
        });
    let run = &report.runs[0];
    let blocks: Vec<i64> = run.samples.iter().map(|s| s.heap_blocks.unwrap()).collect();
    let steps: Vec<i64> = blocks.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        steps.iter().all(|&s| s == 1),
        "one leaked block per iteration: {steps:?}"
    );
    assert_eq!(run.metrics[&Metric::HeapBlocks].verdict, Verdict::Leak);
    assert_eq!(run.samples.last().unwrap().threads, run.samples[0].threads);
}

fn a_panicking_workload_keeps_its_samples() {
    let mut n = 0;
    // The panic is on purpose: keep its message and backtrace out of a passing run's output.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let report = Profiler::new("panics").iterations(10).run(|| {
        n += 1;
        if n == 4 {
            panic!("bad record {n}");
        }
    });
    std::panic::set_hook(hook);
    let run = &report.runs[0];
    let failure = run.failure.as_ref().expect("the panic is reported");
    assert_eq!(failure.iteration, 4);
    assert_eq!(failure.message, "bad record 4");
    assert_eq!(run.iterations, 3);
    assert_eq!(run.samples.len(), 4, "the baseline and three iterations");
    assert!(report.failed());
}

fn an_empty_workload_has_zero_heap_growth() {
    let report = Profiler::new("empty")
        .iterations(30)
        .interval(std::time::Duration::from_millis(1))
        .run(|| {});
    let run = &report.runs[0];
    for s in &run.samples {
        assert_eq!(
            s.heap_bytes, run.samples[0].heap_bytes,
            "sample {}",
            s.iteration
        );
        assert_eq!(
            s.heap_blocks, run.samples[0].heap_blocks,
            "sample {}",
            s.iteration
        );
        if s.iteration > 0 {
            assert_eq!(s.allocations, Some(0), "sample {}", s.iteration);
        }
    }
    assert_eq!(
        run.threads_series(),
        vec![run.samples[0].threads.unwrap(); run.samples.len()]
    );
}

trait Threads {
    fn threads_series(&self) -> Vec<u64>;
}

impl Threads for profiler::Run {
    fn threads_series(&self) -> Vec<u64> {
        self.samples.iter().map(|s| s.threads.unwrap()).collect()
    }
}
