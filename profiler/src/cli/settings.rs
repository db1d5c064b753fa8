// Owns turning the parsed command line into `Settings`: the checks across arguments and the
// value parsers. Must never run anything: session/ does.

use std::path::PathBuf;
use std::time::Duration;

use super::{AttributeWhen, RunArgs};
use crate::attribution::Attribute;
use crate::baseline::Tolerances;
use crate::budget::Budgets;
use crate::external::Target;
use crate::model::{Complexity, LoadLimits};
use crate::options::{ConcurrencySettings, Outputs, ProgramSettings, Settings, SweepSettings};
use crate::session;

/// Seconds as a non-negative number (fractions allowed).
pub(super) fn parse_secs(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(v) if (0.0..=1e9).contains(&v) => Ok(v),
        _ => Err(format!("'{text}' is not a number of seconds (e.g. 3, 0.5)")),
    }
}

pub(super) fn parse_timeout(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 604_800.0 => Ok(v),
        _ => Err(format!(
            "'{text}' is not a number of seconds above 0 and at most 604800 (a week)"
        )),
    }
}

pub(super) fn parse_size(text: &str) -> Result<u64, String> {
    crate::budget::parse_size(text)
}

pub(super) fn parse_complexity(text: &str) -> Result<Complexity, String> {
    text.parse()
}

pub(super) fn parse_percent(text: &str) -> Result<f64, String> {
    match text.trim().trim_end_matches('%').parse::<f64>() {
        Ok(v) if (0.0..=100.0).contains(&v) => Ok(v),
        _ => Err(format!("'{text}' is not a percentage from 0 to 100")),
    }
}

/// `20ms`, `1.5s`, `250us`, `2m`, or a bare number of milliseconds, in milliseconds.
pub(super) fn parse_duration_ms(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let scale = match unit.trim() {
        "" | "ms" => 1.0,
        "us" | "µs" => 1e-3,
        "s" => 1e3,
        "m" | "min" => 60e3,
        _ => f64::NAN,
    };
    match number.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && scale.is_finite() => Ok(v * scale),
        _ => Err(format!(
            "'{text}' is not a duration (e.g. 20ms, 1.5s, 250us)"
        )),
    }
}

pub(super) fn parse_rate(text: &str) -> Result<f64, String> {
    match text.trim().trim_end_matches("/s").parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!(
            "'{text}' is not a rate of iterations per second (e.g. 200/s)"
        )),
    }
}

