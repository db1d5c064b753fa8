// Thinning long series to what a picture can show: per pixel column the first, last, lowest and
// highest point (M4). It must never drop a peak: the global minimum and maximum always survive.

use std::ops::Range;

/// Thins a series to at most `max_points` points (at least 4 are allowed) without hiding peaks.
///
/// Points whose x or y is not finite are dropped first; pairs beyond the shorter slice are
/// ignored. If what is left fits in `max_points` it is returned unchanged. Otherwise the x range
/// is cut into `max_points / 4` equal columns (or the points into equal runs by index when `xs`
/// is not sorted) and each column keeps its first, last, lowest and highest point, in their
/// original order. Drawn as a line this is indistinguishable from the full series at one column
/// per pixel, and the global minimum and maximum are always among the points kept.
///
/// ```
/// let xs: Vec<f64> = (0..10_000).map(f64::from).collect();
/// let mut ys = vec![1.0; 10_000];
/// ys[7_777] = 50.0; // a single spike
/// let (dx, dy) = plots::decimate(&xs, &ys, 400);
/// assert!(dx.len() <= 400);
/// assert!(dy.contains(&50.0));
/// ```
pub fn decimate(xs: &[f64], ys: &[f64], max_points: usize) -> (Vec<f64>, Vec<f64>) {
    let (fx, fy): (Vec<f64>, Vec<f64>) = xs
        .iter()
        .zip(ys)
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .map(|(&x, &y)| (x, y))
        .unzip();
    let buckets = max_points.max(4) / 4;
    if fx.len() <= buckets * 4 || fx.len() <= max_points {
        return (fx, fy);
    }
    let keep = m4(&fx, &fy, buckets);
    (
        keep.iter().map(|&i| fx[i]).collect(),
        keep.iter().map(|&i| fy[i]).collect(),
    )
}

/// Indices (ascending) of the points M4 keeps from finite `xs`/`ys` of equal length, for
/// `buckets` columns: at most `4 * buckets` of them.
pub(crate) fn m4(xs: &[f64], ys: &[f64], buckets: usize) -> Vec<usize> {
    let n = xs.len().min(ys.len());
    let buckets = buckets.max(1);
    if n <= 4 * buckets {
        return (0..n).collect();
    }
    let column = column_of(&xs[..n], buckets);
    let mut keep = Vec::with_capacity(4 * buckets);
    let flush = |keep: &mut Vec<usize>, idx: [usize; 4]| {
        let mut idx = idx;
        idx.sort_unstable();
        for (k, &i) in idx.iter().enumerate() {
            if k == 0 || idx[k - 1] != i {
                keep.push(i);
            }
        }
    };
    let mut current = column(0);
    let (mut first, mut last, mut lo, mut hi) = (0, 0, 0, 0);
    for i in 1..n {
        let c = column(i);
        if c != current {
            flush(&mut keep, [first, lo, hi, last]);
            current = c;
            (first, last, lo, hi) = (i, i, i, i);
            continue;
        }
        last = i;
        if ys[i] < ys[lo] {
            lo = i;
        }
        if ys[i] > ys[hi] {
            hi = i;
        }
    }
    flush(&mut keep, [first, lo, hi, last]);
    keep
}

/// Maps a point index to its column: by x when `xs` is sorted and spans a range, else by index.
fn column_of(xs: &[f64], buckets: usize) -> impl Fn(usize) -> usize + '_ {
    let n = xs.len();
    let sorted = xs.windows(2).all(|w| w[0] <= w[1]);
    let (x0, x1) = (xs[0], xs[n - 1]);
    let by_x = sorted && x1 > x0;
    let width = x1 - x0;
    move |i| {
        if by_x {
            (((xs[i] - x0) / width * buckets as f64) as usize).min(buckets - 1)
        } else {
            i * buckets / n
        }
    }
}

/// One column of a thinned band: its x and the band's lowest `lo` and highest `hi` there.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct BandPoint {
    pub x: f64,
    pub lo: f64,
    pub hi: f64,
}

/// Thins a band (finite, equal lengths) to at most `2 * buckets` points while keeping its
/// envelope: per column the lowest `lo` and the highest `hi`, at the column's first and last x.
pub(crate) fn envelope(xs: &[f64], lo: &[f64], hi: &[f64], buckets: usize) -> Vec<BandPoint> {
    let n = xs.len().min(lo.len()).min(hi.len());
    let buckets = buckets.max(1);
    let point = |i: usize| BandPoint {
        x: xs[i],
        lo: lo[i],
        hi: hi[i],
    };
    if n <= 2 * buckets {
        return (0..n).map(point).collect();
    }
    let column = column_of(&xs[..n], buckets);
    let mut out = Vec::with_capacity(2 * buckets);
    let flush = |out: &mut Vec<BandPoint>, first: usize, last: usize, l: f64, h: f64| {
        out.push(BandPoint {
            x: xs[first],
            lo: l,
            hi: h,
        });
        if last != first {
            out.push(BandPoint {
                x: xs[last],
                lo: l,
                hi: h,
            });
        }
    };
    let mut current = column(0);
    let (mut first, mut last, mut l, mut h) = (0, 0, lo[0], hi[0]);
    for i in 1..n {
        let c = column(i);
        if c != current {
            flush(&mut out, first, last, l, h);
            current = c;
            (first, last, l, h) = (i, i, lo[i], hi[i]);
            continue;
        }
        last = i;
        l = l.min(lo[i]);
        h = h.max(hi[i]);
    }
    flush(&mut out, first, last, l, h);
    out
}

