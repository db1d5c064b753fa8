// Owns the records a run carries beside its samples and verdicts: leak sites, budget checks,
// baseline comparisons. Plain data with their sentences; never computed here.

use serde::{Deserialize, Serialize};

use crate::format::{format_bytes, format_count};

/// A call site whose retained memory grows with the iterations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeakSite {
    /// The first function of your code on the allocation's stack.
    pub function: String,
    /// Its `file:line`.
    pub location: String,
    pub bytes_per_iteration: f64,
    pub blocks_per_iteration: f64,
    /// Your code's frames from the allocation outwards (`function (file:line)`), at most 6.
    pub backtrace: Vec<String>,
    /// Sampled attribution: 95% bounds of `bytes_per_iteration` (absent for the exact mode,
    /// whose numbers are counts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_per_iteration_ci: Option<[f64; 2]>,
    /// Sampled attribution: 95% bounds of `blocks_per_iteration`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocks_per_iteration_ci: Option<[f64; 2]>,
    /// Sampled attribution: the sampled blocks of this site the estimate rests on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples: Option<u64>,
    /// Sampled attribution: how the site was seen to grow. `steady`: its sampled blocks were
    /// born steadily across the judged iterations, and the estimate and its bounds are a rate.
    /// `regrown`: it holds a few large blocks born in those iterations (a container that grows
    /// by reallocation, an arena adding chunks), each certain to have been sampled, which hold
    /// at least half of what the heap grew by; the estimate is their bytes spread over the
    /// iterations, without bounds. Absent for the exact mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub growth: Option<String>,
}

/// How attribution went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttributionInfo {
    /// `sampled` (allocations sampled during the run itself) or `exact` (dhat passes after
    /// it); absent in older reports: exact.
    #[serde(default = "exact")]
    pub method: String,
    /// Sampled: the mean sampling interval in bytes, smallest and largest used in the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_bytes: Option<[u64; 2]>,
    /// Sampled: allocations sampled (a backtrace each) during the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples: Option<u64>,
    /// Sampled: time spent taking samples, in ms of the allocating threads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling_ms: Option<f64>,
    /// Iterations of each dhat pass (exact; empty when sampled).
    #[serde(default)]
    pub passes: Vec<u32>,
    /// dhat's own output of the longest pass (opens in DHAT's viewer, dh_view.html).
    pub dhat_file: Option<String>,
    /// Time per iteration under dhat divided by time per iteration in the counting run.
    pub slowdown: Option<f64>,
    /// dhat's count of bytes allocated during the passes against the profiler's counters:
    /// `null` when they agree exactly, else what differed.
    pub cross_check: Option<String>,
}

fn exact() -> String {
    "exact".to_string()
}

/// Which budget a check is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetKind {
    Peak,
    Allocated,
    Rss,
}

impl BudgetKind {
    /// The command-line flag that sets it.
    pub fn flag(self) -> &'static str {
        match self {
            BudgetKind::Peak => "--max-peak",
            BudgetKind::Allocated => "--max-allocated",
            BudgetKind::Rss => "--max-rss",
        }
    }

    /// What it limits, in a few words.
    pub fn what(self) -> &'static str {
        match self {
            BudgetKind::Peak => "heap peak above the run's start",
            BudgetKind::Allocated => "bytes allocated in one iteration",
            BudgetKind::Rss => "RSS less mapped files",
        }
    }
}

/// A run measured against one budget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetCheck {
    pub kind: BudgetKind,
    pub limit_bytes: u64,
    /// The largest value seen, and the iteration it was seen in (None if never measured).
    pub worst_bytes: Option<i64>,
    pub iteration: Option<u32>,
    pub exceeded: bool,
    /// One sentence, e.g. "heap peak above the run's start 1.5 MiB in iteration 7 exceeds --max-peak 1.0 MiB".
    pub message: String,
}

