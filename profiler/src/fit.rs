// Owns fitting a growth class to one metric of a sweep: least squares per class, the choice by
// a penalised criterion (BIC), and "cannot tell" when the points do not decide. Must never
// measure; the procedure is in docs/VERDICT.md ("Growth against input size").

//! Which of O(1), O(log n), O(n), O(n log n), O(n^2), O(n^3) a metric grows as.
//!
//! 1. Each class c is fitted as `y ≈ a + b·g_c(n)` by least squares on **relative** errors
//!    (weights 1/y²: a sweep spans decades, and an error of 1 KiB matters at 10 KiB, not at
//!    10 MiB). A class whose best slope is negative is dropped (it is O(1) at best).
//! 2. Each fit is scored with the Bayesian information criterion, `m·ln(RSS/m) + k·ln(m)` (m
//!    sizes, k = 1 parameter for O(1), 2 for the others): all growing classes have as many
//!    parameters, so among them the smallest error wins, and O(1) wins unless growth pays
//!    for its parameter.
//! 3. The **candidates** are the classes within 2 of the best score (weak evidence, after Kass
//!    and Raftery), less those whose growth over the measured sizes is under 5% of their
//!    value at the largest size (indistinguishable from O(1)). One candidate is the model;
//!    several are "cannot tell", and so are fewer than 3 sizes (a two-parameter fit through
//!    two points fits every class), a best fit off by more than 25% on average, and a growing
//!    class with R² under 0.9, which grew at least as fast as its class (a shape none of the
//!    classes has: the class and those above it stay candidates).
//! 4. Points that are noise (the repetitions at most sizes never agreed) tell a growing class
//!    only if they rise with n (one-sided Mann-Kendall, p <= 0.01: else every class is a
//!    candidate) and it fits them with R² >= 0.9 (else every growing class is).

use std::collections::BTreeMap;

use crate::model::{Complexity, Fit, NO_CLASS, Point, SWEEP_FIELDS, Sweep, formula};

/// Fewer sizes than this cannot tell a class.
pub const MIN_SIZES: usize = 3;
/// Classes whose score is within this of the best one are not told apart (BIC units).
pub const SCORE_MARGIN: f64 = 2.0;
/// Growth over the measured sizes below this share of the value is no growth.
pub const MIN_GROWTH_SHARE: f64 = 0.05;
/// A best fit off by more than this on average (relative RMS): no class fits (noise, or a
/// shape none of the classes has, such as sqrt(n)).
pub const MAX_RELATIVE_RMS: f64 = 0.25;
/// Points whose sizes never settled (noise) must rise with n at this one-sided
/// Mann-Kendall p-value or below before any class above O(1) is told from the others.
pub const NOISE_RISE_P: f64 = 0.01;
/// A growing class fitted with R² below this tells no class (see [`fit_series`]).
pub const MIN_R2: f64 = 0.9;
/// Relative errors below this are measurement rounding: no fit is scored better than this.
const RELATIVE_PRECISION: f64 = 1e-3;

/// One class fitted to the points.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Candidate {
    class: Complexity,
    intercept: f64,
    coefficient: f64,
    /// Weighted (relative) residual sum of squares.
    rss: f64,
    score: f64,
}

/// Fit the growth class of `field` over `points` (sizes distinct). `floor` is the smallest
/// magnitude that is not noise in the field's unit (e.g. 256 B), used in the weights.
pub fn fit(points: &[Point], field: &str) -> Option<Fit> {
    fit_points(points, field, false)
}

/// [`fit`], told whether the points are noise (their sizes never settled).
fn fit_points(points: &[Point], field: &str, noise: bool) -> Option<Fit> {
    let data: Vec<(f64, f64)> = points
        .iter()
        .filter_map(|p| p.value(field).map(|y| (p.size as f64, y)))
        .collect();
    if data.is_empty() {
        return None;
    }
    Some(fit_series_of(&data, field, noise))
}

