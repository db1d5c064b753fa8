// Owns where a run's samples came from: a workload in process, a started program or an
// attached pid, how it ended, and its sentences. Plain data; never starts or reads a process.

use serde::{Deserialize, Serialize};

/// Where a run's samples come from.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Source {
    pub kind: SourceKind,
    /// The command line started (`kind: command`), program first; empty otherwise.
    #[serde(default)]
    pub command: Vec<String>,
    /// The process sampled: the started command's pid, or the one attached to.
    #[serde(default)]
    pub pid: Option<u32>,
    /// The regular expression whose matching output lines were iteration boundaries.
    #[serde(default)]
    pub marker: Option<String>,
    /// How many output lines matched `marker`, sampled or not (lines read after the program
    /// could no longer be measured count too); absent without a marker (and in reports
    /// written before this field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marker_lines: Option<u64>,
    /// Whether the process's descendants were summed into every sample.
    #[serde(default)]
    pub include_children: bool,
    /// Milliseconds between two time samples.
    #[serde(default)]
    pub interval_ms: Option<f64>,
    /// Why sampling stopped (null for a workload in process).
    #[serde(default)]
    pub end: Option<End>,
    /// How the started command ended (null when it was not ours to wait for).
    #[serde(default)]
    pub exit: Option<Exit>,
    /// Things to know about how the program was measured (e.g. output that came in bursts).
    #[serde(default)]
    pub notes: Vec<String>,
}

/// Where samples come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// A workload run in this process (heap counters possible; RSS warns, unless it grew past
    /// the whole counted heap).
    #[default]
    InProcess,
    /// A command started by the profiler (no heap counters; RSS gates).
    Command,
    /// A running process attached to by pid, read-only (no heap counters; RSS gates).
    Pid,
}

/// Why sampling of a program stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum End {
    /// The program exited (or was killed) on its own.
    Exited,
    /// Enough marked iterations were seen: the profiler stopped the program.
    Iterations,
    /// `--duration` elapsed (a started program is then stopped; an attached one is left alone).
    Duration,
    /// The profiler was interrupted (SIGINT, SIGTERM or SIGHUP) and stopped the program.
    Interrupted,
    /// The attached process ended; its exit status belongs to its parent.
    Vanished,
}

/// The exit status of a started program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exit {
    /// The exit code, if it exited.
    pub code: Option<i32>,
    /// The signal that killed it, if one did.
    pub signal: Option<i32>,
}

impl Source {
    /// How the program was sampled, e.g. "pid 4242 · at each output line matching /done/";
    /// `None` for a workload in process.
    pub fn sampling(&self) -> Option<String> {
        let mut parts = Vec::new();
        match self.kind {
            SourceKind::InProcess => return None,
            SourceKind::Command => parts.push(match self.pid {
                Some(pid) => format!("started as pid {pid}"),
                // A sweep starts it anew for every repetition.
                None => "started once per repetition, measured whole".to_string(),
            }),
            SourceKind::Pid => parts.push(match self.pid {
                Some(pid) => format!("attached to pid {pid}, read-only"),
                None => "attached read-only".to_string(),
            }),
        }
        match (&self.marker, self.interval_ms) {
            (Some(m), _) => parts.push(format!("sampled at each output line matching /{m}/")),
            (None, Some(ms)) => parts.push(format!("sampled every {ms:.0} ms")),
            (None, None) => {}
        }
        if self.include_children {
            parts.push("with its descendants".to_string());
        }
        Some(parts.join(" · "))
    }

    /// How sampling ended, e.g. "stopped by profile after 40 marked iterations (killed by
    /// signal 15 (SIGTERM))"; `None` for a workload in process. `over_budget`: the run was
    /// stopped by an exceeded budget, not by reaching its iterations.
    pub fn ending(&self, iterations: u32, over_budget: bool) -> Option<String> {
        let exit = self.exit.map(|e| format!("; it {e}")).unwrap_or_default();
        let left = if self.kind == SourceKind::Pid {
            " (left running)"
        } else {
            ""
        };
        Some(match self.end? {
            End::Exited => match self.exit {
                Some(e) => format!("the program {e}"),
                None => "the program ended".to_string(),
            },
            End::Iterations if over_budget => format!(
                "stopped by profile over a budget after {iterations} marked iterations{exit}"
            ),
            End::Iterations => {
                format!("stopped by profile after {iterations} marked iterations{exit}")
            }
            End::Duration => format!("--duration ran out{left}{exit}"),
            End::Interrupted => format!("interrupted{left}{exit}"),
            End::Vanished => "the process ended while it was sampled".to_string(),
        })
    }
}

impl Exit {
    /// Exited with code 0.
    pub fn success(&self) -> bool {
        self.code == Some(0) && self.signal.is_none()
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.code, self.signal) {
            (_, Some(sig)) => write!(f, "was killed by signal {sig}{}", signal_name(sig)),
            (Some(code), None) => write!(f, "exited with code {code}"),
            (None, None) => f.write_str("ended"),
        }
    }
}

/// " (SIGABRT)" for the signals people meet, else "".
fn signal_name(signal: i32) -> &'static str {
    match signal {
        1 => " (SIGHUP)",
        2 => " (SIGINT)",
        3 => " (SIGQUIT)",
        4 => " (SIGILL)",
        6 => " (SIGABRT)",
        7 => " (SIGBUS)",
        8 => " (SIGFPE)",
        9 => " (SIGKILL)",
        11 => " (SIGSEGV)",
        13 => " (SIGPIPE)",
        15 => " (SIGTERM)",
        _ => "",
    }
}
