//! In process scope, other tests' allocations are in the process's counters: a neighbour
//! holding a varying number of blocks (0 to 5,000, changing every 200 us) hides one block
//! leaked per call, which reads as a sawtooth and was called clean in place (11 runs of 11 in
//! an evaluation). The test's own thread's counters still rise by one block per call: such a
//! run is checked again alone in a child process, where the leak is found.

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use profiler::{Metric, Profiler, Verdict};

#[global_allocator]
static ALLOC: profiler::Alloc = profiler::Alloc::new();

static STOP: AtomicBool = AtomicBool::new(false);

/// Another test's work, on a thread of its own: it holds a random number of small boxes at
/// any moment. Not in the child process that runs this test alone, nor where the process runs
/// one test (nextest): there the neighbour is another test's, in another process.
fn neighbour_holding_random_blocks() -> Option<JoinHandle<()>> {
    if std::env::var_os("PROFILER_ISOLATED_REPORT_DIR").is_some()
        || std::env::var("NEXTEST_EXECUTION_MODE").as_deref() == Ok("process-per-test")
    {
        return None;
    }
    Some(std::thread::spawn(|| {
        let mut state = 12345u64;
        while !STOP.load(Ordering::Relaxed) {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let n = (state >> 33) % 5000;
            let held: Vec<Box<u64>> = (0..n).map(Box::new).collect();
            std::thread::sleep(Duration::from_micros(200));
            std::hint::black_box(held);
        }
    }))
}

#[test]
fn a_leak_other_threads_hide_in_place_is_found_alone() {
    let neighbour = neighbour_holding_random_blocks();
    let mut kept = Vec::new();
    let report = Profiler::new("hidden").run(|| {
        kept.push(Box::new([7u8; 100]));
        std::thread::sleep(Duration::from_millis(2));
    });
    STOP.store(true, Ordering::Relaxed);
    if let Some(neighbour) = neighbour {
        neighbour.join().unwrap();
    }
    let run = &report.runs[0];
    assert_eq!(
        run.metrics[&Metric::HeapBlocks].verdict,
        Verdict::Leak,
        "{}",
        String::from_utf8_lossy(&report.to_json().unwrap())
    );
}
