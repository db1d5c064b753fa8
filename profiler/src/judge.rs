// Owns turning a run's samples into per-metric verdicts, and deciding whether a run goes on.
// Must never touch the workload or the allocator: it reads samples and nothing else.

use std::collections::BTreeMap;

use crate::report::{HeapScope, MetricReport, Run, combine};
use crate::sample::{Metric, Sample};
use crate::verdict::{self, Thresholds, Verdict};

/// Does a leak of `metric` fail a run whose heap was counted in `scope`? RSS never does (it
/// only warns); in thread scope fds and threads are process-wide, so other tests running in
/// parallel move them: they are reported but do not gate.
pub fn gates(metric: Metric, scope: HeapScope) -> bool {
    metric.gates()
        && (scope != HeapScope::Thread || matches!(metric, Metric::HeapBytes | Metric::HeapBlocks))
}

/// Judge every metric measured in all of `samples`.
pub fn judge_samples(
    samples: &[Sample],
    warmup: Option<u32>,
    scope: HeapScope,
) -> BTreeMap<Metric, MetricReport> {
    let allocated = mean_allocated(samples);
    let mut metrics = BTreeMap::new();
    for metric in Metric::ALL {
        let Some(series) = samples
            .iter()
            .map(|s| metric.of(s))
            .collect::<Option<Vec<f64>>>()
        else {
            continue;
        };
        if series.is_empty() {
            continue;
        }
        let thresholds = match metric {
            Metric::HeapBytes => Thresholds::heap_bytes(allocated),
            Metric::RssBytes => Thresholds::rss_bytes(allocated),
            Metric::HeapBlocks | Metric::Fds | Metric::Threads => Thresholds::count(),
        };
        let j = verdict::judge(&series, &thresholds, warmup.map(|w| w as usize));
        let w = j.warmup.min(series.len() - 1);
        let end = *series.last().unwrap_or(&0.0);
        metrics.insert(
            metric,
            MetricReport {
                verdict: j.verdict,
                gating: gates(metric, scope),
                slope_per_iteration: j.slope_per_iteration,
                ci: j.ci,
                warmup: w as u32,
                p_value: j.p_value,
                shape: j.shape,
                after_warmup: series[w],
                end,
                growth: end - series[w],
                reason: j.reason,
            },
        );
    }
    metrics
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
pub fn run_verdict(metrics: &BTreeMap<Metric, MetricReport>) -> Verdict {
    combine(metrics.values().filter(|m| m.gating).map(|m| m.verdict))
}

/// Re-judge a run (e.g. one read from a saved report) from its samples.
pub fn rejudge(run: &mut Run, warmup: Option<u32>) {
    run.metrics = judge_samples(&run.samples, warmup, run.heap_scope);
    run.warmup = run.metrics.values().map(|m| m.warmup).max().unwrap_or(0);
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
}
