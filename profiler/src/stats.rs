// Statistics over plain numbers: medians, Theil-Sen with Sen's bounds, Mann-Kendall, least squares.
// Never decides a verdict and never panics; callers hand it finite values (NaN/inf are filtered in mod.rs).

/// Two-sided 95% normal quantile, the `z` in Sen's `C_alpha = z * sqrt(Var S)`.
pub const Z_95: f64 = 1.959_963_984_540_054;

/// One-sided 1% normal quantile, for the curvature test of the warm-up.
pub const Z_99: f64 = 2.326_347_874_040_841;

/// Median of a slice (average of the two middle values for an even length); 0 for an empty slice.
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    median_in_place(&mut v)
}

/// Median that reorders `v` instead of copying it.
pub fn median_in_place(v: &mut [f64]) -> f64 {
    let n = v.len();
    if n == 0 {
        return 0.0;
    }
    let upper = kth_smallest(v, n / 2);
    if n % 2 == 1 {
        upper
    } else {
        // After the selection every value left of n/2 is <= upper: the lower middle is their maximum.
        let lower = v[..n / 2].iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (lower + upper) / 2.0
    }
}

/// Median absolute deviation from the median, scaled by 1.4826 so that it estimates the standard
/// deviation of Gaussian data while ignoring up to half of the values being outliers.
pub fn robust_sigma(values: &[f64]) -> f64 {
    let m = median(values);
    let mut dev: Vec<f64> = values.iter().map(|v| (v - m).abs()).collect();
    1.4826 * median_in_place(&mut dev)
}

/// The k-th smallest value (0-based), reordering `v`. `k` must be < `v.len()`.
fn kth_smallest(v: &mut [f64], k: usize) -> f64 {
    *v.select_nth_unstable_by(k, f64::total_cmp).1
}

/// Mann-Kendall trend test with the tie correction and the continuity correction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MannKendall {
    /// S = sum over i < j of sign(y_j - y_i)
    pub s: i64,
    /// Var(S) under "no trend", corrected for tied values
    pub var_s: f64,
    /// (S - sign S) / sqrt(Var S); 0 when Var S = 0
    pub z: f64,
    /// one-sided p-value for an upward trend
    pub p_up: f64,
}

/// Mann-Kendall test of `y` in time order. O(n^2), fine for the n <= MAX_PAIRWISE the caller passes.
///
/// All values tied (or n < 2) means Var S = 0 and S = 0: no upward trend can be shown, p = 1.
pub fn mann_kendall(y: &[f64]) -> MannKendall {
    let n = y.len();
    let mut s: i64 = 0;
    for i in 0..n {
        for j in i + 1..n {
            s += match y[j].total_cmp(&y[i]) {
                std::cmp::Ordering::Greater => 1,
                std::cmp::Ordering::Less => -1,
                std::cmp::Ordering::Equal => 0,
            };
        }
    }
    let var_s = mann_kendall_variance(y);
    let (z, p_up) = if var_s > 0.0 {
        let corrected = s as f64 - (s.signum() as f64);
        let z = corrected / var_s.sqrt();
        let untied = var_s == untied_variance(n);
        let p = match exact_p_up(n, s) {
            Some(p) if untied => p,
            _ => normal_sf(z),
        };
        (z, p)
    } else {
        (0.0, 1.0)
    };
    MannKendall { s, var_s, z, p_up }
}

/// Up to this many values without ties, Mann-Kendall's p-value is exact (the distribution of
/// S over all orderings), as the usual tables give it for n <= 10: the normal approximation's
/// tails are far heavier there (7 values in strict rise: p = 1/7! = 0.0002, where the
/// approximation says 0.0013 and no 7 values could ever be significant at 1e-3).
pub const MK_EXACT_UP_TO: usize = 10;

/// Var(S) of `n` values without ties.
fn untied_variance(n: usize) -> f64 {
    let n = n as f64;
    n * (n - 1.0) * (2.0 * n + 5.0) / 18.0
}

