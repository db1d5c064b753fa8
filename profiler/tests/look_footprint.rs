//! What the engine keeps of an idle look must never be counted in the workload's heap: a
//! vector of the metrics held, made at the look after iteration 20 and freed at the next
//! checkpoint, read as +8 B and a block after iteration 20 (and -8 B after 40) in a workload
//! that had stopped allocating. Its own binary (no libtest): looks are taken only where the
//! process is the run's alone.

use profiler::Profiler;

#[global_allocator]
static ALLOC: profiler::Alloc = profiler::Alloc::new();

fn main() {
    // This binary is one test: its process is the run's alone, as under nextest's process per
    // test (a binary in target/.../deps is otherwise taken for libtest's, where other tests
    // may run beside, and takes no looks in place).
    // SAFETY: no other thread exists yet.
    unsafe { std::env::set_var("NEXTEST_EXECUTION_MODE", "process-per-test") };
    // 1 KiB kept per iteration for 20 iterations (a leak at 20: a look), then nothing.
    let mut kept = Vec::with_capacity(64);
    let mut i = 0;
    let report = Profiler::new("leak, then none").iterations(20).run(|| {
        i += 1;
        if i <= 20 {
            kept.push(vec![1u8; 1024]);
        }
    });
    let run = &report.runs[0];
    assert!(
        !run.extensions.is_empty(),
        "a leak at 20: {:?}",
        run.metrics
    );
    let after: Vec<(u32, i64, i64)> = run
        .samples
        .iter()
        .filter(|s| s.iteration >= 20)
        .map(|s| (s.iteration, s.heap_bytes.unwrap(), s.heap_blocks.unwrap()))
        .collect();
    assert!(
        after
            .windows(2)
            .all(|w| (w[0].1, w[0].2) == (w[1].1, w[1].2)),
        "the heap moved after the workload stopped allocating: {after:?}"
    );
    drop(kept);
    println!("look_footprint: ok");
}
