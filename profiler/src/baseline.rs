// Owns comparing a Report with a saved one: per workload, per metric, with tolerances.
// Must never run anything nor change verdicts: it adds a comparison beside them.

//! Baselines: a report saved with `--save-baseline` is compared with a new one per workload.
//!
//! Compared, each with a tolerance (default 10% relative, with an absolute floor so a tiny
//! number does not flap): `peak` (heap peak above the run's start), `allocated` and
//! `allocations` (median per iteration), `retained` (live heap at the end above the start;
//! only when both runs did the same number of iterations), `rss` (peak RSS), `fds` and
//! `threads` (at the end; for a program, the median of the last three samples, see
//! [`at_end`]). A regression is a value above old + allowed, an improvement one
//! below old - allowed, where allowed = max(relative x |old|, absolute floor).
//!
//! A sweep (`--sweep`) compares its fits instead: per field, a growth class above the
//! baseline's is a regression, and the same class compares the fitted coefficient with the
//! relative tolerance.

use std::collections::BTreeMap;

use crate::format::format_ms;
pub use crate::model::{BaselineInfo, Change, Compared, Comparison, Status};
use crate::model::{Complexity, Fit, Report, Run, Sweep, XAxis};

/// How far a value may move before it counts as a change.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerance {
    /// Fraction of the old value (0.10 = 10%).
    pub relative: f64,
    /// Floor in the metric's unit (bytes or a count).
    pub absolute: f64,
}

/// Tolerances per compared quantity; defaults unless overridden.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tolerances {
    overrides: BTreeMap<Compared, Tolerance>,
}

impl Tolerances {
    pub fn get(&self, c: Compared) -> Tolerance {
        self.overrides
            .get(&c)
            .copied()
            .unwrap_or_else(|| default_tolerance(c))
    }

    /// Apply `NAME=PCT%` (relative) or `NAME=AMOUNT` (absolute floor: a size for byte
    /// quantities, a number for counts), as given to `--tolerance`.
    pub fn apply(&mut self, spec: &str) -> Result<(), String> {
        let (name, value) = spec
            .split_once('=')
            .ok_or_else(|| format!("'{spec}' is not NAME=VALUE (e.g. allocated=5%)"))?;
        let c: Compared = name.trim().parse()?;
        let mut t = self.get(c);
        let value = value.trim();
        if let Some(pct) = value.strip_suffix('%') {
            let p: f64 = pct
                .trim()
                .parse()
                .ok()
                .filter(|p: &f64| p.is_finite() && *p >= 0.0)
                .ok_or_else(|| format!("'{value}' in '{spec}' is not a percentage"))?;
            t.relative = p / 100.0;
        } else if c.is_bytes() {
            t.absolute =
                crate::budget::parse_size(value).map_err(|e| format!("in '{spec}': {e}"))? as f64;
        } else {
            t.absolute = value
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| format!("'{value}' in '{spec}' is not a count or a percentage"))?;
        }
        self.overrides.insert(c, t);
        Ok(())
    }
}

/// The tolerance of `c` unless `--tolerance` says otherwise: 10% with an absolute floor so a
/// tiny number does not flap.
fn default_tolerance(c: Compared) -> Tolerance {
    let absolute = match c {
        Compared::Peak | Compared::Allocated | Compared::Retained => 4096.0,
        Compared::Allocations => 8.0,
        Compared::Rss => 2.0 * 1024.0 * 1024.0,
        Compared::Fds | Compared::Threads => 0.0,
    };
    Tolerance {
        relative: 0.10,
        absolute,
    }
}

/// The value of a compared quantity in a run, if it was measured. For K copies at once, the
/// peak is the largest of any one copy at any level and RSS the whole's highest, from the
/// levels: the run's samples are one copy's, and a copy 1 peaking at 8 MiB instead of 8 KiB
/// compared as "no change" against its baseline.
pub fn measure(run: &Run, c: Compared) -> Option<f64> {
    if let Some(k) = &run.concurrency {
        let highest = |f: fn(&crate::model::Level) -> Option<u64>| {
            k.levels.iter().filter_map(f).max().map(|v| v as f64)
        };
        match c {
            Compared::Peak => return highest(|l| l.peak_per_copy_bytes),
            Compared::Rss => return highest(|l| l.rss_peak_bytes),
            _ => {}
        }
    }
    let first = run.samples.first()?;
    let last = run.samples.last()?;
    match c {
        Compared::Peak => run.peak_above_start(),
        Compared::Allocated => run.allocated_per_iteration(),
        Compared::Allocations => run.allocations_per_iteration(),
        Compared::Retained => Some((last.heap_bytes? - first.heap_bytes?) as f64),
        // As the verdict judges it: without the pages of mapped files (a program reading more
        // of a mapped file was a peak-RSS regression while its verdict called it clean).
        Compared::Rss => run
            .samples
            .iter()
            .filter_map(|s| s.judged_rss())
            .reduce(f64::max),
        Compared::Fds => at_end(run, |s| s.fds),
        Compared::Threads => at_end(run, |s| s.threads),
    }
}

