//! Leak checks inside ordinary `cargo test`: copy this file into your crate's `tests/`.
//!
//! `cargo test` runs the tests of a binary on parallel threads of one process. Pick a scope:
//! - `Scope::Thread` counts only the test's own thread: cheap, unaffected by other tests,
//!   blind to threads the workload spawns. fds and threads are process-wide, so in this scope
//!   they are reported but do not fail the test.
//! - `.isolated()` re-runs the test alone in a child process: everything is counted (heap of
//!   every thread, fds, threads). Costs one process start per check.
//! - Under `cargo nextest` (a process per test) or `cargo test -- --test-threads=1` the
//!   default process scope is exact already.
//!
//! The last tests here fail on purpose (`should_panic`) to show what a leak looks like.

use profiler::{Profiler, Scope};

// Counts every allocation of this test binary.
#[global_allocator]
static ALLOC: profiler::Alloc = profiler::Alloc::new();

/// Code under test: parses "k=v" pairs.
fn parse(input: &str) -> Vec<(String, u64)> {
    input
        .split(',')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            Some((k.trim().to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

#[test]
fn parsing_does_not_leak() {
    Profiler::new("parse")
        .scope(Scope::Thread)
        .run(|| parse("a=1, b=2, c=3"))
        .assert_no_leaks();
}

#[test]
fn parsing_stays_within_its_budget() {
    Profiler::new("parse")
        .scope(Scope::Thread)
        .max_allocated(4 * 1024)
        .max_peak(4 * 1024)
        .run(|| parse("a=1, b=2, c=3"))
        .assert_within_budget();
}

#[test]
fn a_worker_thread_per_request_is_joined() {
    // Threads the workload spawns need the isolated (process) scope.
    Profiler::new("worker")
        .isolated()
        .run(|| std::thread::spawn(|| parse("x=1")).join().expect("worker"))
        .assert_no_leaks();
}

/// Another test allocating and keeping memory in parallel: it would disturb a process-wide
/// count, never a thread-scoped or isolated one.
#[test]
fn noisy_neighbour() {
    let mut kept = Vec::new();
    for i in 0..200 {
        kept.push(vec![i as u8; 512]);
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    assert_eq!(kept.len(), 200);
}

#[test]
#[should_panic(expected = "leaky-parse: heap_blocks leaks: grows 2 per iteration")]
fn a_leak_fails_the_test_with_the_metric_and_the_rate() {
    let mut seen: Vec<Box<(String, u64)>> = Vec::new();
    Profiler::new("leaky-parse")
        .scope(Scope::Thread)
        .run(|| {
            // Bug: every parsed pair (a Box and its String: 2 blocks) is kept forever.
            for pair in parse("a=1") {
                seen.push(Box::new(pair));
            }
        })
        .assert_no_leaks();
}

#[test]
#[should_panic(expected = "workers: threads leaks: grows 1 per iteration")]
fn a_thread_leak_fails_an_isolated_test() {
    Profiler::new("workers")
        .isolated()
        .run(|| {
            // Bug: the worker is never told to stop, nor joined.
            std::thread::spawn(|| {
                loop {
                    std::thread::park();
                }
            });
        })
        .assert_no_leaks();
}

#[test]
#[should_panic(expected = "exceeds --max-allocated")]
fn a_budget_fails_the_test_with_the_iteration_and_the_amount() {
    Profiler::new("big-parse")
        .scope(Scope::Thread)
        .max_allocated(1024)
        .run(|| parse(&"k=1,".repeat(1000)))
        .assert_within_budget();
}