/// What a baseline comparison looks at (the names `--tolerance` takes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compared {
    Peak,
    Allocated,
    Allocations,
    Retained,
    Rss,
    Fds,
    Threads,
}

impl Compared {
    pub const ALL: [Compared; 7] = [
        Compared::Peak,
        Compared::Allocated,
        Compared::Allocations,
        Compared::Retained,
        Compared::Rss,
        Compared::Fds,
        Compared::Threads,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Compared::Peak => "peak",
            Compared::Allocated => "allocated",
            Compared::Allocations => "allocations",
            Compared::Retained => "retained",
            Compared::Rss => "rss",
            Compared::Fds => "fds",
            Compared::Threads => "threads",
        }
    }

    /// What a sweep fits for it, in a few words.
    pub fn describe_growth(self) -> &'static str {
        match self {
            Compared::Peak => "heap peak against n",
            Compared::Allocated => "bytes allocated against n",
            Compared::Allocations => "allocations against n",
            Compared::Retained => "heap retained against n",
            Compared::Rss => "RSS peak against n",
            Compared::Fds => "fds against n",
            Compared::Threads => "threads against n",
        }
    }

    /// What it measures, in a few words.
    pub fn describe(self) -> &'static str {
        match self {
            Compared::Peak => "heap peak",
            Compared::Allocated => "bytes allocated per iteration",
            Compared::Allocations => "allocations per iteration",
            Compared::Retained => "heap retained at the end",
            Compared::Rss => "peak RSS",
            Compared::Fds => "open fds at the end",
            Compared::Threads => "threads at the end",
        }
    }

    /// Whether it is an amount of bytes (else a count).
    pub fn is_bytes(self) -> bool {
        matches!(
            self,
            Compared::Peak | Compared::Allocated | Compared::Retained | Compared::Rss
        )
    }

    /// Format a value of this quantity for people.
    pub fn format(self, v: f64) -> String {
        if self.is_bytes() {
            format_bytes(v)
        } else {
            format_count(v.round())
        }
    }
}

impl std::str::FromStr for Compared {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Compared::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Compared::ALL.iter().map(|c| c.name()).collect();
                format!("unknown metric '{s}' (one of: {})", names.join(", "))
            })
    }
}

/// Direction of a change beyond tolerance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Regression,
    Improvement,
    Same,
}

/// One quantity, then and now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub metric: Compared,
    pub old: f64,
    pub new: f64,
    /// How far `new` could move from `old` without counting.
    pub allowed: f64,
    pub status: Status,
    /// For a sweep: the fitted classes (baseline, now) whose coefficients `old` and `new`
    /// are (the level for `O(1)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<[super::Complexity; 2]>,
    /// Whether a regression of it fails the run. Not for RSS in process: it is the whole
    /// process's, the profiler's own memory (a loaded baseline, the samples kept) and the
    /// other workloads' included, so it only warns, as its leak verdict does.
    #[serde(default = "gating_by_default")]
    pub gating: bool,
}

fn gating_by_default() -> bool {
    true
}

impl Change {
    /// "bytes allocated per iteration 1.0 KiB -> 1.2 KiB (+20.0%, allowed ±10%)"; for a
    /// sweep "heap peak O(n) coefficient 40 B -> 48 B (...)" or "heap peak grows as
    /// O(n log n), was O(n)".
    pub fn sentence(&self) -> String {
        if let Some([was, now]) = self.classes {
            if was != now {
                return format!(
                    "{} grows as {now}, was {was}",
                    self.metric.describe_growth()
                );
            }
            let per = match now.term() {
                "" => String::new(),
                term => format!(" × {term}"),
            };
            let pct = if self.old != 0.0 {
                format!("{:+.1}%", 100.0 * (self.new - self.old) / self.old.abs())
            } else {
                "from 0".to_string()
            };
            return format!(
                "{} {now}: {}{per} -> {}{per} ({pct}, allowed ±{}{per})",
                self.metric.describe_growth(),
                self.metric.format(self.old),
                self.metric.format(self.new),
                self.metric.format(self.allowed)
            );
        }
        let pct = if self.old != 0.0 {
            format!("{:+.1}%", 100.0 * (self.new - self.old) / self.old.abs())
        } else {
            format!("{:+}", self.metric.format(self.new - self.old))
        };
        format!(
            "{} {} -> {} ({pct}, allowed ±{})",
            self.metric.describe(),
            self.metric.format(self.old),
            self.metric.format(self.new),
            self.metric.format(self.allowed)
        )
    }
}