/// A count at the end of a run (open fds, threads): its last sample's, but for a program, the
/// median of the last three samples after the first (the last one's, with fewer). A program
/// sampled in time can be sampled once more while it runs its exit code, and that one sample
/// may read what the program never held: measured on `sleep 0.5` sampled every 20 ms on a
/// loaded 2-core machine, 2.5% of runs ended one or two fds low (coreutils closes stdout and
/// stderr at exit) and 0.75% of runs of a C program one fd high (the heap library reads
/// `/proc/self/status` as the program exits), and a gate with no tolerance failed 1 baseline
/// pair in 180. The price: a program's count that moves only in its last sample is not seen,
/// and a steady growth reads one sample behind, in the baseline as now. In process, samples
/// are taken at iteration boundaries, where no exit code runs: the last one counts.
fn at_end(run: &Run, count: fn(&crate::sample::Sample) -> Option<u64>) -> Option<f64> {
    let last = || run.samples.iter().rev().find_map(count);
    if run.source.kind == crate::model::SourceKind::InProcess {
        return last().map(|v| v as f64);
    }
    let after_first = run.samples.iter().skip(1).rev();
    let mut tail: Vec<u64> = after_first.filter_map(count).take(3).collect();
    if tail.len() < 3 {
        return last().map(|v| v as f64);
    }
    tail.sort_unstable();
    Some(tail[1] as f64)
}

/// Above old + allowed is a regression, below old - allowed an improvement.
fn status_of(old: f64, new: f64, allowed: f64) -> Status {
    if new > old + allowed {
        Status::Regression
    } else if new < old - allowed {
        Status::Improvement
    } else {
        Status::Same
    }
}

/// Compare one run with its baseline run.
pub fn compare_run(run: &Run, base: &Run, tolerances: &Tolerances) -> Comparison {
    if let (Some(now), Some(was)) = (&run.sweep, &base.sweep) {
        return Comparison {
            baseline_iterations: base.iterations,
            changes: compare_sweeps(now, was, tolerances),
        };
    }
    let changes = Compared::ALL
        .into_iter()
        .filter(|&c| c != Compared::Retained || run.iterations == base.iterations)
        .filter_map(|c| {
            let (old, new) = (measure(base, c)?, measure(run, c)?);
            let t = tolerances.get(c);
            let allowed = (t.relative * old.abs()).max(t.absolute);
            let status = status_of(old, new, allowed);
            Some(Change {
                metric: c,
                old,
                new,
                allowed,
                status,
                classes: None,
                gating: c != Compared::Rss || run.is_program(),
            })
        })
        .collect();
    Comparison {
        baseline_iterations: base.iterations,
        changes,
    }
}

/// The fields of a sweep compared with a baseline's, by the quantity whose tolerance they use.
const SWEPT: [(Compared, &str); 5] = [
    (Compared::Peak, "peak_bytes"),
    (Compared::Retained, "retained_bytes"),
    (Compared::Allocated, "allocated_bytes"),
    (Compared::Allocations, "allocations"),
    (Compared::Rss, "rss_peak_bytes"),
];

/// Two sweeps compared field by field: a class above the baseline's is a regression, below it
/// an improvement; the same class compares its coefficient (the level for `O(1)`) with the
/// relative tolerance (the absolute floor, in the metric's unit, only applies to a level).
/// A field either sweep cannot tell is not compared.
fn compare_sweeps(now: &Sweep, was: &Sweep, tolerances: &Tolerances) -> Vec<Change> {
    SWEPT
        .iter()
        .filter_map(|&(c, field)| {
            let (old_fit, new_fit) = (was.fit(field)?, now.fit(field)?);
            let (Some(old_class), Some(new_class)) = (old_fit.model, new_fit.model) else {
                return undecided_change(c, old_fit, new_fit);
            };
            let value = |f: &crate::model::Fit, class: Complexity| {
                if class == Complexity::Constant {
                    f.intercept
                } else {
                    f.coefficient
                }
            };
            let (old, new) = (value(old_fit, old_class)?, value(new_fit, new_class)?);
            let t = tolerances.get(c);
            let (allowed, status) = if old_class == new_class {
                let floor = if new_class == Complexity::Constant {
                    t.absolute
                } else {
                    0.0
                };
                let allowed = (t.relative * old.abs()).max(floor);
                (allowed, status_of(old, new, allowed))
            } else if new_class > old_class {
                (0.0, Status::Regression)
            } else {
                (0.0, Status::Improvement)
            };
            Some(Change {
                metric: c,
                old,
                new,
                allowed,
                status,
                classes: Some([old_class, new_class]),
                gating: true,
            })
        })
        .collect()
}

