// Owns how far criterion may time a routine after its memory profile (fully, capped, or not at
// all) and the cap on its calls. Never reads a clock: the times it scales are criterion's.

use std::time::Duration;

use crate::format::format_bytes;
use crate::model::{Run, Verdict};
use crate::sample::Metric;

/// Most calls criterion may make of a leaking routine, whatever its leak per call.
const MAX_CAPPED_CALLS: u64 = 100_000;

/// Samples criterion takes of a capped routine (its minimum), each of at most 1/10 of the cap.
pub(super) const CAPPED_SAMPLES: u64 = 10;

/// Fewest calls a capped timing needs: one to warm up, one per sample.
const MIN_CAPPED_CALLS: u64 = 1 + CAPPED_SAMPLES;

/// How criterion may time a routine, decided from its memory profile.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Timing {
    /// Clean: as criterion is configured.
    Full,
    /// The heap leaks (or may): at most `calls` calls, and why.
    Capped { calls: u64, why: String },
    /// Not timed, and why: the table shows the profile's time per iteration.
    Skipped { why: String },
}

impl Timing {
    /// The table's timing column.
    pub(super) fn describe(&self) -> String {
        match self {
            Timing::Full => "criterion".to_string(),
            Timing::Capped { calls, why } => {
                format!("criterion, capped at {calls} calls: {why}")
            }
            Timing::Skipped { why } => format!("not timed ({why}); time from the memory profile"),
        }
    }
}

/// How far criterion may time the routine profiled in `run`. `budget` is the heap a leaking
/// routine may leak while timed; `uncappable` says criterion runs in a mode whose calls cannot
/// be capped (`--quick`, `--profile-time`: both call until a time has passed).
pub(super) fn timing(run: &Run, budget: u64, uncappable: bool) -> Timing {
    if let Some(failure) = &run.failure {
        return Timing::Skipped {
            why: failure.sentence(),
        };
    }
    let suspect = |m: &Metric| {
        run.metrics
            .get(m)
            .is_some_and(|r| r.gating && r.verdict != Verdict::Clean)
    };
    let leaks = |m: &Metric| {
        run.metrics
            .get(m)
            .is_some_and(|r| r.gating && r.verdict == Verdict::Leak)
    };
    // A descriptor or a thread kept per call: criterion would call until the process runs out
    // of them, and no byte budget bounds that.
    let resources: Vec<Metric> = [Metric::Fds, Metric::Threads]
        .into_iter()
        .filter(|m| suspect(m))
        .collect();
    if !resources.is_empty() {
        let word = if resources.iter().any(leaks) {
            "leaks"
        } else {
            "may leak (inconclusive)"
        };
        let names: Vec<&str> = resources.iter().map(|m| m.name()).collect();
        return Timing::Skipped {
            why: format!(
                "{word} {} per call: criterion would call it until the process runs out",
                names.join(" and ")
            ),
        };
    }
    let heap = [Metric::HeapBytes, Metric::HeapBlocks];
    if !heap.iter().any(suspect) {
        return Timing::Full;
    }
    let per_call = leak_per_call(run);
    let why = if heap.iter().any(leaks) {
        format!("leaks ~{} per call", format_bytes(per_call))
    } else {
        format!(
            "heap verdict inconclusive (up to ~{} per call)",
            format_bytes(per_call)
        )
    };
    capped(per_call, budget, uncappable, why)
}

/// Timing of a routine that keeps `per_call` bytes a call (`why`): capped at `budget` over it
/// (at most 100,000 calls), or not at all when even the fewest calls a timing needs would
/// leak more, or criterion runs in a mode that cannot be capped.
pub(super) fn capped(per_call: f64, budget: u64, uncappable: bool, why: String) -> Timing {
    if uncappable {
        return Timing::Skipped {
            why: format!("{why}; criterion's --quick and --profile-time cannot be capped"),
        };
    }
    let calls = ((budget as f64 / per_call.max(1.0)).floor() as u64).min(MAX_CAPPED_CALLS);
    if calls < MIN_CAPPED_CALLS {
        return Timing::Skipped {
            why: format!(
                "{why}: {MIN_CAPPED_CALLS} calls would leak more than the budget of {}",
                format_bytes(budget as f64)
            ),
        };
    }
    Timing::Capped { calls, why }
}

