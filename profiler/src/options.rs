// Owns `Settings`: what a profiling session should do, as plain values (no clap in sight).
// Must never parse command lines nor run anything: cli.rs fills it, session/ obeys it.

use std::path::PathBuf;
use std::time::Duration;

use crate::attribution::Attribute;
use crate::baseline::Tolerances;
use crate::budget::Budgets;
use crate::external::{ExternalError, Program, Target};
use crate::profiler::Profiler;

/// Everything a profiling session needs to know, independent of how it was asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Workloads to run by name; empty means all of the catalog.
    pub workloads: Vec<String>,
    pub iterations: u32,
    pub warmup: Option<u32>,
    pub interval: Option<Duration>,
    pub extend: bool,
    pub max_iterations: Option<u32>,
    /// Exit 1 on an inconclusive verdict too.
    pub fail_on_inconclusive: bool,
    pub budgets: Budgets,
    /// End a workload's run once it has taken this long (an iteration that never returns is
    /// abandoned a second later and reported as hung).
    pub timeout: Option<Duration>,
    /// When to find leaking call sites with dhat after the counting run.
    pub attribute: Attribute,
    /// A saved report to compare with, and how far each quantity may move.
    pub baseline: Option<PathBuf>,
    pub tolerances: Tolerances,
    /// Where to save this report as the next baseline, if the run passes.
    pub save_baseline: Option<PathBuf>,
    pub outputs: Outputs,
    /// A program to profile from outside instead of the catalog (`-- COMMAND`, `--pid`).
    pub program: Option<ProgramSettings>,
    /// K copies at once for each level (`--concurrency`), with the load limits.
    pub concurrency: Option<ConcurrencySettings>,
    /// Memory against input size (`--sweep`), with the growth-class limit.
    pub sweep: Option<SweepSettings>,
}

/// `--sweep` and `--max-complexity`.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepSettings {
    /// Input sizes, distinct, smallest first (see [`crate::sizes`]).
    pub sizes: Vec<u64>,
    /// The largest growth class the gated metrics may have.
    pub max_complexity: Option<crate::model::Complexity>,
}

/// `--concurrency` and its thresholds.
#[derive(Debug, Clone, PartialEq)]
pub struct ConcurrencySettings {
    /// Copies at once, one level each, in order (each 1 to [`crate::model::MAX_COPIES`]).
    pub levels: Vec<u32>,
    pub limits: crate::model::LoadLimits,
}

/// What to profile outside the process, and how (see [`crate::external`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ProgramSettings {
    pub target: Target,
    /// A regular expression: each matching output line ends an iteration.
    pub marker: Option<String>,
    /// With a marker: marked iterations before the first verdict, when asked for (else the
    /// program runs until it exits).
    pub iterations: Option<u32>,
    /// Without a marker: seconds left out of the analysis (default max(1 s, 20% of the run)).
    pub warmup_secs: Option<f64>,
    /// Stop sampling after this long.
    pub duration: Option<Duration>,
    /// Sum the process's descendants into every sample.
    pub include_children: bool,
    /// Count a started program's heap with the preload library (`--no-heap` turns it off).
    pub heap: bool,
}

/// Files to write after the session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outputs {
    pub json: Option<PathBuf>,
    pub csv: Option<PathBuf>,
    /// A PNG or SVG; with several runs also one file per run beside it.
    pub plot: Option<PathBuf>,
    pub markdown: Option<PathBuf>,
    /// A file the Markdown summary is appended to as well (GitHub's `GITHUB_STEP_SUMMARY`).
    pub step_summary: Option<PathBuf>,
}

impl Outputs {
    /// Every (flag, path) pair asked for, for up-front checks.
    pub fn all(&self) -> Vec<(&'static str, &PathBuf)> {
        [
            ("--json", &self.json),
            ("--csv", &self.csv),
            ("--plot", &self.plot),
            ("--markdown", &self.markdown),
        ]
        .into_iter()
        .filter_map(|(flag, p)| p.as_ref().map(|p| (flag, p)))
        .collect()
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            workloads: Vec::new(),
            iterations: crate::engine::DEFAULT_ITERATIONS,
            warmup: None,
            interval: None,
            extend: true,
            max_iterations: None,
            fail_on_inconclusive: false,
            budgets: Budgets::default(),
            timeout: None,
            attribute: Attribute::Off,
            baseline: None,
            tolerances: Tolerances::default(),
            save_baseline: None,
            outputs: Outputs::default(),
            program: None,
            concurrency: None,
            sweep: None,
        }
    }
}

impl ProgramSettings {
    /// Replace every `placeholder` in the command's arguments by `value` (`{copy}` of
    /// `--concurrency`, `{n}` of `--sweep`); an attached pid has none.
    pub fn substitute(&mut self, placeholders: &[&str], value: &str) {
        let Target::Command(cmd) = &mut self.target else {
            return;
        };
        for arg in cmd.iter_mut() {
            if let Some(text) = arg.to_str()
                && placeholders.iter().any(|p| text.contains(p))
            {
                let replaced = placeholders
                    .iter()
                    .fold(text.to_string(), |t, p| t.replace(p, value));
                *arg = replaced.into();
            }
        }
    }
}

impl Settings {
    /// The program to profile configured by these settings (`program` must be set), or
    /// `None` for a catalog session.
    pub fn external(&self) -> Option<Result<Program, ExternalError>> {
        let p = self.program.as_ref()?;
        let mut program = match &p.target {
            Target::Command(cmd) => Program::command(cmd.iter().cloned()),
            Target::Pid(pid) => Program::pid(*pid),
        }
        .extend(self.extend)
        .include_children(p.include_children)
        .heap(p.heap)
        .budgets(self.budgets);
        if let Some(d) = self.interval {
            program = program.interval(d);
        }
        if let Some(n) = p.iterations {
            program = program.iterations(n);
        }
        if let Some(m) = self.max_iterations {
            program = program.max_iterations(m);
        }
        if let Some(w) = self.warmup {
            program = program.warmup(w);
        }
        if let Some(w) = p.warmup_secs {
            program = program.warmup_secs(w);
        }
        if let Some(d) = p.duration {
            program = program.duration(d);
        }
        Some(match &p.marker {
            Some(m) => program.marker(m),
            None => Ok(program),
        })
    }

    /// A profiler for one workload configured by these settings.
    pub fn profiler(&self, name: &str) -> Profiler {
        let mut p = Profiler::new(name)
            .iterations(self.iterations)
            .extend(self.extend)
            .budgets(self.budgets)
            .attribute(self.attribute)
            .attribute_file(crate::attribution::dhat_path(
                name,
                self.outputs.json.as_deref(),
            ));
        if let Some(w) = self.warmup {
            p = p.warmup(w);
        }
        if let Some(d) = self.interval {
            p = p.interval(d);
        }
        if let Some(m) = self.max_iterations {
            p = p.max_iterations(m);
        }
        p
    }
}
