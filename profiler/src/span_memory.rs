// Owns `SpanMemory`, the tracing-subscriber layer that tells the allocator which span each
// thread is in. Must never count anything itself: `alloc::spans` does, on the cold path.

//! Heap per `tracing` span (feature `tracing`).
//!
//! ```
//! use tracing_subscriber::layer::SubscriberExt;
//!
//! #[global_allocator]
//! static ALLOC: profiler::Alloc = profiler::Alloc::new();
//!
//! let subscriber = tracing_subscriber::registry().with(profiler::SpanMemory::new());
//! tracing::subscriber::with_default(subscriber, || {
//!     let report = profiler::Profiler::new("requests").iterations(5).run(|| {
//!         let _span = tracing::info_span!("handle").entered();
//!         vec![0u8; 1024].len()
//!     });
//!     let run = &report.runs[0];
//!     let handle = run.span("handle").expect("entered in every iteration");
//!     assert_eq!(handle.retained_bytes, 0); // this handler keeps nothing
//!     assert_eq!(handle.entries, i64::from(run.iterations));
//! });
//! ```
//!
//! Every allocation made while a thread is inside a span (the one `tracing` calls current,
//! `Span::current()`: the innermost, at any depth, whatever order guards are dropped in) is
//! charged to that span's name (a guard dropped on another thread than the one that entered
//! it, as a guard held across an `.await` is, ends the span on both), and to no span around it: bytes and allocations allocated,
//! bytes still live, their peak (each run's own, whatever runs overlap it), and how often the
//! span was entered (an
//! instrumented future's span at every poll, and once more when the future is dropped, as
//! tracing drops it inside its span). Entering and exiting follow the thread, so an
//! instrumented future that the runtime moves between worker threads is charged wherever it
//! is polled. A block keeps its span until it is freed, on any thread (exact; sampled, a
//! `realloc` is a new allocation, charged to the span its thread is in). The report of every
//! run made while the layer is installed lists the spans (`runs[].spans[]`): a run's
//! `retained_bytes` are the bytes allocated inside the span during the run and still live at
//! its end, its `peak_bytes` the span's highest live bytes during the run.
//!
//! A span's figures leave out the spans entered inside it: a handler whose callee runs in an
//! `#[instrument]`ed span of its own is charged nothing for what the callee keeps. To say
//! "this request retains nothing", check every span name the request enters
//! (`run.spans.iter().all(|s| s.retained_bytes == 0)`).
//!
//! [`SpanMemory::new`] is exact, and it costs: once it exists, every allocator call of the
//! process takes the allocator's slower path and a block made inside a span is recorded in a
//! side table (measured in the README). Meant for tests and diagnosis runs.
//!
//! [`SpanMemory::sampled`] is for services in production: the allocator keeps its fast path,
//! one allocation per `interval` bytes allocated on average is sampled (a Poisson process over
//! bytes, as sampled attribution does), and each span name's figures are estimates from the
//! sampled blocks allocated inside it: every sampled block of `b` bytes stands for `b / p`
//! bytes and `1 / p` allocations, `p = 1 - exp(-b / interval)` its chance of being sampled.
//! The report marks them (`runs[].spans[].sampled`) and gives the retained bytes 95% bounds
//! from the count of the run's sampled blocks still live at its end (with none, up to about
//! 3.9 intervals' worth of bytes could have gone unseen). Overlapping runs share what counts as
//! the run: the sampled blocks since the first of them began. The peak is the highest of a
//! running estimate, so it reads high: the estimate of a live set of `L` bytes wanders by
//! about `sqrt(L * interval)`, and its highest over `K` turnovers of that set by about
//! `sqrt(2 * L * interval * ln K)` above `L`. Entries stay exact. Samples taken for the spans alone keep no
//! backtrace. What it costs (measured in the README): about what sampling costs, and, while it
//! is on, a free of more than a page checks a count of sampled blocks by address.

