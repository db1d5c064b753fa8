// Level shifts: the best fit by flat segments with at most two change points, scored by BIC against a
// line, and whether up-steps keep recurring. Never decides a verdict; it only describes the steps.

use crate::stats::{least_squares, median};

/// Flat segments separated by one or two change points.
#[derive(Debug, Clone, PartialEq)]
pub struct StepFit {
    /// index of the first sample of each new level
    pub change_points: Vec<usize>,
    /// mean of each segment, in order
    pub levels: Vec<f64>,
    pub bic: f64,
    /// BIC of the least-squares line on the same samples
    pub line_bic: f64,
}

/// BIC lead that counts as very strong evidence (Kass and Raftery's scale). Searching every
/// change-point position overfits: on a noisy straight line the best step fit "beats" the line by
/// BIC a third of the time, by more than 10 about 1% of the time.
pub const STRONG_BIC: f64 = 10.0;

impl StepFit {
    /// The steps explain the samples better than a line, after paying for their extra parameters.
    pub fn beats_line(&self) -> bool {
        self.bic < self.line_bic
    }

    /// The steps beat the line by more than [`STRONG_BIC`].
    pub fn beats_line_clearly(&self) -> bool {
        self.line_bic - self.bic > STRONG_BIC
    }

    /// Whether the segments between the change points are level: none of 4 samples or more
    /// rises or falls across its own span (by its least-squares line) by half the smallest
    /// step or more, significantly (the slope over 4 standard errors: a noisy level is still
    /// level). A program idle for 4 s, then keeping a block every 2 ms, cut its ramp in three
    /// that beat one line over the whole series (flat, then rising), and read as "two steps,
    /// flat between" (inconclusive, exit 0) though every sample rose.
    pub fn segments_level(&self, x: &[f64], y: &[f64]) -> bool {
        let Some(smallest) = self
            .levels
            .windows(2)
            .map(|w| (w[1] - w[0]).abs())
            .reduce(f64::min)
        else {
            return true;
        };
        let n = x.len().min(y.len());
        let mut bounds = vec![0];
        bounds.extend_from_slice(&self.change_points);
        bounds.push(n);
        bounds.windows(2).all(|w| {
            let (a, b) = (w[0], w[1].min(n));
            if b < a + 4 {
                return true;
            }
            let (xs, ys) = (&x[a..b], &y[a..b]);
            let line = least_squares(xs, ys);
            let mean = xs.iter().sum::<f64>() / xs.len() as f64;
            let sxx: f64 = xs.iter().map(|x| (x - mean) * (x - mean)).sum();
            let se = (line.rss / (xs.len() - 2) as f64 / sxx).sqrt();
            let rise = line.slope * (xs[xs.len() - 1] - xs[0]);
            let significant = sxx > 0.0 && line.slope.abs() > 4.0 * se;
            !(significant && rise.abs() >= 0.5 * smallest)
        })
    }
}

/// BIC = n ln(RSS/n) + k ln n, with the residual variance floored at `var_floor` (the quantisation
/// noise of an exact counter) so that a noise-free fit does not score minus infinity.
fn bic(rss: f64, n: usize, params: usize, var_floor: f64) -> f64 {
    let n_f = n as f64;
    n_f * ((rss.max(0.0) + n_f * var_floor) / n_f).ln() + params as f64 * n_f.ln()
}

