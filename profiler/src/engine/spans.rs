// Owns what a run reports of heap per span: each span name's change over the run, and for
// sampled spans the bounds of their estimates. Must never count anything: `alloc::spans` does.

use crate::alloc::spans::{SampledTotals, SpanTotals};
use crate::model::{SpanRecord, SpanSampling};
use crate::stats::sampled_total_bounds;

/// What each span name did between two totals: the names entered or allocating in between.
pub(super) fn records(before: &[SpanTotals], after: &[SpanTotals]) -> Vec<SpanRecord> {
    after
        .iter()
        .filter_map(|a| {
            let b = before.iter().find(|b| b.name == a.name);
            let at_start = |f: fn(&SpanTotals) -> i64| b.map_or(0, f);
            let record = SpanRecord {
                name: a.name.to_string(),
                allocated_bytes: a.allocated_bytes - at_start(|t| t.allocated_bytes),
                allocations: a.allocations - at_start(|t| t.allocations),
                // Sampled: what the run's sampled blocks stand for (the live bytes' change
                // but for rounding), the figure its bounds are about.
                retained_bytes: a.sampled.map_or_else(
                    || a.live_bytes - at_start(|t| t.live_bytes),
                    |s| s.new_bytes - s.freed_bytes,
                ),
                peak_bytes: (a.peak_bytes - at_start(|t| t.live_bytes)).max(0),
                entries: a.entries - at_start(|t| t.entries),
                sampled: a.sampled.map(span_sampling),
            };
            (record.entries > 0 || record.allocations > 0).then_some(record)
        })
        .collect()
}

/// The estimates' footing of a sampled span over a run: the retained bytes (what the run's
/// sampled blocks still live stand for, less what the earlier ones it freed stood for) with
/// 95% bounds from the Poisson counts of both (each block of a count standing for their mean
/// weight; with none, for an interval's worth, the most a small block unsampled could be).
fn span_sampling(s: SampledTotals) -> SpanSampling {
    let bounds = |n: i64, bytes: i64| sampled_total_bounds(n, bytes as f64, s.interval as f64);
    let (kept_lo, kept_hi) = bounds(s.new_samples, s.new_bytes);
    let (freed_lo, freed_hi) = bounds(s.freed_samples, s.freed_bytes);
    SpanSampling {
        interval_bytes: s.interval,
        retained_samples: s.new_samples.max(0),
        freed_samples: s.freed_samples.max(0),
        retained_bytes_ci: [
            (kept_lo - freed_hi).round() as i64,
            (kept_hi - freed_lo).round() as i64,
        ],
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
    fn nothing_sampled_is_bounded_by_what_could_go_unseen_either_way() {
        let s = span_sampling(sampled((0, 0), (0, 0)));
        let unseen = (poisson_bounds(0).1 * 1000.0).round() as i64;
        assert_eq!(s.retained_bytes_ci, [-unseen, unseen]);
        assert!((3500..4000).contains(&unseen), "{unseen}");
        assert_eq!((s.retained_samples, s.freed_samples), (0, 0));
    }

    #[test]
    fn kept_samples_bound_the_retained_bytes_from_their_count() {
        // 36 blocks kept, each standing for 1,000 B; none freed.
        let s = span_sampling(sampled((36, 36_000), (0, 0)));
        let [lo, hi] = s.retained_bytes_ci;
        let (n_lo, n_hi) = poisson_bounds(36);
        assert_eq!(
            lo,
            (n_lo * 1000.0 - poisson_bounds(0).1 * 1000.0).round() as i64
        );
        assert_eq!(hi, (n_hi * 1000.0).round() as i64);
        assert!(lo < 36_000 && 36_000 < hi);
        // Earlier blocks freed during the run pull both bounds down.
        let with_frees = span_sampling(sampled((36, 36_000), (10, 20_000)));
        let [freed_lo, freed_hi] = with_frees.retained_bytes_ci;
        assert!(freed_lo < lo && freed_hi < hi, "{with_frees:?}");
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
    fn a_record_is_the_change_over_the_run_sampled_or_exact() {
        let before = SpanTotals {
            entries: 1,
            ..totals(100, None)
        };
        let exact = records(std::slice::from_ref(&before), &[totals(400, None)]);
        assert_eq!(exact[0].retained_bytes, 300);
        assert_eq!(exact[0].peak_bytes, 700, "above its level at the start");
        assert_eq!(exact[0].sampled, None);
        // Sampled: the retained bytes are what the run's own sampled blocks stand for.
        let after = totals(400, Some(sampled((2, 250), (1, 40))));
        let sampled = records(&[before], &[after]);
        assert_eq!(sampled[0].retained_bytes, 210);
        let footing = sampled[0].sampled.as_ref().expect("sampled");
        assert_eq!((footing.retained_samples, footing.freed_samples), (2, 1));
    }
}