/// The maximal runs of consecutive indices in `0..n` for which `ok` holds: the pieces of a line
/// between missing values.
pub(crate) fn runs(n: usize, ok: impl Fn(usize) -> bool) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = None;
    for i in 0..n {
        match (ok(i), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push(s..i);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push(s..n);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic noisy series with one spike up and one dip down at awkward places.
    fn noisy(n: usize) -> (Vec<f64>, Vec<f64>) {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let xs: Vec<f64> = (0..n).map(|i| i as f64 * 0.5).collect();
        let mut ys: Vec<f64> = (0..n)
            .map(|i| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (i as f64 / 1000.0).sin() * 100.0 + (state % 1000) as f64 / 100.0
            })
            .collect();
        ys[n / 3 + 17] = 1_000.0;
        ys[2 * n / 3 + 5] = -1_000.0;
        (xs, ys)
    }

    fn extremes(ys: &[f64]) -> (f64, f64) {
        ys.iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &y| {
                (lo.min(y), hi.max(y))
            })
    }

    #[test]
    fn keeps_global_extremes_and_bounds_the_length() {
        let (xs, ys) = noisy(100_000);
        for max_points in [4, 5, 100, 1000, 4001] {
            let (dx, dy) = decimate(&xs, &ys, max_points);
            assert!(dx.len() <= max_points, "{} > {max_points}", dx.len());
            assert_eq!(dx.len(), dy.len());
            assert_eq!(
                extremes(&dy),
                (-1_000.0, 1_000.0),
                "max_points {max_points}"
            );
        }
    }

    #[test]
    fn keeps_order_and_only_real_points() {
        let (xs, ys) = noisy(50_000);
        let (dx, dy) = decimate(&xs, &ys, 2000);
        assert!(dx.len() > 1000, "too few kept: {}", dx.len());
        assert!(dx.windows(2).all(|w| w[0] < w[1]), "xs not increasing");
        for (x, y) in dx.iter().zip(&dy) {
            let i = (x * 2.0) as usize;
            assert_eq!(ys[i], *y, "point at x={x} was invented");
        }
        assert_eq!(dx.first(), Some(&xs[0]));
        assert_eq!(dx.last(), xs.last());
    }

    #[test]
    fn short_series_come_back_unchanged() {
        let xs = [0.0, 1.0, 2.0];
        let ys = [3.0, 1.0, 2.0];
        assert_eq!(decimate(&xs, &ys, 10), (xs.to_vec(), ys.to_vec()));
        assert_eq!(decimate(&xs, &ys, 0), (xs.to_vec(), ys.to_vec()));
        assert_eq!(decimate(&[], &[], 10), (vec![], vec![]));
    }

    #[test]
    fn non_finite_points_are_dropped_and_lengths_may_differ() {
        let xs = [0.0, 1.0, f64::NAN, 3.0, 4.0, 5.0];
        let ys = [1.0, f64::INFINITY, 2.0, f64::NAN, 5.0];
        assert_eq!(decimate(&xs, &ys, 100), (vec![0.0, 4.0], vec![1.0, 5.0]));
    }

    #[test]
    fn unsorted_xs_fall_back_to_runs_by_index() {
        let (mut xs, ys) = noisy(20_000);
        xs.reverse();
        let (dx, dy) = decimate(&xs, &ys, 200);
        assert!(dx.len() <= 200);
        assert_eq!(extremes(&dy), (-1_000.0, 1_000.0));
        assert!(dx.windows(2).all(|w| w[0] > w[1]), "input order not kept");
    }

    #[test]
    fn uneven_x_spacing_buckets_by_x() {
        // 10k points crowded in x in [0, 1) and 10 spread over [1, 1000]: by x, the crowd
        // shares one column and the spread points each keep theirs.
        let mut xs: Vec<f64> = (0..10_000).map(|i| i as f64 / 10_000.0).collect();
        xs.extend((1..=10).map(|i| i as f64 * 100.0));
        let ys: Vec<f64> = xs.iter().map(|x| x.sin()).collect();
        let (dx, _) = decimate(&xs, &ys, 400);
        for x in (1..=10).map(|i| i as f64 * 100.0) {
            assert!(dx.contains(&x), "lost the sparse point at {x}");
        }
    }

    #[test]
    fn envelope_keeps_the_band_extremes() {
        let n = 100_000;
        let xs: Vec<f64> = (0..n).map(|i| i as f64).collect();
        let mut lo = vec![0.0; n];
        let mut hi = vec![1.0; n];
        lo[12_345] = -7.0;
        hi[54_321] = 9.0;
        let env = envelope(&xs, &lo, &hi, 500);
        assert!(env.len() <= 1000);
        assert!(env.iter().any(|p| p.lo == -7.0));
        assert!(env.iter().any(|p| p.hi == 9.0));
        assert!(env.windows(2).all(|w| w[0].x <= w[1].x));
    }

    #[test]
    fn runs_split_at_gaps() {
        let v = [1.0, f64::NAN, 2.0, 3.0, f64::NAN, f64::NAN, 4.0];
        assert_eq!(runs(v.len(), |i| v[i].is_finite()), vec![0..1, 2..4, 6..7]);
        assert_eq!(runs(0, |_| true), vec![]);
    }
}
