// The sentences a person reads: one judgement per rule, with numbers in the metric's own units.
// Never decides anything; mod.rs picks the rule and this file only words its outcome.

use super::steps::{Recurrence, StepFit};
use super::{Judgement, Thresholds, Trend, Verdict};
use crate::format::{self, format_count};

/// What every judgement of one series shares.
pub struct Explain<'a> {
    pub th: &'a Thresholds,
    /// warm-up used
    pub warmup: usize,
}

impl Explain<'_> {
    fn judgement(&self, t: &Trend, verdict: Verdict, shape: &str, reason: String) -> Judgement {
        Judgement {
            verdict,
            slope_per_iteration: Some(t.slope),
            ci: Some([t.lo, t.hi]),
            warmup: self.warmup,
            p_value: Some(t.p),
            shape: shape.to_string(),
            reason,
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

    fn after_warmup(&self) -> String {
        format::warmup(self.warmup)
    }

    fn upper_bound(&self, t: &Trend) -> String {
        format!(
            "at most {} per iteration (95% upper bound, {})",
            self.amount(t.hi),
            format::p_value(t.p)
        )
    }

    /// Clean: every sample of the tail is the same.
    pub fn flat(&self, t: &Trend) -> Judgement {
        let reason = format!("flat after {}", self.after_warmup());
        self.judgement(t, Verdict::Clean, "flat", reason)
    }

    /// Clean: no significant growth, bounded by tau_ok; `one_step` if exactly one jump was seen.
    pub fn quiet(&self, t: &Trend, one_step: Option<(f64, f64)>) -> Judgement {
        let step = one_step.map_or(String::new(), |(at, size)| {
            format!(
                "one step at iteration {} ({}), otherwise ",
                format_count(at),
                self.signed(size)
            )
        });
        let reason = format!(
            "{step}no significant growth after {}: {}",
            self.after_warmup(),
            self.upper_bound(t)
        );
        self.judgement(t, Verdict::Clean, "flat", reason)
    }

    /// Clean after the warm-up was extended past a decelerating start.
    pub fn plateau(&self, t: &Trend, stopped: usize, flat_since: bool) -> Judgement {
        let after = if flat_since {
            "flat after".to_string()
        } else {
            format!("since then {}", self.upper_bound(t))
        };
        let reason = format!("growth stopped after iteration {stopped}: a cache filling, {after}");
        self.judgement(t, Verdict::Clean, "plateau", reason)
    }

    pub fn decelerating(&self, t: &Trend) -> Judgement {
        let reason = format!(
            "growth decelerating: still slowing after {} (now {} per iteration, 95% bounds {}), \
             like a cache still filling; run longer",
            self.after_warmup(),
            self.amount(t.slope),
            self.bounds(t)
        );
        self.judgement(t, Verdict::Inconclusive, "decelerating", reason)
    }

    pub fn one_drop(&self, t: &Trend, at: f64) -> Judgement {
        let reason = format!(
            "one drop, at iteration {}: too few drops to tell whether the floors between them \
             rise; run longer",
            format_count(at)
        );
        self.judgement(t, Verdict::Inconclusive, "sawtooth", reason)
    }

    pub fn floors_rise(&self, floors: &Trend, drops: usize) -> Judgement {
        let reason = format!(
            "sawtooth whose floors rise {} per iteration ({drops} drops, 95% bounds {}, {})",
            self.amount(floors.slope),
            self.bounds(floors),
            format::p_value(floors.p)
        );
        self.judgement(floors, Verdict::Leak, "sawtooth", reason)
    }

    pub fn floors_flat(&self, floors: &Trend, drops: usize) -> Judgement {
        let reason = format!("sawtooth: floors between drops do not rise ({drops} drops)");
        self.judgement(floors, Verdict::Clean, "sawtooth", reason)
    }

    /// Clean sawtooth judged on the whole tail, when there are too few floors to bound theirs.
    pub fn sawtooth_quiet(&self, tail: &Trend, drops: usize) -> Judgement {
        let reason = format!(
            "sawtooth with {drops} drops and no significant growth: {}",
            self.upper_bound(tail)
        );
        self.judgement(tail, Verdict::Clean, "sawtooth", reason)
    }

    pub fn floors_unclear(&self, floors: &Trend, drops: usize) -> Judgement {
        let reason = format!(
            "sawtooth: the floors between {drops} drops move {} per iteration (95% bounds {}, {}): \
             neither flat nor a significant rise; run longer",
            self.amount(floors.slope),
            self.bounds(floors),
            format::p_value(floors.p)
        );
        self.judgement(floors, Verdict::Inconclusive, "sawtooth", reason)
    }

    /// Three or more up-steps that are not a steady rhythm.
    pub fn steps_not_recurring(&self, t: &Trend, r: &Recurrence) -> Judgement {
        let reason = if r.irregular {
            format!(
                "{} steps at irregular intervals ({} to {} iterations apart): a burst, not a \
                 rhythm; run longer",
                r.steps,
                format_count(r.min_gap),
                format_count(r.max_gap)
            )
        } else if r.stopped {
            format!(
                "{} steps, the last at iteration {}, none since: growth that stopped; run longer",
                r.steps,
                format_count(r.last_step)
            )
        } else {
            format!(
                "{} steps, the largest {:.0}% of their growth: level shifts, not steady growth",
                r.steps,
                100.0 * r.largest_share
            )
        };
        self.judgement(t, Verdict::Inconclusive, "steps", reason)
    }

    /// One or two level shifts that explain the tail better than a line. `x` are the iterations
    /// of the samples the fit saw.
    pub fn level_shifts(&self, t: &Trend, x: &[f64], fit: &StepFit) -> Judgement {
        let shifts: Vec<(String, String)> = fit
            .change_points
            .iter()
            .zip(fit.levels.windows(2))
            .map(|(&c, l)| (format_count(x[c]), self.signed(l[1] - l[0])))
            .collect();
        let reason = match shifts.as_slice() {
            [(at, size)] => format!("one step at iteration {at} ({size}), flat after"),
            [(at1, size1), (at2, size2)] => format!(
                "two steps, at iterations {at1} ({size1}) and {at2} ({size2}), flat between: \
                 level shifts, not steady growth"
            ),
            _ => "level shifts, not steady growth".to_string(),
        };
        self.judgement(t, Verdict::Inconclusive, "steps", reason)
    }

    /// The last rule: leak if the trend is significant and its effect exceeds tau, otherwise say
    /// which condition failed. `recurring` when the growth comes in regular up-steps.
    pub fn growth(&self, t: &Trend, recurring: Option<&Recurrence>) -> Judgement {
        let (shape, growth) = match recurring {
            Some(r) => (
                "recurring-steps",
                format!(
                    "{} every {} iterations ({} steps), after {}",
                    self.signed(r.median_size),
                    format_count(r.median_gap),
                    r.steps,
                    self.after_warmup()
                ),
            ),
            None => (
                "linear",
                format!(
                    "grows {} per iteration after {} (95% bounds {}, {})",
                    self.amount(t.slope),
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
            let why = format!(
                "no significant growth ({}), but the 95% upper bound {} per iteration is above \
                 the {} clean limit: too noisy to tell; run longer",
                format::p_value(t.p),
                self.amount(t.hi),
                self.amount(self.th.tau_ok)
            );
            (if recurring.is_some() { shape } else { "noisy" }, why)
        } else if t.slope <= 0.0 {
            let why = format!(
                "rises overall ({}) but the median slope is {} per iteration: the growth sits in a \
                 few iterations; run longer",
                format::p_value(t.p),
                self.amount(t.slope)
            );
            (shape, why)
        } else if t.slope <= tau {
            let why = format!(
                "grows {} per iteration, not above the {} per iteration leak threshold (95% bounds \
                 {}, {})",
                self.amount(t.slope),
                self.amount(tau),
                self.bounds(t),
                format::p_value(t.p)
            );
            (shape, why)
        } else {
            let why = format!(
                "grows {} per iteration, but the 95% lower bound {} is not above the {} per \
                 iteration leak threshold ({}); run longer",
                self.amount(t.slope),
                self.amount(t.lo),
                self.amount(tau),
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
