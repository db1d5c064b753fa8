// Owns turning a run's samples into per-metric verdicts, and deciding whether a run goes on.
// Must never touch the workload or the allocator: it reads samples and nothing else.

use std::collections::BTreeMap;

use crate::model::{HeapScope, MetricReport, Run, SourceKind, XAxis, combine};
use crate::sample::{Metric, Sample};
use crate::verdict::{self, Thresholds, Unit, Verdict, format_bytes};

/// The samples to judge and the span each stands for: all of them, or, when a long run
/// merged neighbours (`Sample::span` > 1), the evenly spaced ones. A partly filled last
/// bucket is closer to its neighbour than the others and is left out.
fn evenly_spaced(samples: &[Sample]) -> (u32, Vec<Sample>) {
    let span = samples.get(1).map_or(1, |s| s.span.max(1));
    let kept = samples
        .iter()
        .enumerate()
        .filter(|(i, s)| span == 1 || *i == 0 || s.span == span)
        .map(|(_, s)| *s)
        .collect();
    (span, kept)
}

/// Does a leak of `metric` fail a run whose heap was counted in `scope`, sampled from `source`?
///
/// In process, RSS never does (it only warns: the heap counters are the memory signal), and in
/// thread scope fds and threads are process-wide, so other tests running in parallel move
/// them: they are reported but do not gate. A program outside the process has no heap
/// counters: its RSS is the memory signal and gates, like its fds and threads.
pub fn gates(metric: Metric, scope: HeapScope, source: SourceKind) -> bool {
    match source {
        SourceKind::InProcess => {
            metric.gates()
                && (scope != HeapScope::Thread
                    || matches!(metric, Metric::HeapBytes | Metric::HeapBlocks))
        }
        SourceKind::Command | SourceKind::Pid => true,
    }
}

/// RSS thresholds per marked iteration of a program outside the process: the in-process ones
/// (tau = 4 KiB, tau_ok = 64 KiB, a page as quantum), on purpose. Measured on CPython 3.11
/// (4 steady scripts x 8 runs: churn of 1k-50k dicts, a turning-over cache, mixed-size
/// fragmenting allocations): RSS moves in 128 KiB steps (glibc's heap top) and arena-sized
/// level shifts, which the step and sawtooth rules already absorb, and the slope's lower
/// bound never exceeded 0. A larger tau only hid real leaks: 16 KiB per iteration needs
/// tau < 16 KiB to be called (found at 160 iterations by the recurring-steps rule).
pub fn program_rss_thresholds() -> Thresholds {
    Thresholds::rss_bytes(0.0)
}

/// RSS thresholds of a time series, per second: the per-iteration ones per second instead. A
/// leak needs growth above 4 KiB/s (14 MiB an hour) with its lower bound; clean needs the
/// upper bound at or below 64 KiB/s.
pub const RSS_TAU_PER_SECOND: f64 = 4.0 * 1024.0;
/// See [`RSS_TAU_PER_SECOND`].
pub const RSS_TAU_OK_PER_SECOND: f64 = 64.0 * 1024.0;

/// Judge every metric measured in all of `samples`, for a workload run in this process.
pub fn judge_samples(
    samples: &[Sample],
    warmup: Option<u32>,
    scope: HeapScope,
) -> BTreeMap<Metric, MetricReport> {
    judge_samples_from(samples, warmup, scope, SourceKind::InProcess)
}

