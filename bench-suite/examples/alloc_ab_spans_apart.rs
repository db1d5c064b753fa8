//! The allocator comparison with heap per span on (`profiler::SpanMemory`), exact, each worker
//! thread looping inside a span of its own name: what exact span accounting costs when threads
//! allocate in different spans (`alloc_ab_spans.rs`: all of them in one).

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use tracing::span::EnteredSpan;
use tracing_subscriber::layer::SubscriberExt;

#[global_allocator]
static ALLOC: profiler::Alloc = profiler::Alloc::new();

/// Worker threads started so far: even ones loop in span `a`, odd ones in span `b`.
static STARTED: AtomicUsize = AtomicUsize::new(0);

fn enter() -> EnteredSpan {
    if STARTED.fetch_add(1, Relaxed).is_multiple_of(2) {
        tracing::info_span!("a").entered()
    } else {
        tracing::info_span!("b").entered()
    }
}

fn main() {
    let subscriber = tracing_subscriber::registry().with(profiler::SpanMemory::new());
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
    bench_suite::alloc_loop::run_in("spans-apart", enter);
}
