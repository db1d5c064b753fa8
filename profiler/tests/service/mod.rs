//! The async service both heap-per-span tests run: requests in spans that a multi-threaded
//! tokio runtime moves between its worker threads, one kind leaking 1 KiB each, the other
//! keeping nothing.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use tracing::Instrument;

pub const LEAK: usize = 1024;
pub const TASKS: usize = 4;
pub const ITERATIONS: u32 = 10;

static WORKERS: AtomicUsize = AtomicUsize::new(0);
/// One bit per worker thread that polled a request.
pub static SEEN: AtomicU64 = AtomicU64::new(0);
/// Requests resumed on another worker than the one they started on.
pub static MOVED: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static WORKER: usize = WORKERS.fetch_add(1, Relaxed) % 64;
}

fn worker() -> usize {
    let me = WORKER.with(|w| *w);
    SEEN.fetch_or(1 << me, Relaxed);
    me
}

/// A request that builds a response, yields (so the runtime may move it to another worker)
/// and drops it.
async fn clean_request(i: usize) -> usize {
    let started = worker();
    let body = vec![i as u8; 4096];
    tokio::task::yield_now().await;
    let copy = body.clone();
    tokio::time::sleep(Duration::from_micros(50)).await;
    if worker() != started {
        MOVED.fetch_add(1, Relaxed);
    }
    copy.len() + body.len()
}

/// The same, but it keeps 1 KiB of every request forever.
async fn leaky_request(i: usize) -> usize {
    let started = worker();
    let body = vec![i as u8; 4096];
    tokio::task::yield_now().await;
    let kept: &'static mut [u8] = Box::leak(vec![0u8; LEAK].into_boxed_slice());
    tokio::time::sleep(Duration::from_micros(50)).await;
    if worker() != started {
        MOVED.fetch_add(1, Relaxed);
    }
    kept.len() + body.len()
}

pub fn serve(rt: &tokio::runtime::Runtime) {
    rt.block_on(async {
        let mut handles = Vec::new();
        for i in 0..TASKS {
            handles.push(tokio::spawn(
                clean_request(i).instrument(tracing::info_span!("clean_request")),
            ));
            handles.push(tokio::spawn(
                leaky_request(i).instrument(tracing::info_span!("leaky_request")),
            ));
        }
        for h in handles {
            h.await.expect("a request panicked");
        }
    });
}

/// Rounds of requests served before the profiled run.
pub const WARM_UP: u32 = 50;

/// A multi-threaded runtime of 2 workers, warmed up (its own queues and timers grow to their
/// working size first), then profiled serving requests for [`ITERATIONS`].
pub fn profile_service() -> profiler::Report {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    // The runtime's own queues (of tasks that yielded, of timers) grow to more than their
    // working size first, outside any span: grown during a request of the run, they would be
    // charged to its span.
    rt.block_on(async {
        let tasks: Vec<_> = (0..16 * TASKS)
            .map(|_| {
                tokio::spawn(async {
                    tokio::task::yield_now().await;
                    tokio::time::sleep(Duration::from_micros(50)).await;
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("a warm-up task panicked");
        }
    });
    for _ in 0..WARM_UP {
        serve(&rt);
    }
    profiler::Profiler::new("service")
        .iterations(ITERATIONS)
        .extend(false)
        .run(|| serve(&rt))
}

/// The record of span `name` in `run`.
pub fn span<'a>(run: &'a profiler::Run, name: &str) -> &'a profiler::model::SpanRecord {
    run.span(name)
        .unwrap_or_else(|| panic!("no {name} in {:?}", run.spans))
}
