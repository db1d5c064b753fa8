//! A leak must outlast the iterations. Memory another thread holds for a while (a batching
//! logger's buffer, emptied every 10 ms; a detached thread that sleeps 30 ms, then ends)
//! grows with a run too short for that thread to act, then goes back once the iterations stop:
//! no leak. Growth kept after that is not cleared: a leak beside such a backlog stays at
//! least undecided.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use profiler::{Metric, Profiler, Report, Verdict};

#[global_allocator]
static ALLOC: profiler::Alloc = profiler::Alloc::new();

/// A logger whose lines a thread of its own drops every 10 ms.
fn batching_logger() -> Arc<Mutex<Vec<String>>> {
    let buffer = Arc::new(Mutex::new(Vec::new()));
    let flushed = Arc::clone(&buffer);
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_millis(10));
            drop(std::mem::take(&mut *flushed.lock().unwrap()));
        }
    });
    buffer
}

fn verdict(report: &Report, metric: Metric) -> (Verdict, profiler::model::Shape, String) {
    let m = &report.runs[0].metrics[&metric];
    (m.verdict, m.shape, m.reason.clone())
}

// One test: the process's heap and threads are the measure, and a test beside it would move them.
#[test]
fn growth_given_back_once_idle_is_no_leak_and_growth_kept_is_not_cleared() {
    a_batching_logger_is_not_a_leak();
    detached_threads_that_end_are_not_a_leak();
    a_leak_beside_a_backlog_is_not_cleared();
    a_leak_beside_a_batch_held_and_freed_is_not_released();
    a_leak_beside_a_backlog_flushed_less_often_than_a_look_is_not_released();
    a_cache_filling_up_is_not_made_a_leak_by_the_looks();
}

fn a_batching_logger_is_not_a_leak() {
    let log = batching_logger();
    let report = Profiler::new("logger").iterations(20).run(|| {
        let line = format!("parsed {} pairs", std::hint::black_box(2));
        log.lock().unwrap().push(line);
    });
    // A line per iteration: a block a leak would keep (the bytes, 53 B, are under the
    // threshold of a leak either way). Seen as a leak, it is looked at again alone, where the
    // looks find it released; a run in place that caught the logger flushing once sees a
    // single drop, which cannot be told yet (inconclusive). Never a leak.
    for metric in [Metric::HeapBytes, Metric::HeapBlocks] {
        let (verdict, _, reason) = verdict(&report, metric);
        assert_ne!(verdict, Verdict::Leak, "{metric}: {reason}");
    }
}

fn detached_threads_that_end_are_not_a_leak() {
    let report = Profiler::new("detached").iterations(20).run(|| {
        std::thread::spawn(|| {
            std::thread::sleep(Duration::from_millis(30));
            std::hint::black_box(vec![1u8; 100]).len()
        });
    });
    // Released at the last look, or a sawtooth once the first look let them end (whose
    // floors may not settle: inconclusive, never a leak).
    let (verdict, _, reason) = verdict(&report, Metric::Threads);
    assert_ne!(verdict, Verdict::Leak, "{reason}");
    report.assert_no_leaks();
}

fn a_leak_beside_a_backlog_is_not_cleared() {
    let log = batching_logger();
    let mut kept = Vec::new();
    let report = Profiler::new("leak beside a backlog")
        .iterations(20)
        .run(|| {
            log.lock().unwrap().push("x".repeat(2048));
            kept.push(std::hint::black_box(vec![7u8; 64]));
        });
    // A block per iteration kept: never clean. (Its bytes, 64 B per iteration, are under a
    // leak's threshold; on a busy machine a leak first seen at the run's last bound cannot be
    // confirmed, and is inconclusive.)
    let (verdict, _, reason) = verdict(&report, Metric::HeapBlocks);
    assert_ne!(verdict, Verdict::Clean, "{reason}");
    drop(kept);
}

/// A leak of a block per iteration beside a thread that holds a batch of 300 blocks for
/// 60 ms, frees it for 60 ms, and so on. Each look ended at the first reading below the
/// look before, so the second caught a trough the first had not: "held 454 then 313,
/// released", clean, in 9 of 12 runs.
fn a_leak_beside_a_batch_held_and_freed_is_not_released() {
    let stop = Arc::new(AtomicBool::new(false));
    let batches = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let batch: Vec<Box<[u8; 64]>> = (0..300).map(|_| Box::new([0u8; 64])).collect();
                std::thread::sleep(Duration::from_millis(60));
                drop(batch);
                std::thread::sleep(Duration::from_millis(60));
            }
        })
    };
    for _ in 0..3 {
        let mut kept: Vec<Box<[u8; 64]>> = Vec::with_capacity(100_000);
        let report = Profiler::new("leak beside batches")
            .iterations(20)
            .run(|| kept.push(Box::new([7u8; 64])));
        let (verdict, shape, reason) = verdict(&report, Metric::HeapBlocks);
        assert_ne!(verdict, Verdict::Clean, "{shape:?}: {reason}");
        drop(kept);
    }
    stop.store(true, Ordering::Relaxed);
    batches.join().unwrap();
}

