//! In process scope, other tests' frees are in the process's counters too: a neighbour test
//! tearing down a large index (300 strings freed every 0.5 ms) made a worker thread's leak of
//! 2 blocks per call read "clean, at most -40.9 per iteration" in every run of an evaluation
//! (a futures-util `FuturesUnordered` leak on a pool thread). No thread of this test leaks on
//! its own counters, so only the heap's fall tells: a clean heap that fell while other threads
//! moved it is checked again alone in a child process, where the leak is found.

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use profiler::{Metric, Profiler, Verdict};

#[global_allocator]
static ALLOC: profiler::Alloc = profiler::Alloc::new();

/// Another test's work, on a thread of its own: it builds an index, then frees it a little at
/// a time. Not in the child process that runs this test alone, nor where the process runs one
/// test (nextest): there the neighbour is another test's, in another process.
fn neighbour_tearing_down_an_index() -> Option<JoinHandle<()>> {
    if std::env::var_os("PROFILER_ISOLATED_REPORT_DIR").is_some()
        || std::env::var("NEXTEST_EXECUTION_MODE").as_deref() == Ok("process-per-test")
    {
        return None;
    }
    let (built, ready) = mpsc::channel();
    let neighbour = std::thread::spawn(move || {
        let mut index: Vec<String> = (0..300_000).map(|i| format!("entry-{i}")).collect();
        built.send(()).unwrap();
        while !index.is_empty() {
            index.truncate(index.len().saturating_sub(300));
            std::thread::sleep(Duration::from_micros(500));
        }
    });
    ready.recv().unwrap();
    Some(neighbour)
}

#[test]
fn a_leak_a_neighbours_fall_hides_in_place_is_found_alone() {
    // The workload hands each call to a worker thread, which keeps two small blocks of it.
    let (calls, work) = mpsc::channel::<mpsc::Sender<()>>();
    let worker = std::thread::spawn(move || {
        let mut kept: Vec<Box<[u8; 24]>> = Vec::new();
        for done in work {
            kept.push(Box::new([1; 24]));
            std::mem::forget(Box::new([2u8; 40]));
            done.send(()).unwrap();
        }
        drop(kept);
    });
    let neighbour = neighbour_tearing_down_an_index();
    let report = Profiler::new("fall").run(|| {
        let (done, finished) = mpsc::channel();
        calls.send(done).unwrap();
        finished.recv().unwrap();
        std::thread::sleep(Duration::from_millis(2));
    });
    drop(calls);
    worker.join().unwrap();
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