/// Heap bytes a call may keep: the upper 95% bound of the live-heap slope (or of the blocks'
/// slope, at 16 bytes a block at least), and at least one byte.
fn leak_per_call(run: &Run) -> f64 {
    let upper = |m: Metric| {
        run.metrics.get(&m).map_or(0.0, |r| {
            let slope = r.slope().unwrap_or(0.0);
            r.ci.map_or(slope, |[_, hi]| hi.max(slope))
        })
    };
    upper(Metric::HeapBytes)
        .max(16.0 * upper(Metric::HeapBlocks))
        .max(1.0)
}

/// The calls left to a capped routine: at most `calls` in all, `per_sample` in one of
/// criterion's samples. Criterion asks for as many iterations as fit its measurement time; a
/// sample makes at most `per_sample` calls and reports the time of the iterations asked for at
/// the mean of the calls it made, so criterion's time per iteration is that of real calls.
#[derive(Debug)]
pub(super) struct Cap {
    left: u64,
    per_sample: u64,
    made: u64,
    took: Duration,
}

impl Cap {
    pub(super) fn new(calls: u64) -> Self {
        Cap {
            left: calls,
            per_sample: (calls.saturating_sub(1) / CAPPED_SAMPLES).max(1),
            made: 0,
            took: Duration::ZERO,
        }
    }

    /// Calls to make for a sample of `iters` iterations.
    pub(super) fn take(&mut self, iters: u64) -> u64 {
        let n = iters.min(self.per_sample).min(self.left);
        self.left -= n;
        n
    }