/// The best fit with one or with two change points (whichever has the lower BIC), segments of at
/// least one sample, found exhaustively in O(n^2) with prefix sums. Parameters counted: a line 2,
/// one step 3 (two levels, one position), two steps 5. None below 3 samples.
pub fn step_fit(x: &[f64], y: &[f64], var_floor: f64) -> Option<StepFit> {
    let n = x.len().min(y.len());
    if n < 3 {
        return None;
    }
    // Centre the values so that the prefix sums of squares do not cancel catastrophically.
    let centre = median(&y[..n]);
    let v: Vec<f64> = y[..n].iter().map(|y| y - centre).collect();
    let mut s1 = vec![0.0; n + 1];
    let mut s2 = vec![0.0; n + 1];
    for i in 0..n {
        s1[i + 1] = s1[i] + v[i];
        s2[i + 1] = s2[i] + v[i] * v[i];
    }
    let cost = |a: usize, b: usize| {
        let sum = s1[b] - s1[a];
        (s2[b] - s2[a] - sum * sum / (b - a) as f64).max(0.0)
    };
    let mut one = (f64::INFINITY, 0);
    for c in 1..n {
        let rss = cost(0, c) + cost(c, n);
        if rss < one.0 {
            one = (rss, c);
        }
    }
    let mut two = (f64::INFINITY, 0, 0);
    for c1 in 1..n - 1 {
        let head = cost(0, c1);
        for c2 in c1 + 1..n {
            let rss = head + cost(c1, c2) + cost(c2, n);
            if rss < two.0 {
                two = (rss, c1, c2);
            }
        }
    }
    // Score the winners with a direct two-pass residual sum, not the prefix-sum estimate.
    let candidates = [vec![one.1], vec![two.1, two.2]];
    let line = least_squares(&x[..n], &v);
    let line_bic = bic(line.rss, n, 2, var_floor);
    candidates
        .into_iter()
        .map(|cps| {
            let (levels, rss) = segment_means(&v, &cps);
            let params = 1 + 2 * cps.len();
            StepFit {
                bic: bic(rss, n, params, var_floor),
                levels: levels.into_iter().map(|l| l + centre).collect(),
                change_points: cps,
                line_bic,
            }
        })
        .min_by(|a, b| a.bic.total_cmp(&b.bic))
}

fn segment_means(v: &[f64], change_points: &[usize]) -> (Vec<f64>, f64) {
    let mut bounds = vec![0];
    bounds.extend_from_slice(change_points);
    bounds.push(v.len());
    let mut levels = Vec::new();
    let mut rss = 0.0;
    for w in bounds.windows(2) {
        let seg = &v[w[0]..w[1]];
        let mean = seg.iter().sum::<f64>() / seg.len().max(1) as f64;
        rss += seg.iter().map(|s| (s - mean) * (s - mean)).sum::<f64>();
        levels.push(mean);
    }
    (levels, rss)
}

/// Up-steps of a container growing without bound by reallocating to a multiple of its
/// capacity (a `Vec` pushed to and never drained: blocks flat, bytes stepping): each step
/// larger than the last, after a longer gap, at about the same amortised rate.
#[derive(Debug, Clone, PartialEq)]
pub struct Doubling {
    pub steps: usize,
    /// growth per iteration amortised over each gap (a step's size / iterations to the next)
    pub rates: Vec<f64>,
    /// the steps, as (iteration, size)
    pub at: Vec<(f64, f64)>,
}

/// How many of its last gaps after its last step a container doubling its capacity may go
/// without a step before it counts as stopped. A container growing steadily and doubling steps
/// again about twice the last gap after the last step (its capacity doubled, so the time to
/// fill it does): a wait of two gaps called half of them stopped, on jitter alone (a C buffer
/// doubling at 5, 11, 20 and 41, judged at 40, was "a cache filling"). Three leave room for
/// jitter and for growth factors up to 3. (One container only: see [`superposed`].)
const DOUBLING_WAIT: f64 = 3.0;

/// The steps of `steps` (iteration, size; in order) read as capacity doubling, if they are:
/// at least three, each at least 1.2 times the size of the one before and after a gap at least
/// 1.2 times the one before, amortised rates within a factor of two of each other, and not
/// stopped: the run's `end` came less than [`DOUBLING_WAIT`] last gaps after the last step (the
/// next one may simply not be due yet), and the last step is in the second half of the run. A
/// container that grows steadily and doubles steps again at about twice the time of its last
/// step, so its last step before any `end` is after `end / 2`; and the checkpoints double, so
/// at a confirmation this asks for a step since the checkpoint that saw the leak (a buffer
/// that doubled at 2, 6, 16 and 36 and stopped is a leak at 40, not again at 80). A buffer reused for messages up to a bound stops doubling;
/// growth that keeps doubling is linear growth paid for in lumps.
pub fn doubling(steps: &[(f64, f64)], end: f64) -> Option<Doubling> {
    if steps.len() < 3 || steps.iter().any(|&(_, size)| size <= 0.0) {
        return None;
    }
    let grows = steps.windows(2).all(|w| w[1].1 >= 1.2 * w[0].1);
    let gaps: Vec<f64> = steps.windows(2).map(|w| w[1].0 - w[0].0).collect();
    let widens = gaps.windows(2).all(|g| g[1] >= 1.2 * g[0]) && gaps.iter().all(|&g| g > 0.0);
    // A step makes room for the growth until the next one: its size over the gap after it.
    let rates: Vec<f64> = steps
        .iter()
        .zip(&gaps)
        .map(|(&(_, size), gap)| size / gap)
        .collect();
    let (lo, hi) = rates.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), &r| {
        (lo.min(r), hi.max(r))
    });
    let last_gap = gaps[gaps.len() - 1];
    let last = steps[steps.len() - 1].0;
    let going = end - last < DOUBLING_WAIT * last_gap && 2.0 * last >= end;
    (grows && widens && hi <= 2.0 * lo && going).then(|| Doubling {
        steps: steps.len(),
        rates,
        at: steps.to_vec(),
    })
}

