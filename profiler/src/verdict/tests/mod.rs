// The verdict tests' shared pieces: deterministic noise, the catalog's shapes as exact series,
// `expect`; the tests are in the files below, by subject. Never times anything nor shares state.

use super::*;

mod catalog;
mod leaks;
mod noise;

/// splitmix64 with Box-Muller: deterministic noise without a dependency.
pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn new(seed: u64) -> Self {
        Rng(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// uniform in (0, 1)
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    pub(super) fn gaussian(&mut self) -> f64 {
        let (u1, u2) = (self.uniform(), self.uniform());
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

pub(super) const KIB: f64 = 1024.0;
pub(super) const MIB: f64 = 1024.0 * 1024.0;

/// N + 1 samples: before the first iteration, then after each.
pub(super) fn series(n: usize, f: impl Fn(usize) -> f64) -> Vec<f64> {
    (0..=n).map(f).collect()
}

/// A level that rises by `size` at each `(at, size)` and holds between: measured series of
/// growth in steps and lumps.
pub(super) fn stepping(base: f64, steps: &[(usize, f64)]) -> impl Fn(usize) -> f64 + '_ {
    move |i| {
        base + steps
            .iter()
            .filter(|&&(at, _)| at <= i)
            .map(|&(_, size)| size)
            .sum::<f64>()
    }
}

/// The same with i.i.d. Gaussian noise of `sigma` added to every sample.
pub(super) fn noisy(n: usize, sigma: f64, rng: &mut Rng, f: impl Fn(usize) -> f64) -> Vec<f64> {
    (0..=n).map(|i| f(i) + sigma * rng.gaussian()).collect()
}

/// The clean shapes of the catalog, and the recurring-step leak, as exact series.
pub(super) mod shapes {
    use super::{KIB, MIB};

    /// heap grows 64 KiB in each of the first three iterations, then stays
    pub fn plateau(i: usize) -> f64 {
        MIB + 64.0 * KIB * i.min(3) as f64
    }
    /// a cache filling like a logarithm: slows down but never quite stops
    pub fn log_fill(i: usize) -> f64 {
        MIB + (64.0 * KIB * (1.0 + i as f64).ln()).round()
    }
    /// a cache filling towards its bound
    pub fn saturating_fill(i: usize) -> f64 {
        MIB + (MIB * (1.0 - (-(i as f64) / 2.0).exp())).round()
    }
    /// a reused buffer whose capacity doubles at iterations 1, 2, 4, 8 and 16, then holds: the
    /// largest message fits (one that kept doubling for ever would be a container growing
    /// without bound, which is a leak: see `leaks::a_container_growing_by_capacity_doubling`)
    pub fn vec_doubling(i: usize) -> f64 {
        let capacity = if i == 0 {
            0
        } else {
            1usize << i.min(16).ilog2()
        };
        MIB + KIB * capacity as f64
    }
    /// grows 16 KiB per iteration, cleared every k iterations
    pub fn sawtooth(k: usize) -> impl Fn(usize) -> f64 {
        move |i| MIB + 16.0 * KIB * (i % k) as f64
    }
    /// flat, with 1 MiB transients at iterations 7 and 13 and a two-iteration one at 16-17
    pub fn spikes(i: usize) -> f64 {
        MIB + if matches!(i, 7 | 13 | 16 | 17) {
            MIB
        } else {
            0.0
        }
    }
    /// one more block from iteration `at` on (lazy initialisation)
    pub fn one_off_step(at: usize) -> impl Fn(usize) -> f64 {
        move |i| 3.0 + if i >= at { 1.0 } else { 0.0 }
    }
    /// a pool that adds a thread in each of the first 6 iterations, then stops
    pub fn pool_ramp(i: usize) -> f64 {
        1.0 + i.min(6) as f64
    }
    /// +1 every k iterations, shifted by `phase`
    pub fn every(k: usize, phase: usize) -> impl Fn(usize) -> f64 {
        move |i| 3.0 + ((i + phase) / k) as f64
    }
}

fn heap() -> Thresholds {
    Thresholds::heap_bytes(0.0)
}

fn count() -> Thresholds {
    Thresholds::count()
}

#[track_caller]
fn expect(s: &[f64], th: Thresholds, verdict: Verdict, shape: &str) -> Judgement {
    let j = judge(s, &th, None);
    assert_eq!((j.verdict, j.shape.as_str()), (verdict, shape), "{j:#?}");
    j
}
