// Warm-up: how many leading samples to drop before judging growth, and whether growth is still slowing.
// Never looks at effect sizes or decides a verdict; it only measures the curvature of the tail.

use super::jumps::{JumpScale, up_steps};
use crate::stats::{
    Z_99, mann_kendall, median, normal_sf, quadratic_curvature, t_quantile, thin_indices,
};

/// The curvature test needs this many points to say anything.
const MIN_CURVE_POINTS: usize = 8;

/// Longer tails are thinned for the curvature test: it runs once per candidate warm-up.
const MAX_CURVE_POINTS: usize = 400;
/// Decelerating means the fitted growth at the end of the tail is below this share of the
/// growth at its start: a cache filling slows down a lot, a steady leak not at all.
const DECELERATION: f64 = 0.5;

/// The automatic warm-up for `n_iterations`: max(2, ceil(0.2 N)).
pub fn base(n_iterations: usize) -> usize {
    2.max(n_iterations.div_ceil(5))
}

/// How far the warm-up may grow past its base while the tail still decelerates: max(2, ceil(0.1 N)).
pub fn max_extension(n_iterations: usize) -> usize {
    2.max(n_iterations.div_ceil(10))
}

/// The warm-up chosen for one series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WarmUp {
    /// leading samples dropped
    pub iterations: usize,
    /// where the search started (the automatic or user-given warm-up)
    pub base: usize,
    /// the tail still decelerated when the extension ran out: "growth decelerating"
    pub still_decelerating: bool,
}

/// Starts at `base` and drops one more sample at a time, up to `extension` more, while the tail
/// `y[w..]` is concave (growth slowing down, as a cache fills). Stops earlier so that at least
/// `min_tail` samples remain. `drops` are the indices of drops in `y` (a tail with drops is a
/// sawtooth, not a slowing curve). `var_floor` is the smallest residual variance believed.
pub fn choose(
    y: &[f64],
    base: usize,
    extension: usize,
    drops: &[usize],
    var_floor: f64,
    min_tail: usize,
) -> WarmUp {
    let limit = base
        .saturating_add(extension)
        .min(y.len().saturating_sub(min_tail))
        .max(base);
    // A staircase is judged once, on the longest tail: each step the warm-up passed over
    // would take a gap out of the few its test has.
    let quantum = (12.0 * var_floor).sqrt();
    if y.get(base..)
        .and_then(|t| staircase_decelerates(t, quantum))
        == Some(false)
    {
        return WarmUp {
            iterations: base,
            base,
            still_decelerating: false,
        };
    }
    let mut w = base;
    while w < limit && decelerating(y, w, drops, var_floor) {
        w += 1;
    }
    let still_decelerating =
        w == base.saturating_add(extension) && decelerating(y, w, drops, var_floor);
    WarmUp {
        iterations: w,
        base,
        still_decelerating,
    }
}

/// Is the tail `y[w..]` of a series that rose at three samples or more growing, significantly
/// concave (one-sided, 1%) and slowing down by
/// at least half (an effect size: exact or fine-grained counters make the slightest bend
/// significant, and a steady leak whose increments alternate bends a little), and not a steady
/// line with a step or two in it? Exact counters make any bend significant: a leak of 950 B
/// per iteration whose hash table resizes once bends the parabola at the resize, yet every
/// other increment is the same, which no filling cache does.
pub fn decelerating(y: &[f64], w: usize, drops: &[usize], var_floor: f64) -> bool {
    let Some(tail) = y.get(w..) else {
        return false;
    };
    if tail.len() < MIN_CURVE_POINTS || drops.iter().any(|&d| d > w) {
        return false;
    }
    let keep = thin_indices(tail.len(), MAX_CURVE_POINTS);
    let x: Vec<f64> = keep.iter().map(|&i| (w + i) as f64).collect();
    let v: Vec<f64> = keep.iter().map(|&i| tail[i]).collect();
    let Some(curve) = quadratic_curvature(&x, &v, var_floor) else {
        return false;
    };
    let quantum = (12.0 * var_floor).sqrt();
    // A cache filling rises at many samples; a series that rose at one or two only (a lump
    // near the start of a flat tail bends a parabola too) is level shifts, for the step rules.
    let rises = y.windows(2).filter(|p| p[1] - p[0] > 0.5 * quantum).count();
    rises >= 3
        && curve.c < 0.0
        && curve.slope_start > 0.0
        && curve.slope_end < DECELERATION * curve.slope_start
        && curve.c / curve.se_c < -t_quantile(Z_99, curve.df)
        && !steady_with_jumps(tail, quantum)
}