/// [`doubling`] on the longest run of `steps` (of a whole series, in order) ending with its
/// last step that reads as capacity doubling and has at least two steps at or after
/// `tail_start`: a chain that began during the warm-up counts.
pub fn doubling_since(steps: &[(f64, f64)], tail_start: f64, end: f64) -> Option<Doubling> {
    (0..steps.len().saturating_sub(2)).find_map(|from| {
        let chain = &steps[from..];
        let in_tail = chain.iter().filter(|&&(at, _)| at >= tail_start).count();
        if in_tail < 2 {
            return None;
        }
        doubling(chain, end)
    })
}

/// Containers growing side by side, each by capacity doubling (an interner's arena, its
/// string table and its map; a map's keys and its index): their steps interleave, so the
/// merged steps neither grow nor widen in order, yet each container's own steps do.
#[derive(Debug, Clone, PartialEq)]
pub struct Superposed {
    /// each container's steps, (iteration, size), in order of their first step
    pub chains: Vec<Vec<(f64, f64)>>,
    /// each container's amortised rate: the smallest of its steps' sizes over the gap to its
    /// next step (the conservative one; they agree within a factor of two)
    pub rates: Vec<f64>,
    /// every container seen doubling three times or more was already doubling at the middle
    /// of the run (`doubling` held on its steps up to there) and has doubled since: the
    /// second half confirmed what the first half showed
    pub confirmed_within: bool,
    /// the middle of the run, where `confirmed_within` looked
    pub mid: f64,
}

impl Superposed {
    /// The series' amortised growth: the containers' rates added up.
    pub fn rate(&self) -> f64 {
        self.rates.iter().sum()
    }
}

/// At most this many containers doubling side by side, ...
const MAX_CHAINS: usize = 4;
/// ... over at most this many steps, ...
const MAX_CHAINED_STEPS: usize = 24;
/// ... with at most this many assignments tried (then: not read as doubling).
/// A container grows its capacity by at most this factor at once (Vec and hashbrown double,
/// others grow by 1.5): a larger lump is not the same container's next doubling.
const MAX_GROWTH: f64 = 4.0;
const CHAIN_BUDGET: usize = 50_000;

/// The steps of `steps` (of a whole series from x = `start`, in order) read as two to
/// [`MAX_CHAINS`] containers each growing by capacity doubling, if they can be: every step from
/// some point on belongs to one container; each container's steps grow by at least 1.2 times
/// after gaps that widen by at least 1.2 times, at amortised rates within a factor of two; at
/// least one container has three steps or more and is [`doubling`] (two of them in the tail
/// from `tail_start`), the others have at least two steps; and none has stopped (the run's `end`
/// came less than two of its last gaps after its last step: with several containers, more
/// readings of the same steps pass a longer wait, and one of them is a false chain). A lump that fits no container (a
/// lazily built table in mid-run) means no such reading: the rule stays silent.
pub fn superposed(
    steps: &[(f64, f64)],
    start: f64,
    tail_start: f64,
    end: f64,
) -> Option<Superposed> {
    if steps.len() < 5 || steps.iter().any(|&(_, size)| size <= 0.0) {
        return None;
    }
    let mut budget = CHAIN_BUDGET;
    let first = steps.len().saturating_sub(MAX_CHAINED_STEPS);
    let mid = start + 0.5 * (end - start);
    (first..steps.len() - 4).find_map(|from| {
        let mut found = Vec::new();
        assign(
            &steps[from..],
            &mut Vec::new(),
            tail_start,
            end,
            &mut budget,
            &mut found,
        );
        // Of the readings found, one the run confirmed by itself, then the one whose
        // containers keep their rates best.
        found
            .into_iter()
            .map(|chains| reading(chains, mid))
            .min_by(|a, b| {
                (!a.0.confirmed_within, a.1)
                    .partial_cmp(&(!b.0.confirmed_within, b.1))
                    .expect("finite spreads")
            })
            .map(|(s, _)| s)
    })
}

