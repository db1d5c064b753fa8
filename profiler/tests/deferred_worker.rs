//! A worker that batches on a timer: it sleeps 10 ms, then does what the iterations sent it
//! (here, leaking 1 KiB per message). A run of 20 fast iterations ends before it first wakes,
//! and its leak read clean every time. The look after the run sees its memory move: in thread
//! scope the check is made again alone in a child process, in process scope, whose look after
//! the run sees the heap grow with no iteration running, and does not call it clean.
//! (A file of its own: no other test may move memory beside it.)

use std::sync::mpsc;
use std::time::Duration;

use profiler::{Metric, Profiler, Scope, Verdict};

#[global_allocator]
static ALLOC: profiler::Alloc = profiler::Alloc::new();

#[test]
fn a_leak_on_a_worker_that_batches_on_a_timer_is_not_clean() {
    let (tx, rx) = mpsc::channel::<u32>();
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_millis(10));
            for m in rx.try_iter() {
                Box::leak(vec![m as u8; 1024].into_boxed_slice());
            }
        }
    });
    let report = Profiler::new("timer-worker")
        .scope(Scope::Thread)
        .run(|| tx.send(1).expect("the worker"));
    let heap = &report.runs[0].metrics[&Metric::HeapBytes];
    assert_ne!(heap.verdict, Verdict::Clean, "{}", heap.reason);
    assert!(report.runs[0].verdict != Verdict::Clean);
}