/// A staircase needs this many steps before the gaps between them can show a trend: with 6
/// steps (5 gaps) in strict widening, Mann-Kendall's exact p is 1/120, below 1%.
const MIN_GAPS_FOR_TREND: usize = 5;

/// For the tail of a coarse metric that grows only by steps (RSS under an allocator that maps
/// segments of megabytes: flat for tens of iterations, then +2 MiB), whether the steps' own
/// timing shows the growth slowing; `None` for any other tail, judged by its curvature alone.
///
/// The parabola's test takes the residuals as independent, and a staircase's are runs of one
/// sign as long as its gaps: a leak whose 2 MiB segments came at gaps of 11, 15, 49 and 22
/// iterations was "significantly concave" at p far below 1% and read "decelerating" at the
/// run's bound. A staircase is a sequence of events, so it is judged as one: slowing down
/// means the steps cluster early in the tail (the Laplace test of a Poisson process's trend,
/// each step weighted by its size), or the time per byte between steps widens (Mann-Kendall
/// on the gaps, each divided by the step that opened it, so that a container doubling at
/// doubling gaps keeps its pace). Each at 1% one-sided, and with the same effect size as the
/// curve's: the later growth at most half the earlier.
fn staircase_decelerates(tail: &[f64], quantum: f64) -> Option<bool> {
    // (Exact counters have a quantum of 1: their steps are containers and pools, judged by
    // the curve and the step rules as before.)
    if quantum < 2.0 || tail.len() < MIN_CURVE_POINTS {
        return None;
    }
    let scale = JumpScale::of(tail, quantum);
    let steps = up_steps(tail, &scale);
    let total = tail[tail.len() - 1] - tail[0];
    let stepped: f64 = steps.iter().map(|s| s.1).sum();
    if steps.len() < 3 || total <= 0.0 || (total - stepped).abs() > 0.1 * total {
        return None;
    }
    // Steps arrive within the sample that shows them: at the middle of its interval.
    let span = (tail.len() - 1) as f64;
    let at = |i: usize| i as f64 - 0.5;
    let (weighted, squares): (f64, f64) = steps
        .iter()
        .fold((0.0, 0.0), |(w, q), &(i, s)| (w + s * at(i), q + s * s));
    let laplace = (weighted - 0.5 * span * stepped) / (span * (squares / 12.0).sqrt());
    let later: f64 = steps
        .iter()
        .filter(|&&(i, _)| at(i) > 0.5 * span)
        .map(|s| s.1)
        .sum();
    let clustered_early = laplace < -Z_99 && later < DECELERATION * (stepped - later);

    let per_byte: Vec<f64> = steps
        .windows(2)
        .map(|w| (at(w[1].0) - at(w[0].0)) / w[0].1)
        .collect();
    let widening = per_byte.len() >= MIN_GAPS_FOR_TREND && {
        let half = per_byte.len() / 2;
        let (early, late) = (
            median(&per_byte[..half]),
            median(&per_byte[per_byte.len() - half..]),
        );
        mann_kendall(&per_byte).p_up < normal_sf(Z_99) && late * DECELERATION >= early
    };
    Some(clustered_early || widening)
}

