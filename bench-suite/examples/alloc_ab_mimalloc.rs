//! The allocator comparison with mimalloc alone as the global allocator (the baseline of
//! `alloc_ab_profiler_mimalloc`).

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    bench_suite::alloc_loop::run("mimalloc");
}
