// Leak verdicts for one series of one metric: warm-up, robust slope, effect size, exonerating shapes.
// Never does I/O and never knows about workloads, metric names or the engine's N -> 2N confirmation.

//! Does a metric keep growing after warm-up? The procedure of docs/VERDICT.md.
//!
//! ```
//! use profiler::verdict::{Thresholds, Verdict, judge};
//!
//! // open file descriptors after each of 20 iterations: one more every iteration
//! let fds: Vec<f64> = (0..=20).map(|i| 3.0 + i as f64).collect();
//! let j = judge(&fds, &Thresholds::count(), None);
//! assert_eq!(j.verdict, Verdict::Leak);
//! assert_eq!(j.reason, "grows 1 per iteration after 4 warm-up iterations (95% bounds [1, 1], p < 0.001)");
//! ```
//!
//! The steps, in order (each one can end the judgement):
//! 1. non-finite values or fewer than [`MIN_TAIL`] samples after the warm-up: inconclusive;
//! 2. short excursions (a jump and an opposite jump within 3 samples that cancel) are replaced by
//!    a straight line between their neighbours;
//! 3. warm-up: max(2, ceil(0.2 N)) iterations, or the user's, extended by up to max(2, ceil(0.1 N))
//!    while the tail is significantly concave (growth decelerating);
//! 4. Theil-Sen slope, Sen's 95% bounds and the Mann-Kendall one-sided p-value of the tail;
//! 5. two or more drops in the tail (sawtooth, periodic clear): the floors between drops are
//!    judged instead, leak only if they rise significantly;
//! 6. clean if not significant (p >= [`ALPHA`]), the upper bound is <= `tau_ok` and the lower
//!    bound is not above `tau`;
//! 7. still decelerating at the end of the extension: inconclusive ("decelerating"); a single drop:
//!    inconclusive ("sawtooth", too few floors);
//! 8. three or more up-steps: a leak candidate if none is more than half of the step growth and
//!    they keep a rhythm (not stopped, no pause much longer than the usual gap), else inconclusive
//!    ("steps"); one or two level shifts that beat a line
//!    by BIC: inconclusive ("steps"). "Beat" means by more than 10 (very strong evidence), or by
//!    any amount when the jump detector itself sees one or two jumps: the search over change-point
//!    positions overfits noise, and a noisy line would otherwise be excused a third of the time;
//! 9. leak if significant and both the slope and its lower bound exceed `tau`; otherwise
//!    inconclusive, saying which condition failed.

mod explain;
mod jumps;
mod sawtooth;
pub mod scaling;
mod steps;
mod warmup;

#[cfg(test)]
mod simulation;
#[cfg(test)]
mod tests;

pub use crate::format::{Unit, format_bytes};
pub use crate::model::{Shape, Verdict, XAxis};
/// The median of a slice (mean of the middle two for an even length; 0 when empty).
pub use crate::stats::median;

use explain::Explain;
use jumps::JumpScale;

/// One-sided significance level of the Mann-Kendall test for an upward trend.
pub const ALPHA: f64 = 1e-3;

/// Recurring steps of a coarse metric (quantum above 1: RSS) need at least this many to be a
/// leak: three steps of the heap top's 128 KiB in 60 iterations were seen in a clean program
/// on a busy machine.
pub const MIN_COARSE_STEPS: usize = 5;

/// The words a capacity-doubling leak carries when the run confirmed it by itself: the
/// containers seen doubling in the first half of the run doubled again in the second, as
/// predicted ([`Judgement::confirmed_within`] is then set). The engine's confirmation at twice
/// the iterations asks no more of a leak than that the growth seen at N went on to 2N; the
/// flag lets it accept this one at the last checkpoint (docs/VERDICT.md, section 7).
pub const CONFIRMED_WITHIN: &str = "confirmed within the run";

/// Fewer samples than this after the warm-up: "too-short".
pub const MIN_TAIL: usize = 4;

/// A sawtooth's floors are clean with fewer than this many only if they are all equal: Sen's
/// 95% bounds on 5 points are their extreme pairwise slopes, which cover the slope 98% of the
/// time (all 10 pairwise slopes on one side of it has probability 1/120); on 4 or fewer they
/// cover it less often than 95%, and on 2 they have no width.
pub const MIN_FLOORS: usize = 5;

/// Longer tails are thinned to this many evenly spaced samples (first and last kept) before the
/// O(n^2) steps: pairwise slopes, Mann-Kendall and the two-change-point fit. Spikes, drops and
/// up-steps are still found on every sample. Judging 10,000 samples then costs a few milliseconds.
pub const MAX_PAIRWISE: usize = 1000;

/// Value ranges beyond this are refused (their squares would overflow the fits).
const MAX_RANGE: f64 = 1e150;

/// Effect-size thresholds for one metric (units of the series per iteration).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// a leak needs the slope and its 95% lower bound above this
    pub tau: f64,
    /// clean needs the 95% upper bound at or below this (and no significant trend)
    pub tau_ok: f64,
    /// the resolution of the metric (1 for exact counters, a page for RSS); exact series still get
    /// quantum^2/12 of residual variance, so that a noise-free fit is not infinitely sure
    pub quantum: f64,
    pub unit: Unit,
}

