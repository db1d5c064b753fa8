// Owns the one pass/fail decision: a Report's exit status, which every output words the same.
// Must never look at anything but the report, so that a saved report reproduces its status.

use super::{End, Report, Run, Verdict};

/// How a session ended, as the documented exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// 0: nothing found.
    Clean = 0,
    /// 1: a leak, an exceeded budget, a regression (or, when asked, an inconclusive verdict).
    Leak = 1,
    /// 2: bad usage or bad input.
    Usage = 2,
    /// 3: a workload failed (panic, failed setup), or a program crashed or exited non-zero.
    WorkloadFailed = 3,
    /// 130: interrupted (SIGINT, SIGTERM, SIGHUP); the report of the samples so far is still written.
    Interrupted = 130,
}

impl Outcome {
    /// The process exit code.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// `true` only for exit 0.
    pub fn passed(self) -> bool {
        self == Outcome::Clean
    }
}

/// A report's status and the sentence that explains it, as every output shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub outcome: Outcome,
    /// "passed", "failed: a leak", "interrupted"...: the headline every output uses.
    pub headline: String,
}

impl Report {
    /// A program run whose marker matched none of its output lines (not a sweep, which has
    /// no marker): lines that matched but came too late to sample do not count. K copies at
    /// once: no copy of any level marked an iteration (nor failed one).
    fn unmatched_marker(&self) -> Option<&Run> {
        self.runs.iter().find(|r| {
            let unmarked = match &r.concurrency {
                Some(c) => c.levels.iter().all(|l| l.iterations == 0),
                None => r.source.marker_lines == Some(0),
            };
            r.is_program() && r.sweep.is_none() && r.source.marker.is_some() && unmarked
        })
    }

    /// A program run in which no metric could be judged at all: it ended before its first
    /// sample, or before any of its marker lines could be sampled (not a sweep or copies at
    /// once, which judge apart). A gate must not pass a program it never saw: a program
    /// leaking one fd in each of 200 iterations done within 2 ms passed, "no metric could be
    /// judged", exit 0.
    fn nothing_measured(&self) -> Option<&Run> {
        // A budget exceeded between boundaries was measured, and fails as such.
        self.runs.iter().find(|r| {
            r.is_program()
                && r.sweep.is_none()
                && r.concurrency.is_none()
                && r.metrics.is_empty()
                && !r.budgets.iter().any(|b| b.exceeded)
        })
    }

    /// Compared with a baseline in which nothing matched (no run of the same workload and
    /// kind, or only comparisons of nothing): the baseline's path and its runs' names. A gate
    /// that compared nothing must not pass: `profile -- ./prog 200` against a baseline of
    /// `./prog 100` (runs of programs are named by their command) passed, "new", and saved
    /// itself over the good baseline.
    fn nothing_compared(&self) -> Option<String> {
        let info = self.baseline.as_ref().filter(|i| !i.updated)?;
        // A run matched in the baseline was compared, whatever its fits could tell.
        let compared = self.runs.iter().any(|r| r.baseline.is_some());
        if self.runs.is_empty() || compared {
            return None;
        }
        let unlike = format!("runs of another kind ({})", info.unlike.join("; "));
        let missing = format!(
            "runs of another workload or kind: {}",
            info.missing.join(", ")
        );
        let holds = match (info.unlike.is_empty(), info.missing.is_empty()) {
            (true, true) => "no run".to_string(),
            (false, true) => unlike,
            (true, false) => missing,
            (false, false) => format!("{unlike} and {missing}"),
        };
        Some(format!(
            "nothing was compared with the baseline {}, which holds {holds}",
            info.path
        ))
    }

    /// The first budget that could not be checked: nothing it limits was measured (a program
    /// without heap counters, a test binary without `profiler::Alloc`). A gate must not pass a
    /// limit it never applied: a static binary's `--max-peak 1KiB` passed, exit 0, "within".
    fn unchecked_budget(&self) -> Option<String> {
        self.runs.iter().find_map(|r| {
            r.budgets
                .iter()
                .find(|b| b.worst_bytes.is_none() && !b.exceeded)
                .map(|b| format!("{}: {}", r.workload, b.message))
        })
    }

