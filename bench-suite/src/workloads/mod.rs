// Owns the catalog's workloads, grouped by what they were written to show.
// Must never depend on the profiler's internals: only `Workload::new`/`sized` and `Expected`.

mod clean;
mod leaking;
mod sized;

pub use clean::clean;
pub use leaking::leaking;
pub use sized::sized;

/// A tiny deterministic generator (splitmix64) so that every run does the same work.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..hi`.
    pub(crate) fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo)
    }
}