impl Thresholds {
    /// tau = max(128 B, 1e-4 x bytes allocated per iteration), tau_ok = 1 KiB, quantum 1
    pub fn heap_bytes(allocated_bytes_per_iteration: f64) -> Self {
        Thresholds {
            tau: 128f64.max(1e-4 * allocated_bytes_per_iteration),
            tau_ok: 1024.0,
            quantum: 1.0,
            unit: Unit::Bytes,
        }
    }

    /// Heap blocks: tau = 0 like every count, but a clean limit that scales with the churn:
    /// tau_ok = min(0.5, 1e-3 x allocations per iteration). Structures that free late
    /// (epoch-based reclamation, housekeeping threads) move the live block count by tens or
    /// hundreds around a flat level; an upper bound of exactly 0 can never be reached there,
    /// while a leak of one block per iteration still needs its lower bound above 0 to be
    /// called, and cannot pass as clean with an upper bound at or below half a block.
    pub fn heap_blocks(allocations_per_iteration: f64) -> Self {
        Thresholds {
            tau_ok: (1e-3 * allocations_per_iteration).clamp(0.0, 0.5),
            ..Thresholds::count()
        }
    }

    /// blocks, fds, threads: tau = 0, tau_ok = 0, quantum 1
    pub fn count() -> Self {
        Thresholds {
            tau: 0.0,
            tau_ok: 0.0,
            quantum: 1.0,
            unit: Unit::Count,
        }
    }

    /// RSS: pages and allocator arenas make it coarse: tau = max(4 KiB, 1e-4 x allocated/iter), tau_ok = 64 KiB, quantum 4096
    pub fn rss_bytes(allocated_bytes_per_iteration: f64) -> Self {
        Thresholds {
            tau: 4096f64.max(1e-4 * allocated_bytes_per_iteration),
            tau_ok: 64.0 * 1024.0,
            quantum: 4096.0,
            unit: Unit::Bytes,
        }
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Judgement {
    pub verdict: Verdict,
    /// Theil-Sen slope per iteration over the analysed tail (None if too few points); for the
    /// "sawtooth" shape with at least two drops, the slope of the floors between drops
    pub slope_per_iteration: Option<f64>,
    /// 95% Sen bounds [lo, hi] (of the floors for "sawtooth", like the slope)
    pub ci: Option<[f64; 2]>,
    /// iterations (leading samples) dropped as warm-up
    pub warmup: usize,
    /// Mann-Kendall one-sided p-value for an upward trend (of the floors for "sawtooth")
    pub p_value: Option<f64>,
    /// which rule decided: "linear", "plateau", "decelerating", "steps", Shape::RecurringSteps,
    /// "sawtooth", "flat", "noisy", "too-short" or "non-finite"
    pub shape: Shape,
    /// one sentence a person understands, with numbers in human units
    pub reason: String,
    /// A leak the run confirmed by itself ([`CONFIRMED_WITHIN`]): containers seen doubling by
    /// the middle of the run doubled again after it, as their chains predicted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub confirmed_within: bool,
}

/// Judges whether `series` keeps growing after warm-up.
///
/// `series[i]` is the metric after iteration i; `series[0]` may be the value before the first
/// iteration, so a run of N iterations gives N + 1 samples and N = `series.len() - 1`.
///
/// `min_warmup`: `None` drops the automatic max(2, ceil(0.2 N)) leading samples; `Some(w)` drops
/// *at least* `w` instead: `w` replaces the automatic base, and the extension for decelerating
/// growth (up to max(2, ceil(0.1 N)) more) still applies on top, because a cache still filling
/// after the user's warm-up must not be reported as a leak. `Judgement::warmup` says what was used.
///
/// Never panics: NaN or infinite samples give an inconclusive "non-finite" judgement.
pub fn judge(series: &[f64], th: &Thresholds, min_warmup: Option<usize>) -> Judgement {
    let x: Vec<f64> = (0..series.len()).map(|i| i as f64).collect();
    judge_on(&x, series, th, min_warmup, XAxis::Iteration)
}

/// [`judge`] with each sample's x coordinate on `axis`: iteration numbers (which need not be
/// consecutive: merged samples of a long run stand for several iterations each) or seconds
/// since the run started. Slopes, bounds and thresholds are per unit of `x` (per iteration,
/// per second), and the sentence speaks in that unit. `x` must be evenly spaced and as long as
/// `series`; `min_warmup` and [`Judgement::warmup`] count samples.
pub fn judge_on(
    x: &[f64],
    series: &[f64],
    th: &Thresholds,
    min_warmup: Option<usize>,
    axis: XAxis,
) -> Judgement {
    assert_eq!(x.len(), series.len(), "profiler: one x per sample");
    if let Some(i) = series.iter().position(|v| !v.is_finite()) {
        let reason = format!(
            "sample {i} is {}, not a finite number: no verdict",
            series[i]
        );
        return Judgement::bare(0, Shape::NonFinite, reason);
    }
    let n_iterations = series.len().saturating_sub(1);
    let base = min_warmup.unwrap_or_else(|| warmup::base(n_iterations));
    if series.len() < base.saturating_add(MIN_TAIL) {
        let words = Explain {
            th,
            warmup: base,
            x,
            axis,
        };
        let reason = words.too_short(series.len());
        return Judgement::bare(base.min(series.len()), Shape::TooShort, reason);
    }
    // Work relative to the first sample: exact for integer counters, and keeps sums of squares small.
    let origin = series[0];
    let mut y: Vec<f64> = series.iter().map(|v| v - origin).collect();
    let lowest = y.iter().copied().fold(f64::INFINITY, f64::min);
    let highest = y.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let range = highest - lowest;
    if !range.is_finite() || range > MAX_RANGE {
        let reason = format!("values span {range:e}, too wide to judge: no verdict");
        return Judgement::bare(0, Shape::NonFinite, reason);
    }
    let quantum = if th.quantum.is_finite() && th.quantum > 0.0 {
        th.quantum
    } else {
        0.0
    };
    let var_floor = quantum * quantum / 12.0 + (range * 1e-12).powi(2) + f64::MIN_POSITIVE;

    let whole_scale = JumpScale::of(&y, quantum);
    jumps::remove_excursions(&mut y, &whole_scale);

    let base_scale = JumpScale::of(&y[base..], quantum);
    let base_drops: Vec<usize> = jumps::drops(&y[base..], &base_scale)
        .into_iter()
        .map(|i| i + base)
        .collect();
    let wu = warmup::choose(
        &y,
        base,
        warmup::max_extension(n_iterations),
        &base_drops,
        var_floor,
        MIN_TAIL,
    );
    let w = wu.iterations;
    let all_x = x;
    let tail = &y[w..];
    let x = &all_x[w..];
    let (tx, ty) = thinned(x, tail);
    let Some(trend) = Trend::of(&tx, &ty) else {
        return Judgement::bare(w, Shape::TooShort, "too short to fit a slope".to_string());
    };
    let explain = Explain {
        th,
        warmup: w,
        x: all_x,
        axis,
    };

    // A coarse metric (RSS, in pages) that moved by at most one of its quanta after the
    // warm-up shows no growth it can resolve: one page touched late in a run of a program
    // whose RSS was otherwise flat was a "level shift", inconclusive, and an extension.
    if quantum > 1.0 {
        let (lowest, highest) = tail
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            });
        if highest > lowest && highest - lowest <= quantum {
            return explain.within_one_quantum(&trend);
        }
    }

