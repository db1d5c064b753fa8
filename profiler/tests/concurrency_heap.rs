//! K copies at once in this process (`--concurrency`): each copy's heap is its thread's
//! counters, so memory other threads free for it reads as its leak. A copy's heap leak stands
//! unless the process's other threads freed, over the level, at least half of it.

use std::sync::mpsc;

use profiler::engine::concurrency::{CopyPlan, run_level};
use profiler::model::Verdict;
use profiler::sample::Metric;

#[global_allocator]
static ALLOC: profiler::Alloc = profiler::Alloc::new();

fn plan() -> CopyPlan {
    CopyPlan {
        iterations: 20,
        max_iterations: None,
        extend: true,
        warmup: None,
        timeout: None,
        budgets: Default::default(),
    }
}

// One test: the process's heap is the measure, and a test beside it would move it.
#[test]
fn handed_jobs_are_not_a_leak_and_a_leak_after_freeing_setup_is() {
    a_copy_handing_its_jobs_to_a_worker_is_not_a_leak();
    a_copy_freeing_its_setup_then_leaking_is_a_leak();
    a_copy_whose_setup_failed_fails_the_run_whichever_copy_is_shown();
    a_copy_whose_worker_keeps_its_jobs_is_not_clean();
}

/// Memory other threads keep for the copies (a runtime's workers inserting into a global
/// map) is in no copy's heap: tokio tasks keeping 4 KiB per iteration were clean at K = 2.
/// Not clean now: the copies cannot see it (inconclusive, blind).
fn a_copy_whose_worker_keeps_its_jobs_is_not_clean() {
    let setup = || -> Result<Box<dyn FnMut()>, String> {
        let (tx, rx) = mpsc::sync_channel::<u64>(0);
        let (done_tx, done_rx) = mpsc::sync_channel::<()>(0);
        std::thread::spawn(move || {
            let mut kept: Vec<Vec<u8>> = Vec::new();
            for job in rx {
                // Allocated and kept on the worker: the copy's thread never counts it.
                kept.push(vec![job as u8; 512]);
                let _ = done_tx.send(());
            }
        });
        let mut job = 0;
        Ok(Box::new(move || {
            job += 1;
            let _ = tx.send(job);
            let _ = done_rx.recv();
        }))
    };
    let (level, runs) = run_level("worker-keeps", 2, &setup, &plan());
    for r in &runs {
        let m = &r.metrics[&Metric::HeapBytes];
        assert_eq!(m.verdict, Verdict::Inconclusive, "{}", m.reason);
        assert!(m.reason.contains("other threads kept"), "{}", m.reason);
    }
    assert_ne!(level.verdict, Verdict::Clean, "{}", level.reason);
}

/// The run shows the copy with the worst verdict; a copy whose setup failed (inconclusive)
/// lost to a leaking one, and its failure with it: exit 1 instead of 3.
fn a_copy_whose_setup_failed_fails_the_run_whichever_copy_is_shown() {
    use std::sync::atomic::{AtomicU32, Ordering};
    let made = std::sync::Arc::new(AtomicU32::new(0));
    let workload = profiler::Workload::new(
        "second-setup-fails",
        "one copy leaks, the other cannot be set up",
        profiler::Expected::Clean,
        move || {
            if made.fetch_add(1, Ordering::SeqCst) == 1 {
                return Err("no second connection".into());
            }
            Ok(|| {
                Box::leak(Box::new([0u8; 256]));
            })
        },
    );
    let settings = profiler::options::Settings {
        iterations: 10,
        ..Default::default()
    };
    let levels = profiler::options::ConcurrencySettings {
        levels: vec![2],
        limits: Default::default(),
    };
    let run = profiler::session::concurrency::run_workload_levels(&workload, &settings, &levels);
    assert_eq!(run.verdict, Verdict::Leak, "{:?}", run.source.notes);
    let failure = run.failure.as_ref().expect("the copy's failure was lost");
    assert!(
        failure.message.contains("no second connection"),
        "{failure:?}"
    );
}

fn a_copy_handing_its_jobs_to_a_worker_is_not_a_leak() {
    // Each copy's worker thread frees the jobs the copy allocates.
    let setup = || -> Result<Box<dyn FnMut()>, String> {
        let (tx, rx) = mpsc::channel::<Vec<u8>>();
        std::thread::spawn(move || {
            for job in rx {
                drop(job);
            }
        });
        Ok(Box::new(move || {
            let _ = tx.send(vec![1u8; 512]);
            std::thread::sleep(std::time::Duration::from_millis(1));
        }))
    };
    let (level, runs) = run_level("hands-off", 2, &setup, &plan());
    assert_ne!(level.verdict, Verdict::Leak, "{}", level.reason);
    assert!(
        runs.iter()
            .all(|r| r.metrics[&Metric::HeapBlocks].verdict != Verdict::Leak),
        "{}",
        level.reason
    );
}

fn a_copy_freeing_its_setup_then_leaking_is_a_leak() {
    // The process's heap over the level fell (the 1 MiB of setup freed in the first
    // iteration): compared with the copies' claims alone, the leak read as blind.
    let setup = || -> Result<Box<dyn FnMut()>, String> {
        let mut setup_buffer = Some(vec![0u8; 1 << 20]);
        let mut kept: Vec<Vec<u8>> = Vec::new();
        Ok(Box::new(move || {
            setup_buffer.take();
            kept.push(vec![2u8; 1024]);
        }))
    };
    let (level, _) = run_level("frees-then-leaks", 2, &setup, &plan());
    assert_eq!(level.verdict, Verdict::Leak, "{}", level.reason);
}
