//! The allocator comparison with `profiler::Alloc` counting over mimalloc
//! (`Alloc::wrapping`), as a service on mimalloc would install it.

#[global_allocator]
static ALLOC: profiler::Alloc<mimalloc::MiMalloc> = profiler::Alloc::wrapping(mimalloc::MiMalloc);

fn main() {
    bench_suite::alloc_loop::run("profiler-mimalloc");
}