    let scale = JumpScale::of(tail, quantum);
    let drops = jumps::drops(tail, &scale);
    let ups: Vec<(f64, f64)> = jumps::up_steps(tail, &scale)
        .into_iter()
        .map(|(i, size)| (x[i], size))
        .collect();
    // Growth at (nearly) every sample: steady growth with uneven increments, not steps on a
    // flat line (a pool whose threads each keep their own copy adds 8 or 16 blocks an
    // iteration). Nine increments in ten above half a quantum: noise around a level or a
    // staircase never looks like that.
    let rising = tail
        .windows(2)
        .filter(|p| p[1] - p[0] > 0.5 * quantum.max(f64::EPSILON))
        .count();
    let steady_growth = tail.len() > MIN_TAIL && 10 * rising >= 9 * (tail.len() - 1);

    // 5. Two or more drops: a sawtooth or periodic clear, judged by the floors between drops,
    // unless every drop is a dip in growth the series then climbed past.
    let dips = drops_within_growth(tail, &drops);
    if drops.len() >= 2 && !dips {
        return judge_floors(&explain, x, tail, &drops, &trend);
    }

    // 5b. Capacity doubling: steps that keep coming, each larger after a longer gap, are
    // linear growth paid for in lumps (a container growing without bound).
    // Like any growth, it must exceed the effect size: every amortised rate above tau.
    // The chain of steps may have begun during the warm-up: look at the whole series, and
    // ask for at least two of its steps after the base warm-up (steps that come ever further
    // apart bend a parabola like a cache filling, and the warm-up's extension for one must
    // not hide the steps that tell them apart: a buffer doubling at 5, 11 and 20 of 40 lost
    // its step at 11 to a warm-up extended to 12).
    let all_ups: Vec<(f64, f64)> = jumps::up_steps(&y, &base_scale)
        .into_iter()
        .map(|(i, size)| (all_x[i], size))
        .collect();
    // Not a chain that began after the tail fell back to where it started: a buffer flushed
    // once and filling again (a log flushed every 26 iterations, judged at 40) repeats a
    // growth it released, a sawtooth whose next drop is not in yet. That one drop is judged
    // below (rule 7), and a longer run sees the drops.
    let released_before = |first_step: f64| {
        drops
            .iter()
            .any(|&d| x[d] <= first_step && tail[d] <= tail[0] + quantum)
    };
    // Doubling reallocates a container's one buffer into a larger one: its bytes step, its
    // count of blocks does not. A count stepping up at widening gaps is lazy work (a JVM's
    // JIT mallocs +2, +4, +27 blocks at iterations 5, 10, 20, then none: "capacity doubling",
    // a leak, confirmed at 40 by the same three steps); a pool that allocates ever larger
    // batches of blocks steps its bytes as well.
    let bytes = th.unit == Unit::Bytes;
    if bytes
        && let Some(d) = steps::doubling_since(&all_ups, all_x[base], x[x.len() - 1])
        && d.rates.iter().all(|&r| r > th.tau)
        && !released_before(d.at[0].0)
    {
        let steady = between_steps(x, tail, &d.at).filter(|s| s.significant() && s.lo > th.tau);
        return explain.doubling(&trend, &d, steady.as_ref());
    }
    // Several containers doubling side by side (an interner's arena, table and map): each
    // container's steps are a doubling chain, their amortised rates add up.
    if bytes
        && let Some(s) = steps::superposed(&all_ups, all_x[0], x[0], x[x.len() - 1])
        && s.rate() > th.tau
        && !released_before(
            s.chains
                .iter()
                .map(|c| c[0].0)
                .fold(f64::INFINITY, f64::min),
        )
    {
        return explain.superposed(&trend, &s);
    }