impl RunArgs {
    pub(super) fn settings(&self) -> Result<Settings, String> {
        let mut tolerances = Tolerances::default();
        // One relative part and one floor per name: a second of the same kind is a mistake,
        // which silently kept the last one.
        let mut given = std::collections::BTreeSet::new();
        for spec in &self.tolerance {
            let (name, value) = spec.split_once('=').unwrap_or((spec, ""));
            let kind = if value.trim().ends_with('%') {
                "percentage"
            } else {
                "floor"
            };
            if !given.insert((name.trim().to_string(), kind)) {
                return Err(format!(
                    "invalid --tolerance: '{spec}' gives {} a second {kind}",
                    name.trim()
                ));
            }
            tolerances
                .apply(spec)
                .map_err(|e| format!("invalid --tolerance: {e}"))?;
        }
        if !self.tolerance.is_empty() && self.baseline.is_none() {
            return Err("--tolerance needs --baseline FILE to compare with".into());
        }
        let target = match (self.pid, self.command.is_empty()) {
            (Some(pid), _) => Some(Target::Pid(pid)),
            (None, false) => Some(Target::Command(self.command.clone())),
            (None, true) => None,
        };
        if target.is_none() {
            let program_only = [
                ("--duration", self.duration.is_some()),
                ("--warmup-secs", self.warmup_secs.is_some()),
                ("--include-children", self.include_children),
                ("--no-heap", self.no_heap),
            ];
            if let Some((flag, _)) = program_only.iter().find(|(_, given)| *given) {
                return Err(format!(
                    "{flag} applies to a program: give one after `--` (profile [OPTIONS] -- \
                     COMMAND ARGS...) or attach with --pid PID"
                ));
            }
        }
        // (A program's are refused with programs: attribution cannot see into one.)
        if self.concurrency.is_some() && self.attribute.is_some() && target.is_none() {
            return Err(
                "--attribute does not apply to --concurrency: the copies' heaps are counted per \
                 thread, and attribution needs the whole process; attribute the workload \
                 alone (without --concurrency)"
                    .into(),
            );
        }
        if self.concurrency.is_some() && self.interval.is_some() && target.is_none() {
            return Err(
                "--interval does not apply to --concurrency of workloads: each copy counts its \
                 own thread's heap at its iteration boundaries, which no sampler between them \
                 can read"
                    .into(),
            );
        }
        if self.sweep.is_some() {
            // A sweep repeats each size until its memory agrees and measures programs whole.
            let not_in_a_sweep = [
                ("--iterations", self.iterations.is_some()),
                ("--warmup", self.warmup.is_some()),
                ("--interval", self.interval.is_some()),
                ("--max-iterations", self.max_iterations.is_some()),
                ("--no-extend", self.no_extend),
                // (A program's runs it bounds, each: see check_program.)
                ("--timeout", self.timeout.is_some() && target.is_none()),
                ("--attribute", self.attribute.is_some()),
                ("--max-peak", self.max_peak.is_some()),
                ("--max-allocated", self.max_allocated.is_some()),
                ("--max-rss", self.max_rss.is_some()),
                ("--duration", self.duration.is_some()),
                ("--warmup-secs", self.warmup_secs.is_some()),
                ("--include-children", self.include_children),
            ];
            if let Some((flag, _)) = not_in_a_sweep.iter().find(|(_, given)| *given) {
                return Err(format!(
                    "{flag} does not apply to --sweep, which repeats each size until its memory \
                     agrees (hold the growth with --max-complexity)"
                ));
            }
        }
        let program = target.map(|target| ProgramSettings {
            target,
            marker: self.marker.clone(),
            iterations: self.iterations,
            warmup_secs: self.warmup_secs,
            duration: self.duration.map(Duration::from_secs_f64),
            include_children: self.include_children,
            heap: !self.no_heap,
        });
        Ok(Settings {
            workloads: self.workloads.clone(),
            iterations: self.iterations.unwrap_or(crate::engine::DEFAULT_ITERATIONS),
            warmup: self.warmup,
            interval: self.interval.map(|ms| Duration::from_millis(u64::from(ms))),
            extend: !self.no_extend,
            max_iterations: self.max_iterations,
            fail_on_inconclusive: self.fail_on_inconclusive,
            attribute: match self.attribute {
                None => Attribute::Off,
                Some(AttributeWhen::Growth) => Attribute::OnGrowth,
                Some(AttributeWhen::Always) => Attribute::Always,
                Some(AttributeWhen::Exact) => Attribute::Exact,
            },
            timeout: self.timeout.map(Duration::from_secs_f64),
            budgets: Budgets {
                peak: self.max_peak,
                allocated: self.max_allocated,
                rss: self.max_rss,
            },
            baseline: self.baseline.clone(),
            tolerances,
            save_baseline: self.save_baseline.clone(),
            outputs: Outputs {
                json: self.json.clone(),
                csv: self.csv.clone(),
                plot: self.plot.clone(),
                markdown: self.markdown.clone(),
                step_summary: std::env::var_os("GITHUB_STEP_SUMMARY")
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from),
            },
            program,
            concurrency: match &self.concurrency {
                None => None,
                Some(list) => Some(ConcurrencySettings {
                    levels: session::concurrency::parse_levels(list)
                        .map_err(|e| format!("invalid --concurrency: {e}"))?,
                    limits: LoadLimits {
                        max_failure_rate_pct: self.max_failure_rate.unwrap_or(0.0),
                        max_p95_ms: self.max_p95,
                        min_throughput_per_s: self.min_throughput,
                        max_rss_per_copy_bytes: self.max_rss_per_copy,
                    },
                }),
            },
            sweep: match &self.sweep {
                None => None,
                Some(text) => Some(SweepSettings {
                    sizes: crate::sizes::parse(text)
                        .map_err(|e| format!("invalid --sweep: {e}"))?,
                    max_complexity: self.max_complexity,
                }),
            },
        })
    }
}