/// Judge every metric measured in all of `samples`, taken at iteration boundaries of a run
/// whose samples came from `source` (which decides what gates, and RSS thresholds).
pub fn judge_samples_from(
    samples: &[Sample],
    warmup: Option<u32>,
    scope: HeapScope,
    source: SourceKind,
) -> BTreeMap<Metric, MetricReport> {
    // A very long run merges samples (see store.rs): judge the evenly spaced ones, per
    // stored sample, then scale to iterations.
    let (span, evenly) = evenly_spaced(samples);
    let samples = &evenly[..];
    let per = f64::from(span);
    let warmup = warmup.map(|w| w.div_ceil(span));
    let allocated = mean_allocated(samples);
    let mut metrics = BTreeMap::new();
    for (metric, series) in measured(samples) {
        let thresholds = match metric {
            Metric::HeapBytes => Thresholds::heap_bytes(allocated),
            Metric::RssBytes if source != SourceKind::InProcess => program_rss_thresholds(),
            Metric::RssBytes => Thresholds::rss_bytes(allocated),
            Metric::HeapBlocks | Metric::Fds | Metric::Threads => Thresholds::count(),
        };
        // Effect sizes are per iteration; a stored sample may stand for several.
        let thresholds = Thresholds {
            tau: thresholds.tau * per,
            tau_ok: thresholds.tau_ok * per,
            ..thresholds
        };
        let j = verdict::judge(&series, &thresholds, warmup.map(|w| w as usize));
        let w = j.warmup.min(series.len() - 1);
        let end = *series.last().unwrap_or(&0.0);
        metrics.insert(
            metric,
            MetricReport {
                verdict: j.verdict,
                gating: gates(metric, scope, source),
                slope_per_iteration: j.slope_per_iteration.map(|v| v / per),
                slope_per_second: None,
                ci: j.ci.map(|[lo, hi]| [lo / per, hi / per]),
                warmup: w as u32 * span,
                p_value: j.p_value,
                shape: j.shape,
                after_warmup: series[w],
                end,
                growth: end - series[w],
                reason: if span > 1 {
                    format!(
                        "{} (judged on samples of {span} iterations each, merged to bound \
                         memory: divide rates by {span} for per iteration)",
                        j.reason
                    )
                } else {
                    j.reason
                },
            },
        );
    }
    metrics
}

/// The warm-up of a time series when none is given: max(1 s, 20% of the run).
pub fn default_warmup_secs(run_secs: f64) -> f64 {
    (0.2 * run_secs).max(1.0)
}

/// Judge a program's time series: `samples` evenly spaced in time (`elapsed_ms`, since the
/// run started), the first `warmup_secs` seconds of the run left out (default
/// [`default_warmup_secs`]). Growth is judged per sample by the same procedure as iterations,
/// then expressed per second: slopes go to `slope_per_second` and `ci`, thresholds are per
/// second, and the reason speaks in seconds. A long run's samples may be merged (see
/// store.rs): each then stands for `span` intervals, and per second is per sample divided by
/// `span` intervals. A time series is judged once, at its end: there is no confirmation run.
pub fn judge_time_series(
    samples: &[Sample],
    warmup_secs: Option<f64>,
    source: SourceKind,
) -> BTreeMap<Metric, MetricReport> {
    let mut metrics = BTreeMap::new();
    // Merged samples are judged as they are, evenly spaced (see store.rs).
    let (span, evenly) = evenly_spaced(samples);
    let samples = &evenly[..];
    let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
        return metrics;
    };
    let steps = samples.len().saturating_sub(1).max(1) as f64;
    // Seconds per stored sample (interval x span): measured, so that sleep jitter does not
    // bias the rate.
    let dt = if last.elapsed_ms > first.elapsed_ms {
        (last.elapsed_ms - first.elapsed_ms) / 1e3 / steps
    } else {
        1.0
    };
    // Counted from the run's start, like the warm-up the report shows (a started program's
    // first sample comes an interval in).
    let warmup_secs = warmup_secs.unwrap_or_else(|| default_warmup_secs(last.elapsed_ms / 1e3));
    let warmup = samples
        .iter()
        .position(|s| s.elapsed_ms / 1e3 >= warmup_secs)
        .unwrap_or(samples.len());
    for (metric, series) in measured(samples) {
        let thresholds = match metric {
            Metric::RssBytes => Thresholds {
                tau: RSS_TAU_PER_SECOND * dt,
                tau_ok: RSS_TAU_OK_PER_SECOND * dt,
                ..Thresholds::rss_bytes(0.0)
            },
            Metric::HeapBytes => Thresholds::heap_bytes(0.0),
            Metric::HeapBlocks | Metric::Fds | Metric::Threads => Thresholds::count(),
        };
        // Effect sizes not already per second are per interval; a sample may stand for several.
        let thresholds = match metric {
            Metric::RssBytes => thresholds,
            _ => Thresholds {
                tau: thresholds.tau * f64::from(span),
                tau_ok: thresholds.tau_ok * f64::from(span),
                ..thresholds
            },
        };
        let j = verdict::judge(&series, &thresholds, Some(warmup));
        let w = j.warmup.min(series.len() - 1);
        let end = *series.last().unwrap_or(&0.0);
        let per_second = |v: f64| v / dt;
        let slope = j.slope_per_iteration.map(per_second);
        let ci = j.ci.map(|[lo, hi]| [per_second(lo), per_second(hi)]);
        // The warm-up as used, clamped to the run: the same number the report's header shows.
        let warmup_used = samples[w].elapsed_ms / 1e3;
        let mut reason = match series.len().saturating_sub(j.warmup) {
            _ if j.shape != "too-short" => {
                time_reason(&j, metric, slope, ci, warmup_used, &thresholds, dt)
            }
            0 => format!(
                "too short: the whole run ({warmup_used:.1} s) was warm-up, and at least {} \
                 samples are needed after it; sample longer",
                verdict::MIN_TAIL
            ),
            after => format!(
                "too short: {after} samples after {warmup_used:.1} s of warm-up, at least {} \
                 needed; sample longer",
                verdict::MIN_TAIL
            ),
        };
        if span > 1 {
            reason.push_str(&format!(
                " (judged on samples of {span} intervals each, merged to bound memory)"
            ));
        }
        metrics.insert(
            metric,
            MetricReport {
                verdict: j.verdict,
                gating: gates(metric, HeapScope::None, source),
                slope_per_iteration: None,
                slope_per_second: slope,
                ci,
                warmup: w as u32,
                p_value: j.p_value,
                shape: j.shape,
                after_warmup: series[w],
                end,
                growth: end - series[w],
                reason,
            },
        );
    }
    metrics
}

