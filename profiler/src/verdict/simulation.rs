// The reference simulation of docs/VERDICT.md: noise-only series, a 16 KiB/iteration leak and the
// clean shapes under sigma = 64 KiB noise. Never asserts timings; prints its rates (--nocapture).

use super::tests::{KIB, MIB, Rng, noisy, shapes};
use super::*;

const SIGMA: f64 = 64.0 * KIB;

/// The engine's loop around `judge` (docs/VERDICT.md, confirmation; mirrored here only to measure): start at
/// `n`; a leak must hold again at 2n; an inconclusive result extends to 2n; up to `s.len() - 1`.
fn engine(s: &[f64], th: &Thresholds, n: usize) -> Verdict {
    let max = s.len() - 1;
    engine_with_noise_bound(s, th, n, max)
}

/// [`engine`] with the ordinary bound `max` and, while the judgement is only too noisy to
/// bound yet (no significant trend, shape noisy or sawtooth), the longer bound `s.len() - 1`
/// (`judge::too_noisy`); past `max` a leak is still confirmed at 2n.
fn engine_with_noise_bound(s: &[f64], th: &Thresholds, mut n: usize, max: usize) -> Verdict {
    let noisy_max = s.len() - 1;
    loop {
        let j = judge(&s[..=n], th, None);
        let too_noisy = j.verdict == Verdict::Inconclusive
            && matches!(j.shape, Shape::Noisy | Shape::Sawtooth)
            && j.p_value.is_none_or(|p| p >= ALPHA);
        let bound = if too_noisy || (n > max && j.verdict == Verdict::Leak) {
            noisy_max
        } else {
            max
        };
        match j.verdict {
            Verdict::Clean => return Verdict::Clean,
            _ if 2 * n > bound => return Verdict::Inconclusive,
            Verdict::Leak if judge(&s[..=2 * n], th, None).verdict == Verdict::Leak => {
                return Verdict::Leak;
            }
            _ => n *= 2,
        }
    }
}

#[derive(Debug, Default)]
struct Tally {
    leak: usize,
    clean: usize,
    inconclusive: usize,
}

impl Tally {
    fn add(&mut self, v: Verdict) {
        match v {
            Verdict::Leak => self.leak += 1,
            Verdict::Clean => self.clean += 1,
            Verdict::Inconclusive => self.inconclusive += 1,
        }
    }

    fn total(&self) -> usize {
        self.leak + self.clean + self.inconclusive
    }

    fn rates(&self) -> String {
        let pct = |k| 100.0 * k as f64 / self.total().max(1) as f64;
        format!(
            "leak {} ({:.1}%), inconclusive {:.1}%, clean {:.1}%",
            self.leak,
            pct(self.leak),
            pct(self.inconclusive),
            pct(self.clean)
        )
    }
}

#[test]
fn noise_only_is_never_a_confirmed_leak() {
    let th = Thresholds::heap_bytes(0.0);
    let mut rng = Rng::new(0x0a11_5eed);
    for n in [20, 40] {
        let (mut single, mut confirmed) = (Tally::default(), 0);
        for _ in 0..2000 {
            let s = noisy(2 * n, SIGMA, &mut rng, |_| 8.0 * MIB);
            let v = judge(&s[..=n], &th, None).verdict;
            single.add(v);
            if v == Verdict::Leak && judge(&s, &th, None).verdict == Verdict::Leak {
                confirmed += 1;
            }
        }
        println!(
            "noise only, N = {n}, 2000 series: single judgement {}; confirmed at 2N: {confirmed}",
            single.rates()
        );
        assert_eq!(confirmed, 0);
        // alpha = 1e-3 one-sided: about 1 in 1000 single judgements may be a leak before confirmation
        assert!(single.leak <= 6, "{}", single.rates());
    }
}