/// The sweep of `points` (sizes distinct, smallest first): every measured field fitted, and
/// the fields `max_complexity` holds: the heap's peak and retained bytes when measured, else
/// the RSS peak. `unsettled`: the field whose repetitions never agreed at most sizes (noise).
pub fn sweep(
    points: Vec<Point>,
    max_complexity: Option<Complexity>,
    unsettled: Option<&str>,
) -> Sweep {
    let fits: BTreeMap<String, Fit> = SWEEP_FIELDS
        .iter()
        .filter_map(|&field| {
            fit_points(&points, field, unsettled == Some(field)).map(|f| (field.to_string(), f))
        })
        .collect();
    let heap: Vec<String> = ["peak_bytes", "retained_bytes"]
        .iter()
        .filter(|f| fits.contains_key(**f))
        .map(|f| f.to_string())
        .collect();
    let gated = if heap.is_empty() {
        vec!["rss_peak_bytes".to_string()]
    } else {
        heap
    };
    Sweep {
        points,
        fits,
        gated,
        max_complexity,
    }
}

/// The smallest magnitude that is not noise, per field.
fn floor_of(field: &str) -> f64 {
    match field {
        "allocations" => 1.0,
        "duration_ms" => 1e-3,
        _ => 256.0,
    }
}

/// [`fit`] on plain (size, value) pairs.
pub fn fit_series(data: &[(f64, f64)], field: &str) -> Fit {
    fit_series_of(data, field, false)
}

