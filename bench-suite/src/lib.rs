//! The workload catalog: realistic Rust code that holds steady, and code that leaks on
//! purpose, each with its expected verdict. `profile` runs it; `cargo bench` times it; the
//! end-to-end tests check every verdict against [`profiler::Expected`].

pub mod alloc_loop;
mod workloads;

use profiler::Workload;

/// Every workload of the catalog: the clean ones first, then the leaking ones, then those
/// that take an input size (`profile --sweep`).
pub fn catalog() -> Vec<Workload> {
    let mut all = workloads::clean();
    all.extend(workloads::leaking());
    all.extend(workloads::sized());
    all
}