/// A run compared with the same workload in the baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub baseline_iterations: u32,
    pub changes: Vec<Change>,
}

impl Comparison {
    /// Regressions that fail the run.
    pub fn regressions(&self) -> impl Iterator<Item = &Change> {
        self.changes
            .iter()
            .filter(|c| c.status == Status::Regression && c.gating)
    }

    /// Regressions that only warn (see [`Change::gating`]).
    pub fn warnings(&self) -> impl Iterator<Item = &Change> {
        self.changes
            .iter()
            .filter(|c| c.status == Status::Regression && !c.gating)
    }

    pub fn improvements(&self) -> impl Iterator<Item = &Change> {
        self.changes
            .iter()
            .filter(|c| c.status == Status::Improvement)
    }
}

/// Which baseline a report was compared with, and the workloads on one side only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaselineInfo {
    pub path: String,
    /// Workloads in the baseline that this report did not run.
    pub missing: Vec<String>,
    /// Workloads this report ran that the baseline does not have.
    pub new: Vec<String>,
    /// Runs of this report whose workload the baseline has, but of another kind or axis, so
    /// not compared: one sentence each ("./server: a plain run, in time, every 25.0 ms here, a
    /// plain run, in time, every 5.0 ms in the baseline"), named in neither `missing` nor
    /// `new`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unlike: Vec<String>,
    /// This run saves itself over that baseline (`--save-baseline` the same file), keeping
    /// its other runs: a run of new workloads only adds them, and comparing nothing is fine.
    #[serde(default)]
    pub updated: bool,
}

/// Heap charged to one span name during a run (`profiler::SpanMemory`, feature `tracing`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpanRecord {
    /// The span's name (all its call sites together).
    pub name: String,
    /// Bytes and allocations allocated while a thread was inside it.
    pub allocated_bytes: i64,
    pub allocations: i64,
    /// Bytes allocated inside it during the run and still live at its end: what it kept (a
    /// total, never below 0; what it freed of blocks from before the run does not offset it,
    /// and of a block from before the run that a `realloc` during it grew, what it grew by
    /// counts).
    pub retained_bytes: i64,
    /// The highest of its live bytes during the run (blocks allocated inside it before the
    /// run and still live count too).
    pub peak_bytes: i64,
    /// Times a thread entered it (an async span enters at every poll).
    pub entries: i64,
    /// Set when heap per span was sampled (`SpanMemory::sampled`): the byte and allocation
    /// fields above are then estimates (`entries` stays exact).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampled: Option<SpanSampling>,
}

/// What a sampled span's estimates rest on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpanSampling {
    /// Mean bytes between samples the spans were sampled at (runs sampling for attribution
    /// may sample finer meanwhile; each block weighs by its own interval).
    pub interval_bytes: u64,
    /// Sampled blocks allocated inside the span during the run and still live at its end.
    pub retained_samples: i64,
    /// Sampled blocks allocated inside it before the run and freed during it (not part of
    /// `retained_bytes`: shown to tell a span that lets go of earlier memory).
    pub freed_samples: i64,
    /// 95% bounds of `retained_bytes`, from the Poisson count of `retained_samples` (with
    /// none, up to about 3.9 intervals' worth of bytes could have gone unseen).
    pub retained_bytes_ci: [i64; 2],
}
