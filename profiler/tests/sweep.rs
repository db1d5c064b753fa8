//! A sweep from Rust code, as a test would write it: the growth class of a function's memory
//! asserted, and a function that keeps its input after returning called a leak of the input.

use profiler::Scope;
use profiler::model::{Complexity, Verdict};

#[global_allocator]
static ALLOC: profiler::Alloc = profiler::Alloc::new();

const SIZES: [u64; 6] = [1_000, 3_000, 10_000, 30_000, 100_000, 300_000];

#[test]
fn a_function_that_copies_its_input_is_linear_and_within_o_n() {
    let report = profiler::Profiler::new("dedup")
        .scope(Scope::Thread)
        .max_complexity(Complexity::Linear)
        .sweep(&SIZES, |n| {
            let input: Vec<u64> = (0..n).map(|i| i % 97).collect();
            move || {
                let mut copy = input.clone();
                copy.sort_unstable();
                copy.dedup();
                copy
            }
        });
    report.assert_within_complexity();
    report.assert_no_leaks();
    let sweep = report.runs[0].sweep.as_ref().expect("a sweep");
    let peak = sweep.fit("peak_bytes").expect("peak fitted");
    assert_eq!(peak.model, Some(Complexity::Linear), "{peak:?}");
    let per_item = peak.coefficient.unwrap();
    assert!((per_item - 8.0).abs() < 1.0, "8 bytes per u64: {peak:?}");
    assert_eq!(
        sweep.fit("retained_bytes").unwrap().model,
        Some(Complexity::Constant)
    );
}

#[test]
fn a_function_that_keeps_its_input_leaks_it() {
    let kept: std::rc::Rc<std::cell::RefCell<Vec<Vec<u8>>>> = Default::default();
    let report = profiler::Profiler::new("memoise")
        .scope(Scope::Thread)
        .sweep(&SIZES, |n| {
            let input = vec![1u8; n as usize];
            let kept = std::rc::Rc::clone(&kept);
            move || {
                // Keeps a copy of every input it ever saw.
                kept.borrow_mut().push(input.clone());
                input.len()
            }
        });
    let run = &report.runs[0];
    let retained = run.sweep.as_ref().unwrap().fit("retained_bytes").unwrap();
    assert!(retained.model > Some(Complexity::Constant), "{retained:?}");
    assert_eq!(run.verdict, Verdict::Leak);
    let caught = std::panic::catch_unwind(|| report.assert_no_leaks());
    assert!(
        caught.is_err(),
        "assert_no_leaks must fail on a leak of the input"
    );
    drop(kept);
}

#[test]
fn a_panic_at_one_size_keeps_the_sizes_before_and_names_where() {
    let report = profiler::Profiler::new("fragile")
        .scope(Scope::Thread)
        .sweep(&[1_000, 2_000, 5_000, 10_000], |n| {
            let input = vec![0u8; n as usize];
            move || {
                assert!(input.len() < 5_000, "input too large");
                input.clone()
            }
        });
    let run = &report.runs[0];
    let sweep = run.sweep.as_ref().unwrap();
    assert_eq!(sweep.points.len(), 2, "{:?}", sweep.points);
    let failure = run
        .failure
        .as_ref()
        .expect("the panic is the run's failure");
    let sentence = failure.sentence();
    assert!(sentence.contains("at n = 5000"), "{sentence}");
    assert!(sentence.contains("input too large"), "{sentence}");
    assert_eq!(run.verdict, Verdict::Inconclusive);
    assert!(report.failed());
}

#[test]
#[should_panic(
    expected = ".max_peak(), .max_allocated() or .max_rss() does not apply to Profiler::sweep"
)]
fn a_budget_a_sweep_cannot_apply_is_refused_not_passed() {
    // The budget was ignored and `assert_within_budget` passed whatever the peak.
    profiler::Profiler::new("budgeted")
        .scope(Scope::Thread)
        .max_peak(1)
        .sweep(&[1_000, 2_000], |n| move || vec![0u8; n as usize])
        .assert_within_budget();
}

/// The routine's memory is on a thread it spawns, which the thread scope cannot see: n×n bytes
/// there read as "≈ 120 B, O(1)" and passed an O(n) gate. Other threads moving memory during a
/// thread-scope sweep send it to be swept again alone in a child process, in process scope.
#[test]
fn a_routine_allocating_on_a_thread_it_spawns_is_swept_where_that_thread_is_seen() {
    let report = profiler::Profiler::new("helper-thread")
        .scope(Scope::Thread)
        .max_complexity(Complexity::Linear)
        .sweep(&[100, 200, 400, 800, 1_600], |n| {
            move || {
                std::thread::spawn(move || {
                    let table = vec![1u8; (n * n) as usize];
                    table.iter().map(|&b| u64::from(b)).sum::<u64>()
                })
                .join()
                .expect("the helper")
            }
        });
    let sweep = report.runs[0].sweep.as_ref().expect("a sweep");
    let peak = sweep.fit("peak_bytes").expect("peak fitted");
    assert_eq!(peak.model, Some(Complexity::Quadratic), "{peak:?}");
    let notes = report.runs[0].source.notes.join("; ");
    assert!(
        notes.contains("swept again alone in a child process"),
        "{notes}"
    );
    assert!(
        std::panic::catch_unwind(|| report.assert_within_complexity()).is_err(),
        "an O(n) gate must not pass n×n bytes: {peak:?}"
    );
}

/// The same sweep on a thread of the test's own (a worker it names): it cannot be swept again
/// alone from there, and panicked instead of saying so. No heap class is decided, and the
/// reason is given.
#[test]
fn a_disturbed_sweep_on_a_named_helper_thread_says_why_instead_of_panicking() {
    let report = std::thread::Builder::new()
        .name("sweep-worker".to_string())
        .spawn(|| {
            profiler::Profiler::new("helper-thread-on-helper")
                .scope(Scope::Thread)
                .max_complexity(Complexity::Linear)
                .sweep(&[100, 200, 400, 800], |n| {
                    move || {
                        std::thread::spawn(move || vec![1u8; (n * n) as usize].len())
                            .join()
                            .expect("the helper")
                    }
                })
        })
        .unwrap()
        .join()
        .expect("the sweep answers instead of panicking");
    let run = &report.runs[0];
    let sweep = run.sweep.as_ref().expect("a sweep");
    let peak = sweep.fit("peak_bytes").expect("peak fitted");
    assert_eq!(peak.model, None, "{peak:?}");
    let said = format!("{:?}", run);
    assert!(said.contains("not a test of this binary"), "{said}");
}
