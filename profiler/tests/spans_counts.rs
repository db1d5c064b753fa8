//! Counts stay true where the allocator's other routes meet heap per span.
//!
//! - A thread that entered a span and exits leaves the process heap as it found it. The
//!   layer's own record of the spans a thread entered is kept out of the counts while it
//!   grows, and it used to be freed counted when the thread exited: every such thread made
//!   the heap read one block too low, enough to hide a leak of one block per worker as a flat
//!   `heap_blocks`.
//! - Blocks a span allocates and frees during the dhat passes of exact attribution are
//!   charged and taken off it as at any other time. They were neither: the passes' blocks went
//!   uncharged, and a block allocated in the span before them and freed during them stayed
//!   on it until its address was given out again.
//!
//! - A run made while the layer exists leaves the heap as it found it once its report is
//!   dropped.
//!
//! A plain `main` (harness = false): the counts are process-wide, and libtest's threads would
//! allocate beside the check (and a leak seen inside a libtest test is checked again in a
//! child process, where the passes would run instead).

use std::sync::Mutex;

use profiler::{Attribute, Profiler};
use tracing_subscriber::layer::SubscriberExt;

mod unmoved;

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

fn threads_that_entered_spans_leave_the_heap_as_it_was() {
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
}

/// The one block span `rotate` holds, replaced at every iteration.
static HELD: Mutex<Option<Vec<u8>>> = Mutex::new(None);

fn the_dhat_passes_charge_and_free_spans_as_any_other_time() {
    let rotate = tracing::info_span!("rotate");
    let mut leaked = Vec::new();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let report = Profiler::new("rotating")
        .iterations(12)
        .extend(false)
        .attribute(Attribute::Exact)
        .attribute_iterations(2)
        .attribute_file(dir.path().join("rotating.dhat-heap.json"))
        .run(|| {
            rotate.in_scope(|| *HELD.lock().unwrap() = Some(vec![1u8; 4096]));
            // A leak outside any span, so that the heap grows and the passes run.
            leaked.push(vec![0u8; 1024]);
        });
    assert!(
        report.runs[0].attribution.is_some(),
        "the dhat passes ran: {:?}",
        report.runs[0].attribution_note
    );
    let rotate = || {
        profiler::SpanMemory::totals()
            .into_iter()
            .find(|t| t.name == "rotate")
            .expect("entered")
    };
    let live = || rotate().live_bytes;
    // One allocation per entry, in the run and in the passes (12 + 2 + 4 + 8).
    let totals = rotate();
    assert_eq!((totals.entries, totals.allocations), (26, 26), "{totals:?}");
    assert_eq!(live(), 4096, "the block it holds");
    drop(HELD.lock().unwrap().take());
    assert_eq!(live(), 0, "nothing once freed");
    drop(leaked);
}

/// A run made while the layer exists leaves the process heap as it was once its report is
/// dropped: the span figures the run reads are built untracked and were dropped counted, each
/// run taking their size off the heap.
fn a_run_leaves_the_heap_as_it_was_once_its_report_is_gone() {
    let profile = || {
        let report = Profiler::new("quiet").iterations(5).extend(false).run(|| {
            let _span = tracing::info_span!("quiet").entered();
            std::hint::black_box(vec![0u8; 100]).len()
        });
        assert!(report.runs[0].span("quiet").is_some());
    };
    unmoved::leaves_the_heap_as_it_found_it("a run in a span, its report dropped", &profile);
}

fn main() {
    let subscriber = tracing_subscriber::registry().with(profiler::SpanMemory::new());
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
    threads_that_entered_spans_leave_the_heap_as_it_was();
    the_dhat_passes_charge_and_free_spans_as_any_other_time();
    a_run_leaves_the_heap_as_it_was_once_its_report_is_gone();
    println!("spans_counts: ok");
}