    // 6. Clean: no significant trend, growth bounded by tau_ok, not surely above tau. Not
    // while a level shift sits in the last quarter of the tail: the growth may not be over.
    if trend.clean(th) {
        let late_from = x[x.len() - 1] - 0.25 * (x[x.len() - 1] - x[0]);
        if let Some(&(at, size)) = ups.iter().find(|&&(at, _)| at > late_from) {
            return explain.unsettled(&trend, at, size);
        }
        let span = x[x.len() - 1] - x[0];
        if let Some(chunk) = chunk_size(&all_ups, quantum)
            && chunk > th.tau_ok * span
        {
            return explain.chunks_too_coarse(&trend, chunk, span);
        }
        if w > wu.base {
            let stopped = jumps::up_steps(&y, &base_scale)
                .last()
                .map_or(w, |&(i, _)| i)
                .min(y.len() - 1);
            // Settled only once it has been flat at least as long as it grew, or once the
            // growth had died down before it stopped: growth that comes in lumps (an arena,
            // containers doubling) pauses for ever longer, a cache filling slows down.
            if !settled(&y, stopped, quantum) {
                return explain.not_yet_settled(&trend, all_x[stopped]);
            }
            let last = y[y.len() - 1];
            let flat_since = y[stopped..].iter().all(|&v| v == last);
            if !flat_since && let Some(r) = wandering(&tx, &ty, &trend, quantum) {
                return explain.wandering(&trend, r);
            }
            return explain.plateau(&trend, all_x[stopped], flat_since);
        }
        if tail.iter().all(|&v| v == tail[0]) {
            return explain.flat(&trend);
        }
        if let Some(r) = wandering(&tx, &ty, &trend, quantum) {
            return explain.wandering(&trend, r);
        }
        let one_step = match ups.as_slice() {
            [step] => Some(*step),
            _ => None,
        };
        return explain.quiet(&trend, one_step);
    }

    // 7. Growth still slowing down when the warm-up extension ran out (unless the series has
    // been exactly flat for long since: settled, however long the warm-up was capped); or a
    // single drop.
    if wu.still_decelerating {
        if let Some(since) = settled_since(&y, w, quantum) {
            let (sx, sy) = thinned(&all_x[since..], &y[since..]);
            if let Some(flat) = Trend::of(&sx, &sy) {
                return explain.plateau(&flat, all_x[since], true);
            }
        }
        return explain.decelerating(&trend);
    }
    if let [drop] = drops.as_slice()
        && !dips
    {
        return explain.one_drop(&trend, x[*drop]);
    }

    // 8. Steps: recurring ones are a leak candidate, a burst or one or two level shifts are not
    // (steady growth is judged as growth, whatever its uneven increments).
    if steady_growth {
        if let Some(j) = growth_besides_shifts(&explain, x, tail, &ups) {
            return j;
        }
        return explain.growth(&trend, None);
    }
    let recurring = steps::recurrence(&ups, x[0], x[x.len() - 1]);
    // Steps that do not carry the growth are not its story: a leak that rises between them
    // is judged as growth. RSS of a service leaking 66 KiB per iteration on jemalloc, beside
    // two CPU burners, jumped by +-1 MiB now and then: "8 steps, the last at iteration 388,
    // none since: growth that stopped" at 640 iterations, while it rose all along (exit 0).
    if recurring.is_some() && between_steps(x, tail, &ups).is_some_and(|s| s.leak(th.tau)) {
        return explain.growth(&trend, None);
    }
    match &recurring {
        Some(r) if !r.looks_like_a_leak() => return explain.steps_not_recurring(&trend, r),
        // On a coarse metric (RSS: pages, and the allocator's heap top growing in 128 KiB
        // steps) a few steps are what a clean program's heap does now and then: a rhythm
        // needs more of them before it is a leak.
        Some(r) if th.quantum > 1.0 && r.steps < MIN_COARSE_STEPS => {
            return explain.few_coarse_steps(&trend, r, MIN_COARSE_STEPS);
        }
        Some(_) => {}
        None => {
            if let Some(fit) = steps::step_fit(&tx, &ty, var_floor)
                && (fit.beats_line_clearly() || (!ups.is_empty() && fit.beats_line()))
                && fit.segments_level(&tx, &ty)
            {
                // Level shifts on top of steady growth (a hash table resizing while it leaks)
                // are still a leak: judge what is left once the shifts are taken out.
                if let Some(j) = growth_besides_shifts(&explain, x, tail, &ups) {
                    return j;
                }
                return explain.level_shifts(&trend, &tx, &fit);
            }
        }
    }

    // 9. The trend and its effect size.
    explain.growth(&trend, recurring.as_ref())
}

