//! The allocator comparison with heap per span on (`profiler::SpanMemory`), each worker
//! thread looping inside a span: what exact span accounting costs per allocation.

use tracing_subscriber::layer::SubscriberExt;

#[global_allocator]
static ALLOC: profiler::Alloc = profiler::Alloc::new();

fn main() {
    let subscriber = tracing_subscriber::registry().with(profiler::SpanMemory::new());
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
    bench_suite::alloc_loop::run_in("spans", || tracing::info_span!("loop").entered());
}
