//! Idle looks where the process is the run's alone: a test binary with a `main` of its own
//! (no libtest), where looks are taken in place. Two things are checked:
//! - what the engine keeps of a look is never counted in the workload's heap: a vector of the
//!   metrics held, made at the look after iteration 20 and freed at the next checkpoint, read
//!   as +8 B and a block after iteration 20 (and -8 B after 40) in a workload that had stopped
//!   allocating;
//! - the looks are taken here: memory a thread gives back once the iterations stop is no
//!   leak. Taken for one of libtest's binaries (where other tests may run beside, and no look
//!   is taken in place), the same run was a leak.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use profiler::{Metric, Profiler, Verdict};

#[global_allocator]
static ALLOC: profiler::Alloc = profiler::Alloc::new();

fn main() {
    a_look_leaves_nothing_in_the_heap();
    memory_given_back_when_idle_is_no_leak();
    println!("looks_in_place: ok");
}

fn a_look_leaves_nothing_in_the_heap() {
    // 1 KiB kept per iteration for 20 iterations (a leak at 20: a look), then nothing.
    let mut kept = Vec::with_capacity(64);
    let mut i = 0;
    let report = Profiler::new("leak, then none").iterations(20).run(|| {
        i += 1;
        if i <= 20 {
            kept.push(vec![1u8; 1024]);
        }
    });
    let run = &report.runs[0];
    assert!(
        !run.extensions.is_empty(),
        "a leak at 20: {:?}",
        run.metrics
    );
    let after: Vec<(u32, i64, i64)> = run
        .samples
        .iter()
        .filter(|s| s.iteration >= 20)
        .map(|s| (s.iteration, s.heap_bytes.unwrap(), s.heap_blocks.unwrap()))
        .collect();
    assert!(
        after
            .windows(2)
            .all(|w| (w[0].1, w[0].2) == (w[1].1, w[1].2)),
        "the heap moved after the workload stopped allocating: {after:?}"
    );
    drop(kept);
}

fn memory_given_back_when_idle_is_no_leak() {
    // 1 KiB per iteration into a buffer that a thread of its own empties once no iteration
    // has run for 50 ms: during a look, never during the iterations.
    let buffer: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let start = Instant::now();
    let last_call = Arc::new(AtomicU64::new(0));
    {
        let buffer = Arc::clone(&buffer);
        let last_call = Arc::clone(&last_call);
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(Duration::from_millis(10));
                let now = start.elapsed().as_millis() as u64;
                if now.saturating_sub(last_call.load(Ordering::Relaxed)) > 50 {
                    drop(std::mem::take(&mut *buffer.lock().unwrap()));
                }
            }
        });
    }
    let report = Profiler::new("given back when idle")
        .iterations(20)
        .run(|| {
            buffer.lock().unwrap().push(vec![1u8; 1024]);
            last_call.store(start.elapsed().as_millis() as u64, Ordering::Relaxed);
        });
    let m = &report.runs[0].metrics[&Metric::HeapBytes];
    assert_ne!(
        m.verdict,
        Verdict::Leak,
        "memory given back once idle (were the looks taken?): {}",
        m.reason
    );
}
