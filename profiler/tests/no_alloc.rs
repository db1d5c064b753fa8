//! Without `profiler::Alloc` as the global allocator, heap metrics are null, never zeros.

use profiler::Metric;
use profiler::report::HeapScope;

#[test]
fn heap_metrics_are_null_with_a_hint() {
    let report = profiler::Profiler::new("no-alloc")
        .iterations(5)
        .run(|| vec![0u8; 100]);
    let run = &report.runs[0];
    assert_eq!(run.heap_scope, HeapScope::None);
    for s in &run.samples {
        assert_eq!(s.heap_bytes, None);
        assert_eq!(s.heap_blocks, None);
        assert_eq!(s.allocated_bytes, None);
        assert!(s.rss_bytes.is_some() && s.fds.is_some() && s.threads.is_some());
    }
    assert!(!run.metrics.contains_key(&Metric::HeapBytes));
    assert!(run.metrics.contains_key(&Metric::Fds));
    assert!(
        report.notes.iter().any(|n| n.contains("profiler::Alloc")),
        "{:?}",
        report.notes
    );
    let json = String::from_utf8(report.to_json().unwrap()).unwrap();
    assert!(
        json.contains("\"heap_bytes\": null"),
        "null in JSON, never 0"
    );
}

#[test]
fn a_leak_check_without_the_allocator_does_not_pass() {
    // A Box::leak per iteration passed assert_no_leaks: the heap was never seen.
    let report = profiler::Profiler::new("no-alloc-leak")
        .iterations(5)
        .run(|| Box::leak(Box::new([0u8; 1024])).len());
    let failed = std::panic::catch_unwind(|| report.assert_no_leaks()).unwrap_err();
    let message = failed.downcast_ref::<String>().unwrap();
    assert!(
        message.contains("heap not checked") && message.contains("#[global_allocator]"),
        "{message}"
    );
}

// A budget must not pass where it was never applied: without the allocator the heap is not
// measured, so a heap budget cannot be checked.
#[test]
#[should_panic(expected = "not measured: --max-peak not checked")]
fn a_heap_budget_without_the_allocator_fails_as_not_checked() {
    profiler::Profiler::new("unmeasured")
        .iterations(5)
        .max_peak(1 << 20)
        .run(|| std::hint::black_box(vec![0u8; 64]))
        .assert_within_budget();
}

#[test]
#[should_panic(expected = "budget exceeded or not checked")]
fn a_workload_that_panics_does_not_pass_its_budget() {
    let mut calls = 0;
    profiler::Profiler::new("panics")
        .iterations(5)
        .max_rss(1 << 40)
        .run(|| {
            calls += 1;
            assert!(calls < 3, "the workload failed");
        })
        .assert_within_budget();
}

#[test]
fn a_budget_that_was_measured_and_kept_passes() {
    profiler::Profiler::new("measured")
        .iterations(5)
        .max_rss(1 << 40)
        .run(|| std::hint::black_box(vec![0u8; 64]))
        .assert_within_budget();
}