/// A leak of what is left once one or two level shifts are taken out of a steady series, if
/// that is one; its sentence names the shifts.
fn growth_besides_shifts(
    explain: &Explain,
    x: &[f64],
    tail: &[f64],
    ups: &[(f64, f64)],
) -> Option<Judgement> {
    let rest = without_shifts(x, tail, ups, explain.th.quantum)?;
    if !rest.leak(explain.th.tau) {
        return None;
    }
    let mut j = explain.growth(&rest, None);
    let shifts: Vec<String> = ups
        .iter()
        .map(|&(at, size)| format!("{} at {}", explain.signed(size), explain.at(at)))
        .collect();
    j.reason = format!(
        "{}, besides {} level shift(s) of {}",
        j.reason,
        ups.len(),
        shifts.join(", ")
    );
    Some(j)
}

/// The trend of `tail` once each up-step's excess over the typical increment is taken out
/// (at most two shifts: more are a burst or recurring steps, judged elsewhere). Only for a
/// steady series, where every other increment equals the typical one within `quantum`: the
/// exact counters of a deterministic workload. Under noise the shifts cannot be separated
/// from the growth that way, and the level-shift rule stands.
fn without_shifts(x: &[f64], tail: &[f64], ups: &[(f64, f64)], quantum: f64) -> Option<Trend> {
    if ups.is_empty() || ups.len() > 2 {
        return None;
    }
    let deltas: Vec<f64> = tail.windows(2).map(|w| w[1] - w[0]).collect();
    let typical = crate::stats::median(&deltas);
    let step_at = |k: usize| ups.iter().any(|&(at, _)| at == x[k + 1]);
    let steady = typical > 0.0
        && deltas
            .iter()
            .enumerate()
            .filter(|&(k, _)| !step_at(k))
            .all(|(_, d)| (d - typical).abs() <= quantum.max(1e-9 * typical));
    if !steady {
        return None;
    }
    trend_without_steps(x, tail, ups, typical)
}

/// The trend of `tail` once each of `steps` (iteration, size) after its first sample is taken
/// out, but for the `typical` increment the step also holds.
fn trend_without_steps(
    x: &[f64],
    tail: &[f64],
    steps: &[(f64, f64)],
    typical: f64,
) -> Option<Trend> {
    let rest: Vec<f64> = x
        .iter()
        .zip(tail)
        .map(|(&xi, &yi)| {
            let removed: f64 = steps
                .iter()
                .filter(|&&(at, _)| at > x[0] && at <= xi)
                .map(|&(_, size)| size - typical)
                .sum();
            yi - removed
        })
        .collect();
    let (tx, ty) = thinned(x, &rest);
    Trend::of(&tx, &ty)
}

/// Floors between drops: leak only if they rise significantly and by more than tau.
fn judge_floors(
    explain: &Explain,
    x: &[f64],
    tail: &[f64],
    drops: &[usize],
    tail_trend: &Trend,
) -> Judgement {
    judge_floors_nested(explain, x, tail, drops, tail_trend, 0)
}

/// How many sawtooths on sawtooths are looked through.
const MAX_NESTING: usize = 2;

fn judge_floors_nested(
    explain: &Explain,
    x: &[f64],
    tail: &[f64],
    drops: &[usize],
    tail_trend: &Trend,
    depth: usize,
) -> Judgement {
    let th = explain.th;
    let floors = sawtooth::floors(x, tail, drops);
    let (fx, fy) = thinned(&floors.x, &floors.y);
    let Some(t) = Trend::of(&fx, &fy) else {
        return explain.one_drop(tail_trend, x[drops[0]]);
    };
    // A sawtooth on a sawtooth (a collector with generations: young collections every few
    // iterations, each leaving a little more behind, until an old collection takes it all
    // back): the floors rise between their own resets, which a leak does not have. Judge
    // the floors of the floors; with a single reset, rising floors are no leak yet.
    if depth < MAX_NESTING {
        let resets = sawtooth::resets(&floors.y, JumpScale::of(&floors.y, th.quantum).threshold);
        if resets.len() >= 2 {
            let mut j = judge_floors_nested(
                explain,
                &floors.x,
                &floors.y,
                &resets,
                tail_trend,
                depth + 1,
            );
            j.reason = format!(
                "a sawtooth on a sawtooth (the floors between {} drops fall back {} times), \
                 judged by its lowest floors: {}",
                drops.len(),
                resets.len(),
                j.reason
            );
            return j;
        }
        if let [reset] = resets.as_slice()
            && t.leak(th.tau)
        {
            return explain.floors_reset_once(&t, drops.len(), floors.x[*reset]);
        }
    }
    if t.leak(th.tau) {
        if let Some(j) = floors_shifted(explain, &fx, &fy, &t, drops.len()) {
            return j;
        }
        return explain.floors_rise(&t, drops.len());
    }
    // No clean bill while the tooth since the last drop has outgrown every earlier one by more
    // than a whole tooth: it has not been seen to fall back. (A counter cleared twice back to
    // 0 after teeth of 3, then climbing 4, 6, 8, 11, passed as "floors do not rise".)
    if let Some(above) = last_tooth_outgrown(tail, drops, th.quantum) {
        return explain.tooth_outgrown(&t, drops.len(), above);
    }
    // Sen's bounds on fewer than MIN_FLOORS points are the extreme pairwise slopes (on two,
    // the one slope, with no width at all): they cover the floors' slope far less often than
    // 95%. So few floors are clean only when they repeat exactly (an exact counter cleared
    // back to the same value each time), where no rise can hide.
    let repeated = floors
        .y
        .iter()
        .all(|&v| (v - floors.y[0]).abs() <= 0.5 * th.quantum);
    if t.clean(th) && (floors.y.len() >= MIN_FLOORS || repeated) {
        return explain.floors_flat(&t, drops.len());
    }
    // Too few floors to bound their slope, or floors that rise significantly but not above
    // tau, while the whole tail shows no growth and the floors are not evidently rising faster
    // than tau. Floors that rise within the clean limit say so.
    if tail_trend.clean(th) && !t.surely_above(th.tau) {
        let bounded =
            t.clean_bounds(th).1 <= th.tau_ok && t.precise(th) && floors.y.len() >= MIN_FLOORS;
        if t.significant() && t.slope > 0.0 && bounded {
            return explain.floors_flat(&t, drops.len());
        }
        return explain.sawtooth_quiet(tail_trend, drops.len());
    }
    explain.floors_unclear(&t, drops.len())
}

