//! Heap per tracing span, sampled (`SpanMemory::sampled`), in the same async service as
//! `spans.rs`: the leak is estimated for its span, within bounds that hold the true figure,
//! and the clean span, whose blocks are all freed, retains exactly nothing.
#![cfg(feature = "tracing")]

use std::sync::atomic::Ordering::Relaxed;

use tracing_subscriber::layer::SubscriberExt;

mod service;
use service::{ITERATIONS, LEAK, MOVED, SEEN, TASKS, WARM_UP, profile_service, span};

#[global_allocator]
static ALLOC: profiler::Alloc = profiler::Alloc::new();

/// Mean bytes between samples: a leaked block of 1 KiB is sampled with probability 0.86, so
/// the 40 leaked are sampled about 35 times (sd 2), far inside the bounds' reach.
const INTERVAL: u64 = 512;

#[test]
fn a_sampled_leak_in_an_async_span_is_estimated_for_that_span_and_nothing_for_the_other() {
    let layer = profiler::SpanMemory::sampled(INTERVAL);
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
    assert_eq!(profiler::alloc::sampled::interval(), Some(INTERVAL));
    let report = profile_service();
    let run = &report.runs[0];
    let (clean, leaky) = (span(run, "clean_request"), span(run, "leaky_request"));
    assert!(MOVED.load(Relaxed) > 0, "no request moved between workers");
    assert!(SEEN.load(Relaxed).count_ones() >= 2);
    let requests = i64::from(ITERATIONS) * TASKS as i64;
    let leaked = requests * LEAK as i64;

    let sampled = leaky.sampled.as_ref().expect("marked as sampled");
    assert_eq!(sampled.interval_bytes, INTERVAL);
    let [lo, hi] = sampled.retained_bytes_ci;
    assert!(lo <= leaked && leaked <= hi, "{leaked} outside {leaky:?}");
    assert!(
        (leaked / 2..=leaked * 2).contains(&leaky.retained_bytes),
        "{leaky:?}"
    );
    assert!(sampled.retained_samples >= 20, "{leaky:?}");

    // Every block a clean request allocates is freed: no sampled block of the run is live,
    // so it retains nothing, and the upper bound reaches no further than what could go
    // unseen (4 intervals). What it frees of earlier blocks the runtime allocated inside the
    // span (a queue of the scheduler growing in a request, as under load) is not the run's:
    // it moves neither the figure nor its bounds.
    let none = clean.sampled.as_ref().expect("marked as sampled");
    assert_eq!(none.retained_samples, 0, "{clean:?}");
    assert_eq!(clean.retained_bytes, 0, "{clean:?}");
    let unseen = 4 * INTERVAL as i64;
    let [lo, hi] = none.retained_bytes_ci;
    assert!(lo == 0 && (0..=unseen).contains(&hi), "{clean:?}");
    // It allocated 8 KiB per request, sampled many times over: estimated within a factor 2.
    assert!(
        (requests * 8192 / 2..=requests * 8192 * 4).contains(&clean.allocated_bytes),
        "{clean:?}"
    );
    // Entries stay exact: at least two polls per request.
    assert!(clean.entries >= 2 * requests && leaky.entries >= 2 * requests);

    // The outputs say they are estimates.
    let text = report.to_text(&Default::default());
    assert!(
        text.contains("~") && text.contains("sampled, one allocation per"),
        "{text}"
    );
    assert!(report.to_markdown().contains("sampled, one allocation per"));
    let json = serde_json::to_value(&report).unwrap();
    let spans = json["runs"][0]["spans"].as_array().unwrap();
    for s in spans {
        assert_eq!(s["sampled"]["interval_bytes"], INTERVAL, "{s}");
        assert!(s["sampled"]["retained_bytes_ci"].is_array(), "{s}");
    }

    // A running service reads its spans at any time: since the layer was made, the live
    // bytes' bounds hold what the leaky requests kept (warm-up and run: 240 blocks).
    let now = profiler::SpanMemory::totals();
    let leaky_now = now
        .iter()
        .find(|t| t.name == "leaky_request")
        .expect("listed");
    let kept = i64::from(WARM_UP + ITERATIONS) * TASKS as i64 * LEAK as i64;
    let [lo, hi] = leaky_now.live_bytes_bounds();
    assert!(lo <= kept && kept <= hi, "{kept} outside: {leaky_now:?}");
    assert!(leaky_now.sampled.is_some_and(|s| s.live_samples > 100));

    // Sampled attribution beside it: the run samples at the finer interval (the spans'), names
    // the leaking line, and sampling for the spans goes on after it.
    let line = line!() + 3;
    let attributed = profiler::Profiler::new("leak")
        .attribute(profiler::Attribute::Always)
        .run(|| vec![1u8; 4096].leak().len());
    let run = &attributed.runs[0];
    let site = run
        .leak_sites
        .first()
        .unwrap_or_else(|| panic!("no site: {run:?}"));
    assert!(
        site.location.ends_with(&format!("spans_sampled.rs:{line}")),
        "{site:?}"
    );
    let info = run.attribution.as_ref().expect("sampled attribution");
    assert_eq!(
        info.interval_bytes.map(|[_, hi]| hi),
        Some(INTERVAL),
        "{info:?}"
    );
    assert_eq!(profiler::alloc::sampled::interval(), Some(INTERVAL));
}