/// [`fit_series`], told whether the values are noise (see the module's documentation).
fn fit_series_of(data: &[(f64, f64)], field: &str, noise: bool) -> Fit {
    let m = data.len();
    let cannot = |candidates: Vec<Complexity>, sentence: String| Fit {
        model: None,
        coefficient: None,
        intercept: None,
        r2: None,
        candidates,
        sentence,
    };
    if m < MIN_SIZES {
        return cannot(
            Vec::new(),
            format!(
                "{NO_CLASS} {m} size{}, and a class needs at least {MIN_SIZES}",
                if m == 1 { "" } else { "s" }
            ),
        );
    }
    let largest = data.iter().map(|d| d.1.abs()).fold(0.0, f64::max);
    let floor = floor_of(field).max(largest * RELATIVE_PRECISION);
    if let Some(from) = bounded_from(data, floor_of(field)) {
        let top = &data[from..];
        let level = top.iter().map(|d| d.1).sum::<f64>() / top.len() as f64;
        let at = crate::sizes::short(top[0].0 as u64);
        return Fit {
            model: Some(Complexity::Constant),
            coefficient: Some(0.0),
            intercept: Some(level),
            r2: None,
            candidates: vec![Complexity::Constant],
            sentence: format!(
                "≈ {} from n = {at} on, {}: it grew up to there and then stayed (bounded)",
                formula(field, Complexity::Constant, 0.0, level),
                Complexity::Constant
            ),
        };
    }
    let weights: Vec<f64> = data
        .iter()
        .map(|d| 1.0 / d.1.abs().max(floor).powi(2))
        .collect();
    let (n_min, n_max) = (data[0].0, data[m - 1].0);
    let mut fitted: Vec<Candidate> = Complexity::ALL
        .iter()
        .filter_map(|&class| least_squares(data, &weights, class))
        .collect();
    fitted.sort_by(|a, b| a.score.total_cmp(&b.score));
    let Some(best) = fitted.first().copied() else {
        return cannot(Vec::new(), format!("{NO_CLASS} no class fits the points"));
    };
    // Repetitions that never agreed, and a best fit that explains little of them: the best
    // class (and those near it) may be the noise's, above or below the truth. 8 B × n under
    // megabytes of noise failed an O(n) gate as "O(n^3), O(n^2)" 2 times in 24.
    if noise && best.class != Complexity::Constant {
        let values: Vec<f64> = data.iter().map(|d| d.1).collect();
        let rise = crate::stats::mann_kendall(&values).p_up;
        let r2 = r_squared(data, |n| {
            best.intercept + best.coefficient * best.class.eval(n)
        });
        if rise > NOISE_RISE_P {
            return cannot(
                Complexity::ALL.to_vec(),
                format!(
                    "{NO_CLASS} the repetitions at most sizes never agreed, and the points do \
                     not rise steadily with n (Mann-Kendall p = {rise:.2}): noise, so any \
                     class could be the one (the best fit, {}, has R² {r2:.3})",
                    best.class
                ),
            );
        }
        if r2 < MIN_R2 {
            return cannot(
                Complexity::ALL
                    .iter()
                    .copied()
                    .filter(|&c| c != Complexity::Constant)
                    .collect(),
                format!(
                    "{NO_CLASS} the points rise with n (Mann-Kendall p = {rise:.3}), but the \
                     repetitions at most sizes never agreed and the best fit, {}, leaves \
                     {:.0}% of their spread unexplained (R² {r2:.3}): noise hides how fast",
                    best.class,
                    (1.0 - r2) * 100.0
                ),
            );
        }
    }
    let relative_rms = (best.rss / m as f64).sqrt();
    let mut candidates: Vec<Complexity> = Vec::new();
    for c in &fitted {
        if c.score - best.score >= SCORE_MARGIN {
            continue;
        }
        let at_max = (c.intercept + c.coefficient * c.class.eval(n_max)).abs();
        let growth = c.coefficient * (c.class.eval(n_max) - c.class.eval(n_min));
        let class =
            if c.class != Complexity::Constant && growth < MIN_GROWTH_SHARE * at_max.max(floor) {
                Complexity::Constant
            } else {
                c.class
            };
        if !candidates.contains(&class) {
            candidates.push(class);
        }
    }
    if relative_rms > MAX_RELATIVE_RMS {
        return cannot(
            candidates,
            format!(
                "{NO_CLASS} no class fits the points (noisy, or shaped like none of the \
                 classes): the best fit, {}, is off by {:.0}% on average",
                best.class,
                relative_rms * 100.0
            ),
        );
    }
    if candidates.len() > 1 {
        let list = candidates
            .iter()
            .map(|c| c.name())
            .collect::<Vec<_>>()
            .join(" from ");
        return cannot(
            candidates,
            format!("cannot tell {list}: they fit the {m} sizes about equally well"),
        );
    }
    let class = candidates[0];
    let chosen = if class == best.class {
        best
    } else {
        // Growth too small to count: the level of the points, as O(1).
        least_squares(data, &weights, Complexity::Constant).unwrap_or(best)
    };
    let coefficient = if class == Complexity::Constant {
        0.0
    } else {
        chosen.coefficient
    };
    let r2 = r_squared(data, |n| chosen.intercept + coefficient * class.eval(n));
    // A growing class that leaves much of the points' spread unexplained is a shape none of
    // the classes has (a linear term giving way to a quadratic one across the sizes), or
    // noise: any class could be the one at larger sizes. 200 B × n + n²/64 over 100..50k was
    // "O(n log n) (R² 0.565)" and passed --max-complexity 'O(n log n)'; 8 B × n under
    // megabytes of noise was "O(log n) (R² 0.42)".
    if class != Complexity::Constant && r2 < MIN_R2 {
        let unexplained = (1.0 - r2) * 100.0;
        // It grew (past the share that counts as growth): the class is this one or above.
        return cannot(
            Complexity::ALL
                .iter()
                .copied()
                .filter(|&c| c >= class)
                .collect(),
            format!(
                "{NO_CLASS} the best fit, {class}, leaves {unexplained:.0}% of the points' \
                 spread unexplained (R² {r2:.3}): shaped like none of the classes, and \
                 growing at least as fast"
            ),
        );
    }
    // Growth folded into O(1) for being small beside the level (4 MiB + 8 B × n over
    // 1k..20k) is said, with how to see past it: an O(1) gate passed on it silently. Only
    // growth that beat O(1) by the score margin and exceeds the floor: flat points wandering
    // by 1% said "it grew by 49 B" 28 times in 200 (12 with the margin alone).
    let significant = fitted
        .iter()
        .find(|c| c.class == Complexity::Constant)
        .is_none_or(|flat| flat.score - best.score >= SCORE_MARGIN);
    let folded =
        (class == Complexity::Constant && best.class != Complexity::Constant && significant)
            .then(|| best.coefficient * (best.class.eval(n_max) - best.class.eval(n_min)))
            .filter(|growth| *growth > floor)
            .map(|growth| {
                let at_max = (best.intercept + best.coefficient * best.class.eval(n_max)).abs();
                format!(
                    "; it grew by {} from n = {} to {} ({:.1}% of its level, as {} fits best), \
                 under the {:.0}% that counts as growth: sweep larger sizes to tell",
                    formula(field, Complexity::Constant, 0.0, growth),
                    crate::sizes::short(n_min as u64),
                    crate::sizes::short(n_max as u64),
                    100.0 * growth / at_max.max(floor),
                    best.class,
                    MIN_GROWTH_SHARE * 100.0
                )
            })
            .unwrap_or_default();
    Fit {
        model: Some(class),
        coefficient: Some(coefficient),
        intercept: Some(chosen.intercept),
        r2: Some(r2),
        candidates: vec![class],
        sentence: format!(
            "≈ {}, {class} (R² {r2:.3}){folded}",
            formula(field, class, coefficient, chosen.intercept)
        ),
    }
}

