//! A run whose only undecided metric is too noisy to bound runs on past the ordinary bound
//! (8 x the iterations) until its bounds are narrow enough, and says why.

use profiler::{Metric, Profiler, Scope, Verdict};

#[global_allocator]
static ALLOC: profiler::Alloc = profiler::Alloc::new();

/// Garbage that waits a while before it is freed, as under epoch-based reclamation: each
/// iteration keeps between 0 and 2,000 boxes (a fixed pseudo-random sequence) until the next
/// one. Live blocks wander by ±1,000 around a flat level; nothing accumulates.
fn late_garbage() -> impl FnMut() {
    let mut pending: Vec<Box<u64>> = Vec::with_capacity(2_000);
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let keep = ((state >> 33) % 2_001) as usize;
        pending.clear();
        pending.extend((0..keep).map(|i| Box::new(i as u64)));
    }
}

#[test]
fn blocks_too_noisy_at_160_iterations_extend_until_they_are_clean() {
    let report = Profiler::new("late-garbage")
        .scope(Scope::Thread)
        .iterations(20)
        .run(late_garbage());
    let run = &report.runs[0];
    let blocks = &run.metrics[&Metric::HeapBlocks];
    assert!(
        run.iterations > 160,
        "stopped at the ordinary bound: {} iterations, {}",
        run.iterations,
        blocks.reason
    );
    assert!(run.iterations <= 1280, "{} iterations", run.iterations);
    assert!(
        run.extensions
            .iter()
            .any(|e| e.from >= 160 && e.reason.contains("too noisy to bound yet")),
        "{:#?}",
        run.extensions
    );
    assert_eq!(blocks.verdict, Verdict::Clean, "{}", blocks.reason);
}

#[test]
fn max_iterations_bounds_the_extension_for_noise_too() {
    let report = Profiler::new("late-garbage")
        .scope(Scope::Thread)
        .iterations(20)
        .max_iterations(160)
        .run(late_garbage());
    let run = &report.runs[0];
    assert_eq!(run.iterations, 160);
    assert_eq!(
        run.metrics[&Metric::HeapBlocks].verdict,
        Verdict::Inconclusive
    );
}
