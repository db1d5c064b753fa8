//! The allocator comparison with `profiler::Alloc` as the global allocator.

#[global_allocator]
static ALLOC: profiler::Alloc = profiler::Alloc::new();

fn main() {
    bench_suite::alloc_loop::run("profiler");
}