/// Sizes that must lie in a flat top, at least, ...
const MIN_FLAT_SIZES: usize = 3;
/// ... over at least this factor of n.
const MIN_FLAT_SPAN: f64 = 4.0;

/// Where a metric that grew stopped growing for good: the first of its last sizes (at least
/// [`MIN_FLAT_SIZES`], spanning at least [`MIN_FLAT_SPAN`] times in n) that agree within 5%
/// of their largest (or `floor`), after a smaller size below them. A cache capped at 10,000
/// entries retains in proportion to n up to its capacity and the same from there on: over
/// 1k..1M it was fitted O(log n) (R² 0.84) and called a leak of the input. Asymptotically
/// that is O(1). `None` for a metric flat from its first size (the fit says O(1) itself).
fn bounded_from(data: &[(f64, f64)], floor: f64) -> Option<usize> {
    let m = data.len();
    let agree = |top: &[(f64, f64)]| {
        let (lo, hi) = top
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), d| {
                (lo.min(d.1), hi.max(d.1))
            });
        (hi - lo <= (0.05 * hi.abs()).max(floor), lo)
    };
    // A suffix that agrees has every shorter suffix agreeing: the first is the longest.
    let first = (1..=m.checked_sub(MIN_FLAT_SIZES)?).find(|&i| agree(&data[i..]).0)?;
    let (_, low) = agree(&data[first..]);
    let grew = data[first - 1].1 < low - (0.05 * low.abs()).max(floor);
    let span = data[m - 1].0 / data[first].0 >= MIN_FLAT_SPAN;
    (grew && span).then_some(first)
}