/// A field whose fit could not decide its class, then or now: a change of class still when
/// every class that fits now is above (or below) every class that fitted then. "Cannot tell
/// O(n^3) from O(n^2)" against a baseline of O(n) passed as "no change" and saved itself
/// over the good baseline. Claims the least of it: the lowest class that fits now against
/// the highest that fitted then. Overlapping classes are not compared.
fn undecided_change(metric: Compared, was: &Fit, now: &Fit) -> Option<Change> {
    let classes = |f: &Fit| match f.model {
        Some(m) => vec![m],
        None => f.candidates.clone(),
    };
    let (then_classes, now_classes) = (classes(was), classes(now));
    let (low_then, high_then) = (then_classes.iter().min()?, then_classes.iter().max()?);
    let (low_now, high_now) = (now_classes.iter().min()?, now_classes.iter().max()?);
    let (status, pair) = if low_now > high_then {
        (Status::Regression, [*high_then, *low_now])
    } else if high_now < low_then {
        (Status::Improvement, [*low_then, *high_now])
    } else {
        return None;
    };
    Some(Change {
        metric,
        // Coefficients of different terms, shown by neither output (the classes are).
        old: was.coefficient.unwrap_or(0.0),
        new: now.coefficient.unwrap_or(0.0),
        allowed: 0.0,
        status,
        classes: Some(pair),
        gating: true,
    })
}

/// Whether two runs are of the same workload and kind (plain, a sweep, K copies at once),
/// counted on the same axis (K copies: the same levels of K; in time: the same interval).
pub fn same_run(a: &Run, b: &Run) -> bool {
    a.workload == b.workload && unlike(a, b).is_none()
}

/// Why two runs of one workload cannot be compared, in a sentence: another kind, or
/// "per iteration" meaning something else. A program sampled in time has "per iteration"
/// numbers per sample: compared across intervals, a clean program sampled every 25 ms
/// instead of 5 ms read as allocating 6x more per iteration, a regression.
pub fn unlike(run: &Run, baseline: &Run) -> Option<String> {
    let kind = |r: &Run| {
        let axis = match (r.x_axis, r.source.interval_ms) {
            (XAxis::Iteration, _) => "per iteration".to_string(),
            (XAxis::Second, Some(ms)) => format!("in time, every {}", format_ms(ms)),
            (XAxis::Second, None) => "in time".to_string(),
        };
        match (&r.sweep, &r.concurrency) {
            (Some(_), _) => "a sweep".to_string(),
            (None, Some(c)) => {
                let k: Vec<String> = c.levels.iter().map(|l| l.copies.to_string()).collect();
                format!("{} copies at once, {axis}", k.join(","))
            }
            (None, None) => format!("a plain run, {axis}"),
        }
    };
    let (now, then) = (kind(run), kind(baseline));
    (now != then).then(|| format!("{}: {now} here, {then} in the baseline", run.workload))
}

/// `report` to be saved over `previous`, the baseline it was compared with: its runs, then
/// the previous runs of workloads it did not run, so that a run of some workloads updates
/// theirs without dropping the others' (`LEAK_CHECK_SAVE_BASELINE=1 scripts/leak-check.sh
/// --workload temp-files` once left a baseline of temp-files alone).
pub fn merged(report: &Report, previous: &Report) -> Report {
    let mut merged = report.clone();
    merged.runs.extend(
        previous
            .runs
            .iter()
            .filter(|old| !report.runs.iter().any(|r| same_run(r, old)))
            .cloned(),
    );
    merged.refresh();
    merged
}