/// P(S >= s) for `n` untied values in random order, for `n` up to [`MK_EXACT_UP_TO`].
/// S = pairs - 2 x discordant pairs (inversions), and the number of orderings of n values with
/// k inversions follows from n - 1 values by inserting the last one at each of its n places.
fn exact_p_up(n: usize, s: i64) -> Option<f64> {
    if !(2..=MK_EXACT_UP_TO).contains(&n) {
        return None;
    }
    let pairs = (n * (n - 1) / 2) as i64;
    let mut counts = vec![1u64];
    for m in 2..=n {
        let mut next = vec![0u64; counts.len() + m - 1];
        for (k, &c) in counts.iter().enumerate() {
            for slot in &mut next[k..k + m] {
                *slot += c;
            }
        }
        counts = next;
    }
    // S >= s  <=>  inversions <= (pairs - s) / 2 (S and pairs have the same parity).
    let most = usize::try_from((pairs - s) / 2).ok()?.min(counts.len() - 1);
    let total: u64 = counts.iter().sum();
    let at_most: u64 = counts[..=most].iter().sum();
    Some(at_most as f64 / total as f64)
}

/// Var(S) = [n(n-1)(2n+5) - sum over tie groups of t(t-1)(2t+5)] / 18.
fn mann_kendall_variance(y: &[f64]) -> f64 {
    let group = |t: f64| t * (t - 1.0) * (2.0 * t + 5.0);
    let mut sorted = y.to_vec();
    sorted.sort_unstable_by(f64::total_cmp);
    let mut ties = 0.0;
    let mut start = 0;
    for i in 1..=sorted.len() {
        if i == sorted.len() || sorted[i] != sorted[start] {
            ties += group((i - start) as f64);
            start = i;
        }
    }
    ((group(sorted.len() as f64) - ties) / 18.0).max(0.0)
}

/// Theil-Sen slope with Sen's 95% bounds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SenSlope {
    pub slope: f64,
    pub lo: f64,
    pub hi: f64,
}

/// Theil-Sen slope of `y` against `x` (median of the pairwise slopes) and Sen's 95% bounds.
///
/// `var_s` is the tie-corrected Mann-Kendall variance of `y`. With `N'` pairwise slopes and
/// `C = Z_95 * sqrt(var_s)`, the bounds are the slopes of ranks M1 = (N' - C)/2 and M2 + 1 =
/// (N' + C)/2 + 1 in ascending order, rounded half to even and clamped to the ends exactly as
/// `scipy.stats.theilslopes` does. Exact (noise-free) series give `[s, s]`. None when fewer than
/// two distinct `x`.
pub fn theil_sen(x: &[f64], y: &[f64], var_s: f64) -> Option<SenSlope> {
    let n = x.len().min(y.len());
    let mut slopes = Vec::with_capacity(n * n.saturating_sub(1) / 2);
    for i in 0..n {
        for j in i + 1..n {
            let dx = x[j] - x[i];
            if dx != 0.0 {
                slopes.push((y[j] - y[i]) / dx);
            }
        }
    }
    let count = slopes.len();
    if count == 0 {
        return None;
    }
    let c = Z_95 * var_s.max(0.0).sqrt();
    let nt = count as f64;
    let last = (count - 1) as f64;
    let lo_index = (((nt - c) / 2.0).round_ties_even() - 1.0).clamp(0.0, last) as usize;
    let hi_index = ((nt + c) / 2.0).round_ties_even().clamp(0.0, last) as usize;
    let slope = median_in_place(&mut slopes);
    let lo = kth_smallest(&mut slopes, lo_index);
    let hi = kth_smallest(&mut slopes, hi_index);
    Some(SenSlope { slope, lo, hi })
}

/// A least-squares line, kept for comparison with the robust slope and as the null model of the
/// step fit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Line {
    pub slope: f64,
    pub intercept: f64,
    /// residual sum of squares
    pub rss: f64,
}

/// Ordinary least squares of `y` on `x`, computed around the means for numerical stability.
pub fn least_squares(x: &[f64], y: &[f64]) -> Line {
    let n = x.len().min(y.len());
    if n == 0 {
        return Line {
            slope: 0.0,
            intercept: 0.0,
            rss: 0.0,
        };
    }
    let mx = x[..n].iter().sum::<f64>() / n as f64;
    let my = y[..n].iter().sum::<f64>() / n as f64;
    let (mut sxx, mut sxy) = (0.0, 0.0);
    for i in 0..n {
        sxx += (x[i] - mx) * (x[i] - mx);
        sxy += (x[i] - mx) * (y[i] - my);
    }
    let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    let intercept = my - slope * mx;
    let rss = (0..n)
        .map(|i| {
            let r = y[i] - intercept - slope * x[i];
            r * r
        })
        .sum();
    Line {
        slope,
        intercept,
        rss,
    }
}