/// Weighted least squares of `y ≈ a + b·g(n)`; `None` when the slope comes out negative
/// (the class does not describe the points) or cannot be computed.
fn least_squares(data: &[(f64, f64)], w: &[f64], class: Complexity) -> Option<Candidate> {
    let m = data.len() as f64;
    let (mut sw, mut sy) = (0.0, 0.0);
    for (&(_, y), &wi) in data.iter().zip(w) {
        sw += wi;
        sy += wi * y;
    }
    let (intercept, coefficient, params) = if class == Complexity::Constant {
        (sy / sw, 0.0, 1.0)
    } else {
        // Scaled so that n^3 at a million stays well inside f64's precision.
        let scale = class.eval(data[data.len() - 1].0).max(1e-300);
        let (mut sg, mut sgg, mut sgy) = (0.0, 0.0, 0.0);
        for (&(n, y), &wi) in data.iter().zip(w) {
            let g = class.eval(n) / scale;
            sg += wi * g;
            sgg += wi * g * g;
            sgy += wi * g * y;
        }
        let det = sw * sgg - sg * sg;
        if det.abs() <= f64::EPSILON * sw * sgg {
            return None;
        }
        let b = (sw * sgy - sg * sy) / det;
        if b <= 0.0 {
            return None;
        }
        ((sy - b * sg) / sw, b / scale, 2.0)
    };
    let rss: f64 = data
        .iter()
        .zip(w)
        .map(|(&(n, y), &wi)| wi * (y - intercept - coefficient * class.eval(n)).powi(2))
        .sum();
    let rss_floor = m * RELATIVE_PRECISION * RELATIVE_PRECISION;
    let score = m * (rss.max(rss_floor) / m).ln() + params * m.ln();
    Some(Candidate {
        class,
        intercept,
        coefficient,
        rss,
        score,
    })
}

