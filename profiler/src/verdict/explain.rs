// The sentences a person reads: one judgement per rule, with numbers in the metric's own units.
// Never decides anything; mod.rs picks the rule and this file only words its outcome.

use super::steps::{Doubling, Recurrence, StepFit, Superposed};
use super::{Judgement, MIN_TAIL, Shape, Thresholds, Trend, Verdict};
use crate::format::{self, format_count};
use crate::model::XAxis;

/// What every judgement of one series shares.
pub struct Explain<'a> {
    pub th: &'a Thresholds,
    /// warm-up used, in samples
    pub warmup: usize,
    /// The x coordinate of every sample (iterations, or seconds since the run started).
    pub x: &'a [f64],
    pub axis: XAxis,
}

impl Explain<'_> {
    fn judgement(&self, t: &Trend, verdict: Verdict, shape: Shape, reason: String) -> Judgement {
        // A clean bill shows the bounds it was held to.
        let (lo, hi) = if verdict == Verdict::Clean {
            t.clean_bounds(self.th)
        } else {
            (t.lo, t.hi)
        };
        Judgement {
            verdict,
            slope_per_iteration: Some(t.slope),
            ci: Some([lo, hi]),
            warmup: self.warmup,
            p_value: Some(t.p),
            shape,
            reason,
            confirmed_within: false,
        }
    }

    fn amount(&self, v: f64) -> String {
        format::amount(v, self.th.unit)
    }

    pub fn signed(&self, v: f64) -> String {
        let sign = if v >= 0.0 { "+" } else { "" };
        format!("{sign}{}", self.amount(v))
    }

    fn bounds(&self, t: &Trend) -> String {
        format::bounds(t.lo, t.hi, self.th.unit)
    }

    /// The x of sample `i`, extended evenly past the end (a warm-up longer than the run).
    fn x_at(&self, i: usize) -> f64 {
        match (self.x.get(i), self.x) {
            (Some(&x), _) => x,
            (None, [first, second, ..]) => first + (second - first) * i as f64,
            (None, [first]) => first + i as f64,
            (None, []) => i as f64,
        }
    }

    fn after_warmup(&self) -> String {
        let at = self.x_at(self.warmup);
        match self.axis {
            XAxis::Iteration => format::warmup(at.round() as usize),
            XAxis::Second => format!("{at:.1} s of warm-up"),
        }
    }

    /// An amount per unit of the axis: "1.0 KiB per iteration", "4.0 KiB/s".
    fn rate(&self, v: f64) -> String {
        self.per_axis(self.amount(v))
    }

    fn per_axis(&self, amount: String) -> String {
        match self.axis {
            XAxis::Iteration => format!("{amount} per iteration"),
            XAxis::Second => format!("{amount}/s"),
        }
    }

    /// `v` in its unit, with enough digits to tell it from `other` (a bound just above a
    /// limit must not read as equal to it: "1025 B", not "1.0 KiB", beside 1024 B).
    fn amount_apart(&self, v: f64, other: f64) -> String {
        let shown = self.amount(v);
        if self.th.unit == format::Unit::Bytes && shown == self.amount(other) {
            format!("{v:.0} B")
        } else {
            shown
        }
    }

    /// [`Explain::rate`] with the amount told apart from `other`.
    fn rate_apart(&self, v: f64, other: f64) -> String {
        self.per_axis(self.amount_apart(v, other))
    }

    /// A point of the axis: "iteration 12", "3.5 s".
    pub fn at(&self, x: f64) -> String {
        match self.axis {
            XAxis::Iteration => format!("iteration {}", format_count(x)),
            XAxis::Second => format!("{x:.1} s"),
        }
    }

    /// A distance along the axis: "5 iterations", "2.0 s".
    fn span(&self, dx: f64) -> String {
        match self.axis {
            XAxis::Iteration => format!("{} iterations", format_count(dx)),
            XAxis::Second => format!("{dx:.1} s"),
        }
    }

    fn upper_bound(&self, t: &Trend) -> String {
        let (_, hi) = t.clean_bounds(self.th);
        format!(
            "at most {} (95% upper bound{}, {})",
            self.rate(hi),
            self.widened(t),
            format::p_value(t.p)
        )
    }

    /// Says when the bounds were widened for noise that persists from sample to sample.
    fn widened(&self, t: &Trend) -> String {
        let (lo, hi) = t.clean_bounds(self.th);
        if hi - lo > 1.001 * (t.hi - t.lo) {
            format!(
                ", widened {:.1}x for noise that persists from one sample to the next",
                (hi - lo) / (t.hi - t.lo).max(f64::MIN_POSITIVE)
            )
        } else {
            String::new()
        }
    }

    /// Too few samples after the warm-up of `self.warmup` samples to judge.
    pub fn too_short(&self, n: usize) -> String {
        let after = n.saturating_sub(self.warmup);
        match self.axis {
            // A run that stopped before its warm-up ended (over a budget, or asked for fewer
            // iterations than the warm-up): its own length, not a warm-up it never reached.
            XAxis::Iteration if after == 0 => {
                let ran = self.x.last().map_or(0, |&x| x.round() as u64);
                if ran == 0 {
                    format!(
                        "too short: no iteration was completed, and at least {MIN_TAIL} samples \
                         are needed after the warm-up; run more iterations"
                    )
                } else {
                    format!(
                        "too short: the whole run ({}) was warm-up, and at least {MIN_TAIL} \
                         samples are needed after it; run more iterations",
                        format::iterations_of(ran, "")
                    )
                }
            }
            XAxis::Iteration => format!(
                "too short: {after} samples after {}, at least {MIN_TAIL} needed; run more \
                 iterations",
                self.after_warmup()
            ),
            XAxis::Second => {
                let at = self.x[self.warmup.min(n.saturating_sub(1))];
                if after == 0 {
                    format!(
                        "too short: the whole run ({at:.1} s) was warm-up, and at least \
                         {MIN_TAIL} samples are needed after it; sample longer"
                    )
                } else {
                    format!(
                        "too short: {after} samples after {at:.1} s of warm-up, at least \
                         {MIN_TAIL} needed; sample longer"
                    )
                }
            }
        }
    }

    /// Clean: every sample of the tail is the same.
    pub fn flat(&self, t: &Trend) -> Judgement {
        let reason = format!("flat after {}", self.after_warmup());
        self.judgement(t, Verdict::Clean, Shape::Flat, reason)
    }

    /// Clean: no significant growth, bounded by tau_ok; `one_step` if exactly one jump was seen.
    pub fn quiet(&self, t: &Trend, one_step: Option<(f64, f64)>) -> Judgement {
        let step = one_step.map_or(String::new(), |(at, size)| {
            format!(
                "one step at {} ({}), otherwise ",
                self.at(at),
                self.signed(size)
            )
        });
        let reason = format!(
            "{step}no significant growth after {}: {}",
            self.after_warmup(),
            self.upper_bound(t)
        );
        self.judgement(t, Verdict::Clean, Shape::Flat, reason)
    }

    /// Inconclusive: no significant growth, but noise that persists from sample to sample on
    /// too few samples to bound it (`verdict::wandering`).
    pub fn wandering(&self, t: &Trend, lag1: f64) -> Judgement {
        let reason = format!(
            "no significant growth after {} ({}), but the noise persists from one sample to \
             the next (lag-1 correlation {lag1:.2}): a level that wanders, as a table's size \
             under random inserts and removes does, can hide a leak on this few samples; run \
             longer",
            self.after_warmup(),
            self.upper_bound(t)
        );
        self.judgement(t, Verdict::Inconclusive, Shape::Noisy, reason)
    }

    /// Clean: a coarse metric that moved by at most one quantum (one page of RSS).
    pub fn within_one_quantum(&self, t: &Trend) -> Judgement {
        let reason = format!(
            "within one step of its resolution ({}) after {}: no growth it can resolve",
            self.amount(self.th.quantum),
            self.after_warmup()
        );
        self.judgement(t, Verdict::Clean, Shape::Flat, reason)
    }

    /// Leak: a container that keeps reallocating to a multiple of its size, and `steady`
    /// growth between its steps where the series rises there too (a steady leak beside the
    /// container): the rates add up.
    pub fn doubling(&self, t: &Trend, d: &Doubling, steady: Option<&Trend>) -> Judgement {
        let mut rates = d.rates.clone();
        rates.sort_by(f64::total_cmp);
        let rate = crate::stats::median(&rates);
        let steps: Vec<String> =
            d.at.iter()
                .map(|&(at, size)| format!("{} at {}", self.signed(size), self.at(at)))
                .collect();
        let besides = steady.map_or(String::new(), |s| {
            format!(
                ", besides steady growth of {} between the steps (95% bounds {}): {} in all",
                self.rate(s.slope),
                self.bounds(s),
                self.rate(rate + s.slope)
            )
        });
        let reason = format!(
            "grows by capacity doubling: {} steps, each larger than the last after a longer \
             gap ({}), about {} amortised{besides}, after {}",
            d.steps,
            steps.join(", "),
            self.rate(rate),
            self.after_warmup()
        );
        let (s_slope, s_lo, s_hi) = steady.map_or((0.0, 0.0, 0.0), |s| (s.slope, s.lo, s.hi));
        let amortised = Trend {
            slope: rate + s_slope,
            lo: rates[0] + s_lo,
            hi: rates[rates.len() - 1] + s_hi,
            p: t.p,
            noise: t.noise,
            persistence: 1.0,
        };
        self.judgement(&amortised, Verdict::Leak, Shape::Steps, reason)
    }

    /// Leak: several containers growing side by side, each by capacity doubling. The slope is
    /// the sum of their amortised rates (each container's smallest), its bounds the same sum
    /// of their smallest and of their largest rates.
    pub fn superposed(&self, t: &Trend, s: &Superposed) -> Judgement {
        let chains: Vec<String> = s
            .chains
            .iter()
            .zip(&s.rates)
            .map(|(c, &rate)| {
                let steps: Vec<String> = c
                    .iter()
                    .map(|&(at, size)| format!("{} at {}", self.signed(size), self.at(at)))
                    .collect();
                format!("{} ({})", steps.join(", "), self.rate(rate))
            })
            .collect();
        let confirmed = if s.confirmed_within {
            format!(
                "; {}: each container that had doubled three times by {} doubled again after it",
                super::CONFIRMED_WITHIN,
                self.at(s.mid)
            )
        } else {
            String::new()
        };
        let reason = format!(
            "grows by capacity doubling of {} containers side by side, each step larger than \
             the container's last after a longer gap: {}; about {} amortised, after {}{confirmed}",
            s.chains.len(),
            chains.join("; "),
            self.rate(s.rate()),
            self.after_warmup()
        );
        let highest: f64 = s
            .chains
            .iter()
            .map(|c| {
                c.windows(2)
                    .map(|w| w[0].1 / (w[1].0 - w[0].0))
                    .fold(0.0, f64::max)
            })
            .sum();
        let amortised = Trend {
            slope: s.rate(),
            lo: s.rate(),
            hi: highest,
            p: t.p,
            noise: t.noise,
            persistence: 1.0,
        };
        Judgement {
            confirmed_within: s.confirmed_within,
            ..self.judgement(&amortised, Verdict::Leak, Shape::Steps, reason)
        }
    }

    /// Inconclusive: recurring steps of a coarse metric, too few yet to call them a leak.
    pub fn few_coarse_steps(&self, t: &Trend, r: &Recurrence, needed: usize) -> Judgement {
        let reason = format!(
            "{} every {} ({} steps): at this metric's resolution at least {needed} steps are \
             needed to tell a leak from the allocator growing its heap now and then; run longer",
            self.signed(r.median_size),
            self.span(r.median_gap),
            r.steps
        );
        self.judgement(t, Verdict::Inconclusive, Shape::RecurringSteps, reason)
    }

    /// Inconclusive instead of a clean plateau: growth stopped, but not long ago enough.
    pub fn not_yet_settled(&self, t: &Trend, stopped: f64) -> Judgement {
        let reason = format!(
            "growth stopped after {}, but it has been flat for less time than it grew: too \
             soon to call it settled; run longer",
            self.at(stopped)
        );
        self.judgement(t, Verdict::Inconclusive, Shape::Plateau, reason)
    }

    /// Inconclusive instead of clean: the metric grows by chunks of `chunk` (an allocator's
    /// segments), too large for a tail this short to bound growth within the clean limit.
    pub fn chunks_too_coarse(&self, t: &Trend, chunk: f64, span: f64) -> Judgement {
        let reason = format!(
            "no significant growth after {}, but it grows by chunks of {}: a tail this short \
             bounds growth only under {}, above the {} a clean bill needs; run longer",
            self.after_warmup(),
            self.amount(chunk),
            self.rate(chunk / span.max(1e-9)),
            self.rate(self.th.tau_ok)
        );
        self.judgement(t, Verdict::Inconclusive, Shape::Steps, reason)
    }

    /// Inconclusive instead of clean: a level shift late in the run, so the growth may not
    /// be over.
    pub fn unsettled(&self, t: &Trend, at: f64, size: f64) -> Judgement {
        let reason = format!(
            "a step at {} ({}), late in the run: the growth may not be over; run longer",
            self.at(at),
            self.signed(size)
        );
        self.judgement(t, Verdict::Inconclusive, Shape::Steps, reason)
    }

    /// Clean after the warm-up was extended past a decelerating start.
    pub fn plateau(&self, t: &Trend, stopped: f64, flat_since: bool) -> Judgement {
        let after = if flat_since {
            "flat after".to_string()
        } else {
            format!("since then {}", self.upper_bound(t))
        };
        let reason = format!(
            "growth stopped after {}: a cache filling, {after}",
            self.at(stopped)
        );
        self.judgement(t, Verdict::Clean, Shape::Plateau, reason)
    }

    pub fn decelerating(&self, t: &Trend) -> Judgement {
        let reason = format!(
            "growth decelerating: still slowing after {} (now {}, 95% bounds {}), \
             like a cache still filling; run longer",
            self.after_warmup(),
            self.rate(t.slope),
            self.bounds(t)
        );
        self.judgement(t, Verdict::Inconclusive, Shape::Decelerating, reason)
    }

    pub fn one_drop(&self, t: &Trend, at: f64) -> Judgement {
        let reason = format!(
            "one drop, at {}: too few drops to tell whether the floors between them \
             rise; run longer",
            self.at(at)
        );
        // No floors to test yet: the series' own p says nothing about them, and a series that
        // rises significantly up to a drop is what more samples must tell apart. (A leak under
        // mimalloc, 104 KiB per iteration in 2 MiB steps, purged 11 MiB once at 316 of 320
        // iterations: its p of 1e-97 stopped the run there, inconclusive, saying "run longer".)
        let mut j = self.judgement(t, Verdict::Inconclusive, Shape::Sawtooth, reason);
        j.p_value = None;
        j
    }

    pub fn floors_rise(&self, floors: &Trend, drops: usize) -> Judgement {
        let reason = format!(
            "sawtooth whose floors rise {} ({drops} drops, 95% bounds {}, {})",
            self.rate(floors.slope),
            self.bounds(floors),
            format::p_value(floors.p)
        );
        self.judgement(floors, Verdict::Leak, Shape::Sawtooth, reason)
    }

    /// Floors that rise, but fell back once most of the way: a sawtooth on a sawtooth whose
    /// second reset is not in yet.
    pub fn floors_reset_once(&self, floors: &Trend, drops: usize, at: f64) -> Judgement {
        let reason = format!(
            "sawtooth whose floors rise {} ({drops} drops, 95% bounds {}, {}), but fall back \
             once, at {}: perhaps a sawtooth on a sawtooth (a collector with generations); \
             run longer",
            self.rate(floors.slope),
            self.bounds(floors),
            format::p_value(floors.p),
            self.at(at)
        );
        self.judgement(floors, Verdict::Inconclusive, Shape::Sawtooth, reason)
    }

    /// A sawtooth whose tooth since the last drop rose `above` the highest earlier one by more
    /// than a whole tooth: not yet seen to fall back.
    pub fn tooth_outgrown(&self, floors: &Trend, drops: usize, above: f64) -> Judgement {
        let reason = format!(
            "sawtooth ({drops} drops), but since the last drop it has risen {} above every \
             earlier tooth, more than a whole tooth: not yet seen to fall back; run longer",
            self.amount(above)
        );
        self.judgement(floors, Verdict::Inconclusive, Shape::Sawtooth, reason)
    }

    /// Clean sawtooth: its floors are flat, or rise within the clean limit (a tester's floors
    /// rising 1 KiB per 10 iterations once read "do not rise" beside a slope of 103 B).
    pub fn floors_flat(&self, floors: &Trend, drops: usize) -> Judgement {
        let reason = if floors.hi <= 0.0 {
            format!("sawtooth: floors between drops do not rise ({drops} drops)")
        } else {
            format!(
                "sawtooth: floors between {drops} drops rise {}, within the clean limit: {}",
                self.rate(floors.slope),
                self.upper_bound(floors)
            )
        };
        self.judgement(floors, Verdict::Clean, Shape::Sawtooth, reason)
    }

    /// Clean sawtooth judged on the whole tail, when there are too few floors to bound theirs.
    pub fn sawtooth_quiet(&self, tail: &Trend, drops: usize) -> Judgement {
        let reason = format!(
            "sawtooth with {drops} drops and no significant growth: {}",
            self.upper_bound(tail)
        );
        self.judgement(tail, Verdict::Clean, Shape::Sawtooth, reason)
    }

    /// Floors that neither rise as a leak does nor are bounded as clean ones are: says which
    /// condition failed, as [`Explain::growth`] does for a whole tail.
    pub fn floors_unclear(&self, floors: &Trend, drops: usize) -> Judgement {
        let tau = self.th.tau;
        let reason = if floors.significant() && floors.slope > 0.0 && floors.slope <= tau {
            format!(
                "sawtooth: the floors between {drops} drops rise {}, not above the {} leak \
                 threshold (95% bounds {}, {})",
                self.rate_apart(floors.slope, tau),
                self.rate_apart(tau, floors.slope),
                self.bounds(floors),
                format::p_value(floors.p)
            )
        } else if floors.significant() && floors.slope > tau {
            format!(
                "sawtooth: the floors between {drops} drops rise {}, but the 95% lower bound \
                 {} is not above the {} leak threshold ({}); run longer",
                self.rate(floors.slope),
                self.amount_apart(floors.lo, tau),
                self.rate_apart(tau, floors.lo),
                format::p_value(floors.p)
            )
        } else {
            format!(
                "sawtooth: the floors between {drops} drops move {} (95% bounds {}, {}): \
                 neither flat nor a significant rise; run longer",
                self.rate(floors.slope),
                self.bounds(floors),
                format::p_value(floors.p)
            )
        };
        self.judgement(floors, Verdict::Inconclusive, Shape::Sawtooth, reason)
    }

    /// Three or more up-steps that are not a steady rhythm.
    pub fn steps_not_recurring(&self, t: &Trend, r: &Recurrence) -> Judgement {
        let reason = if r.irregular {
            format!(
                "{} steps at irregular intervals ({} to {} apart): a burst, not a rhythm; run \
                 longer",
                r.steps,
                format_count(r.min_gap),
                self.span(r.max_gap)
            )
        } else if r.stopped {
            format!(
                "{} steps, the last at {}, none since: growth that stopped; run longer",
                r.steps,
                self.at(r.last_step)
            )
        } else {
            format!(
                "{} steps, the largest {:.0}% of their growth: level shifts, not steady growth",
                r.steps,
                100.0 * r.largest_share
            )
        };
        self.judgement(t, Verdict::Inconclusive, Shape::Steps, reason)
    }

    /// One or two level shifts that explain the tail better than a line. `x` are the iterations
    /// of the samples the fit saw.
    pub fn level_shifts(&self, t: &Trend, x: &[f64], fit: &StepFit) -> Judgement {
        let shifts: Vec<(f64, String)> = fit
            .change_points
            .iter()
            .zip(fit.levels.windows(2))
            .map(|(&c, l)| (x[c], self.signed(l[1] - l[0])))
            .collect();
        let reason = match shifts.as_slice() {
            [(at, size)] => format!("one step at {} ({size}), flat after", self.at(*at)),
            [(at1, size1), (at2, size2)] => {
                let (at1, at2) = match self.axis {
                    XAxis::Iteration => (
                        format!("iterations {}", format_count(*at1)),
                        format_count(*at2),
                    ),
                    XAxis::Second => (self.at(*at1), self.at(*at2)),
                };
                format!(
                    "two steps, at {at1} ({size1}) and {at2} ({size2}), flat between: level \
                     shifts, not steady growth"
                )
            }
            _ => "level shifts, not steady growth".to_string(),
        };
        self.judgement(t, Verdict::Inconclusive, Shape::Steps, reason)
    }

    /// The last rule: leak if the trend is significant and its effect exceeds tau, otherwise say
    /// which condition failed. `recurring` when the growth comes in regular up-steps.
    pub fn growth(&self, t: &Trend, recurring: Option<&Recurrence>) -> Judgement {
        let (shape, growth) = match recurring {
            Some(r) => (
                Shape::RecurringSteps,
                format!(
                    "{} every {} ({} steps{}), after {}",
                    self.signed(r.median_size),
                    self.span(r.median_gap),
                    r.steps,
                    // In time the steps' rate is what a reader compares with the threshold.
                    match self.axis {
                        XAxis::Iteration => String::new(),
                        XAxis::Second => format!(", {}", self.rate(t.slope)),
                    },
                    self.after_warmup()
                ),
            ),
            None => (
                Shape::Linear,
                format!(
                    "grows {} after {} (95% bounds {}, {})",
                    self.rate(t.slope),
                    self.after_warmup(),
                    self.bounds(t),
                    format::p_value(t.p)
                ),
            ),
        };
        let tau = self.th.tau;
        if t.leak(tau) {
            return self.judgement(t, Verdict::Leak, shape, growth);
        }
        let (shape, why) = if !t.significant() {
            let why = if t.surely_above(tau) && t.precise(self.th) {
                // Not noise: the bounds are narrow and above the threshold, but too few
                // samples rise for the trend test (a few exact steps between flat stretches).
                format!(
                    "grows {} (95% bounds {}), above the {} leak threshold, but not \
                     significantly ({}); run longer",
                    self.rate(t.slope),
                    self.bounds(t),
                    self.rate_apart(tau, t.lo),
                    format::p_value(t.p)
                )
            } else if t.clean_bounds(self.th).1 > self.th.tau_ok {
                let (_, hi) = t.clean_bounds(self.th);
                format!(
                    "no significant growth ({}), but the 95% upper bound {}{} is above the {} \
                     clean limit: too noisy to tell; run longer",
                    format::p_value(t.p),
                    self.rate_apart(hi, self.th.tau_ok),
                    self.widened(t),
                    self.amount_apart(self.th.tau_ok, hi)
                )
            } else {
                let (lo, hi) = t.clean_bounds(self.th);
                format!(
                    "no significant growth ({}), but the 95% bounds {}{} are too wide to bound \
                     the growth to within the {} clean limit: too noisy to tell; run longer",
                    format::p_value(t.p),
                    format::bounds(lo, hi, self.th.unit),
                    self.widened(t),
                    self.amount(self.th.tau_ok)
                )
            };
            (
                if recurring.is_some() {
                    shape
                } else {
                    Shape::Noisy
                },
                why,
            )
        } else if t.slope <= 0.0 {
            let why = format!(
                "rises overall ({}) but the median slope is {}: the growth sits in a few \
                 samples; run longer",
                format::p_value(t.p),
                self.rate(t.slope)
            );
            (shape, why)
        } else if t.slope <= tau {
            let why = format!(
                "grows {}, not above the {} leak threshold (95% bounds {}, {})",
                self.rate_apart(t.slope, tau),
                self.rate_apart(tau, t.slope),
                self.bounds(t),
                format::p_value(t.p)
            );
            (shape, why)
        } else {
            let why = format!(
                "grows {}, but the 95% lower bound {} is not above the {} leak threshold ({}); \
                 run longer",
                self.rate(t.slope),
                self.amount_apart(t.lo, tau),
                self.rate_apart(tau, t.lo),
                format::p_value(t.p)
            );
            (shape, why)
        };
        let reason = match recurring {
            Some(_) => format!("{growth}, but {why}"),
            None => why,
        };
        self.judgement(t, Verdict::Inconclusive, shape, reason)
    }
}
