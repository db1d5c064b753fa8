//! Scope::Thread and a worker that runs late: a leak on a worker the workload hands messages
//! to is not the calling thread's, and is found by checking again in process scope when other
//! threads moved memory. On a busy machine the worker may not run at all during the run (two
//! CPU burners: clean 3 times in 5). Here it spins before its first message, as a starved
//! thread would be late, and leaks 1 KiB per message once it drains them.
//! (A file of its own: no other test may move memory beside it.)

use std::sync::mpsc;
use std::time::{Duration, Instant};

use profiler::{Metric, Profiler, Scope, Verdict};

#[global_allocator]
static ALLOC: profiler::Alloc = profiler::Alloc::new();

#[test]
fn a_leak_on_a_worker_that_runs_after_the_run_is_not_clean() {
    let (tx, rx) = mpsc::channel::<u32>();
    std::thread::spawn(move || {
        let mut first = true;
        while let Ok(m) = rx.recv() {
            if std::mem::take(&mut first) {
                let start = Instant::now();
                while start.elapsed() < Duration::from_millis(100) {
                    std::hint::spin_loop();
                }
            }
            Box::leak(vec![m as u8; 1024].into_boxed_slice());
        }
    });
    let mut n = 0u32;
    let report = Profiler::new("late-worker").scope(Scope::Thread).run(|| {
        n += 1;
        tx.send(n).expect("the worker");
    });
    let heap = &report.runs[0].metrics[&Metric::HeapBytes];
    // Checked again alone in a child process, in process scope, which waits for the worker.
    assert_eq!(heap.verdict, Verdict::Leak, "{}", heap.reason);
}
