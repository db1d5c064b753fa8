//! What entering and exiting a span costs with heap per span on (`profiler::SpanMemory`,
//! exact): nanoseconds per enter+exit pair of a span nested in another, no allocation inside,
//! on each of THREADS threads at once (default 1; the spans of one name on all, as the tasks of
//! a service's workers). An instrumented future pays one pair per poll. Release build:
//!
//!     cargo run --release -p bench-suite --example span_enter_cost [PAIRS] [THREADS]

use std::time::Instant;

use tracing_subscriber::layer::SubscriberExt;

#[global_allocator]
static ALLOC: profiler::Alloc = profiler::Alloc::new();

/// Nanoseconds per enter+exit pair of `pairs` pairs on this thread.
fn enter_and_exit(pairs: u64) -> f64 {
    let outer = tracing::info_span!("outer");
    let inner = tracing::info_span!("inner");
    let _outer = outer.enter();
    let started = Instant::now();
    for _ in 0..pairs {
        let entered = inner.enter();
        std::hint::black_box(&entered);
    }
    started.elapsed().as_nanos() as f64 / pairs as f64
}

fn main() {
    let arg = |i: usize, default: u64| {
        std::env::args()
            .nth(i)
            .and_then(|a| a.parse().ok())
            .unwrap_or(default)
    };
    let (pairs, threads) = (arg(1, 2_000_000), arg(2, 1).max(1));
    let subscriber = tracing_subscriber::registry().with(profiler::SpanMemory::new());
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
    let each: Vec<f64> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| s.spawn(move || enter_and_exit(pairs)))
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let ns = each.iter().sum::<f64>() / each.len() as f64;
    println!("{ns:.1} ns per enter+exit pair ({threads} thread(s) at once)");
}
