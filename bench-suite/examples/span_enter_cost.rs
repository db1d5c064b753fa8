//! What entering and exiting a span costs with heap per span on (`profiler::SpanMemory`,
//! exact): nanoseconds per enter+exit pair of a span nested in another, no allocation inside.
//! An instrumented future pays one pair per poll. Release build:
//!
//!     cargo run --release -p bench-suite --example span_enter_cost [PAIRS]

use std::time::Instant;

use tracing_subscriber::layer::SubscriberExt;

#[global_allocator]
static ALLOC: profiler::Alloc = profiler::Alloc::new();

fn main() {
    let pairs: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2_000_000);
    let subscriber = tracing_subscriber::registry().with(profiler::SpanMemory::new());
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
    let outer = tracing::info_span!("outer");
    let inner = tracing::info_span!("inner");
    let _outer = outer.enter();
    let started = Instant::now();
    for _ in 0..pairs {
        let entered = inner.enter();
        std::hint::black_box(&entered);
    }
    let ns = started.elapsed().as_nanos() as f64 / pairs as f64;
    println!("{ns:.1} ns per enter+exit pair");
}
