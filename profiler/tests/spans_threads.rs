//! A thread that entered a span and exits leaves the process heap as it found it. The layer's
//! own record of the spans a thread entered is kept out of the counts while it grows, and it
//! used to be freed counted when the thread exited: every such thread made the heap read one
//! block too low, enough to hide a leak of one block per worker as a flat `heap_blocks`.
//! A plain `main` (harness = false): the counts are process-wide, and libtest's threads would
//! allocate beside the check.

use tracing_subscriber::layer::SubscriberExt;

#[global_allocator]
static ALLOC: profiler::Alloc = profiler::Alloc::new();

/// Spawn and join a thread that enters a span a few levels deep.
fn worker() {
    std::thread::spawn(|| {
        let outer = tracing::info_span!("worker").entered();
        let inner: Vec<_> = (0..8)
            .map(|_| tracing::info_span!("step").entered())
            .collect();
        drop(inner);
        drop(outer);
    })
    .join()
    .expect("the worker ran");
}

fn main() {
    let subscriber = tracing_subscriber::registry().with(profiler::SpanMemory::new());
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
    // The first ones leave what the registry keeps per thread slot and span slot for good.
    for _ in 0..4 {
        worker();
    }
    let before = profiler::alloc::heap().expect("profiler::Alloc is the global allocator");
    const THREADS: i64 = 16;
    for _ in 0..THREADS {
        worker();
    }
    let after = profiler::alloc::heap().unwrap();
    assert_eq!(
        (after.live_blocks, after.live_bytes),
        (before.live_blocks, before.live_bytes),
        "{THREADS} threads that entered spans and exited moved the heap"
    );
    println!("spans_threads: ok");
}
