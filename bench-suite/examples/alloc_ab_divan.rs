//! The allocator comparison with divan's `AllocProfiler` (a peer counting allocator) as the
//! global allocator: scripts/alloc-overhead.sh puts it side by side with `profiler::Alloc`.

#[global_allocator]
static ALLOC: divan::AllocProfiler = divan::AllocProfiler::system();

fn main() {
    bench_suite::alloc_loop::run("divan");
}