/// 1 − SS_res / SS_tot on the points themselves (1 when they are all equal and fitted).
fn r_squared(data: &[(f64, f64)], model: impl Fn(f64) -> f64) -> f64 {
    let mean = data.iter().map(|d| d.1).sum::<f64>() / data.len() as f64;
    let ss_tot: f64 = data.iter().map(|d| (d.1 - mean).powi(2)).sum();
    let ss_res: f64 = data.iter().map(|d| (d.1 - model(d.0)).powi(2)).sum();
    if ss_tot == 0.0 {
        return if ss_res == 0.0 { 1.0 } else { 0.0 };
    }
    1.0 - ss_res / ss_tot
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 1-2-5 from 1k to 1M.
    fn sizes() -> Vec<f64> {
        crate::sizes::parse("1k..1M")
            .unwrap()
            .into_iter()
            .map(|n| n as f64)
            .collect()
    }

    fn series(f: impl Fn(f64) -> f64) -> Vec<(f64, f64)> {
        sizes().into_iter().map(|n| (n, f(n))).collect()
    }

    /// A cache capped at 10,000 entries over 1k..1M (measured: 31 KiB per 1k entries up to
    /// 10k, then 584.5 KiB once its table settled): O(1), bounded, not O(log n).
    #[test]
    fn growth_that_stops_for_good_is_bounded() {
        let measured = [
            31.2, 62.5, 156.2, 312.5, 312.5, 584.5, 584.5, 584.5, 584.5, 584.5,
        ];
        let data: Vec<_> = sizes()
            .into_iter()
            .zip(measured)
            .map(|(n, kib)| (n, kib * 1024.0))
            .collect();
        let f = fit_series(&data, "retained_bytes");
        assert_eq!(f.model, Some(Complexity::Constant), "{f:?}");
        assert!(f.sentence.contains("from n = 50k on"), "{}", f.sentence);
        assert!(f.sentence.contains("bounded"), "{}", f.sentence);
        // Linear growth is never bounded, however it starts; nor is a flat series, which the
        // fit calls O(1) itself.
        let linear = fit_series(&series(|n| 64.0 * n), "retained_bytes");
        assert_eq!(linear.model, Some(Complexity::Linear), "{linear:?}");
        let flat = fit_series(&series(|_| 4096.0), "retained_bytes");
        assert_eq!(flat.model, Some(Complexity::Constant), "{flat:?}");
        assert!(!flat.sentence.contains("bounded"), "{}", flat.sentence);
    }

    #[test]
    fn exact_series_of_every_class_get_their_class() {
        for class in Complexity::ALL {
            let (sizes, b) = match class {
                Complexity::Quadratic => (vec![100.0, 200.0, 500.0, 1e3, 2e3, 5e3], 8.0),
                Complexity::Cubic => (vec![10.0, 20.0, 50.0, 100.0, 200.0, 500.0], 8.0),
                _ => (sizes(), 48.0),
            };
            let data: Vec<_> = sizes
                .iter()
                .map(|&n| {
                    (
                        n,
                        2048.0 + b * class.eval(n) * f64::from(class != Complexity::Constant),
                    )
                })
                .collect();
            let f = fit_series(&data, "peak_bytes");
            assert_eq!(f.model, Some(class), "{class}: {f:?}");
            if class != Complexity::Constant {
                let c = f.coefficient.unwrap();
                assert!((c - b).abs() < 0.01 * b, "{class}: {f:?}");
            }
            assert!(f.r2.unwrap() > 0.999, "{f:?}");
        }
    }

    #[test]
    fn capacity_doubling_is_still_linear() {
        // A Vec<u64> pushed n times: its buffer is the next power of two.
        let data = series(|n| 512.0 + 8.0 * (n as u64).next_power_of_two() as f64);
        let f = fit_series(&data, "peak_bytes");
        assert!(
            f.model == Some(Complexity::Linear) || f.candidates.contains(&Complexity::Linear),
            "{f:?}"
        );
        assert!(!f.above(Complexity::Linear) || f.model.is_none(), "{f:?}");
        assert!(!f.above(Complexity::NLogN), "{f:?}");
    }

    #[test]
    fn a_flat_noisy_metric_is_constant_and_zero_is_constant() {
        let data = series(|n| {
            4096.0
                + if (n as u64).is_multiple_of(3) {
                    40.0
                } else {
                    -24.0
                }
        });
        assert_eq!(
            fit_series(&data, "peak_bytes").model,
            Some(Complexity::Constant)
        );
        let zeros = series(|_| 0.0);
        let f = fit_series(&zeros, "retained_bytes");
        assert_eq!(f.model, Some(Complexity::Constant), "{f:?}");
        assert_eq!(f.coefficient, Some(0.0));
    }

    /// 4 MiB + 8 B × n over 1k..20k grows 3.6% of its level: O(1) by the 5% rule, which an
    /// O(1) gate passed on without a word. The sentence says so, and what to do.
    #[test]
    fn growth_too_small_to_count_is_constant_and_says_so() {
        let data: Vec<(f64, f64)> = [1_000.0, 2_000.0, 5_000.0, 10_000.0, 20_000.0]
            .into_iter()
            .map(|n| (n, 4_194_304.0 + 8.0 * n))
            .collect();
        let f = fit_series(&data, "peak_bytes");
        assert_eq!(f.model, Some(Complexity::Constant), "{f:?}");
        assert!(
            f.sentence
                .contains("it grew by 148.4 KiB from n = 1k to 20k"),
            "{}",
            f.sentence
        );
        assert!(f.sentence.contains("as O(n) fits best"), "{}", f.sentence);
        assert!(f.sentence.contains("sweep larger sizes"), "{}", f.sentence);
        // Flat points say nothing of growth, nor do points wandering by 1% (within the
        // measurement's rounding), which a growing class fits best by less than the margin.
        let flat = fit_series(&series(|_| 4096.0), "peak_bytes");
        assert!(!flat.sentence.contains("grew"), "{}", flat.sentence);
        let wandering = [
            4078.0, 4062.0, 4090.0, 4105.0, 4111.0, 4064.0, 4097.0, 4124.0, 4135.0, 4112.0,
        ];
        let jittery: Vec<(f64, f64)> = sizes().into_iter().zip(wandering).collect();
        let f = fit_series(&jittery, "peak_bytes");
        assert_eq!(f.model, Some(Complexity::Constant), "{f:?}");
        assert!(!f.sentence.contains("grew"), "{}", f.sentence);
    }

    /// 8 B × n under megabytes of noise, the largest size drawing high: the best fit is a
    /// class above O(n) that explains little. Measured precisely (sizes settled), that reads
    /// as growth at least that fast; as noise (sizes never settled), as any class at all: an
    /// O(n) gate on it failed 2 times in 24.
    #[test]
    fn a_poor_fit_to_noise_makes_every_class_a_candidate() {
        let wobble = [0.3, 1.4, 0.2, 1.1, 0.6, 0.1, 0.9, 3.9];
        let data: Vec<(f64, f64)> = [1e3, 2e3, 5e3, 1e4, 2e4, 3e4, 5e4, 1e5]
            .into_iter()
            .zip(wobble)
            .map(|(n, w)| (n, 2.0 * 1048576.0 + 8.0 * n + w * 1048576.0))
            .collect();
        let precise = fit_series_of(&data, "peak_bytes", false);
        assert_eq!(precise.model, None, "{precise:?}");
        assert!(
            !precise.candidates.contains(&Complexity::Linear),
            "{precise:?}"
        );
        let noise = fit_series_of(&data, "peak_bytes", true);
        assert_eq!(noise.model, None, "{noise:?}");
        assert_eq!(noise.candidates, Complexity::ALL.to_vec(), "{noise:?}");
        assert!(
            noise.sentence.contains("never agreed"),
            "{}",
            noise.sentence
        );
        // A quadratic under 10% noise rises clearly and fits: told as it is, noise or not.
        let quadratic: Vec<(f64, f64)> = [1e3, 2e3, 5e3, 1e4, 2e4, 3e4, 5e4, 1e5]
            .into_iter()
            .zip(wobble)
            .map(|(n, w)| (n, n * n / 64.0 * (1.0 + (w - 1.0) / 30.0)))
            .collect();
        let f = fit_series_of(&quadratic, "peak_bytes", true);
        assert_eq!(f.model, Some(Complexity::Quadratic), "{f:?}");
    }

    #[test]
    fn two_sizes_cannot_tell_and_say_why() {
        let f = fit_series(&[(1e3, 5e4), (1e4, 5e5)], "peak_bytes");
        assert_eq!(f.model, None);
        assert!(f.sentence.contains("at least 3"), "{}", f.sentence);
    }

    #[test]
    fn noise_without_a_shape_cannot_tell() {
        let data: Vec<_> = sizes()
            .into_iter()
            .enumerate()
            .map(|(i, n)| (n, if i % 2 == 0 { 1e6 } else { 1e4 }))
            .collect();
        let f = fit_series(&data, "peak_bytes");
        assert_eq!(f.model, None, "{f:?}");
    }

    #[test]
    fn a_quadratic_term_taking_over_at_the_largest_sizes_is_not_called_n_log_n() {
        // 200 B × n + n²/64 over 100..50k: linear up to n = 12,800, quadratic above. Fitted on
        // relative errors, n log n came closest and "O(n log n) (R² 0.565)" passed a gate of
        // O(n log n).
        let data: Vec<_> = [100.0, 200.0, 500.0, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4]
            .iter()
            .map(|&n: &f64| (n, 200.0 * n + n * n / 64.0))
            .collect();
        let f = fit_series(&data, "peak_bytes");
        assert_eq!(f.model, None, "{f:?}");
        assert!(!f.above(Complexity::NLogN));
        assert!(f.undecided_against(Complexity::NLogN), "{f:?}");
        // Above O(n) whichever class it is: an O(n) gate still fails.
        assert!(f.above(Complexity::Linear), "{f:?}");
        assert!(f.sentence.contains("unexplained"), "{}", f.sentence);
    }

    #[test]
    fn the_quadratic_is_above_linear_with_its_coefficient() {
        let data: Vec<_> = [100.0, 200.0, 500.0, 1e3, 2e3]
            .iter()
            .map(|&n: &f64| (n, 1000.0 + 24.0 * n * n + 40.0 * n))
            .collect();
        let f = fit_series(&data, "peak_bytes");
        assert_eq!(f.model, Some(Complexity::Quadratic), "{f:?}");
        assert!(f.above(Complexity::Linear));
        assert!(f.sentence.contains("n^2"), "{}", f.sentence);
    }
}