/// Every metric measured in all of `samples`, with its series.
fn measured(samples: &[Sample]) -> Vec<(Metric, Vec<f64>)> {
    Metric::ALL
        .into_iter()
        .filter_map(|metric| {
            let series = samples
                .iter()
                .map(|s| metric.of(s))
                .collect::<Option<Vec<f64>>>()?;
            (!series.is_empty()).then_some((metric, series))
        })
        .collect()
}

/// The sentence behind a time-series verdict, in seconds. The verdict module words its
/// reasons per iteration; on a time axis its numbers are per sample, so the sentence is
/// rebuilt here from the judgement's numbers and shape.
fn time_reason(
    j: &verdict::Judgement,
    metric: Metric,
    slope: Option<f64>,
    ci: Option<[f64; 2]>,
    warmup_secs: f64,
    th: &Thresholds,
    dt: f64,
) -> String {
    let amount = |v: f64| match th.unit {
        Unit::Bytes => format_bytes(v),
        Unit::Count => crate::format::format_value(metric, (v * 100.0).round() / 100.0),
    };
    let rate = |v: f64| format!("{}/s", amount(v));
    let after = format!("after {warmup_secs:.1} s of warm-up");
    let p = match j.p_value {
        Some(p) if p < 0.001 => "p < 0.001".to_string(),
        Some(p) => format!("p = {p:.3}"),
        None => String::new(),
    };
    let bounds = ci
        .map(|[lo, hi]| format!("95% bounds [{}, {}]", rate(lo), rate(hi)))
        .unwrap_or_default();
    let (Some(slope), Some([_, hi])) = (slope, ci) else {
        return format!("no verdict: {}", j.reason);
    };
    match (j.verdict, j.shape.as_str()) {
        (Verdict::Leak, "sawtooth") => {
            format!(
                "sawtooth whose floors rise {} {after} ({bounds}, {p})",
                rate(slope)
            )
        }
        (Verdict::Leak, "recurring-steps") => {
            format!(
                "grows in recurring steps, {} {after} ({bounds}, {p})",
                rate(slope)
            )
        }
        (Verdict::Leak, _) => format!("grows {} {after} ({bounds}, {p})", rate(slope)),
        (Verdict::Clean, "plateau") => format!(
            "growth stopped during the warm-up ({warmup_secs:.1} s), like a cache filling; \
             since then at most {} (95% upper bound)",
            rate(hi)
        ),
        (Verdict::Clean, "sawtooth") => "sawtooth: floors between drops do not rise".into(),
        (Verdict::Clean, _) => format!(
            "no significant growth {after}: at most {} (95% upper bound, {p})",
            rate(hi)
        ),
        (Verdict::Inconclusive, "decelerating") => format!(
            "growth decelerating: still slowing {after} (now {}, {bounds}), like a cache still \
             filling; sample longer",
            rate(slope)
        ),
        (Verdict::Inconclusive, "steps" | "recurring-steps") => format!(
            "grows in level shifts rather than steadily ({} overall, {bounds}); sample longer",
            rate(slope)
        ),
        (Verdict::Inconclusive, "sawtooth") => format!(
            "sawtooth whose floors move {} ({bounds}): neither flat nor a clear rise; sample longer",
            rate(slope)
        ),
        (Verdict::Inconclusive, "noisy") => format!(
            "no significant growth ({p}), but the 95% upper bound {} is above the {} clean \
             limit: too noisy to tell; sample longer",
            rate(hi),
            rate(th.tau_ok / dt)
        ),
        (Verdict::Inconclusive, _) => format!(
            "grows {} ({bounds}, {p}), not clearly above the {} leak threshold; sample longer",
            rate(slope),
            rate(th.tau / dt)
        ),
    }
}

