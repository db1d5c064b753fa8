//! The allocator comparison with stats_alloc's `StatsAlloc<System>` (a peer counting allocator,
//! installed as its documentation shows: a reference to `INSTRUMENTED_SYSTEM`) as the global
//! allocator: scripts/alloc-overhead.sh puts it side by side with `profiler::Alloc`.

use std::alloc::System;

use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};

#[global_allocator]
static ALLOC: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn main() {
    bench_suite::alloc_loop::run("stats_alloc");
}