/// All increments but at most two equal the (positive) median increment, within `quantum`
/// and within half of it: on a counter of one block per iteration a flat run of zero
/// increments is a cache that stopped filling, not the same increment within a quantum.
fn steady_with_jumps(tail: &[f64], quantum: f64) -> bool {
    let mut deltas: Vec<f64> = tail.windows(2).map(|p| p[1] - p[0]).collect();
    if deltas.len() < 6 {
        return false;
    }
    let typical = median(&deltas);
    deltas.sort_by(|a, b| (a - typical).abs().total_cmp(&(b - typical).abs()));
    let rest = &deltas[..deltas.len() - 2];
    typical > 0.0
        && rest
            .iter()
            .all(|d| (d - typical).abs() <= quantum.min(0.5 * typical).max(1e-9 * typical))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLOOR: f64 = 1.0 / 12.0;

    #[test]
    fn base_and_extension_follow_the_spec() {
        assert_eq!((base(5), max_extension(5)), (2, 2));
        assert_eq!((base(20), max_extension(20)), (4, 2));
        assert_eq!((base(21), max_extension(21)), (5, 3));
        assert_eq!((base(40), max_extension(40)), (8, 4));
        assert_eq!((base(160), max_extension(160)), (32, 16));
    }

    #[test]
    fn a_straight_line_keeps_the_base() {
        let y: Vec<f64> = (0..21).map(|i| 1024.0 * i as f64).collect();
        let w = choose(&y, 4, 2, &[], FLOOR, 4);
        assert_eq!(
            w,
            WarmUp {
                iterations: 4,
                base: 4,
                still_decelerating: false
            }
        );
    }

    #[test]
    fn a_ramp_that_stops_is_waited_out() {
        // a pool that grows by one thread per iteration until iteration 6
        let y: Vec<f64> = (0..21).map(|i| i.min(6) as f64).collect();
        let w = choose(&y, 4, 2, &[], FLOOR, 4);
        assert!(!w.still_decelerating, "{w:?}");
        assert!(w.iterations > 4, "{w:?}");
    }

    #[test]
    fn one_block_per_iteration_then_flat_is_decelerating() {
        // A cache of 30 entries filling one per iteration, judged at 40 iterations: blocks
        // rise by exactly one quantum, then not at all. It once passed for a steady line (0
        // is within a quantum of 1) and was called a leak while its bytes were decelerating.
        let y: Vec<f64> = (0..=40).map(|i| (i.min(29) + 2) as f64).collect();
        assert!(decelerating(&y, 8, &[], FLOOR));
        let w = choose(&y, 8, max_extension(40), &[], FLOOR, 4);
        assert!(w.still_decelerating, "{w:?}");
    }

    #[test]
    fn one_step_early_in_a_flat_tail_is_not_decelerating() {
        // RSS of a Python program: one 128 KiB step at sample 54 of 160, flat after. It was
        // "still slowing (now 0 B per iteration)" and inconclusive; it is a level shift.
        let page = 128.0 * 1024.0;
        let floor = page * page / 12.0;
        let y: Vec<f64> = (0..=160)
            .map(|i| if i >= 54 { page } else { 0.0 })
            .collect();
        assert!(!decelerating(&y, 48, &[], floor));
        // Two lumps neither; three rises may be a cache.
        let y: Vec<f64> = (0..=160)
            .map(|i| page * [50, 53, 57].iter().filter(|&&s| i >= s).count() as f64)
            .collect();
        assert!(decelerating(&y, 48, &[], floor));
    }

    #[test]
    fn log_growth_is_still_decelerating_at_the_limit() {
        let y: Vec<f64> = (0..21)
            .map(|i| (65536.0 * (1.0 + i as f64).ln()).round())
            .collect();
        let w = choose(&y, 4, 2, &[], FLOOR, 4);
        assert_eq!(
            w,
            WarmUp {
                iterations: 6,
                base: 4,
                still_decelerating: true
            }
        );
    }

    #[test]
    fn staircases_are_not_decelerating_in_any_phase() {
        for n in [20usize, 40, 80] {
            for k in 1..=10usize {
                for phase in 0..k {
                    let y: Vec<f64> = (0..=n).map(|i| ((i + phase) / k) as f64).collect();
                    let b = base(n);
                    let w = choose(&y, b, max_extension(n), &[], FLOOR, 4);
                    assert!(!w.still_decelerating, "n {n} k {k} phase {phase}: {w:?}");
                }
            }
        }
    }

    #[test]
    fn a_line_with_one_step_is_not_decelerating() {
        // global-cache: 950 B per iteration, a hash table resize of 3,136 B at iteration 17
        // (measured on the catalog workload).
        let y: Vec<f64> = (0..41)
            .map(|i| 950.0 * i as f64 + if i >= 17 { 3136.0 } else { 0.0 })
            .collect();
        for (n, w) in [(20, 4), (40, 8)] {
            let w = choose(&y[..=n], w, max_extension(n), &[], FLOOR, 4);
            assert!(!w.still_decelerating, "n {n}: {w:?}");
        }
    }

    #[test]
    fn a_tail_with_drops_is_not_a_curve() {
        let y: Vec<f64> = (0..21)
            .map(|i| (65536.0 * (1.0 + i as f64).ln()).round())
            .collect();
        assert!(decelerating(&y, 4, &[], FLOOR));
        assert!(!decelerating(&y, 4, &[10], FLOOR));
        assert!(!decelerating(&y, 30, &[], FLOOR));
    }
}
