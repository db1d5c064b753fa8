//! The allocator comparison with `profiler::Alloc` over mimalloc and sampled attribution on:
//! one sample per `ALWAYS_ON_INTERVAL` (2 MiB) allocated on average, a backtrace each.

#[global_allocator]
static ALLOC: profiler::Alloc<mimalloc::MiMalloc> = profiler::Alloc::wrapping(mimalloc::MiMalloc);

fn main() {
    profiler::alloc::sampled::set_interval(Some(profiler::alloc::sampled::ALWAYS_ON_INTERVAL));
    bench_suite::alloc_loop::run("sampled-mimalloc");
}