/// A leak of a block per iteration beside a log whose thread empties it every 500 ms, longer
/// than a look: the look after 20 iterations held the lines, the look after 40 had seen them
/// freed, and the two floors read the same. "Released", clean, in 8 of 8 runs (exit 0 on a
/// real leak).
fn a_leak_beside_a_backlog_flushed_less_often_than_a_look_is_not_released() {
    let stop = Arc::new(AtomicBool::new(false));
    let log: Arc<Mutex<Vec<String>>> = Arc::default();
    let flusher = {
        let (stop, log) = (Arc::clone(&stop), Arc::clone(&log));
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(500));
                drop(std::mem::take(&mut *log.lock().unwrap()));
            }
        })
    };
    for _ in 0..2 {
        let mut kept: Vec<Box<[u8; 64]>> = Vec::with_capacity(100_000);
        let report = Profiler::new("leak beside a slow flush")
            .iterations(20)
            .run(|| {
                log.lock().unwrap().push("x".repeat(100));
                kept.push(Box::new([7u8; 64]));
            });
        let (verdict, shape, reason) = verdict(&report, Metric::HeapBlocks);
        assert_ne!(verdict, Verdict::Clean, "{shape:?}: {reason}");
        drop(kept);
    }
    stop.store(true, Ordering::Relaxed);
    flusher.join().unwrap();
}

/// A cache of at most 26 or 30 entries of 1 KiB, filled one per iteration: a leak at the
/// look after 20 iterations, flat by 40. What the two looks kept (the entries added between
/// them) read as a leak "whatever the series shows", exit 1. And a cache over 32 random keys,
/// full well before 160 iterations, still "like a cache filling" to the series: the look at
/// 20 against the one at 160 spanned its whole filling, "kept 131.7 B per iteration", exit 1.
fn a_cache_filling_up_is_not_made_a_leak_by_the_looks() {
    for seed in 0..2u64 {
        let mut cache: HashMap<u64, Vec<u8>> = HashMap::with_capacity(1024);
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ (seed * 7919);
        let report = Profiler::new("random-key cache").iterations(20).run(|| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            cache
                .entry((x >> 33) % 32)
                .or_insert_with(|| vec![1u8; 1024]);
        });
        for metric in [Metric::HeapBytes, Metric::HeapBlocks] {
            let (verdict, shape, reason) = verdict(&report, metric);
            assert_ne!(
                verdict,
                Verdict::Leak,
                "seed {seed}: {metric} {shape:?}: {reason}"
            );
        }
    }
    for cap in [26, 30] {
        let mut cache: HashMap<usize, Vec<u8>> = HashMap::with_capacity(64);
        let mut i = 0;
        let report = Profiler::new("bounded cache").iterations(20).run(|| {
            i += 1;
            if cache.len() < cap {
                cache.insert(i, vec![1u8; 1024]);
            }
        });
        for metric in [Metric::HeapBytes, Metric::HeapBlocks] {
            let (verdict, shape, reason) = verdict(&report, metric);
            assert_ne!(
                verdict,
                Verdict::Leak,
                "cap {cap}: {metric} {shape:?}: {reason}"
            );
        }
    }
    // The same bounded caches where the run may not go past 40 iterations: the series at 40
    // still sees growth slowing ("like a cache still filling"), and what the looks after 20
    // and 40 kept made it a leak, exit 1.
    for cap in [26, 30, 33] {
        let mut cache: HashMap<usize, Vec<u8>> = HashMap::with_capacity(64);
        let mut i = 0;
        let report = Profiler::new("bounded cache, short bound")
            .iterations(20)
            .max_iterations(40)
            .run(|| {
                i += 1;
                if cache.len() < cap {
                    cache.insert(i, vec![1u8; 1024]);
                }
            });
        for metric in [Metric::HeapBytes, Metric::HeapBlocks] {
            let (verdict, shape, reason) = verdict(&report, metric);
            assert_ne!(
                verdict,
                Verdict::Leak,
                "cap {cap}, bound 40: {metric} {shape:?}: {reason}"
            );
        }
    }
}