/// Compare every run of `report` with the same workload in `baseline`, recording the results
/// in the report (runs[].baseline and report.baseline). Runs of another kind (a sweep, K
/// copies, a plain run) are not the same workload's: comparing a run of 2 copies with a plain
/// one made up regressions (threads 2 -> 4), a sweep with a plain one compared nothing.
pub fn compare(report: &mut Report, baseline: &Report, path: &str, tolerances: &Tolerances) {
    let same = same_run;
    for run in &mut report.runs {
        run.baseline = baseline
            .runs
            .iter()
            .find(|b| same(run, b))
            .filter(|_| run.failure.is_none())
            .map(|b| compare_run(run, b, tolerances));
    }
    // A workload run here and in the baseline, but of another kind: named once, why.
    let namesakes: Vec<(&str, String)> = report
        .runs
        .iter()
        .filter(|r| !baseline.runs.iter().any(|b| same(r, b)))
        .filter_map(|r| {
            let namesake = baseline.runs.iter().find(|b| b.workload == r.workload)?;
            Some((r.workload.as_str(), unlike(r, namesake)?))
        })
        .collect();
    let unmatched = |name: &str| !namesakes.iter().any(|(n, _)| *n == name);
    let missing = baseline
        .runs
        .iter()
        .filter(|b| !report.runs.iter().any(|r| same(r, b)) && unmatched(&b.workload))
        .map(|b| b.workload.clone())
        .collect();
    let new = report
        .runs
        .iter()
        .filter(|r| !baseline.runs.iter().any(|b| same(r, b)) && unmatched(&r.workload))
        .map(|r| r.workload.clone())
        .collect();
    let unlike = namesakes.into_iter().map(|(_, why)| why).collect();
    report.baseline = Some(BaselineInfo {
        path: path.to_string(),
        missing,
        new,
        unlike,
        updated: false,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fit(model: Option<Complexity>, candidates: &[Complexity]) -> Fit {
        Fit {
            model,
            coefficient: model.map(|_| 100.0),
            intercept: model.map(|_| 0.0),
            r2: None,
            candidates: candidates.to_vec(),
            sentence: String::new(),
        }
    }

    #[test]
    fn a_fit_that_cannot_tell_still_changes_class_when_every_candidate_does() {
        use Complexity::*;
        let linear = fit(Some(Linear), &[Linear]);
        let above = fit(None, &[Cubic, Quadratic]);
        let change = undecided_change(Compared::Peak, &linear, &above).expect("compared");
        assert_eq!(change.status, Status::Regression);
        assert_eq!(
            change.classes,
            Some([Linear, Quadratic]),
            "the least it claims"
        );
        let below = fit(None, &[Constant, Log]);
        let change = undecided_change(Compared::Peak, &linear, &below).expect("compared");
        assert_eq!(change.status, Status::Improvement);
        // Classes that overlap tell nothing, either way round.
        let around = fit(None, &[NLogN, Linear]);
        assert_eq!(undecided_change(Compared::Peak, &linear, &around), None);
        assert_eq!(undecided_change(Compared::Peak, &around, &linear), None);
        // An undecided baseline against a class above all it could have been.
        let change = undecided_change(Compared::Peak, &around, &above).expect("compared");
        assert_eq!(change.classes, Some([NLogN, Quadratic]));
    }

    #[test]
    fn a_count_at_the_end_is_not_decided_by_one_last_sample() {
        let run_of = |fds: &[u64]| {
            let mut run = Run::new("sleep", crate::model::HeapScope::Process);
            run.source.kind = crate::model::SourceKind::Command;
            run.samples = fds
                .iter()
                .map(|&n| crate::sample::Sample {
                    fds: Some(n),
                    threads: Some(1),
                    ..Default::default()
                })
                .collect();
            run
        };
        // Sampled as the program closed stdout at exit, or as the heap library opened a file.
        assert_eq!(measure(&run_of(&[5, 5, 5, 4]), Compared::Fds), Some(5.0));
        assert_eq!(measure(&run_of(&[5, 5, 5, 6]), Compared::Fds), Some(5.0));
        // Fds opened and kept to the end are still there.
        assert_eq!(measure(&run_of(&[3, 4, 5, 6, 7]), Compared::Fds), Some(6.0));
        // With three samples or fewer, the first (before the program did anything) has no vote.
        assert_eq!(measure(&run_of(&[3, 3, 9]), Compared::Fds), Some(9.0));
        assert_eq!(measure(&run_of(&[3, 4]), Compared::Fds), Some(4.0));
        assert_eq!(measure(&run_of(&[]), Compared::Fds), None);
        assert_eq!(measure(&run_of(&[5, 5]), Compared::Threads), Some(1.0));
        // In process, samples are at iteration boundaries: the last one counts.
        let mut in_process = run_of(&[3, 3, 3, 4]);
        in_process.source.kind = crate::model::SourceKind::InProcess;
        assert_eq!(measure(&in_process, Compared::Fds), Some(4.0));
    }

    #[test]
    fn tolerances_parse_relative_and_absolute() {
        let mut t = Tolerances::default();
        t.apply("allocated=5%").unwrap();
        t.apply("peak=1MiB").unwrap();
        t.apply("fds=2").unwrap();
        assert_eq!(t.get(Compared::Allocated).relative, 0.05);
        assert_eq!(t.get(Compared::Allocated).absolute, 4096.0);
        assert_eq!(t.get(Compared::Peak).absolute, 1048576.0);
        assert_eq!(t.get(Compared::Fds).absolute, 2.0);
        assert_eq!(t.get(Compared::Rss).relative, 0.10);
        for bad in [
            "allocated",
            "speed=5%",
            "allocated=-3%",
            "fds=many",
            "peak=12 parsecs",
        ] {
            assert!(t.apply(bad).is_err(), "{bad}");
        }
    }
}