/// Floors that rise by one or two level shifts, level between: a clean program whose live
/// blocks dip by one now and then (each dip a "drop") and whose level moved once (Node.js
/// tiering up its code at 5.7 s: +320 blocks, flat before and after for seconds) read as a
/// sawtooth whose floors rise, a leak, in 6 runs of 9. Level shifts are judged as they are
/// on any series (rule 8): inconclusive, and a longer run tells.
fn floors_shifted(
    explain: &Explain,
    fx: &[f64],
    fy: &[f64],
    t: &Trend,
    drops: usize,
) -> Option<Judgement> {
    let (lowest, highest) = fy
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    let quantum = explain.th.quantum.max(0.0);
    let var_floor =
        quantum * quantum / 12.0 + ((highest - lowest) * 1e-12).powi(2) + f64::MIN_POSITIVE;
    let fit = steps::step_fit(fx, fy, var_floor)?;
    if !fit.beats_line_clearly() || !fit.segments_level(fx, fy) {
        return None;
    }
    let mut j = explain.level_shifts(t, fx, &fit);
    j.shape = Shape::Sawtooth;
    j.reason = format!("sawtooth ({drops} drops) whose floors rise in {}", j.reason);
    Some(j)
}

/// Drops that together gave back at most a quarter of what the tail grew in all, each of which
/// the series then rose past (before the next drop, or the end) by more than the drop: dips
/// in growth, not the teeth of a sawtooth (whose drops give their growth back, and whose next
/// tooth climbs no higher). Such a series is judged by its trend, as one without the drops
/// would be.
/// - A JVM keeping 256 KiB per iteration grew its RSS by 424 MiB over 1,920 iterations with one
///   drop of 8 MiB on the way (the collector returning a region), and stayed "one drop ... run
///   longer" to the end.
/// - A tokio service leaking 64 KiB per iteration on mimalloc grew its RSS in 2 MiB steps from
///   33 to 107 MiB over 1,280 iterations, with two purges on the way (9 and 2 MiB): "the
///   floors between 2 drops move 62 KiB per iteration ... run longer", exit 0.
fn drops_within_growth(tail: &[f64], drops: &[usize]) -> bool {
    let Some(&first) = drops.first() else {
        return false;
    };
    if first == 0 || drops.iter().any(|&d| d >= tail.len()) {
        return false;
    }
    let highest = |s: &[f64]| s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let grown = highest(tail) - tail[0];
    let mut fallen = 0.0;
    let mut start = 0;
    for (k, &drop) in drops.iter().enumerate() {
        let end = drops.get(k + 1).copied().unwrap_or(tail.len());
        if drop <= start || end <= drop {
            return false;
        }
        let (before, after) = (highest(&tail[start..drop]), highest(&tail[drop..end]));
        let fell = before - tail[drop];
        if after <= before + fell {
            return false;
        }
        fallen += fell;
        start = drop;
    }
    grown > 0.0 && fallen <= 0.25 * grown
}

/// The trend of `tail` between the steps `at` (iteration, size) of a container doubling: each
/// step's excess over the tail's typical increment taken out. A steady leak beside a growing
/// container rises between its steps too (a service keeping 7.5 KiB per iteration beside a
/// Vec doubling read "about 2.4 KiB per iteration amortised"); a container alone is flat there.
fn between_steps(x: &[f64], tail: &[f64], at: &[(f64, f64)]) -> Option<Trend> {
    let deltas: Vec<f64> = tail.windows(2).map(|w| w[1] - w[0]).collect();
    let typical = crate::stats::median(&deltas).max(0.0);
    trend_without_steps(x, tail, at, typical)
}

/// The size of the chunks a coarse metric grows by, when it has been seen to grow by chunks:
/// the second largest of its up-steps of at least 16 quanta (so that one lump at the start
/// does not set it). Under mimalloc RSS grows by 2 or 4 MiB segments and stays flat while
/// the program fills one: a leak of 100 KiB per iteration read flat over the 16 iterations
/// after the warm-up, "clean" with "no growth above 64 KiB per iteration" (1 run in 5).
fn chunk_size(ups: &[(f64, f64)], quantum: f64) -> Option<f64> {
    if quantum <= 1.0 {
        return None;
    }
    let mut big: Vec<f64> = ups
        .iter()
        .map(|&(_, size)| size)
        .filter(|&size| size >= 16.0 * quantum)
        .collect();
    big.sort_by(|a, b| b.total_cmp(a));
    big.get(1).copied()
}