    /// The exit status this report earns: interrupted beats a failed workload, which beats a
    /// marker that matched no line, a program of which nothing could be measured or a budget
    /// that could not be checked (exit 2, bad usage),
    /// which beat a leak, an exceeded budget or a regression (and an inconclusive verdict
    /// under `fail_on_inconclusive`), which beat a baseline that compared nothing (exit 2),
    /// which beats clean. (Outputs that could not be written make the
    /// session's exit 2 on top of this; that is not part of the report.)
    pub fn outcome(&self) -> Outcome {
        self.decision().outcome
    }

    /// [`Report::outcome`] with its headline.
    pub fn decision(&self) -> Decision {
        let (outcome, headline) = if self.interrupted() {
            (
                Outcome::Interrupted,
                "interrupted: the samples so far are reported".to_string(),
            )
        } else if self.failed() {
            (
                Outcome::WorkloadFailed,
                "failed: a workload or program failed".to_string(),
            )
        } else if let Some(run) = self.unmatched_marker() {
            // Nothing was measured: a gate must not pass on a typo in its marker.
            let marker = run.source.marker.as_deref().unwrap_or_default();
            let when = if run.source.end == Some(End::Duration) {
                " before --duration ran out"
            } else {
                ""
            };
            (
                Outcome::Usage,
                format!(
                    "failed: --marker '{marker}' matched no output line of the program{when}, \
                     so nothing was measured; check the pattern against what it prints"
                ),
            )
        } else if let Some(run) = self.nothing_measured() {
            (
                Outcome::Usage,
                format!(
                    "failed: nothing of `{}` could be measured, so nothing was judged; its notes \
                     say why and what to change",
                    run.workload
                ),
            )
        } else if let Some(why) = self.unchecked_budget() {
            (
                Outcome::Usage,
                format!("failed: a budget could not be checked ({why})"),
            )
        } else {
            let mut why = Vec::new();
            if self.verdict() == Verdict::Leak {
                why.push("a leak");
            }
            if self.fail_on_inconclusive && self.verdict() == Verdict::Inconclusive {
                why.push("an inconclusive verdict (--fail-on-inconclusive)");
            }
            if self.budgets_exceeded().next().is_some() {
                why.push("a budget exceeded");
            }
            if self.regressions().next().is_some() {
                why.push("a regression against the baseline");
            }
            let load: Vec<String> = self.load_limits_exceeded().map(|(_, v)| v).collect();
            let load = (!load.is_empty()).then(|| load.join("; "));
            if let Some(load) = &load {
                why.push(load);
            }
            let complexity: Vec<String> = self.complexity_exceeded().map(|(_, v)| v).collect();
            let complexity = (!complexity.is_empty()).then(|| complexity.join("; "));
            if let Some(complexity) = &complexity {
                why.push(complexity);
            }
            let nothing_compared = self.nothing_compared();
            if let (true, Some(nothing)) = (why.is_empty(), &nothing_compared) {
                (
                    Outcome::Usage,
                    format!(
                        "failed: {nothing}; check the command, or save a new baseline with \
                         --save-baseline"
                    ),
                )
            } else if why.is_empty() {
                let headline = if self.verdict() == Verdict::Inconclusive {
                    "passed, some verdicts inconclusive"
                } else {
                    "passed"
                };
                (Outcome::Clean, headline.to_string())
            } else {
                // What the run found fails the gate whatever the baseline held: a leaking
                // workload missing from a committed baseline (none is saved while leaking)
                // is exit 1, as the gate's negative control expects, not a usage error.
                let also = nothing_compared
                    .map(|nothing| format!(" ({nothing})"))
                    .unwrap_or_default();
                (Outcome::Leak, format!("failed: {}{also}", why.join(", ")))
            }
        };
        Decision { outcome, headline }
    }
}