/// Curvature of a least-squares parabola, to tell decelerating growth from a straight line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Curvature {
    /// the t^2 coefficient (negative: concave, growth slowing down)
    pub c: f64,
    /// its standard error
    pub se_c: f64,
    /// slope of the parabola at the first point
    pub slope_start: f64,
    /// slope of the parabola at the last point
    pub slope_end: f64,
    /// residual degrees of freedom (n - 3)
    pub df: usize,
}

/// Fits y = b0 + b1 t + c t^2 by least squares through orthogonal polynomials (no normal
/// equations, so no cancellation for long series). `var_floor` bounds the residual variance from
/// below: an exact counter still has the quantisation noise quantum^2/12, and without a floor a
/// noise-free series would make any curvature "significant". None below 4 points.
pub fn quadratic_curvature(x: &[f64], y: &[f64], var_floor: f64) -> Option<Curvature> {
    let n = x.len().min(y.len());
    if n < 4 {
        return None;
    }
    let mean_x = x[..n].iter().sum::<f64>() / n as f64;
    let t: Vec<f64> = x[..n].iter().map(|v| v - mean_x).collect();
    let s2: f64 = t.iter().map(|v| v * v).sum();
    let s3: f64 = t.iter().map(|v| v * v * v).sum();
    if s2 <= 0.0 {
        return None;
    }
    // p2 = t^2 - a t - b is orthogonal to 1 and t.
    let a = s3 / s2;
    let b = s2 / n as f64;
    let p2: Vec<f64> = t.iter().map(|v| v * v - a * v - b).collect();
    let p2_norm: f64 = p2.iter().map(|v| v * v).sum();
    if p2_norm <= 0.0 {
        return None;
    }
    let b0 = y[..n].iter().sum::<f64>() / n as f64;
    let b1 = t.iter().zip(y).map(|(t, y)| t * y).sum::<f64>() / s2;
    let c = p2.iter().zip(y).map(|(p, y)| p * y).sum::<f64>() / p2_norm;
    let rss: f64 = (0..n)
        .map(|i| {
            let r = y[i] - b0 - b1 * t[i] - c * p2[i];
            r * r
        })
        .sum();
    let df = n - 3;
    let var = (rss / df as f64).max(var_floor);
    Some(Curvature {
        c,
        se_c: (var / p2_norm).sqrt(),
        slope_start: b1 + c * (2.0 * t[0] - a),
        slope_end: b1 + c * (2.0 * t[n - 1] - a),
        df,
    })
}

/// Upper quantile of Student's t with `df` degrees of freedom for the normal quantile `z`
/// (Cornish-Fisher expansion; within 2% of the exact value at df = 3, within 0.1% from df = 10).
pub fn t_quantile(z: f64, df: usize) -> f64 {
    let v = df.max(1) as f64;
    let z2 = z * z;
    let g1 = (z2 + 1.0) * z / 4.0;
    let g2 = ((5.0 * z2 + 16.0) * z2 + 3.0) * z / 96.0;
    let g3 = (((3.0 * z2 + 19.0) * z2 + 17.0) * z2 - 15.0) * z / 384.0;
    z + g1 / v + g2 / (v * v) + g3 / (v * v * v)
}

/// 95% bounds of a total of sampled items from their count `n` and the `total` they stand
/// for: the count's Poisson bounds, each item weighing their mean (`unit` when none was
/// sampled: the most one unsampled item could stand for).
pub fn sampled_total_bounds(n: i64, total: f64, unit: f64) -> (f64, f64) {
    let n = n.max(0);
    let each = if n > 0 { total / n as f64 } else { unit };
    let (lo, hi) = poisson_bounds(n as u64);
    (lo * each, hi * each)
}

