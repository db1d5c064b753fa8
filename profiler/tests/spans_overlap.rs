//! Exact heap per span while runs overlap, as the tests of a parallel `cargo test` do: a run's
//! span peaks are the highest over its own time. Opening a run used to restart every span
//! name's peak, wiping the peak of a run still open (it read 0 for a span that had held 1 MiB).
#![cfg(feature = "tracing")]

use std::sync::mpsc;

use profiler::Profiler;
use tracing_subscriber::layer::SubscriberExt;

#[global_allocator]
static ALLOC: profiler::Alloc = profiler::Alloc::new();

const MIB: usize = 1 << 20;

/// A run of `iterations` allocating and freeing `bytes` inside span `overlap_other`.
fn other_run(name: &str, bytes: usize) -> profiler::Report {
    Profiler::new(name).iterations(5).extend(false).run(|| {
        let span = tracing::info_span!("overlap_other");
        let _span = span.entered();
        vec![1u8; bytes].len()
    })
}

#[test]
fn a_runs_span_peaks_are_its_own_while_other_runs_open_and_close() {
    let subscriber = tracing_subscriber::registry().with(profiler::SpanMemory::new());
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
    let (peaked, wait_for_peak) = mpsc::channel::<()>();
    let (done, wait_for_others) = mpsc::channel::<()>();
    // Two runs of one span name, the first peaking at 1 MiB and the second at 1 KiB, made
    // while the first run below is open (after its span's peak).
    let others = std::thread::spawn(move || {
        wait_for_peak.recv().unwrap();
        let burst = other_run("burst", MIB);
        let calm = other_run("calm", 1024);
        done.send(()).unwrap();
        (burst, calm)
    });
    let mut first = true;
    let early = Profiler::new("early").iterations(5).extend(false).run(|| {
        if std::mem::take(&mut first) {
            let span = tracing::info_span!("overlap_early");
            let _span = span.entered();
            drop(vec![1u8; MIB]);
            peaked.send(()).unwrap();
            wait_for_others.recv().unwrap();
        }
    });
    let (burst, calm) = others.join().unwrap();
    let peak = |report: &profiler::Report, name| {
        let span = report.runs[0].span(name);
        span.unwrap_or_else(|| panic!("{name} in {:?}", report.runs[0].spans))
            .peak_bytes
    };
    // Its peak came before the other runs opened: it stays the run's.
    assert!(peak(&early, "overlap_early") >= MIB as i64);
    assert!(peak(&burst, "overlap_other") >= MIB as i64);
    // The run after it, of the same name, has a peak of its own, not the one before.
    let calm_peak = peak(&calm, "overlap_other");
    assert!(
        (1024..64 << 10).contains(&calm_peak),
        "{calm_peak}: {:?}",
        calm.runs[0].spans
    );
}

/// Retained is what the run allocated inside the span and did not free: freeing a block the
/// span made before the run does not offset it (it used to be the change in live bytes, here
/// 1000 - 4096).
#[test]
fn a_run_retains_its_own_blocks_whatever_it_frees_from_before() {
    let install = || {
        let subscriber = tracing_subscriber::registry().with(profiler::SpanMemory::new());
        tracing::subscriber::set_default(subscriber)
    };
    let _subscriber = install();
    let span = tracing::info_span!("overlap_swap");
    let mut old = Some(span.in_scope(|| vec![1u8; 4096]));
    let mut kept = None;
    let report = Profiler::new("swap").iterations(5).extend(false).run(|| {
        let _span = span.enter();
        drop(old.take());
        kept.get_or_insert_with(|| vec![2u8; 1000]);
    });
    let swap = report.runs[0].span("overlap_swap").expect("entered");
    assert_eq!(swap.retained_bytes, 1000, "{swap:?}");
    assert!(swap.peak_bytes >= 4096, "it held the old block: {swap:?}");
    drop(kept);
}

/// A block from before the run that a `realloc` during it grows retains what it grew by, and
/// one it shrinks nothing, whichever span (or none) the `realloc` is made in: the block stays
/// with the span that made it. (Each used to count whole, as if the run had made it.)
#[test]
fn a_realloc_during_the_run_retains_what_it_grew_by() {
    let subscriber = tracing_subscriber::registry().with(profiler::SpanMemory::new());
    let _subscriber = tracing::subscriber::set_default(subscriber);
    let pool = tracing::info_span!("overlap_pool");
    let (mut grows, mut shrinks) = pool.in_scope(|| (vec![1u8; 64 << 10], vec![2u8; MIB]));
    let elsewhere = tracing::info_span!("overlap_elsewhere");
    let mut first = true;
    let report = Profiler::new("pool").iterations(5).extend(false).run(|| {
        if std::mem::take(&mut first) {
            elsewhere.in_scope(|| grows.reserve_exact(64 << 10));
            shrinks.truncate(900_000);
            shrinks.shrink_to_fit();
        }
    });
    assert_eq!((grows.capacity(), shrinks.capacity()), (128 << 10, 900_000));
    let pool = report.runs[0]
        .span("overlap_pool")
        .expect("its blocks moved");
    assert_eq!(pool.retained_bytes, 64 << 10, "{pool:?}");
    assert_eq!(pool.allocations, 2, "{pool:?}");
    let elsewhere = report.runs[0].span("overlap_elsewhere").expect("entered");
    assert_eq!(
        (
            elsewhere.allocations,
            elsewhere.retained_bytes,
            elsewhere.entries
        ),
        (0, 0, 1)
    );
    drop((grows, shrinks));
}

/// The span a test body is in while it profiles is charged what the workload does, not what
/// the profiler allocates to make the report (it was: 7 allocations, 1.7 KB "retained").
#[test]
fn the_callers_span_is_not_charged_for_the_report() {
    let subscriber = tracing_subscriber::registry().with(profiler::SpanMemory::new());
    let _subscriber = tracing::subscriber::set_default(subscriber);
    let caller = tracing::info_span!("overlap_caller");
    let _caller = caller.enter();
    let report = Profiler::new("nothing")
        .iterations(5)
        .extend(false)
        .run(|| std::hint::black_box(1) + 1);
    let charged = report.runs[0].span("overlap_caller");
    assert!(charged.is_none(), "{charged:?}");
}

/// A block made outside any span and grown inside one during the run: the span made only the
/// growth (it used to retain the whole block).
#[test]
fn a_span_growing_a_block_made_outside_spans_retains_the_growth() {
    let subscriber = tracing_subscriber::registry().with(profiler::SpanMemory::new());
    let _subscriber = tracing::subscriber::set_default(subscriber);
    let mut buffer = vec![0u8; MIB];
    let grower = tracing::info_span!("overlap_grower");
    let mut first = true;
    let report = Profiler::new("grow").iterations(5).extend(false).run(|| {
        if std::mem::take(&mut first) {
            grower.in_scope(|| buffer.reserve_exact(MIB));
        }
    });
    assert_eq!(buffer.capacity(), 2 * MIB);
    let grower = report.runs[0].span("overlap_grower").expect("entered");
    assert_eq!(grower.retained_bytes, MIB as i64, "{grower:?}");
    drop(buffer);
}