/// The reading of `chains` and the spread of its rates (the sum over the containers of the
/// logarithm of their largest rate over their smallest).
fn reading(chains: Vec<Vec<(f64, f64)>>, mid: f64) -> (Superposed, f64) {
    let confirmed_within = chains.iter().filter(|c| c.len() >= 3).all(|c| {
        let before: Vec<(f64, f64)> = c.iter().copied().filter(|&(at, _)| at <= mid).collect();
        before.len() >= 3 && before.len() < c.len() && doubling(&before, mid).is_some()
    });
    let (rates, spread): (Vec<f64>, Vec<f64>) = chains
        .iter()
        .map(|c| {
            let (lo, hi) = chain_rates(c).fold((f64::INFINITY, 0.0f64), |(lo, hi), r| {
                (lo.min(r), hi.max(r))
            });
            (lo, (hi / lo).ln())
        })
        .unzip();
    let superposed = Superposed {
        chains,
        rates,
        confirmed_within,
        mid,
    };
    (superposed, spread.iter().sum())
}

/// A chain's amortised rates: each step's size over the gap to the next.
fn chain_rates(chain: &[(f64, f64)]) -> impl Iterator<Item = f64> + '_ {
    chain.windows(2).map(|w| w[0].1 / (w[1].0 - w[0].0))
}

/// Depth-first, every reading within the budget: the first step of `rest` joins a chain it
/// can extend (see [`extends`]) or starts a new one.
fn assign(
    rest: &[(f64, f64)],
    chains: &mut Vec<Vec<(f64, f64)>>,
    tail_start: f64,
    end: f64,
    budget: &mut usize,
    found: &mut Vec<Vec<Vec<(f64, f64)>>>,
) {
    if *budget == 0 {
        return;
    }
    *budget -= 1;
    let Some((&step, rest)) = rest.split_first() else {
        if complete(chains, tail_start, end) {
            found.push(chains.clone());
        }
        return;
    };
    for c in 0..chains.len() {
        if extends(&chains[c], step) {
            chains[c].push(step);
            assign(rest, chains, tail_start, end, budget, found);
            chains[c].pop();
        }
    }
    if chains.len() < MAX_CHAINS {
        chains.push(vec![step]);
        assign(rest, chains, tail_start, end, budget, found);
        chains.pop();
    }
}

/// A step extends a chain when it is 1.2 to [`MAX_GROWTH`] times the chain's last, after a gap
/// at least 1.2 times the chain's last gap, and keeps the chain's rates within a factor of two.
fn extends(chain: &[(f64, f64)], (at, size): (f64, f64)) -> bool {
    let &(last_at, last_size) = chain.last().expect("chains are never empty");
    let gap = at - last_at;
    if size < 1.2 * last_size || size > MAX_GROWTH * last_size || gap <= 0.0 {
        return false;
    }
    let mut rates: Vec<f64> = chain_rates(chain).collect();
    rates.push(last_size / gap);
    let (lo, hi) = rates.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), &r| {
        (lo.min(r), hi.max(r))
    });
    let widens = match chain {
        [.., before, _] => gap >= 1.2 * (last_at - before.0),
        _ => true,
    };
    widens && hi <= 2.0 * lo
}

fn complete(chains: &[Vec<(f64, f64)>], tail_start: f64, end: f64) -> bool {
    let going = |c: &[(f64, f64)]| {
        let gap = c[c.len() - 1].0 - c[c.len() - 2].0;
        end - c[c.len() - 1].0 < 2.0 * gap
    };
    let in_tail = |c: &[(f64, f64)]| c.iter().filter(|&&(at, _)| at >= tail_start).count();
    chains.len() >= 2
        && chains
            .iter()
            .all(|c| c.len() >= 2 && going(c) && in_tail(c) >= 1)
        && chains.iter().any(|c| c.len() >= 3)
        && chains
            .iter()
            .filter(|c| c.len() >= 3)
            .all(|c| in_tail(c) >= 2 && doubling(c, end).is_some())
}