/// 95% bounds of a total of sampled items that stand for different amounts (a sampled block
/// of 16 B stands for far more blocks than one of 1 KiB): from the sum of what the items
/// sampled stand for, the sum of its squares and the largest. Fay and Feuer's gamma bounds for
/// a weighted sum of Poisson counts, with [`poisson_bounds`]' approximation of the gamma
/// quantiles; items that all stand for `w` give `w` times [`poisson_bounds`]. Scaling the
/// count's bounds by the mean weight instead covered a site's blocks 2 times in 10: its
/// few samples of tiny blocks decide the total, and vary far more than the count.
pub fn weighted_poisson_bounds(sum: f64, sum_sq: f64, max: f64) -> (f64, f64) {
    if sum <= 0.0 || sum_sq <= 0.0 {
        return (0.0, poisson_bounds(0).1 * max.max(0.0));
    }
    let gamma_bound = |shape: f64, scale: f64, z: f64| scale * (shape.sqrt() + z).max(0.0).powi(2);
    let lo = gamma_bound(sum * sum / sum_sq, sum_sq / sum, -0.98);
    let (sum_up, sq_up) = (sum + max, sum_sq + max * max);
    let hi = gamma_bound(sum_up * sum_up / sq_up, sq_up / sum_up, 0.98);
    (lo, hi)
}

/// 95% bounds of a Poisson mean from one count `n` (Wilson-Hilferty-free approximation
/// `(sqrt(n) -/+ 0.98)^2`, good to a few percent from n = 4).
pub fn poisson_bounds(n: u64) -> (f64, f64) {
    let n = n as f64;
    let lo = (n.sqrt() - 0.98).max(0.0).powi(2);
    let hi = ((n + 1.0).sqrt() + 0.98).powi(2);
    (lo, hi)
}

/// P(Z > z) for a standard normal Z.
/// Two-sided p-value of `k` successes in `n` trials of probability `p` (exact: the
/// probability of every outcome no more likely than `k`).
pub fn binomial_two_sided(k: u64, n: u64, p: f64) -> f64 {
    if n == 0 {
        return 1.0;
    }
    let p = p.clamp(0.0, 1.0);
    let ln_pmf = |i: u64| {
        let (i, n) = (i as f64, n as f64);
        let ln_choose = ln_gamma(n + 1.0) - ln_gamma(i + 1.0) - ln_gamma(n - i + 1.0);
        let term = |count: f64, q: f64| if count == 0.0 { 0.0 } else { count * q.ln() };
        ln_choose + term(i, p) + term(n - i, 1.0 - p)
    };
    let observed = ln_pmf(k.min(n));
    let total: f64 = (0..=n)
        .map(ln_pmf)
        .filter(|l| *l <= observed + 1e-9)
        .map(f64::exp)
        .sum();
    total.min(1.0)
}

/// ln Γ(x) for x > 0 (Lanczos, 15 digits).
fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let t = x + 7.5;
    let sum = G[1..]
        .iter()
        .enumerate()
        .fold(G[0], |acc, (i, g)| acc + g / (x + i as f64 + 1.0));
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

