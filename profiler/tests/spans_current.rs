//! Exact heap per span follows the span `tracing` calls current: an allocation is charged to
//! it however deep spans nest (past 16 they used to go to the 16th, past 255 the outer ones
//! lost their charges) and in whatever order guards are dropped (an exit used to leave the
//! innermost span entered, whichever span it was). And the entries an instrumented future
//! counts: one per poll, and one when it is dropped (tracing drops it inside its span).
#![cfg(feature = "tracing")]

use std::future::Future;
use std::pin::Pin;
use std::sync::Once;
use std::task::{Context, Poll, Waker};

use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

#[global_allocator]
static ALLOC: profiler::Alloc = profiler::Alloc::new();

/// One exact layer for the tests of this file (each uses span names of its own).
fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let subscriber = tracing_subscriber::registry().with(profiler::SpanMemory::new());
        tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
    });
}

fn totals(name: &str) -> Option<profiler::alloc::spans::SpanTotals> {
    profiler::SpanMemory::totals()
        .into_iter()
        .find(|t| t.name == name)
}

fn live(name: &str) -> i64 {
    totals(name).map_or(0, |t| t.live_bytes)
}

#[test]
fn a_guard_dropped_out_of_order_leaves_the_thread_in_the_span_tracing_calls_current() {
    install();
    // Made before entering either: making a span may allocate in the registry.
    let (a, b) = (
        tracing::info_span!("order_a"),
        tracing::info_span!("order_b"),
    );
    let a = a.entered();
    let b = b.entered();
    drop(a);
    assert_eq!(
        tracing::Span::current().metadata().map(|m| m.name()),
        Some("order_b")
    );
    let block = vec![1u8; 1000];
    drop(b);
    assert_eq!((live("order_a"), live("order_b")), (0, 1000));
    drop(block);
    assert_eq!(live("order_b"), 0);
}

#[test]
fn an_allocation_twenty_spans_deep_is_charged_to_the_innermost_span() {
    install();
    fn nest(depth: u32) -> Vec<u8> {
        if depth == 0 {
            let innermost = tracing::info_span!("deep_innermost");
            let _innermost = innermost.entered();
            return vec![1u8; 512];
        }
        let level = tracing::info_span!("deep_level");
        let _level = level.entered();
        nest(depth - 1)
    }
    let block = nest(20);
    assert_eq!(live("deep_innermost"), 512);
    drop(block);
    assert_eq!(live("deep_innermost"), 0);
}

#[test]
fn the_outer_span_keeps_its_charges_after_spans_nested_300_deep() {
    install();
    fn recurse(depth: u32) {
        let level = tracing::info_span!("recursion_level");
        let _level = level.entered();
        if depth > 0 {
            recurse(depth - 1);
        }
    }
    // A thread of its own: 301 frames of spans want more than a test thread's stack.
    let thread = std::thread::Builder::new().stack_size(16 << 20).spawn(|| {
        let outer = tracing::info_span!("recursion_outer");
        let _outer = outer.entered();
        recurse(300);
        // Making the spans charged the outer one for the registry's slab: counted from here.
        let before = live("recursion_outer");
        let block = vec![1u8; 1000];
        (live("recursion_outer") - before, block)
    });
    let (charged, block) = thread.unwrap().join().unwrap();
    assert_eq!(charged, 1000);
    drop(block);
}

/// Pending at its first poll, ready at its second.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        if std::mem::replace(&mut self.0, true) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

#[test]
fn an_instrumented_future_enters_its_span_at_each_poll_and_when_it_is_dropped() {
    install();
    let span = tracing::info_span!("future_entries");
    let mut future = Box::pin(YieldOnce(false).instrument(span));
    let mut cx = Context::from_waker(Waker::noop());
    assert!(future.as_mut().poll(&mut cx).is_pending());
    assert!(future.as_mut().poll(&mut cx).is_ready());
    assert_eq!(totals("future_entries").map(|t| t.entries), Some(2));
    drop(future);
    assert_eq!(totals("future_entries").map(|t| t.entries), Some(3));
}

#[test]
fn a_guard_dropped_on_another_thread_ends_the_span_on_the_thread_that_entered_it() {
    // A guard held across an `.await` is dropped wherever the task is polled next: the thread
    // that entered the span used to stay in it for good, charging it all it allocated after.
    install();
    let span = tracing::info_span!("stray_exit");
    let guard = span.enter();
    let inside = vec![1u8; 1000];
    drop_on_another_thread(guard, || {});
    // tracing's registry still calls the span current here, until it closes: the layer takes
    // the guard's drop as the exit it was meant to be.
    let after = vec![2u8; 3000];
    let kept = (inside, after);
    assert_eq!(live("stray_exit"), 1000, "only what was allocated inside");
    drop(kept);
    assert_eq!(live("stray_exit"), 0);
}

#[test]
fn a_stray_exit_ends_the_entry_it_was_made_for_not_a_later_entry_of_the_same_span() {
    // Entered, then another span, then the first again (a re-poll entering it anew), and the
    // first entry's guard dropped on another thread: the thread is still in the first span
    // through its later entry. The newest entry used to go, leaving it in the other span.
    install();
    let (outer, middle) = (
        tracing::info_span!("reentered"),
        tracing::info_span!("between"),
    );
    let kept = {
        let first = outer.enter();
        let _middle = middle.enter();
        let _again = outer.enter();
        drop_on_another_thread(first, || {});
        vec![3u8; 2000]
    };
    assert_eq!((live("reentered"), live("between")), (2000, 0));
    drop(kept);
}

/// Drop `guard` on another thread (as a runtime polling its task elsewhere would), run `then`
/// there, and return once both are done. Waited for by spinning before the scope joins: a
/// blocking receive would cache an allocation of its own on this thread, inside its span.
fn drop_on_another_thread<G: Send>(guard: G, then: impl FnOnce() + Send) {
    let dropped = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            drop(guard);
            then();
            dropped.store(true, std::sync::atomic::Ordering::Release);
        });
        while !dropped.load(std::sync::atomic::Ordering::Acquire) {
            std::hint::spin_loop();
        }
    });
}

/// Exits made on another thread than the entry, `count` of them, for a span nobody is in.
fn stray_exits(count: usize) {
    let noise = tracing::info_span!("nobody_in_it");
    let id = noise.id().expect("an enabled span");
    std::thread::scope(|scope| {
        scope.spawn(|| {
            tracing::dispatcher::get_default(|d| {
                for _ in 0..count {
                    d.exit(&id);
                }
            })
        });
    });
}

#[test]
fn exits_a_thread_fell_too_far_behind_to_apply_are_counted_and_the_run_says_so() {
    // A thread in a span whose guard another thread dropped, idle while more stray exits
    // happened than are kept: it cannot tell it should leave the span, and charges it what it
    // allocates next. That used to go unsaid.
    install();
    let mut first = true;
    let report = profiler::Profiler::new("lost-exits").iterations(3).run(|| {
        if !std::mem::take(&mut first) {
            return;
        }
        let before = profiler::alloc::span_stack::lost_exits();
        let span = tracing::info_span!("left_behind");
        drop_on_another_thread(span.enter(), || stray_exits(5_000));
        drop(std::hint::black_box(vec![4u8; 100]));
        assert!(profiler::alloc::span_stack::lost_exits() > before);
    });
    let notes = report.runs[0].source.notes.join("; ");
    assert!(notes.contains("too many at once"), "{notes}");
}
