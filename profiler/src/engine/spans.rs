// Owns what a run reports of heap per span: what each span name did during the run, and for
// sampled spans the bounds of their estimates. Must never count anything: `alloc::spans` does.

use crate::alloc::spans::{SampledTotals, SpanTotals};
use crate::model::{SpanRecord, SpanSampling};
use crate::stats::sampled_total_bounds;

/// What each span name did between two totals (`after` with the run's peaks): the names
/// entered or allocating in between. `retained` is exact heap per span's bytes allocated
/// inside each name during the run and still live (`RunWindow::retained`); without it
/// (sampled), what the run's sampled blocks still live stand for.
pub(super) fn records(
    before: &[SpanTotals],
    after: &[SpanTotals],
    retained: Option<&[(&'static str, i64)]>,
) -> Vec<SpanRecord> {
    after
        .iter()
        .filter_map(|a| {
            let b = before.iter().find(|b| b.name == a.name);
            let at_start = |f: fn(&SpanTotals) -> i64| b.map_or(0, f);
            let exact = || {
                let own = retained.and_then(|r| r.iter().find(|(name, _)| *name == a.name));
                own.map_or(0, |&(_, bytes)| bytes)
            };
            let record = SpanRecord {
                name: a.name.to_string(),
                allocated_bytes: a.allocated_bytes - at_start(|t| t.allocated_bytes),
                allocations: a.allocations - at_start(|t| t.allocations),
                // Sampled: never below 0 (a window opening races the counts it resets).
                retained_bytes: a.sampled.map_or_else(exact, |s| s.new_bytes.max(0)),
                peak_bytes: a.peak_bytes,
                entries: a.entries - at_start(|t| t.entries),
                sampled: a.sampled.map(span_sampling),
            };
            (record.entries > 0 || record.allocations > 0).then_some(record)
        })
        .collect()
}

/// What a run says when threads missed span exits made on other threads ([`lost_exits`]).
///
/// [`lost_exits`]: crate::alloc::span_stack::lost_exits
pub(super) fn lost_exits_note(lost: u64) -> String {
    format!(
        "heap per span: up to {lost} span exit(s) made on another thread than the entry \
         (guards held across an .await) came too many at once for a thread to apply (counted \
         process-wide): a span entered there may be charged for what that thread allocated \
         after the span ended"
    )
}

/// The estimates' footing of a sampled span over a run: the retained bytes (what the run's
/// sampled blocks still live stand for) with 95% bounds from their Poisson count (each block
/// standing for their mean weight; with none, for an interval's worth, the most a small
/// block unsampled could be).
fn span_sampling(s: SampledTotals) -> SpanSampling {
    let (n, bytes) = (s.new_samples.max(0), s.new_bytes.max(0));
    let (lo, hi) = sampled_total_bounds(n, bytes as f64, s.interval as f64);
    SpanSampling {
        interval_bytes: s.interval,
        retained_samples: n,
        freed_samples: s.freed_samples.max(0),
        retained_bytes_ci: [lo.round() as i64, hi.round() as i64],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::poisson_bounds;

    fn sampled(new: (i64, i64), freed: (i64, i64)) -> SampledTotals {
        SampledTotals {
            interval: 1000,
            new_samples: new.0,
            new_bytes: new.1,
            freed_samples: freed.0,
            freed_bytes: freed.1,
            live_samples: new.0,
        }
    }

    #[test]
    fn nothing_sampled_is_bounded_by_what_could_go_unseen() {
        let s = span_sampling(sampled((0, 0), (0, 0)));
        let unseen = (poisson_bounds(0).1 * 1000.0).round() as i64;
        assert_eq!(s.retained_bytes_ci, [0, unseen]);
        assert!((3500..4000).contains(&unseen), "{unseen}");
        assert_eq!((s.retained_samples, s.freed_samples), (0, 0));
    }

    #[test]
    fn kept_samples_bound_the_retained_bytes_from_their_count() {
        // 36 blocks kept, each standing for 1,000 B; none freed.
        let s = span_sampling(sampled((36, 36_000), (0, 0)));
        let [lo, hi] = s.retained_bytes_ci;
        let (n_lo, n_hi) = poisson_bounds(36);
        assert_eq!(lo, (n_lo * 1000.0).round() as i64);
        assert_eq!(hi, (n_hi * 1000.0).round() as i64);
        assert!(lo < 36_000 && 36_000 < hi);
        // Earlier blocks freed during the run are counted, but retained is about the run's own.
        let with_frees = span_sampling(sampled((36, 36_000), (10, 20_000)));
        assert_eq!(with_frees.retained_bytes_ci, [lo, hi], "{with_frees:?}");
        assert_eq!(with_frees.freed_samples, 10);
    }

    fn totals(live: i64, sampled: Option<SampledTotals>) -> SpanTotals {
        SpanTotals {
            name: "handler",
            allocated_bytes: 5 * live,
            allocations: 10,
            live_bytes: live,
            peak_bytes: 2 * live,
            entries: 3,
            sampled,
        }
    }

    #[test]
    fn a_record_counts_the_run_and_keeps_what_the_run_allocated_and_did_not_free() {
        let before = SpanTotals {
            entries: 1,
            ..totals(100, None)
        };
        // Exact: retained is the run's own blocks still live (here 350 B: it freed 50 B of
        // the 100 B from before), not the change in live bytes (300 B).
        let retained = [("other", 7), ("handler", 350)];
        let exact = records(
            std::slice::from_ref(&before),
            &[totals(400, None)],
            Some(&retained),
        );
        assert_eq!(exact[0].retained_bytes, 350);
        assert_eq!(
            exact[0].peak_bytes, 800,
            "its highest live bytes during the run"
        );
        assert_eq!(
            (
                exact[0].allocated_bytes,
                exact[0].allocations,
                exact[0].entries
            ),
            (1500, 0, 2)
        );
        assert_eq!(exact[0].sampled, None);
        // Sampled: the retained bytes are what the run's own sampled blocks still live stand
        // for, whatever earlier ones it freed.
        let after = totals(400, Some(sampled((2, 250), (1, 40))));
        let sampled = records(&[before], &[after], None);
        assert_eq!(sampled[0].retained_bytes, 250);
        let footing = sampled[0].sampled.as_ref().expect("sampled");
        assert_eq!((footing.retained_samples, footing.freed_samples), (2, 1));
    }
}
