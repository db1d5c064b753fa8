// Verdicts on whole series: the catalog's shapes, leaks of several sizes, and properties (proptest).
// Never times anything and never depends on another test's state; each series is built here.

use super::*;

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

pub(super) fn noisy(n: usize, sigma: f64, rng: &mut Rng, f: impl Fn(usize) -> f64) -> Vec<f64> {
    (0..=n).map(|i| f(i) + sigma * rng.gaussian()).collect()
}

pub(super) mod shapes {
    use super::{KIB, MIB};

    /// heap grows 64 KiB in each of the first three iterations, then stays
    pub fn plateau(i: usize) -> f64 {
        MIB + 64.0 * KIB * i.min(3) as f64
    }
    /// a cache filling like a logarithm: never quite stops
    pub fn log_fill(i: usize) -> f64 {
        MIB + (64.0 * KIB * (1.0 + i as f64).ln()).round()
    }
    /// a cache filling towards a bound
    pub fn saturating_fill(i: usize) -> f64 {
        MIB + (MIB * (1.0 - (-(i as f64) / 2.0).exp())).round()
    }
    /// a reused Vec whose capacity doubles at iterations 1, 2, 4, 8, 16, ...
    pub fn vec_doubling(i: usize) -> f64 {
        let cap = if i == 0 { 0 } else { 1usize << i.ilog2() };
        MIB + KIB * cap as f64
    }
    /// grows 16 KiB per iteration, cleared every k iterations
    pub fn sawtooth(k: usize) -> impl Fn(usize) -> f64 {
        move |i| MIB + 16.0 * KIB * (i % k) as f64
    }
    /// flat, with 1 MiB transients at iterations 7 and 13 and a 2-iteration one at 16-17
    pub fn spikes(i: usize) -> f64 {
        MIB + if matches!(i, 7 | 13 | 16 | 17) {
            MIB
        } else {
            0.0
        }
    }
    /// one more block from iteration 9 on (lazy init)
    pub fn one_off_step(i: usize) -> f64 {
        3.0 + if i >= 9 { 1.0 } else { 0.0 }
    }
    /// a pool that adds a thread in each of the first 6 iterations, then stops
    pub fn pool_ramp(i: usize) -> f64 {
        1.0 + i.min(6) as f64
    }
    /// +1 every k iterations, starting at `phase`
    pub fn every(k: usize, phase: usize) -> impl Fn(usize) -> f64 {
        move |i| 3.0 + ((i + phase) / k) as f64
    }
}

#[test]
fn show_all() {
    use shapes::*;
    let heap = Thresholds::heap_bytes(0.0);
    let count = Thresholds::count();
    for n in [20, 40] {
        let cases: Vec<(&str, Vec<f64>, Thresholds)> = vec![
            ("plateau", series(n, plateau), heap),
            ("log_fill", series(n, log_fill), heap),
            ("saturating", series(n, saturating_fill), heap),
            ("vec_doubling", series(n, vec_doubling), heap),
            ("sawtooth5", series(n, sawtooth(5)), heap),
            ("sawtooth3", series(n, sawtooth(3)), heap),
            ("sawtooth8", series(n, sawtooth(8)), heap),
            ("spikes", series(n, spikes), heap),
            ("one_off", series(n, one_off_step), count),
            ("pool", series(n, pool_ramp), count),
            ("lin1", series(n, |i| i as f64), count),
            ("lin1k", series(n, |i| 1024.0 * i as f64), heap),
            ("lin64", series(n, |i| 64.0 * i as f64), heap),
            ("every5_0", series(n, every(5, 0)), count),
            ("every5_4", series(n, every(5, 4)), count),
            ("every2", series(n, every(2, 0)), count),
        ];
        for (name, s, th) in cases {
            let j = judge(&s, &th, None);
            println!(
                "N={n} {name}: {:?} {} w={} slope={:?} ci={:?} p={:?} | {}",
                j.verdict, j.shape, j.warmup, j.slope_per_iteration, j.ci, j.p_value, j.reason
            );
        }
    }
}

#[test]
fn sim_probe() {
    let heap = Thresholds::heap_bytes(0.0);
    let sigma = 64.0 * KIB;
    let mut rng = Rng::new(42);
    for (name, n, slope) in [
        ("noise", 20, 0.0),
        ("noise", 40, 0.0),
        ("leak16k", 20, 16.0 * KIB),
        ("leak16k", 40, 16.0 * KIB),
        ("leak4k", 40, 4.0 * KIB),
    ] {
        let trials = 2000;
        let mut counts = std::collections::BTreeMap::new();
        let mut confirmed = 0;
        for _ in 0..trials {
            let s = noisy(2 * n, sigma, &mut rng, |i| MIB + slope * i as f64);
            let j = judge(&s[..=n], &heap, None);
            if j.verdict == Verdict::Leak && judge(&s, &heap, None).verdict == Verdict::Leak {
                confirmed += 1;
            }
            *counts
                .entry(format!("{:?}/{}", j.verdict, j.shape))
                .or_insert(0) += 1;
        }
        println!("{name} N={n}: confirmed leaks {confirmed} {counts:?}");
    }
}

#[test]
fn bic_probe() {
    let sigma = 64.0 * KIB;
    let mut rng = Rng::new(7);
    let floor = 1.0 / 12.0;
    for (name, f) in [
        (
            "noise",
            Box::new(|_i: usize| 0.0) as Box<dyn Fn(usize) -> f64>,
        ),
        ("leak16k", Box::new(|i: usize| 16.0 * KIB * i as f64)),
        ("leak32k", Box::new(|i: usize| 32.0 * KIB * i as f64)),
        (
            "step256k",
            Box::new(|i: usize| if i >= 11 { 256.0 * KIB } else { 0.0 }),
        ),
        (
            "step512k",
            Box::new(|i: usize| if i >= 11 { 512.0 * KIB } else { 0.0 }),
        ),
        (
            "dbl",
            Box::new(|i: usize| 32.0 * KIB * (if i == 0 { 0 } else { 1usize << i.ilog2() }) as f64),
        ),
    ] {
        for n in [20usize, 40] {
            let mut d: Vec<f64> = (0..2000)
                .map(|_| {
                    let s = noisy(n, sigma, &mut rng, &f);
                    let w = n / 5;
                    let x: Vec<f64> = (w..=n).map(|i| i as f64).collect();
                    let fit = steps::step_fit(&x, &s[w..], floor).unwrap();
                    fit.line_bic - fit.bic
                })
                .collect();
            d.sort_by(f64::total_cmp);
            let q = |p: f64| d[((d.len() - 1) as f64 * p) as usize];
            println!(
                "{name} N={n}: dBIC q05 {:.1} q50 {:.1} q90 {:.1} q99 {:.1} max {:.1}",
                q(0.05),
                q(0.5),
                q(0.9),
                q(0.99),
                q(1.0)
            );
        }
    }
}