use tracing::span::{Attributes, Id};
use tracing::{Metadata, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use crate::alloc::span_stack;
use crate::alloc::spans::{self, SpanTotals};
use crate::stats::sampled_total_bounds;

/// A `tracing_subscriber` layer charging heap allocations to the span the allocating thread
/// is in: `tracing_subscriber::registry().with(profiler::SpanMemory::new())`.
#[derive(Debug)]
pub struct SpanMemory {
    _private: (),
}

impl SpanMemory {
    /// The layer, exact. Creating it switches heap-per-span counting on for the rest of the
    /// process (it needs `profiler::Alloc` as the global allocator).
    pub fn new() -> Self {
        spans::enable();
        SpanMemory { _private: () }
    }

    /// The layer, sampled: one allocation per `interval_bytes` allocated on average (smaller
    /// is finer and dearer; for always-on use,
    /// [`ALWAYS_ON_INTERVAL`](crate::alloc::sampled::ALWAYS_ON_INTERVAL), 2 MiB, whose cost
    /// the README measures beside 1 MiB's). Creating it switches sampling on at
    /// that interval for the rest of the process (it needs `profiler::Alloc` as the global
    /// allocator; a second sampled layer keeps the finer interval); an exact layer, if one
    /// exists too, is what the report shows.
    ///
    /// # Panics
    ///
    /// If `interval_bytes` is 0.
    pub fn sampled(interval_bytes: u64) -> Self {
        assert!(
            interval_bytes > 0,
            "SpanMemory::sampled needs an interval of at least 1 byte"
        );
        spans::enable_sampled(interval_bytes);
        SpanMemory { _private: () }
    }
}

impl SpanMemory {
    /// Every span name's totals now, since the layer was created: what a running service
    /// reads (estimates when sampled, with [`SpanTotals::live_bytes_bounds`]). Empty while no
    /// layer exists.
    pub fn totals() -> Vec<SpanTotals> {
        spans::totals().unwrap_or_default()
    }
}

// The bounds are worked out here, above the allocator's layer (statistics are a layer up).
impl SpanTotals {
    /// 95% bounds of [`live_bytes`](Self::live_bytes): itself twice when exact; sampled,
    /// from the count of its sampled blocks live (with none, up to about 3.9 intervals' worth
    /// could be live unseen).
    pub fn live_bytes_bounds(&self) -> [i64; 2] {
        let Some(s) = &self.sampled else {
            return [self.live_bytes; 2];
        };
        let unit = s.interval as f64;
        let (lo, hi) = sampled_total_bounds(s.live_samples, self.live_bytes as f64, unit);
        [lo.round() as i64, hi.round() as i64]
    }
}

impl Default for SpanMemory {
    fn default() -> Self {
        Self::new()
    }
}

fn site(meta: &'static Metadata<'static>) -> usize {
    meta as *const Metadata<'static> as usize
}

impl<S> Layer<S> for SpanMemory
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, _id: &Id, _ctx: Context<'_, S>) {
        // Registered up front, so that the first entry does not register under its lock.
        let meta = attrs.metadata();
        spans::register(site(meta), meta.name());
    }

    // Which span each thread is in is kept by `alloc::span_stack`, as the registry keeps
    // it; asking the registry for its current span at every exit cost 2.4x per enter and exit
    // (226 ns against 93 per pair).
    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            let meta = span.metadata();
            let at = spans::enter_site(site(meta), meta.name());
            span_stack::entered(id.into_u64(), at);
        }
    }

    fn on_exit(&self, id: &Id, _ctx: Context<'_, S>) {
        spans::set_current(span_stack::exited(id.into_u64()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_bytes_bounds_are_exact_or_from_the_count_of_live_samples() {
        let exact = SpanTotals {
            name: "handler",
            allocated_bytes: 4096,
            allocations: 2,
            live_bytes: 1024,
            peak_bytes: 4096,
            entries: 2,
            sampled: None,
        };
        assert_eq!(exact.live_bytes_bounds(), [1024, 1024]);
        let sampled = |live_samples, live_bytes| SpanTotals {
            live_bytes,
            sampled: Some(spans::SampledTotals {
                interval: 1000,
                live_samples,
                new_samples: 0,
                new_bytes: 0,
                freed_samples: 0,
                freed_bytes: 0,
            }),
            ..exact.clone()
        };
        let [lo, hi] = sampled(0, 0).live_bytes_bounds();
        assert_eq!(lo, 0);
        assert!(
            (3500..4000).contains(&hi),
            "up to ~3.9 intervals unseen: {hi}"
        );
        let [lo, hi] = sampled(100, 100_000).live_bytes_bounds();
        assert!(
            lo < 100_000 && 100_000 < hi && hi - lo < 50_000,
            "{lo}..{hi}"
        );
    }
}