/// How far the tooth since the last drop rose above the highest earlier one, when that is more
/// than the tallest earlier tooth (floor to peak) and more than a quantum.
fn last_tooth_outgrown(tail: &[f64], drops: &[usize], quantum: f64) -> Option<f64> {
    let (&first, &last) = (drops.first()?, drops.last()?);
    if last <= first || last >= tail.len() {
        return None;
    }
    let earlier = &tail[first..last];
    let high = earlier.iter().copied().fold(f64::MIN, f64::max);
    let low = earlier.iter().copied().fold(f64::MAX, f64::min);
    let now = tail[last..].iter().copied().fold(f64::MIN, f64::max);
    let above = now - high;
    (above > (high - low).max(quantum)).then_some(above)
}

/// Whether `series` over `x` (evenly spaced), all of it, grows as a leak does: *leak(tau)* of
/// its trend (significant, slope and lower bound above `tau`), on the raw samples (at most
/// [`MAX_PAIRWISE`] of them): no warm-up, no spike removal, none of the shapes. What a
/// confirmation asks of the samples after the checkpoint that saw a leak
/// (`judge::Earlier::look_since`).
pub fn rises(x: &[f64], series: &[f64], th: &Thresholds) -> bool {
    let (x, series) = thinned(x, series);
    Trend::of(&x, &series).is_some_and(|t| t.leak(th.tau))
}

/// The robust trend of a series: Theil-Sen slope, Sen's 95% bounds, Mann-Kendall p (upward).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Trend {
    slope: f64,
    lo: f64,
    hi: f64,
    p: f64,
    /// robust noise of the series ([`jumps::noise`]): 0 when it is exact but for jumps
    noise: f64,
    /// How much wider than Sen's the bounds are when the noise persists from one sample to
    /// the next ([`persistence`]): 1 for independent noise.
    persistence: f64,
}

impl Trend {
    fn of(x: &[f64], y: &[f64]) -> Option<Self> {
        let mk = crate::stats::mann_kendall(y);
        let sen = crate::stats::theil_sen(x, y, mk.var_s)?;
        Some(Trend {
            slope: sen.slope,
            lo: sen.lo,
            hi: sen.hi,
            p: mk.p_up,
            noise: jumps::noise(y),
            persistence: persistence(x, y, sen.slope),
        })
    }

    /// The bounds a clean bill is held to: Sen's, widened by [`Trend::persistence`] about the
    /// slope unless the series is exact (its bounds come from where its jumps fall).
    fn clean_bounds(&self, th: &Thresholds) -> (f64, f64) {
        let widen = if self.noise <= 0.5 * th.quantum {
            1.0
        } else {
            self.persistence
        };
        (
            self.slope - (self.slope - self.lo) * widen,
            self.slope + (self.hi - self.slope) * widen,
        )
    }

    fn significant(&self) -> bool {
        self.p < ALPHA
    }

    /// 95% sure to grow faster than `tau`.
    fn surely_above(&self, tau: f64) -> bool {
        self.lo > tau
    }

    fn leak(&self, tau: f64) -> bool {
        self.significant() && self.slope > tau && self.surely_above(tau)
    }

    /// Not significant, growth bounded by `tau_ok`, not 95% sure to exceed the leak threshold
    /// (with tau < tau_ok a noisy series can have bounds [250, 850] B: that is no clean bill),
    /// and [`Trend::precise`].
    fn clean(&self, th: &Thresholds) -> bool {
        !self.significant()
            && self.clean_bounds(th).1 <= th.tau_ok
            && !self.surely_above(th.tau)
            && self.precise(th)
    }

    /// Bounds no wider than twice the clean limit (or two quanta, for a limit of 0), unless
    /// the series is exact (no noise but for jumps: its bounds come from where the jumps fall,
    /// not from chance). A clean bill says the growth is under the limit *to within the
    /// limit*. Wide bounds that lie under the limit only because noise made the tail fall rule
    /// nothing out: under noise of hundreds of blocks, a leak of one block per iteration passed
    /// as clean that way in 16 of 200 simulated runs (bounds like [-130, -13.8] per iteration
    /// at 20 iterations), each checkpoint another 2.5% chance. Bounds this narrow put a slope
    /// of twice the limit four standard errors or more from any clean call.
    fn precise(&self, th: &Thresholds) -> bool {
        let (lo, hi) = self.clean_bounds(th);
        self.noise <= 0.5 * th.quantum || hi - lo <= 2.0 * th.tau_ok.max(th.quantum)
    }
}