pub fn normal_sf(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// Complementary error function (Numerical Recipes' Chebyshev fit): relative error below 1.2e-7
/// everywhere, including the far tail where p-values of 1e-3 and smaller live.
pub fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// At most `max` indices spread evenly over `0..len`, always keeping the first and the last.
/// Used to bound the O(n^2) steps (pairwise slopes, Mann-Kendall, the two-change-point fit).
pub fn thin_indices(len: usize, max: usize) -> Vec<usize> {
    if len <= max || max < 2 {
        return (0..len).collect();
    }
    let step = (len - 1) as f64 / (max - 1) as f64;
    let mut out: Vec<usize> = (0..max)
        .map(|k| ((k as f64 * step).round() as usize).min(len - 1))
        .collect();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poisson_bounds_cover_the_count() {
        for n in [4u64, 10, 100] {
            let (lo, hi) = poisson_bounds(n);
            assert!(lo < n as f64 && n as f64 + 1.0 < hi, "{n}: {lo} {hi}");
        }
        // Known exact 95% bounds of a count of 10: 4.80 and 18.39.
        let (lo, hi) = poisson_bounds(10);
        assert!(
            (lo - 4.80).abs() < 0.3 && (hi - 18.39).abs() < 0.6,
            "{lo} {hi}"
        );
    }

    #[test]
    fn weighted_bounds_are_the_counts_when_every_item_weighs_the_same() {
        for n in [1u64, 4, 10, 100] {
            let (lo, hi) = poisson_bounds(n);
            let w = 7.5;
            let n_f = n as f64;
            let (wlo, whi) = weighted_poisson_bounds(n_f * w, n_f * w * w, w);
            assert!(
                (wlo - lo * w).abs() < 1e-9 && (whi - hi * w).abs() < 1e-9,
                "{n}"
            );
        }
    }

    /// A site of 40 samples' worth of large blocks (each standing for 1), 8 of smaller ones
    /// (each standing for 8) and 3 of tiny ones (each for 20), drawn 4000 times: the bounds
    /// hold the truth about 96% of the time. The count's bounds scaled by the mean weight
    /// held it 73% of the time.
    #[test]
    fn weighted_bounds_cover_a_total_decided_by_a_few_heavy_items() {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut uniform = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut poisson = |mean: f64| {
            let (limit, mut k, mut p) = ((-mean).exp(), 0u64, 1.0);
            loop {
                p *= uniform();
                if p <= limit {
                    return k;
                }
                k += 1;
            }
        };
        let classes = [(40.0, 1.0), (8.0, 8.0), (3.0, 20.0)];
        let truth: f64 = classes.iter().map(|(rate, w)| rate * w).sum();
        let trials = 4000;
        let mut covered = 0;
        for _ in 0..trials {
            let (mut sum, mut sum_sq, mut max) = (0.0, 0.0, 0.0f64);
            for (rate, w) in classes {
                let k = poisson(rate) as f64;
                sum += k * w;
                sum_sq += k * w * w;
                if k > 0.0 {
                    max = max.max(w);
                }
            }
            let (lo, hi) = weighted_poisson_bounds(sum, sum_sq, max);
            covered += u32::from(lo <= truth && truth <= hi);
        }
        let coverage = f64::from(covered) / f64::from(trials);
        assert!((0.93..=0.995).contains(&coverage), "{coverage}");
    }

    #[test]
    fn binomial_p_values_match_known_ones() {
        // 0 of 6 at 1/2: 2 * (1/2)^6.
        assert!((binomial_two_sided(0, 6, 0.5) - 2.0 / 64.0).abs() < 1e-12);
        // 5 of 10 at 1/2: every outcome is as likely or less.
        assert!((binomial_two_sided(5, 10, 0.5) - 1.0).abs() < 1e-9);
        // 1 of 10 at 1/2: outcomes 0, 1, 9, 10.
        assert!((binomial_two_sided(1, 10, 0.5) - 22.0 / 1024.0).abs() < 1e-9);
        // Uneven p: 0 of 20 at 0.1 is P(0) = 0.9^20 plus the outcomes no more likely (4 and
        // up): 0.25453 (computed with exact binomial coefficients).
        let p = binomial_two_sided(0, 20, 0.1);
        assert!((p - 0.254_53).abs() < 1e-4, "{p}");
    }

    fn index(n: usize) -> Vec<f64> {
        (0..n).map(|i| i as f64).collect()
    }

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * b.abs().max(1e-300)
    }

    // Reference values from scipy 1.17.1 (theilslopes, norm.sf) and pymannkendall 1.4.3
    // (original_test), computed once and hard-coded.
    const A: [f64; 10] = [1.0, 3.0, 2.0, 5.0, 4.0, 6.0, 8.0, 7.0, 9.0, 12.0];
    const TIES: [f64; 12] = [1., 1., 2., 2., 2., 3., 5., 4., 4., 6., 7., 7.];
    const NOISY: [f64; 15] = [
        10.0, 12.5, 9.0, 14.0, 13.0, 11.0, 16.0, 15.5, 18.0, 14.0, 19.0, 21.0, 17.0, 22.0, 20.0,
    ];
    const FLATISH: [f64; 12] = [5., 5., 5., 6., 5., 5., 4., 5., 5., 5., 6., 5.];

    #[test]
    fn mann_kendall_matches_pymannkendall() {
        let cases: [(&[f64], i64, f64, f64, f64); 4] = [
            (
                &A,
                39,
                125.0,
                3.398_823_325_799_680_3,
                // Ten untied values: the exact p (pymannkendall's normal one is 3.38e-4).
                5.759_479_717_813_051e-5,
            ),
            (
                &TIES,
                56,
                206.0,
                3.832_031_578_603_897_4,
                6.354_471_065_774_439e-5,
            ),
            (
                &NOISY,
                74,
                407.333_333_333_333_3,
                3.616_994_801_096_904,
                1.490_216_438_674_455_7e-4,
            ),
            (
                &FLATISH,
                3,
                119.666_666_666_666_67,
                0.182_828_290_600_801_55,
                0.427_466_375_021_854_2,
            ),
        ];
        for (y, s, var, z, p) in cases {
            let mk = mann_kendall(y);
            assert_eq!(mk.s, s, "{y:?}");
            assert!(close(mk.var_s, var, 1e-12), "{} vs {var}", mk.var_s);
            assert!(close(mk.z, z, 1e-12), "{} vs {z}", mk.z);
            assert!(close(mk.p_up, p, 2e-7), "{} vs {p}", mk.p_up);
        }
    }

    #[test]
    fn small_untied_series_get_the_exact_p_value() {
        // Seven values in strict rise: one ordering of 7! (the normal tail says 0.0013).
        let rise: Vec<f64> = (0..7).map(f64::from).collect();
        assert!(close(mann_kendall(&rise).p_up, 1.0 / 5040.0, 1e-12));
        // Eight with two discordant pairs: orderings with at most 2 inversions, (1+7+27)/8!.
        let y = [1.0, 3.0, 2.0, 4.0, 6.0, 5.0, 7.0, 8.0];
        assert!(close(mann_kendall(&y).p_up, 35.0 / 40320.0, 1e-12));
        // Every S of n values: P(S >= smallest) is 1 and the p-values fall as S rises.
        for n in 2..=MK_EXACT_UP_TO {
            let pairs = (n * (n - 1) / 2) as i64;
            assert_eq!(exact_p_up(n, -pairs), Some(1.0));
            let ps: Vec<f64> = (-pairs..=pairs)
                .step_by(2)
                .filter_map(|s| exact_p_up(n, s))
                .collect();
            assert!(ps.windows(2).all(|w| w[1] < w[0]), "n = {n}: {ps:?}");
        }
        // Ties, or more values: the normal approximation, as pymannkendall.
        let tied = [0.0, 1.0, 1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(mann_kendall(&tied).p_up, normal_sf(mann_kendall(&tied).z));
        assert_eq!(exact_p_up(MK_EXACT_UP_TO + 1, 0), None);
    }

    #[test]
    fn theil_sen_and_sen_bounds_match_scipy() {
        let cases: [(&[f64], f64, f64, f64); 4] = [
            (&A, 1.0, 0.75, 1.428_571_428_571_428_6),
            (&TIES, 0.550_505_050_505_050_5, 0.4, 0.714_285_714_285_714_3),
            (&NOISY, 0.8, 0.5, 1.0),
            (&FLATISH, 0.0, 0.0, 0.0),
        ];
        for (y, slope, lo, hi) in cases {
            let mk = mann_kendall(y);
            let sen = theil_sen(&index(y.len()), y, mk.var_s).unwrap();
            assert!(close(sen.slope, slope, 1e-12), "{y:?}: {sen:?}");
            assert!(close(sen.lo, lo, 1e-12), "{y:?}: {sen:?}");
            assert!(close(sen.hi, hi, 1e-12), "{y:?}: {sen:?}");
        }
    }

    #[test]
    fn exact_line_has_zero_width_bounds() {
        let y: Vec<f64> = (0..17).map(|i| 1024.0 * i as f64).collect();
        let mk = mann_kendall(&y);
        assert_eq!(mk.s, 136);
        // 17*16*39/18, no ties
        assert!(close(mk.var_s, 589.333_333_333_333_3, 1e-12));
        let sen = theil_sen(&index(17), &y, mk.var_s).unwrap();
        assert_eq!((sen.slope, sen.lo, sen.hi), (1024.0, 1024.0, 1024.0));
    }

    #[test]
    fn all_ties_give_no_trend_and_no_panic() {
        let y = [7.0; 9];
        let mk = mann_kendall(&y);
        assert_eq!((mk.s, mk.var_s, mk.p_up), (0, 0.0, 1.0));
        let sen = theil_sen(&index(9), &y, mk.var_s).unwrap();
        assert_eq!((sen.slope, sen.lo, sen.hi), (0.0, 0.0, 0.0));
        assert_eq!(theil_sen(&[1.0], &[1.0], 0.0), None);
        assert_eq!(theil_sen(&[], &[], 0.0), None);
        assert_eq!(mann_kendall(&[]).p_up, 1.0);
    }

    #[test]
    fn two_points_take_the_only_slope_as_bounds() {
        let mk = mann_kendall(&[0.0, 3.0]);
        let sen = theil_sen(&[0.0, 2.0], &[0.0, 3.0], mk.var_s).unwrap();
        assert_eq!((sen.slope, sen.lo, sen.hi), (1.5, 1.5, 1.5));
    }

    #[test]
    fn normal_tail_matches_scipy() {
        let cases = [
            (0.0, 0.5),
            (0.5, 0.308_537_538_725_986_9),
            (1.0, 0.158_655_253_931_457_07),
            (2.0, 0.022_750_131_948_179_195),
            (3.0902, 0.001_000_108_783_207_070_6),
            (4.0, 3.167_124_183_311_986e-5),
            (6.0, 9.865_876_450_376_946e-10),
            (8.0, 6.220_960_574_271_74e-16),
            (-1.5, 0.933_192_798_731_141_9),
        ];
        for (z, p) in cases {
            assert!(
                close(normal_sf(z), p, 2e-7),
                "sf({z}) = {} vs {p}",
                normal_sf(z)
            );
        }
    }

    #[test]
    fn t_quantile_is_close_to_scipy() {
        let cases = [
            (3, 4.540_702_858_568_132),
            (5, 3.364_929_998_907_217_4),
            (10, 2.763_769_458_112_695_7),
            (14, 2.624_494_067_590_051),
            (30, 2.457_261_542_400_591),
            (100, 2.364_217_366_238_481_3),
        ];
        for (df, t) in cases {
            let tol = if df < 10 { 0.025 } else { 0.001 };
            assert!(
                close(t_quantile(Z_99, df), t, tol),
                "df {df}: {}",
                t_quantile(Z_99, df)
            );
        }
    }

    #[test]
    fn medians_and_robust_sigma() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
        // one wild value does not move it
        assert_eq!(robust_sigma(&[1.0, 1.0, 1.0, 1.0, 1e9]), 0.0);
        assert!(close(
            robust_sigma(&[1.0, 2.0, 3.0, 4.0, 5.0]),
            1.4826,
            1e-12
        ));
    }

    #[test]
    fn least_squares_on_known_points() {
        // Hand-computed: mean x 1.5, mean y 4.
        let x = [0.0, 1.0, 2.0, 3.0];
        let y = [2.0, 2.0, 6.0, 6.0];
        let line = least_squares(&x, &y);
        // slope = sum((x-1.5)(y-4)) / sum((x-1.5)^2) = 8 / 5
        assert!(close(line.slope, 1.6, 1e-12));
        assert!(close(line.intercept, 1.6, 1e-12));
        // residuals 0.4, -1.2, 1.2, -0.4
        assert!(close(line.rss, 3.2, 1e-12));
    }

    #[test]
    fn curvature_sign_follows_the_shape() {
        let x = index(12);
        let concave: Vec<f64> = x.iter().map(|t| 100.0 * (1.0 + t).ln()).collect();
        let convex: Vec<f64> = x.iter().map(|t| t * t).collect();
        let straight: Vec<f64> = x.iter().map(|t| 3.0 * t).collect();
        let floor = 1.0 / 12.0;
        let cc = quadratic_curvature(&x, &concave, floor).unwrap();
        assert!(
            cc.c < 0.0 && cc.c / cc.se_c < -5.0 && cc.slope_start > 0.0,
            "{cc:?}"
        );
        let cv = quadratic_curvature(&x, &convex, floor).unwrap();
        assert!((cv.c - 1.0).abs() < 1e-9, "{cv:?}");
        assert!(cv.slope_start.abs() < 1e-9, "{cv:?}");
        let st = quadratic_curvature(&x, &straight, floor).unwrap();
        assert!(
            st.c.abs() < 1e-9 && (st.slope_start - 3.0).abs() < 1e-9,
            "{st:?}"
        );
        assert_eq!(quadratic_curvature(&x[..3], &straight[..3], floor), None);
    }

    #[test]
    fn thinning_keeps_both_ends() {
        assert_eq!(thin_indices(5, 10), vec![0, 1, 2, 3, 4]);
        let t = thin_indices(10_001, 1000);
        assert_eq!(t.len(), 1000);
        assert_eq!((t[0], t[999]), (0, 10_000));
        assert!(t.windows(2).all(|w| w[0] < w[1]));
    }
}
