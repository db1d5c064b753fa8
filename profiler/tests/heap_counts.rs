//! Exact heap counting through `profiler::Alloc`. A plain `main` (harness = false) on purpose:
//! the counters are process-wide, and libtest's own threads would run beside the checks.
//! (The panic printed on stderr is the one the panicking-workload check catches.)

mod exact;

#[global_allocator]
static ALLOC: profiler::Alloc = profiler::Alloc::new();

/// `harness = false` (see profiler/Cargo.toml): no libtest threads run beside the check, so
/// process-wide counts see nothing but it.
fn main() {
    exact::heap_counts_are_exact();
    println!("heap_counts: ok");
}