    /// The time criterion gets for `iters` iterations when `n` calls took `took`.
    pub(super) fn scale(&mut self, iters: u64, n: u64, took: Duration) -> Duration {
        self.made += n;
        self.took += took;
        let (calls, time) = if n > 0 {
            (n, took)
        } else {
            (self.made, self.took)
        };
        if calls == 0 {
            return Duration::ZERO;
        }
        let secs = time.as_secs_f64() * (iters as f64 / calls as f64);
        Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::DEFAULT_LEAK_BUDGET;
    use crate::model::{Failure, FailureKind, HeapScope, MetricReport, Shape};

    fn metric(verdict: Verdict, slope: f64) -> MetricReport {
        MetricReport {
            verdict,
            gating: true,
            slope_per_iteration: Some(slope),
            slope_per_second: None,
            ci: Some([slope * 0.9, slope * 1.1]),
            warmup: 0,
            p_value: None,
            shape: Shape::Linear,
            after_warmup: 0.0,
            end: 0.0,
            growth: 0.0,
            reason: String::new(),
            confirmed_within: false,
        }
    }

    fn run(metrics: &[(Metric, Verdict, f64)]) -> Run {
        let mut run = Run::new("r", HeapScope::Process);
        for &(m, v, slope) in metrics {
            run.metrics.insert(m, metric(v, slope));
        }
        run
    }

    #[test]
    fn timing_follows_the_memory_verdict() {
        let clean = run(&[
            (Metric::HeapBytes, Verdict::Clean, 0.0),
            (Metric::Fds, Verdict::Clean, 0.0),
        ]);
        assert_eq!(timing(&clean, DEFAULT_LEAK_BUDGET, false), Timing::Full);

        // 1 KiB a call (upper bound 1126.4 B): 16 MiB / 1126.4 B = 14894 calls.
        let heap = run(&[
            (Metric::HeapBytes, Verdict::Leak, 1024.0),
            (Metric::HeapBlocks, Verdict::Leak, 1.0),
        ]);
        match timing(&heap, DEFAULT_LEAK_BUDGET, false) {
            Timing::Capped { calls, why } => {
                assert_eq!(calls, 14894);
                assert!(why.contains("leaks ~1.1 KiB per call"), "{why}");
            }
            other => panic!("{other:?}"),
        }
        // A 30-byte leak is capped at 100,000 calls, not 16 MiB / 33 B.
        let small = run(&[(Metric::HeapBytes, Verdict::Leak, 30.0)]);
        assert!(matches!(
            timing(&small, DEFAULT_LEAK_BUDGET, false),
            Timing::Capped {
                calls: MAX_CAPPED_CALLS,
                ..
            }
        ));
        // Inconclusive heap: capped too.
        let maybe = run(&[(Metric::HeapBytes, Verdict::Inconclusive, 100.0)]);
        assert!(matches!(
            timing(&maybe, DEFAULT_LEAK_BUDGET, false),
            Timing::Capped { .. }
        ));
        // 10 MiB a call: 11 calls would be over the budget.
        let big = run(&[(Metric::HeapBytes, Verdict::Leak, 10.0 * 1048576.0)]);
        assert!(matches!(
            timing(&big, DEFAULT_LEAK_BUDGET, false),
            Timing::Skipped { .. }
        ));
        // --quick cannot be capped.
        assert!(matches!(
            timing(&heap, DEFAULT_LEAK_BUDGET, true),
            Timing::Skipped { .. }
        ));
        // Descriptors and threads are never timed.
        let fds = run(&[
            (Metric::HeapBytes, Verdict::Clean, 0.0),
            (Metric::Fds, Verdict::Leak, 1.0),
        ]);
        let Timing::Skipped { why } = timing(&fds, DEFAULT_LEAK_BUDGET, false) else {
            panic!("fds leak timed");
        };
        assert!(why.starts_with("leaks fds per call"), "{why}");
        // Nor is a routine that panicked.
        let mut failed = clean.clone();
        failed.failure = Some(Failure::new(FailureKind::Panic, 3, "boom"));
        assert!(matches!(
            timing(&failed, DEFAULT_LEAK_BUDGET, false),
            Timing::Skipped { .. }
        ));
        // A leak that does not gate (RSS) does not limit the timing.
        let mut rss = run(&[(Metric::RssBytes, Verdict::Leak, 4096.0)]);
        rss.metrics.get_mut(&Metric::RssBytes).unwrap().gating = false;
        assert_eq!(timing(&rss, DEFAULT_LEAK_BUDGET, false), Timing::Full);
    }

    #[test]
    fn a_cap_bounds_the_calls_criterion_asks_for() {
        let mut cap = Cap::new(16384);
        // Criterion: one warm-up iteration, then ten flat samples of 40,000 iterations.
        let mut calls = 0;
        let n = cap.take(1);
        assert_eq!(
            cap.scale(1, n, Duration::from_micros(3)),
            Duration::from_micros(3)
        );
        calls += n;
        for _ in 0..10 {
            let n = cap.take(40_000);
            assert_eq!(n, 1638);
            calls += n;
            // Each call takes 2 us: criterion is told 40,000 iterations took 80 ms.
            let told = cap.scale(40_000, n, Duration::from_micros(2) * n as u32);
            assert!((told.as_secs_f64() - 0.080).abs() < 1e-9, "{told:?}");
        }
        assert_eq!(calls, 16381);
        assert!(calls <= 16384);
        // Asked for more than is left: at most what is left, then none; the time stays the
        // mean of the calls made.
        let n = cap.take(40_000);
        assert_eq!(n, 3);
        cap.scale(40_000, n, Duration::from_micros(6));
        assert_eq!(cap.take(40_000), 0);
        let told = cap.scale(1000, 0, Duration::ZERO);
        assert!(told > Duration::from_micros(1900) && told < Duration::from_micros(2100));
        assert_eq!(cap.scale(0, 0, Duration::ZERO), Duration::ZERO);
    }
}
