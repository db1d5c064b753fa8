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