/// How regular the up-steps of a tail are.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Recurrence {
    pub steps: usize,
    /// median number of iterations between consecutive steps
    pub median_gap: f64,
    /// median step size
    pub median_size: f64,
    /// the largest step as a share of all the step growth
    pub largest_share: f64,
    /// shortest and longest number of iterations between consecutive steps
    pub min_gap: f64,
    pub max_gap: f64,
    /// iteration of the last step
    pub last_step: f64,
    /// the steps stopped: the time since the last one exceeds twice the median gap (or twice
    /// the median gap weighted by step size, if that is longer)
    pub stopped: bool,
    /// a burst and a long pause rather than a rhythm: the longest gap exceeds both three median
    /// gaps and a third of the tail
    pub irregular: bool,
}

impl Recurrence {
    /// ">= 3 up-steps, none more than half of the total", still going and roughly regular.
    pub fn looks_like_a_leak(&self) -> bool {
        self.steps >= 3 && self.largest_share <= 0.5 && !self.stopped && !self.irregular
    }
}

/// Describes up-steps given as `(iteration, size)` in time order, in a tail from iteration
/// `start` to `end`. None for fewer than three steps (one or two level shifts are the step fit's
/// business).
pub fn recurrence(steps: &[(f64, f64)], start: f64, end: f64) -> Option<Recurrence> {
    if steps.len() < 3 {
        return None;
    }
    let gaps: Vec<f64> = steps.windows(2).map(|w| w[1].0 - w[0].0).collect();
    let sizes: Vec<f64> = steps.iter().map(|s| s.1).collect();
    let total: f64 = sizes.iter().sum();
    let largest = sizes.iter().copied().fold(0.0, f64::max);
    let median_gap = median(&gaps);
    let min_gap = gaps.iter().copied().fold(f64::INFINITY, f64::min);
    let max_gap = gaps.iter().copied().fold(0.0, f64::max);
    let last_step = steps[steps.len() - 1].0;
    // Gaps weighted by the step that ends them: where steps of very different sizes mix (RSS
    // under mimalloc: a 2 MiB segment every ~30 iterations, and pages touched in between at
    // nearly every iteration), growth comes at the rhythm of the steps that carry it. Six
    // iterations without a step at the end of such a run (median gap 1) read "growth that
    // stopped" on a leak of 64 KiB per iteration.
    let weighted: Vec<(f64, f64)> = gaps
        .iter()
        .zip(&sizes[1..])
        .map(|(&g, &w)| (g, w))
        .collect();
    let rhythm = median_gap.max(weighted_median(weighted));
    Some(Recurrence {
        steps: steps.len(),
        median_gap,
        median_size: median(&sizes),
        largest_share: if total > 0.0 { largest / total } else { 1.0 },
        min_gap,
        max_gap,
        last_step,
        stopped: end - last_step > 2.0 * rhythm,
        irregular: max_gap > (3.0 * median_gap).max((end - start) / 3.0),
    })
}