/// How much wider the slope's bounds are when the residuals about the line of `slope`
/// persist from one sample to the next, as a map's size wandering about its mean under random
/// keys does: the square root of the variance inflation (1 + r) / (1 - r) of a first-order
/// autoregression with the residuals' lag-1 autocorrelation r, when r is significant
/// (above 1.96 / sqrt(n); corrected for its bias on short series), at most sqrt(n / 4) (four
/// independent samples at least); else 1.
/// Sen's bounds and Mann-Kendall assume independent noise and come out too narrow there:
/// a dashmap of sessions under 300 random inserts and removes per iteration, with one
/// session leaked per iteration, was clean with bounds [-0.57, -0.05] blocks per iteration.
fn persistence(x: &[f64], y: &[f64], slope: f64) -> f64 {
    let n = x.len().min(y.len());
    let Some(lag1) = residual_lag1(x, y, slope) else {
        return 1.0;
    };
    if lag1 <= 1.96 / (n as f64).sqrt() {
        return 1.0;
    }
    // The estimate runs low by about (1 + 3r) / n on short series (Kendall, 1954).
    let r = (lag1 + (1.0 + 3.0 * lag1) / n as f64).min(1.0);
    let inflation = ((1.0 + r) / (1.0 - r).max(f64::EPSILON)).min(n as f64 / 4.0);
    inflation.max(1.0).sqrt()
}

/// The lag-1 autocorrelation of the residuals about the line of `slope` (8 samples or more,
/// not all equal).
fn residual_lag1(x: &[f64], y: &[f64], slope: f64) -> Option<f64> {
    let n = x.len().min(y.len());
    if n < 8 {
        return None;
    }
    let r: Vec<f64> = (0..n).map(|i| y[i] - slope * x[i]).collect();
    let mean = r.iter().sum::<f64>() / n as f64;
    let var: f64 = r.iter().map(|v| (v - mean) * (v - mean)).sum();
    if var <= 0.0 {
        return None;
    }
    Some(
        r.windows(2)
            .map(|w| (w[0] - mean) * (w[1] - mean))
            .sum::<f64>()
            / var,
    )
}

/// Residual lag-1 correlation above which a short series is not called clean though
/// [`persistence`] finds it insignificant (below 1.96 / sqrt(n): 0.49 on 16 samples).
const WANDERING_LAG1: f64 = 0.3;

/// A clean-looking tail whose noise persists from sample to sample, on too few samples for
/// [`persistence`] to widen the bounds: its residuals' lag-1 correlation, when above
/// [`WANDERING_LAG1`]. A session table held near 2,000 entries (about 20 opened per call,
/// each closed with probability 1/100: its size drifts like a random walk) with one session
/// per call never closed was clean at 20 iterations in 7 of 60 seeds, "at most 0 per
/// iteration"; those runs' residual correlations were 0.18-0.45, and 4 of those 7 seeds are
/// leaks with this rule. Independent noise around a level (sigma 3 blocks, a clean limit of
/// half a block) was clean at 20 iterations in 170 of 200 seeds without it and 166 with it:
/// the four cost one extension each.
fn wandering(x: &[f64], y: &[f64], t: &Trend, quantum: f64) -> Option<f64> {
    if t.noise <= 0.5 * quantum || t.persistence > 1.0 {
        return None;
    }
    residual_lag1(x, y, t.slope).filter(|&r| r > WANDERING_LAG1)
}

/// Whether growth that stopped at sample `since` has settled like a cache that filled: it
/// grew at three samples or more (one or two lumps after a flat start are level shifts, as
/// the next chunk of an arena or of a doubling container is), and the series has been flat
/// since for at least as many samples as came before, or the growth had died down before it
/// stopped (the last third of the samples before `since` brought at most a tenth of the
/// growth: a cache filling slows down; lumps that keep their size are not dying down).
fn settled(y: &[f64], since: usize, quantum: f64) -> bool {
    let rises = y[..=since]
        .windows(2)
        .filter(|p| p[1] - p[0] > 0.5 * quantum.max(f64::EPSILON))
        .count();
    let flat = y.len() - 1 - since;
    let total = y[since] - y[0];
    let late = y[since] - y[since - since / 3];
    rises >= 3 && (flat >= since || total <= 0.0 || late <= 0.1 * total)
}

/// Where the series became flat for good, if it has been for long enough to call it settled:
/// its last stretch of samples within half a quantum of the last value covers at least 16
/// samples and half of the tail after the warm-up `w`, and it has [`settled`].
fn settled_since(y: &[f64], w: usize, quantum: f64) -> Option<usize> {
    let last = *y.last()?;
    let since = y
        .iter()
        .rposition(|&v| (v - last).abs() > 0.5 * quantum)
        .map_or(0, |i| i + 1);
    let flat = y.len() - since;
    let tail = y.len().saturating_sub(w);
    (since > w && flat >= 16 && 2 * flat >= tail && settled(y, since, quantum)).then_some(since)
}

/// At most [`MAX_PAIRWISE`] evenly spaced samples of a tail.
fn thinned(x: &[f64], y: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let keep = crate::stats::thin_indices(x.len().min(y.len()), MAX_PAIRWISE);
    (
        keep.iter().map(|&i| x[i]).collect(),
        keep.iter().map(|&i| y[i]).collect(),
    )
}

impl Judgement {
    /// A judgement without numbers: too short, or not numbers at all.
    fn bare(warmup: usize, shape: Shape, reason: String) -> Self {
        Judgement {
            verdict: Verdict::Inconclusive,
            slope_per_iteration: None,
            ci: None,
            warmup,
            p_value: None,
            shape,
            reason,
            confirmed_within: false,
        }
    }
}