fn mean_allocated(samples: &[Sample]) -> f64 {
    let v: Vec<i64> = samples.iter().filter_map(|s| s.allocated_bytes).collect();
    if v.is_empty() {
        0.0
    } else {
        v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64
    }
}

/// Judge made-up samples of every shape once, so that the verdict code is resident before a
/// run's first sample: faulting its pages in at a checkpoint would show as RSS growth.
pub(crate) fn fault_in_code() {
    let samples: Vec<Sample> = (0..48i64)
        .map(|i| {
            let wave = (i % 7) * 3;
            Sample {
                iteration: i as u32,
                heap_bytes: Some(1000 + 64 * i + wave),
                heap_blocks: Some(10 + i / 5),
                allocated_bytes: Some(4096),
                rss_bytes: Some(1 << 20),
                fds: Some(3 + (i > 20) as u64),
                threads: Some((1000 - 1000 / (i as u64 + 1)) % 13),
                ..Sample::default()
            }
        })
        .collect();
    std::hint::black_box(judge_samples(&samples, None, HeapScope::Process));
}

/// The run's verdict: from gating metrics only (RSS warns).
///
/// A run in which no gating metric could be judged (no samples: a marker that never
/// matched, a setup that failed) is inconclusive, never clean.
pub fn run_verdict(metrics: &BTreeMap<Metric, MetricReport>) -> Verdict {
    let mut gating = metrics.values().filter(|m| m.gating).peekable();
    if gating.peek().is_none() {
        return Verdict::Inconclusive;
    }
    combine(gating.map(|m| m.verdict))
}

/// The run's warm-up as shown in its header: the largest of its gating metrics' warm-ups
/// (RSS, which only warns in process, may have waited longer; its row says so).
pub fn run_warmup(metrics: &BTreeMap<Metric, MetricReport>) -> u32 {
    let gating = metrics
        .values()
        .filter(|m| m.gating)
        .map(|m| m.warmup)
        .max();
    gating
        .or_else(|| metrics.values().map(|m| m.warmup).max())
        .unwrap_or(0)
}

/// Re-judge a run (e.g. one read from a saved report) from its samples. `warmup` is in
/// iterations; on a time axis it is ignored and the default warm-up in seconds applies.
pub fn rejudge(run: &mut Run, warmup: Option<u32>) {
    run.metrics = match run.x_axis {
        XAxis::Iteration => {
            judge_samples_from(&run.samples, warmup, run.heap_scope, run.source.kind)
        }
        XAxis::Second => judge_time_series(&run.samples, None, run.source.kind),
    };
    run.warmup = run_warmup(&run.metrics);
    run.verdict = run_verdict(&run.metrics);
}

/// What the engine does after judging at a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    Stop,
    /// Run on to this many iterations, for this reason.
    ExtendTo(u32, String),
}

/// Decide whether to run on, following LEAK-VERDICT.md: a leak seen at N must hold at 2N;
/// an inconclusive gating metric extends the run; both bounded by `max_iterations`.
///
/// `confirmed` holds the metrics that were already `Leak` at the previous checkpoint.
pub fn next_step(
    metrics: &BTreeMap<Metric, MetricReport>,
    confirmed: &[Metric],
    done: u32,
    max_iterations: u32,
) -> Next {
    let gating = || metrics.iter().filter(|(_, m)| m.gating);
    let unconfirmed: Vec<Metric> = gating()
        .filter(|(k, m)| m.verdict == Verdict::Leak && !confirmed.contains(k))
        .map(|(k, _)| *k)
        .collect();
    let any_confirmed = gating().any(|(k, m)| m.verdict == Verdict::Leak && confirmed.contains(k));
    let inconclusive: Vec<Metric> = gating()
        .filter(|(_, m)| m.verdict == Verdict::Inconclusive)
        .map(|(k, _)| *k)
        .collect();
    let to = done.saturating_mul(2).min(max_iterations);
    if to <= done || any_confirmed {
        return Next::Stop;
    }
    if !unconfirmed.is_empty() {
        return Next::ExtendTo(
            to,
            format!(
                "{} leak at {done} iterations, confirming",
                names(&unconfirmed)
            ),
        );
    }
    if !inconclusive.is_empty() {
        return Next::ExtendTo(
            to,
            format!("{} inconclusive at {done} iterations", names(&inconclusive)),
        );
    }
    Next::Stop
}

