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

/// Another test's work that holds thousands of vectors of varying sizes (2,000 to 20,000,
/// growing and cut back), until `stop`.
fn neighbour_holding_thousands(stop: &'static AtomicBool) -> Option<JoinHandle<()>> {
    if std::env::var_os("PROFILER_ISOLATED_REPORT_DIR").is_some()
        || std::env::var("NEXTEST_EXECUTION_MODE").as_deref() == Ok("process-per-test")
    {
        return None;
    }
    Some(std::thread::spawn(move || {
        let mut keep: Vec<Vec<u8>> = Vec::new();
        let mut i = 0usize;
        while !stop.load(Ordering::Relaxed) {
            i += 1;
            keep.push(vec![0u8; 64 + i % 300]);
            if keep.len() > 20_000 {
                keep.truncate(2_000);
            }
            if i.is_multiple_of(64) {
                std::thread::yield_now();
            }
        }
    }))
}

/// A leak kept by a runtime's worker thread, not the test's own (a tokio task keeping 300 B
/// per call), beside a test holding thousands of vectors: in place it was left inconclusive
/// at 160 or 640 iterations in 4 runs of 6 of an evaluation, and the test passed. Alone it is
/// a leak, so a heap verdict left undecided beside other threads' allocations is checked
/// again alone.
#[test]
fn a_leak_on_a_runtime_worker_beside_a_busy_neighbour_is_found_alone() {
    static STOP_BUSY: AtomicBool = AtomicBool::new(false);
    static KEPT: std::sync::Mutex<Vec<Vec<u8>>> = std::sync::Mutex::new(Vec::new());
    let neighbour = neighbour_holding_thousands(&STOP_BUSY);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let report = Profiler::new("worker-keeps").run(|| {
        rt.block_on(async {
            tokio::spawn(async { KEPT.lock().unwrap().push(vec![0u8; 300]) })
                .await
                .unwrap()
        })
    });
    STOP_BUSY.store(true, Ordering::Relaxed);
    if let Some(neighbour) = neighbour {
        neighbour.join().unwrap();
    }
    let run = &report.runs[0];
    assert_eq!(
        run.metrics[&Metric::HeapBytes].verdict,
        Verdict::Leak,
        "{}",
        String::from_utf8_lossy(&report.to_json().unwrap())
    );
}
