//! The allocator comparison with cap's `Cap<System>` (a peer counting allocator that can
//! enforce a limit, here unlimited: `usize::MAX`) as the global allocator:
//! scripts/alloc-overhead.sh puts it side by side with `profiler::Alloc`.

use std::alloc::System;

use cap::Cap;

#[global_allocator]
static ALLOC: Cap<System> = Cap::new(System, usize::MAX);

fn main() {
    bench_suite::alloc_loop::run("cap");
}