fn names(metrics: &[Metric]) -> String {
    metrics
        .iter()
        .map(|m| m.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// After the last checkpoint: a leak that could not be confirmed at twice the iterations is
/// reported as inconclusive, saying so (unless the caller turned extension off).
pub fn settle_unconfirmed(
    metrics: &mut BTreeMap<Metric, MetricReport>,
    confirmed: &[Metric],
    extend: bool,
) {
    for (metric, m) in metrics.iter_mut() {
        if !m.gating || m.verdict != Verdict::Leak || confirmed.contains(metric) {
            continue;
        }
        if extend {
            m.verdict = Verdict::Inconclusive;
            m.reason = format!(
                "{} (seen at the last checkpoint only, not confirmed at twice the iterations)",
                m.reason
            );
        } else {
            m.reason = format!(
                "{} (not confirmed at twice the iterations: extension is off)",
                m.reason
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric(verdict: Verdict, gating: bool) -> MetricReport {
        MetricReport {
            verdict,
            gating,
            slope_per_iteration: None,
            slope_per_second: None,
            ci: None,
            warmup: 0,
            p_value: None,
            shape: String::new(),
            after_warmup: 0.0,
            end: 0.0,
            growth: 0.0,
            reason: "r".into(),
        }
    }

    fn map(entries: &[(Metric, Verdict)]) -> BTreeMap<Metric, MetricReport> {
        entries
            .iter()
            .map(|&(k, v)| (k, metric(v, k.gates())))
            .collect()
    }

    #[test]
    fn a_new_leak_is_confirmed_at_twice_the_iterations() {
        let m = map(&[
            (Metric::Fds, Verdict::Leak),
            (Metric::Threads, Verdict::Clean),
        ]);
        assert!(matches!(next_step(&m, &[], 20, 160), Next::ExtendTo(40, _)));
        assert_eq!(next_step(&m, &[Metric::Fds], 40, 160), Next::Stop);
    }

    #[test]
    fn inconclusive_extends_until_the_bound() {
        let m = map(&[(Metric::HeapBytes, Verdict::Inconclusive)]);
        assert!(matches!(
            next_step(&m, &[], 80, 160),
            Next::ExtendTo(160, _)
        ));
        assert_eq!(next_step(&m, &[], 160, 160), Next::Stop);
        assert!(matches!(
            next_step(&m, &[], 100, 160),
            Next::ExtendTo(160, _)
        ));
    }

    #[test]
    fn rss_never_extends_nor_fails() {
        let m = map(&[
            (Metric::RssBytes, Verdict::Leak),
            (Metric::Fds, Verdict::Clean),
        ]);
        assert_eq!(next_step(&m, &[], 20, 160), Next::Stop);
        assert_eq!(run_verdict(&m), Verdict::Clean);
    }

    #[test]
    fn an_unconfirmed_leak_becomes_inconclusive_when_the_bound_stops_the_run() {
        let mut m = map(&[(Metric::Fds, Verdict::Leak)]);
        settle_unconfirmed(&mut m, &[], true);
        assert_eq!(m[&Metric::Fds].verdict, Verdict::Inconclusive);
        let mut m = map(&[(Metric::Fds, Verdict::Leak)]);
        settle_unconfirmed(&mut m, &[], false);
        assert_eq!(m[&Metric::Fds].verdict, Verdict::Leak);
    }

    #[test]
    fn rss_gates_for_a_program_and_only_warns_in_process() {
        use SourceKind::*;
        assert!(!gates(Metric::RssBytes, HeapScope::Process, InProcess));
        assert!(!gates(Metric::RssBytes, HeapScope::None, InProcess));
        assert!(gates(Metric::RssBytes, HeapScope::None, Command));
        assert!(gates(Metric::RssBytes, HeapScope::None, Pid));
        assert!(gates(Metric::Fds, HeapScope::None, Pid));
        assert!(!gates(Metric::Fds, HeapScope::Thread, InProcess));
    }

    /// Samples every 50 ms whose RSS grows `per_second`, with a page of jitter.
    fn timed(per_second: f64, seconds: f64) -> Vec<Sample> {
        let n = (seconds / 0.05) as u32;
        (0..=n)
            .map(|i| {
                let t = f64::from(i) * 0.05;
                Sample {
                    iteration: i,
                    elapsed_ms: t * 1e3,
                    rss_bytes: Some(
                        (50e6 + per_second * t) as u64 / 4096 * 4096 + 4096 * u64::from(i % 3),
                    ),
                    fds: Some(7),
                    threads: Some(3),
                    ..Sample::default()
                }
            })
            .collect()
    }

    #[test]
    fn a_time_series_is_judged_per_second_with_a_warmup_in_seconds() {
        let leak = judge_time_series(&timed(1e6, 6.0), None, SourceKind::Pid);
        let rss = &leak[&Metric::RssBytes];
        assert_eq!(rss.verdict, Verdict::Leak, "{}", rss.reason);
        assert!(rss.gating);
        assert_eq!(rss.slope_per_iteration, None);
        let slope = rss.slope_per_second.unwrap();
        assert!((0.95e6..1.05e6).contains(&slope), "{slope}");
        let [lo, hi] = rss.ci.unwrap();
        assert!(lo <= slope && slope <= hi);
        // Default warm-up: 20% of 6 s = 1.2 s = 24 samples of 50 ms.
        assert_eq!(rss.warmup, 24);
        assert!(
            rss.reason.contains("KiB/s") && rss.reason.contains("1.2 s"),
            "{}",
            rss.reason
        );

        let flat = judge_time_series(&timed(0.0, 6.0), Some(2.0), SourceKind::Command);
        let rss = &flat[&Metric::RssBytes];
        assert_eq!(rss.verdict, Verdict::Clean, "{}", rss.reason);
        assert_eq!(rss.warmup, 40);
        assert_eq!(flat[&Metric::Fds].verdict, Verdict::Clean);
    }

    #[test]
    fn a_slow_time_series_is_not_a_leak_below_the_threshold_per_second() {
        // 1 KiB/s: below the 4 KiB/s threshold, whatever the sampling interval.
        let slow = judge_time_series(&timed(1024.0, 60.0), None, SourceKind::Pid);
        assert_ne!(slow[&Metric::RssBytes].verdict, Verdict::Leak);
    }

    /// `samples` through a store keeping at most `cap` of them, merged pairwise past it.
    fn merged(samples: Vec<Sample>, cap: usize) -> Vec<Sample> {
        let mut store = crate::store::SampleStore::new(cap, cap);
        samples.into_iter().for_each(|s| store.push(s));
        store.finish()
    }

    #[test]
    fn merged_time_samples_are_judged_per_second_of_what_they_span() {
        // 121 intervals of 50 ms kept in 16: 15 samples of 8 intervals, then a bucket of 1.
        let samples = merged(timed(1e6, 6.06), 16);
        assert_eq!(samples.len(), 17);
        assert_eq!((samples[1].span, samples[16].span), (8, 1));
        let leak = judge_time_series(&samples, None, SourceKind::Pid);
        let rss = &leak[&Metric::RssBytes];
        assert_eq!(rss.verdict, Verdict::Leak, "{}", rss.reason);
        let slope = rss.slope_per_second.unwrap();
        assert!((0.97e6..1.03e6).contains(&slope), "{slope}");
        assert!(rss.reason.contains("merged"), "{}", rss.reason);
        // The default warm-up, 20% of the 6 s judged, ends at the merged sample at 1.2 s.
        assert!((samples[rss.warmup as usize].elapsed_ms - 1200.0).abs() < 1e-6);

        // Below the threshold per second stays below it, however many intervals a sample holds.
        let slow = judge_time_series(&merged(timed(1024.0, 120.0), 16), None, SourceKind::Pid);
        assert_ne!(slow[&Metric::RssBytes].verdict, Verdict::Leak);
        let flat = judge_time_series(&merged(timed(0.0, 60.0), 16), None, SourceKind::Pid);
        assert_eq!(flat[&Metric::RssBytes].verdict, Verdict::Clean);
        assert_eq!(flat[&Metric::Fds].verdict, Verdict::Clean);
    }
}
