//! Find memory, file-descriptor and thread leaks in Rust code, cheaply enough to run in CI.
//!
//! ```no_run
//! // 1. Count every allocation of the process (a few thread-local adds per call).
//! #[global_allocator]
//! static ALLOC: profiler::Alloc = profiler::Alloc::new();
//!
//! fn parse(input: &str) -> Vec<u32> {
//!     input.split(',').filter_map(|s| s.trim().parse().ok()).collect()
//! }
//!
//! fn main() -> Result<(), profiler::Error> {
//!     // 2. Run the code for 20 iterations, sampling heap, RSS, fds and threads after each.
//!     let report = profiler::Profiler::new("parse")
//!         .iterations(20)
//!         .run(|| parse("1, 2, 3, 5, 8, 13"));
//!     // 3. A verdict per metric: growth that keeps going after warm-up is a leak.
//!     println!("{:?}", report.verdict());
//!     report.write_json("report.json")?;
//!     report.assert_no_leaks(); // panics naming the metric that grew and by how much
//!     Ok(())
//! }
//! ```
//!
//! # What is measured
//! At every iteration boundary (after the iteration's result is dropped) a [`Sample`] records
//! the live heap bytes and blocks, the bytes and allocations of the iteration and its heap
//! peak (all from [`Alloc`]; `None` if it is not the global allocator), the process's RSS,
//! open file descriptors and threads (the profiler's own excluded), the iteration's wall time
//! and CPU time. Heap counts are exact at boundaries; the peak is exact when one thread
//! allocates during the iteration and an upper bound when several do (see [`alloc`]).
//! Memory allocated outside Rust's global allocator (C libraries calling `malloc`) is in RSS,
//! not in the heap counters.
//!
//! # How a leak is decided
//! Per metric, on the samples after an automatic warm-up: a robust slope (Theil-Sen) with 95%
//! bounds and a Mann-Kendall trend test; a leak needs significant growth whose lower bound
//! exceeds an effect-size threshold, and shapes that are not leaks (a cache filling, a buffer
//! doubling, a sawtooth, one step) are recognised. A leak seen at N iterations is confirmed at
//! 2N before it is reported; an inconclusive metric extends the run (20 -> 40 -> 80 -> 160).
//! In process RSS warns, unless it grows past the whole counted heap (memory outside
//! [`Alloc`]: a C library's malloc through FFI). See [`verdict`].
//!
//! # Any program
//! [`external::Program`] profiles a program from outside: a command it starts, or a running
//! process by pid. Without heap counters, RSS is the memory signal there, and it gates.

pub mod alloc;
pub mod attribution;
pub mod baseline;
#[cfg(feature = "criterion")]
pub mod bench;
pub mod budget;
#[cfg(feature = "cli")]
pub mod cli;
pub mod engine;
pub mod error;
pub mod external;
#[cfg(feature = "plot")]
pub mod figure;
pub mod fit;
pub mod format;
pub mod interrupt;
mod isolate;
pub mod judge;
pub mod model;
pub mod options;
mod paths;
pub mod probe;
mod profiler;
mod quiet;
pub mod report;
pub mod sample;
pub mod session;
pub mod sizes;
#[cfg(feature = "tracing")]
mod span_memory;
pub mod stats;
pub mod store;
pub mod verdict;
mod workload;

pub use alloc::Alloc;
pub use attribution::Attribute;
pub use error::Error;
pub use model::{Outcome, Report, Run, Verdict};
pub use profiler::{Profiler, Progress};
pub use sample::{Metric, Sample, Scope};
#[cfg(feature = "tracing")]
pub use span_memory::SpanMemory;
pub use workload::{Expected, Iteration, SetupError, Workload};