#[test]
fn leak_of_16_kib_under_64_kib_noise_is_found() {
    let th = Thresholds::heap_bytes(0.0);
    let mut rng = Rng::new(0x1eac);
    let (mut at_20, mut at_40, mut run) = (Tally::default(), Tally::default(), Tally::default());
    for _ in 0..1000 {
        let s = noisy(160, SIGMA, &mut rng, |i| 8.0 * MIB + 16.0 * KIB * i as f64);
        at_20.add(judge(&s[..=20], &th, None).verdict);
        at_40.add(judge(&s[..=40], &th, None).verdict);
        run.add(engine(&s, &th, 20));
    }
    println!(
        "16 KiB/iteration, sigma 64 KiB, single judgement at N = 20: {}",
        at_20.rates()
    );
    println!(
        "16 KiB/iteration, sigma 64 KiB, single judgement at N = 40: {}",
        at_40.rates()
    );
    println!(
        "16 KiB/iteration, sigma 64 KiB, from N = 20 with 2N confirmation and extension: {}",
        run.rates()
    );
    // A 17-sample tail caps Mann-Kendall's power at alpha = 1e-3 near 72% for this effect size.
    assert!(at_20.leak >= 620, "{}", at_20.rates());
    assert!(at_40.leak >= 950, "{}", at_40.rates());
    assert!(run.leak >= 800, "{}", run.rates());
    assert_eq!(at_20.clean + at_40.clean + run.clean, 0);
}

#[test]
fn clean_shapes_under_noise_are_never_a_confirmed_leak() {
    let th = Thresholds::heap_bytes(0.0);
    let mut rng = Rng::new(0xc1ea);
    // shapes scaled up so that they stand out of sigma = 64 KiB noise
    let scaled = |f: fn(usize) -> f64, k: f64| move |i: usize| MIB + k * (f(i) - MIB);
    type Shape = Box<dyn Fn(usize) -> f64>;
    let cases: Vec<(&str, Shape)> = vec![
        ("plateau", Box::new(scaled(shapes::plateau, 8.0))),
        ("vec doubling", Box::new(scaled(shapes::vec_doubling, 64.0))),
        ("sawtooth/5", Box::new(|i| MIB + MIB * (i % 5) as f64)),
        ("spikes", Box::new(shapes::spikes)),
        (
            "one-off step",
            Box::new(|i| MIB + if i >= 12 { MIB } else { 0.0 }),
        ),
        ("pool ramp", Box::new(|i| MIB * shapes::pool_ramp(i))),
        ("flat", Box::new(|_| MIB)),
    ];
    for (name, f) in cases {
        let (mut single, mut run) = (Tally::default(), Tally::default());
        for _ in 0..100 {
            let s = noisy(160, SIGMA, &mut rng, &f);
            single.add(judge(&s[..=20], &th, None).verdict);
            run.add(engine(&s, &th, 20));
        }
        println!(
            "{name:>13}, 100 series: at N = 20 {}; engine from N = 20: {}",
            single.rates(),
            run.rates()
        );
        assert_eq!(run.leak, 0, "{name}");
        // Before confirmation a noisy level shift can pass for growth: at most 15%.
        assert!(single.leak <= 15, "{name}: {}", single.rates());
    }
}

#[test]
fn counts_too_noisy_at_160_converge_to_clean_and_a_block_per_iteration_never_passes() {
    // Live blocks of a structure that frees late: whole blocks of Gaussian noise, sigma 600,
    // around a flat level; the blocks limit of a workload making 3,609 allocations an
    // iteration (0.5 block per iteration).
    let th = Thresholds::heap_blocks(3609.0);
    let mut rng = Rng::new(0xb10c);
    let mut blocks = |level: f64| (level + 600.0 * rng.gaussian()).round();
    let (mut flat, mut flat_160, mut leak) = (Tally::default(), Tally::default(), Tally::default());
    for _ in 0..200 {
        let s: Vec<f64> = (0..=1280).map(|_| blocks(5_000.0)).collect();
        flat.add(engine_with_noise_bound(&s, &th, 20, 160));
        flat_160.add(engine(&s[..=160], &th, 20));
        let s: Vec<f64> = (0..=1280).map(|i| blocks(5_000.0 + i as f64)).collect();
        let v = engine_with_noise_bound(&s, &th, 20, 160);
        leak.add(v);
    }
    println!(
        "sigma 600 blocks, flat, engine to 160: {}",
        flat_160.rates()
    );
    println!(
        "sigma 600 blocks, flat, noise may extend to 1280: {}",
        flat.rates()
    );
    println!(
        "sigma 600 blocks, +1 per iteration, noise may extend to 1280: {}",
        leak.rates()
    );
    assert_eq!(flat.leak, 0, "{}", flat.rates());
    assert!(flat.clean >= 190, "{}", flat.rates());
    assert!(
        flat.clean > flat_160.clean,
        "{} / {}",
        flat.rates(),
        flat_160.rates()
    );
    assert_eq!(leak.clean, 0, "{}", leak.rates());
    assert!(leak.leak >= 190, "{}", leak.rates());
}
