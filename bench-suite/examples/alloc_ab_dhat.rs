//! The allocator comparison with `dhat::Alloc` as the global allocator and no
//! `dhat::Profiler` running (dhat idle: what a binary pays for leaving dhat installed):
//! scripts/alloc-overhead.sh puts it side by side with `profiler::Alloc`.

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

fn main() {
    bench_suite::alloc_loop::run("dhat");
}
