//! RSS growing past the whole counted heap gates in process (memory outside
//! `profiler::Alloc`); a buffer the heap counted at once and filled gradually is not that.
//! In a file of its own: its 64 MiB heap, counted process-wide, would raise the bound of the
//! FFI leak checked beside it (see outside_heap.rs).

use profiler::{Metric, Profiler};

#[global_allocator]
static ALLOC: profiler::Alloc = profiler::Alloc::new();

/// A buffer the heap counted at once, its pages written a little more each call: RSS grows
/// steadily, but never past what the heap holds. Not memory outside the heap.
#[test]
fn a_counted_buffer_filled_gradually_is_not_outside_the_heap() {
    let mut buffer: Vec<u8> = Vec::with_capacity(64 << 20);
    let report = Profiler::new("buffer-filling").run(|| {
        let more = (buffer.len() + (256 << 10)).min(buffer.capacity());
        buffer.resize(more, 1);
    });
    let rss = &report.runs[0].metrics[&Metric::RssBytes];
    assert!(!rss.gating, "{}", rss.reason);
    report.assert_no_leaks();
}
