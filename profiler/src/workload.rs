// Owns `Workload`: a named, described piece of code with a setup step and an expected verdict.
// Must never measure: running and judging a workload is the Profiler's job.

use crate::sample::Metric;

/// What building a workload's per-iteration closure may fail with.
pub type SetupError = Box<dyn std::error::Error + Send + Sync>;
/// A workload's per-iteration closure.
pub type Iteration = Box<dyn FnMut()>;
type Setup = Box<dyn Fn() -> Result<Iteration, SetupError> + Send + Sync>;

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
            setup: Box::new(move || setup().map(|f| Box::new(f) as Iteration)),
        }
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

    /// Run the setup step and return the per-iteration closure.
    pub fn setup(&self) -> Result<Iteration, SetupError> {
        (self.setup)()
    }
}

impl std::fmt::Debug for Workload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workload")
            .field("name", &self.name)
            .field("expected", &self.expected)
            .finish_non_exhaustive()
    }
}