/// The value below which half of the total weight lies (the lower one at a tie); 0 for no
/// positive weight.
fn weighted_median(mut values: Vec<(f64, f64)>) -> f64 {
    values.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total: f64 = values.iter().map(|v| v.1.max(0.0)).sum();
    let mut seen = 0.0;
    for (value, weight) in &values {
        seen += weight.max(0.0);
        if total > 0.0 && seen >= 0.5 * total {
            return *value;
        }
    }
    0.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_steps_set_the_rhythm_among_small_ones() {
        // Pages touched at every iteration up to 150 (60 KiB each), then a 2 MiB segment
        // every 30 iterations: six iterations since the last step is no stop; 61 is.
        let mut steps: Vec<(f64, f64)> = (1..150).map(|i| (f64::from(i), 60.0)).collect();
        steps.extend((5..=15).map(|k| (f64::from(30 * k), 2048.0)));
        let r = recurrence(&steps, 0.0, 456.0).unwrap();
        assert_eq!(r.median_gap, 1.0);
        assert!(!r.stopped, "{r:?}");
        assert!(recurrence(&steps, 0.0, 511.0).unwrap().stopped);
        // Steps of one size: the plain median gap, as before.
        let even: Vec<(f64, f64)> = (1..=10).map(|i| (f64::from(5 * i), 1.0)).collect();
        assert!(!recurrence(&even, 0.0, 60.0).unwrap().stopped);
        assert!(recurrence(&even, 0.0, 61.0).unwrap().stopped);
        assert_eq!(weighted_median(vec![]), 0.0);
        assert_eq!(
            weighted_median(vec![(3.0, 1.0), (1.0, 1.0), (9.0, 5.0)]),
            9.0
        );
    }

    const FLOOR: f64 = 1.0 / 12.0;

    fn index(n: usize) -> Vec<f64> {
        (0..n).map(|i| i as f64).collect()
    }

    #[test]
    fn one_step_beats_the_line() {
        let y: Vec<f64> = (0..17).map(|i| if i < 5 { 0.0 } else { 1.0 }).collect();
        let fit = step_fit(&index(17), &y, FLOOR).unwrap();
        assert!(fit.beats_line(), "{fit:?}");
        assert_eq!(fit.change_points[0], 5);
    }

    #[test]
    fn a_doubling_is_going_until_three_of_its_last_gaps_or_half_the_run_passed() {
        // A C buffer growing 200 B per iteration by realloc: steps at 5, 11 and 20, the next
        // one due at 41. Judged at 40 it was "stopped" (20 > 2 x 9): a cache filling.
        let steps = [(5.0, 2048.0), (11.0, 4096.0), (20.0, 8192.0)];
        assert!(doubling(&steps, 40.0).is_some());
        assert!(
            doubling(&steps, 41.0).is_none(),
            "no step in the second half: stopped"
        );
        let late = [(25.0, 2048.0), (31.0, 4096.0), (40.0, 8192.0)];
        assert!(doubling(&late, 66.0).is_some());
        assert!(
            doubling(&late, 67.0).is_none(),
            "27 past the last step: stopped"
        );
        // Stopped at 36, judged at 40 and again at 80: a leak at 40 only.
        let bounded = [
            (2.0, 4096.0),
            (6.0, 8192.0),
            (16.0, 16384.0),
            (36.0, 32768.0),
        ];
        assert!(doubling(&bounded, 40.0).is_some());
        assert!(doubling(&bounded, 80.0).is_none());
    }

    #[test]
    fn two_doublings_beat_the_line() {
        // a reused Vec: 4, 8, 16 KiB after warm-up
        let y: Vec<f64> = (4..=20)
            .map(|i: u32| 1024.0 * i.next_power_of_two() as f64)
            .collect();
        let fit = step_fit(&index(y.len()), &y, FLOOR).unwrap();
        assert!(fit.beats_line(), "{fit:?}");
        assert_eq!(fit.change_points.len(), 2);
    }

    #[test]
    fn exact_line_and_fine_staircases_prefer_the_line() {
        let line: Vec<f64> = (0..17).map(|i| 1024.0 * i as f64).collect();
        assert!(!step_fit(&index(17), &line, FLOOR).unwrap().beats_line());
        for k in 1..=4 {
            for phase in 0..k {
                let y: Vec<f64> = (0..17).map(|i| ((i + phase) / k) as f64).collect();
                let fit = step_fit(&index(17), &y, FLOOR).unwrap();
                assert!(!fit.beats_line(), "k {k} phase {phase}: {fit:?}");
            }
        }
    }

    #[test]
    fn recurring_steps_are_told_from_stopped_and_dominated_ones() {
        let every5 = [(6.0, 1.0), (11.0, 1.0), (16.0, 1.0)];
        let r = recurrence(&every5, 4.0, 20.0).unwrap();
        assert!(r.looks_like_a_leak(), "{r:?}");
        assert_eq!((r.median_gap, r.median_size), (5.0, 1.0));
        let stopped = [(5.0, 1.0), (6.0, 1.0), (7.0, 1.0)];
        assert!(recurrence(&stopped, 4.0, 20.0).unwrap().stopped);
        let doubling = [(5.0, 1.0), (9.0, 2.0), (13.0, 4.0)];
        assert!(
            !recurrence(&doubling, 4.0, 16.0)
                .unwrap()
                .looks_like_a_leak()
        );
        // a burst of three, a long pause, one more
        let burst = [(17.0, 1.0), (19.0, 1.0), (21.0, 1.0), (34.0, 1.0)];
        let r = recurrence(&burst, 7.0, 34.0).unwrap();
        assert!(r.irregular && !r.looks_like_a_leak(), "{r:?}");
        assert_eq!(recurrence(&every5[..2], 4.0, 20.0), None);
    }

    #[test]
    fn short_inputs_do_not_panic() {
        assert_eq!(step_fit(&[0.0, 1.0], &[0.0, 1.0], FLOOR), None);
        assert!(step_fit(&index(3), &[1.0, 1.0, 1.0], FLOOR).is_some());
    }
}
