//! Heap per tracing span in an async service: tasks in spans that a multi-threaded tokio
//! runtime moves between its worker threads, one kind of request leaking, the other not. The
//! leak is charged to its span, nothing to the other.
#![cfg(feature = "tracing")]

use std::sync::atomic::Ordering::Relaxed;

use tracing_subscriber::layer::SubscriberExt;

mod service;
use service::{ITERATIONS, LEAK, MOVED, SEEN, TASKS, profile_service, span};

#[global_allocator]
static ALLOC: profiler::Alloc = profiler::Alloc::new();

#[test]
fn a_leak_in_an_async_span_is_charged_to_that_span_and_nothing_to_the_other() {
    let subscriber = tracing_subscriber::registry().with(profiler::SpanMemory::new());
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
    let report = profile_service();
    let run = &report.runs[0];
    let (clean, leaky) = (span(run, "clean_request"), span(run, "leaky_request"));
    // The requests did run on both workers, and some resumed on another one than they began.
    assert!(
        SEEN.load(Relaxed).count_ones() >= 2,
        "{:b}",
        SEEN.load(Relaxed)
    );
    assert!(MOVED.load(Relaxed) > 0, "no request moved between workers");
    let requests = i64::from(ITERATIONS) * TASKS as i64;
    assert_eq!(leaky.retained_bytes, requests * LEAK as i64, "{leaky:?}");
    assert_eq!(clean.retained_bytes, 0, "{clean:?}");
    // Both allocated their bodies (4 KiB, and the clean one its copy) in every request.
    assert!(clean.allocated_bytes >= requests * 8192, "{clean:?}");
    assert!(
        leaky.allocated_bytes >= requests * (4096 + LEAK as i64),
        "{leaky:?}"
    );
    // Each request's span is entered at every poll: at least twice (it yields and sleeps).
    assert!(clean.entries >= 2 * requests && leaky.entries >= 2 * requests);
    assert!(leaky.peak_bytes >= leaky.retained_bytes);
    // The text and the Markdown show them, the leaky span first.
    let text = report.to_text(&Default::default());
    let at = |name: &str| {
        text.find(name)
            .unwrap_or_else(|| panic!("{name} in {text}"))
    };
    assert!(text.contains("heap per span:"), "{text}");
    assert!(at("leaky_request") < at("clean_request"), "{text}");
    assert!(report.to_markdown().contains("heap per span"));
    // The JSON report carries them.
    let json = serde_json::to_value(&report).unwrap();
    let spans = json["runs"][0]["spans"].as_array().unwrap();
    for field in [
        "name",
        "allocated_bytes",
        "allocations",
        "retained_bytes",
        "peak_bytes",
        "entries",
    ] {
        assert!(
            spans.iter().all(|s| !s[field].is_null()),
            "{field}: {spans:?}"
        );
    }
}
