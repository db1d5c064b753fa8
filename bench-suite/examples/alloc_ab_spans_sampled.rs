//! The allocator comparison with heap per span sampled (`profiler::SpanMemory::sampled`, one
//! sample per `ALWAYS_ON_INTERVAL`, 2 MiB, allocated on average), each worker thread looping
//! inside a span: what sampled span accounting costs per allocation, against
//! `alloc_ab_spans` (exact).

use tracing_subscriber::layer::SubscriberExt;

#[global_allocator]
static ALLOC: profiler::Alloc = profiler::Alloc::new();

fn main() {
    let layer = profiler::SpanMemory::sampled(profiler::alloc::sampled::ALWAYS_ON_INTERVAL);
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
    bench_suite::alloc_loop::run_in("spans-sampled", || tracing::info_span!("loop").entered());
}
