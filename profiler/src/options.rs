// Owns `Settings`: what a profiling session should do, as plain values (no clap in sight).
// Must never parse command lines nor run anything: cli.rs fills it, session.rs obeys it.

use std::path::PathBuf;
use std::time::Duration;

use crate::run::Profiler;

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
    pub outputs: Outputs,
}

/// Files to write after the session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outputs {
    pub json: Option<PathBuf>,
    pub csv: Option<PathBuf>,
    /// A PNG or SVG; with several runs also one file per run beside it.
    pub plot: Option<PathBuf>,
}

impl Outputs {
    /// Every (flag, path) pair asked for, for up-front checks.
    pub fn all(&self) -> Vec<(&'static str, &PathBuf)> {
        [
            ("--json", &self.json),
            ("--csv", &self.csv),
            ("--plot", &self.plot),
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
            iterations: crate::run::DEFAULT_ITERATIONS,
            warmup: None,
            interval: None,
            extend: true,
            max_iterations: None,
            fail_on_inconclusive: false,
            outputs: Outputs::default(),
        }
    }
}

impl Settings {
    /// A profiler for one workload configured by these settings.
    pub fn profiler(&self, name: &str) -> Profiler {
        let mut p = Profiler::new(name)
            .iterations(self.iterations)
            .extend(self.extend);
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
