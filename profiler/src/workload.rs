// Owns `Workload`: a named, described piece of code with a setup step and an expected verdict.
// Must never measure: running and judging a workload is the Profiler's job.

use crate::sample::Metric;

/// What building a workload's per-iteration closure may fail with.
pub type SetupError = Box<dyn std::error::Error + Send + Sync>;
/// A workload's per-iteration closure.
pub type Iteration = Box<dyn FnMut()>;
type Setup = Box<dyn Fn(u64) -> Result<Iteration, SetupError> + Send + Sync>;

/// The verdict a workload was written to get (used by tests and `profile list`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    Clean,
    /// Leaks through these gating metrics.
    Leak(Vec<Metric>),
}

/// A named piece of code to profile. `setup` runs once, unmeasured, before the iterations
/// (build input data, open a temp tree) and returns the closure run at every iteration.
///
/// ```
/// use profiler::{Expected, Workload};
/// let w = Workload::new("sum", "sums a vector", Expected::Clean, || {
///     let data: Vec<u64> = (0..1000).collect();
///     Ok(move || {
///         std::hint::black_box(data.iter().sum::<u64>());
///     })
/// });
/// assert_eq!(w.name(), "sum");
/// ```
pub struct Workload {
    name: String,
    description: String,
    expected: Expected,
    /// The size a sized workload runs at outside a sweep; `None` for one that takes no size.
    default_size: Option<u64>,
    /// The largest size a sweep may give it (larger ones are skipped, saying so).
    max_size: Option<u64>,
    setup: Setup,
}

impl Workload {
    pub fn new<F, S>(
        name: impl Into<String>,
        description: impl Into<String>,
        expected: Expected,
        setup: S,
    ) -> Self
    where
        F: FnMut() + 'static,
        S: Fn() -> Result<F, SetupError> + Send + Sync + 'static,
    {
        Workload {
            name: name.into(),
            description: description.into(),
            expected,
            default_size: None,
            max_size: None,
            setup: Box::new(move |_| setup().map(|f| Box::new(f) as Iteration)),
        }
    }

    /// A workload that takes an input size n (`profile --sweep`): `setup(n)` builds the input
    /// for n, unmeasured, and returns the closure measured on it. Outside a sweep it runs at
    /// `default_size`.
    ///
    /// ```
    /// use profiler::{Expected, Workload};
    /// let w = Workload::sized("sort", "sorts n strings", Expected::Clean, 10_000, |n| {
    ///     let words: Vec<String> = (0..n).map(|i| format!("w{}", i * 7919 % n)).collect();
    ///     Ok(move || {
    ///         let mut v = words.clone();
    ///         v.sort();
    ///         v.len()
    ///     })
    /// });
    /// assert_eq!(w.default_size(), Some(10_000));
    /// ```
    pub fn sized<F, R, S>(
        name: impl Into<String>,
        description: impl Into<String>,
        expected: Expected,
        default_size: u64,
        setup: S,
    ) -> Self
    where
        F: FnMut() -> R + 'static,
        S: Fn(u64) -> Result<F, SetupError> + Send + Sync + 'static,
    {
        Workload {
            name: name.into(),
            description: description.into(),
            expected,
            default_size: Some(default_size),
            max_size: None,
            setup: Box::new(move |n| {
                setup(n).map(|mut f| {
                    Box::new(move || {
                        drop(f());
                    }) as Iteration
                })
            }),
        }
    }

    /// The largest size a sweep may run a sized workload at (e.g. one quadratic in memory):
    /// larger sizes are skipped, and the report says so.
    pub fn max_size(mut self, n: u64) -> Self {
        self.max_size = Some(n);
        self
    }

    /// The largest size a sweep may give it, if bounded.
    pub fn size_limit(&self) -> Option<u64> {
        self.max_size
    }

    /// The size it runs at outside a sweep, if it takes a size.
    pub fn default_size(&self) -> Option<u64> {
        self.default_size
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn description(&self) -> &str {
        &self.description
    }

    pub fn expected(&self) -> &Expected {
        &self.expected
    }

    /// Run the setup step and return the per-iteration closure (a sized workload at its
    /// default size).
    pub fn setup(&self) -> Result<Iteration, SetupError> {
        (self.setup)(self.default_size.unwrap_or(0))
    }

    /// Run the setup step for input size `n`; `None` if the workload takes no size.
    pub fn setup_at(&self, n: u64) -> Option<Result<Iteration, SetupError>> {
        self.default_size.map(|_| (self.setup)(n))
    }
}

impl std::fmt::Debug for Workload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workload")
            .field("name", &self.name)
            .field("expected", &self.expected)
            .field("default_size", &self.default_size)
            .finish_non_exhaustive()
    }
}
