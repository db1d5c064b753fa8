//! The allocator comparison with `profiler::Alloc` as the global allocator and sampled
//! attribution on: one sample per `ALWAYS_ON_INTERVAL` (2 MiB) allocated on average, a
//! backtrace each. `ALLOC_AB_INTERVAL=<bytes>` samples at another mean interval (the same
//! binary, so the same code placement, measures the cost of each).

#[global_allocator]
static ALLOC: profiler::Alloc = profiler::Alloc::new();

fn main() {
    let interval = match std::env::var("ALLOC_AB_INTERVAL") {
        Ok(v) => v.parse().unwrap_or_else(|_| {
            eprintln!("ALLOC_AB_INTERVAL must be a whole number of bytes, not {v:?}");
            std::process::exit(2)
        }),
        Err(_) => profiler::alloc::sampled::ALWAYS_ON_INTERVAL,
    };
    profiler::alloc::sampled::set_interval(Some(interval));
    bench_suite::alloc_loop::run("sampled");
}
