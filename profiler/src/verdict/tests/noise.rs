// Verdicts under noise and on odd input (tiny, non-finite, a user's warm-up), thresholds, JSON,
// and proptest's properties. Never times anything; every series is built here or by a strategy.

use super::*;
use proptest::prelude::*;
// proptest's prelude has an `Rng` of its own (rand's).
use super::Rng;

#[test]
fn thresholds_follow_the_spec() {
    let h = Thresholds::heap_bytes(10.0 * MIB);
    assert_eq!(
        (h.tau, h.tau_ok, h.quantum, h.unit),
        (0.0001 * 10.0 * MIB, 1024.0, 1.0, Unit::Bytes)
    );
    assert_eq!(Thresholds::heap_bytes(1000.0).tau, 128.0);
    let c = Thresholds::count();
    assert_eq!(
        (c.tau, c.tau_ok, c.quantum, c.unit),
        (0.0, 0.0, 1.0, Unit::Count)
    );
    let r = Thresholds::rss_bytes(0.0);
    assert_eq!(
        (r.tau, r.tau_ok, r.quantum, r.unit),
        (4096.0, 65536.0, 4096.0, Unit::Bytes)
    );
    assert_eq!(Thresholds::rss_bytes(100.0 * MIB).tau, 0.0001 * 100.0 * MIB);
}

#[test]
fn linear_leaks_under_noise() {
    let mut rng = Rng::new(0x5eed);
    let sigma = 64.0 * KIB;
    for (per_iteration, n, at_least) in [
        (64.0 * KIB, 20, 99),
        (16.0 * KIB, 40, 95),
        (4.0 * KIB, 160, 99),
    ] {
        let found = (0..100)
            .filter(|_| {
                let s = noisy(n, sigma, &mut rng, |i| 8.0 * MIB + per_iteration * i as f64);
                judge(&s, &heap(), None).verdict == Verdict::Leak
            })
            .count();
        assert!(
            found >= at_least,
            "{per_iteration} B/iter at N = {n}: {found}/100"
        );
    }
}

#[test]
fn noise_free_ties_and_tiny_inputs() {
    for len in 0..4 {
        let j = judge(&vec![5.0; len], &count(), None);
        assert_eq!(
            (j.verdict, j.shape.as_str()),
            (Verdict::Inconclusive, "too-short")
        );
        assert_eq!((j.slope_per_iteration, j.ci, j.p_value), (None, None, None));
    }
    let j = expect(&[5.0; 6], count(), Verdict::Clean, "flat");
    assert_eq!((j.warmup, j.p_value), (2, Some(1.0)));
    expect(&[0.0; 1000], heap(), Verdict::Clean, "flat");
    // a short strictly rising tail cannot reach p < 0.001: not a leak, not clean either
    let j = judge(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0], &count(), None);
    assert_eq!(j.verdict, Verdict::Inconclusive);
}

#[test]
fn non_finite_values_are_inconclusive() {
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let mut s = series(20, |i| i as f64);
        s[7] = bad;
        let j = expect(&s, count(), Verdict::Inconclusive, "non-finite");
        assert!(j.reason.starts_with("sample 7 is"), "{}", j.reason);
    }
    let j = judge(&[1e300, -1e300, 1e300, 0.0, 0.0, 0.0, 0.0], &count(), None);
    assert_eq!(
        (j.verdict, j.shape.as_str()),
        (Verdict::Inconclusive, "non-finite")
    );
}

#[test]
fn user_warmup_is_a_minimum() {
    let line = series(20, |i| i as f64);
    assert_eq!(judge(&line, &count(), Some(1)).warmup, 1);
    assert_eq!(judge(&line, &count(), Some(0)).warmup, 0);
    assert_eq!(judge(&line, &count(), Some(10)).warmup, 10);
    // the deceleration extension still applies on top
    assert!(judge(&series(20, shapes::pool_ramp), &count(), Some(2)).warmup > 2);
    let j = judge(&line, &count(), Some(19));
    assert_eq!(
        (j.verdict, j.shape.as_str()),
        (Verdict::Inconclusive, "too-short")
    );
    assert_eq!(judge(&line, &count(), Some(usize::MAX)).shape, "too-short");
}

#[test]
fn rss_pages_do_not_make_noise_a_leak() {
    // RSS jumping by a page now and then around a constant
    let mut rng = Rng::new(3);
    let th = Thresholds::rss_bytes(0.0);
    for _ in 0..50 {
        let s: Vec<f64> = (0..=40)
            .map(|_| 64.0 * MIB + 4096.0 * (rng.gaussian() * 2.0).round())
            .collect();
        assert_ne!(judge(&s, &th, None).verdict, Verdict::Leak);
    }
    let leak = series(20, |i| 64.0 * MIB + 16.0 * 4096.0 * i as f64);
    expect(&leak, th, Verdict::Leak, "linear");
}

#[test]
fn long_series_are_thinned_and_still_right() {
    let n = 10_000;
    expect(
        &series(n, |i| MIB + 200.0 * i as f64),
        heap(),
        Verdict::Leak,
        "linear",
    );
    expect(
        &series(n, shapes::sawtooth(7)),
        heap(),
        Verdict::Clean,
        "sawtooth",
    );
    expect(&series(n, shapes::plateau), heap(), Verdict::Clean, "flat");
    let mut rng = Rng::new(11);
    let s = noisy(n, 64.0 * KIB, &mut rng, |_| 8.0 * MIB);
    assert_ne!(judge(&s, &heap(), None).verdict, Verdict::Leak);
}

#[test]
fn judgement_serialises_with_lowercase_verdicts() {
    let j = judge(&series(20, |i| i as f64), &count(), None);
    let json = serde_json::to_string(&j).unwrap();
    assert!(json.contains(r#""verdict":"leak""#), "{json}");
    assert!(json.contains(r#""ci":[1.0,1.0]"#), "{json}");
    let back: Judgement = serde_json::from_str(&json).unwrap();
    assert_eq!(back, j);
    let too_short = serde_json::to_string(&judge(&[], &count(), None)).unwrap();
    assert!(
        too_short.contains(r#""slope_per_iteration":null"#),
        "{too_short}"
    );
}

#[test]
fn noisy_block_counts_converge_to_clean_when_the_limit_scales_with_churn() {
    let mut rng = Rng::new(17);
    let churn = Thresholds::heap_blocks(20_000.0);
    assert_eq!(churn.tau, 0.0);
    assert_eq!(churn.tau_ok, 0.5);
    let mut clean = 0;
    for _ in 0..40 {
        let flat = noisy(160, 60.0, &mut rng, |_| 5000.0);
        let flat: Vec<f64> = flat.iter().map(|v| v.round()).collect();
        let j = judge(&flat, &churn, None);
        assert_ne!(j.verdict, Verdict::Leak, "{j:#?}");
        clean += usize::from(j.verdict == Verdict::Clean);
        // One block per iteration under the same noise can never pass as clean.
        let leak = noisy(160, 60.0, &mut rng, |i| 5000.0 + i as f64);
        let leak: Vec<f64> = leak.iter().map(|v| v.round()).collect();
        assert_ne!(judge(&leak, &churn, None).verdict, Verdict::Clean);
    }
    assert!(clean >= 36, "{clean} of 40 noisy flat series clean");
    // Without churn the limit stays exactly 0 (deterministic counts).
    assert_eq!(Thresholds::heap_blocks(0.0).tau_ok, 0.0);
}

/// Pure integer noise of any amplitude.
fn integer_noise() -> impl Strategy<Value = Vec<i64>> {
    prop::collection::vec(-1_000_000i64..1_000_000, 0..120)
}

/// Lines of any slope with integer noise of any amplitude.
fn noisy_lines() -> impl Strategy<Value = Vec<i64>> {
    (
        0i64..5000,
        0i64..200_000,
        prop::collection::vec(-1000i64..1000, 5..160),
    )
        .prop_map(|(slope, amplitude, z)| {
            z.iter()
                .enumerate()
                .map(|(i, z)| slope * i as i64 + z * amplitude / 1000)
                .collect()
        })
}

/// Exact counters, as the engine samples them at iteration boundaries: random walks of steps and
/// drops, steady lines, and sawtooths riding on a line.
fn exact_counters() -> impl Strategy<Value = Vec<i64>> {
    let walk = prop::collection::vec(
        prop_oneof![6 => Just(0i64), 2 => 1i64..5, 1 => -5i64..0],
        0..120,
    )
    .prop_map(|d| {
        d.iter()
            .scan(0i64, |acc, x| {
                *acc += x;
                Some(*acc)
            })
            .collect()
    });
    let line_and_teeth = (0i64..5000, 0i64..100_000, 2usize..12, 5usize..160).prop_map(
        |(slope, tooth, period, len)| {
            (0..len)
                .map(|i| slope * i as i64 + tooth * (i % period) as i64)
                .collect()
        },
    );
    prop_oneof![walk, line_and_teeth]
}

/// Exact counters that idle (stay flat) through the whole warm-up window, extension included.
fn exact_counters_idle_warmup() -> impl Strategy<Value = Vec<i64>> {
    exact_counters().prop_map(|v| {
        let Some(&first) = v.first() else {
            return v;
        };
        let mut idle = 0;
        while idle < warmup::base(v.len() + idle) + warmup::max_extension(v.len() + idle) {
            idle += 1;
        }
        let mut out = vec![first; idle];
        out.extend(v);
        out
    })
}

fn integer_series() -> impl Strategy<Value = Vec<i64>> {
    prop_oneof![integer_noise(), noisy_lines(), exact_counters()]
}

fn any_thresholds() -> impl Strategy<Value = Thresholds> {
    prop_oneof![
        Just(Thresholds::count()),
        Just(Thresholds::heap_bytes(0.0)),
        Just(Thresholds::rss_bytes(0.0)),
    ]
}

fn floats(v: &[i64]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

proptest! {
    // Failures print their minimal input; no regression file is written outside this module.
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn adding_a_constant_changes_nothing(
        v in integer_series(),
        c in -1_000_000_000_000i64..1_000_000_000_000,
        th in any_thresholds(),
    ) {
        let shifted: Vec<f64> = v.iter().map(|&x| (x + c) as f64).collect();
        prop_assert_eq!(judge(&floats(&v), &th, None), judge(&shifted, &th, None));
    }

    // On exact counters that idle through their warm-up. Two reasons for the restriction:
    // - The warm-up is a fraction of N, so any prefix moves part of the original warm-up into the
    //   judged tail; warm-up growth in three comparable steps (0, 1, 2, 5 ...) then meets the spec's
    //   own recurring-steps rule and is a leak. Idle warm-ups keep the property meaningful.
    // - Under noise one judgement is a leak about once per 1/ALPHA series whatever came before (the
    //   simulation measures it; the engine's confirmation at 2N removes it), and a small noisy leak
    //   near the thresholds flips as more of it is seen.
    #[test]
    fn a_flat_prefix_never_turns_clean_into_leak(
        v in exact_counters_idle_warmup(),
        prefix in 1usize..60,
        th in any_thresholds(),
    ) {
        let s = floats(&v);
        if judge(&s, &th, None).verdict == Verdict::Clean {
            let mut longer = vec![s[0]; prefix];
            longer.extend_from_slice(&s);
            prop_assert_ne!(judge(&longer, &th, None).verdict, Verdict::Leak);
        }
    }

    #[test]
    fn strictly_increasing_series_is_never_clean(
        increments in prop::collection::vec(1i64..5000, 15..200),
        th in any_thresholds(),
    ) {
        let s: Vec<f64> = increments
            .iter()
            .scan(0i64, |acc, d| { *acc += d; Some(*acc as f64) })
            .collect();
        let j = judge(&s, &th, None);
        prop_assert!(s.len() - j.warmup >= 10);
        prop_assert_ne!(j.verdict, Verdict::Clean, "{:?}", j);
    }

    #[test]
    fn never_panics_on_any_input(
        s in prop::collection::vec(any::<f64>(), 0..200),
        wide in prop::collection::vec(
            prop::num::f64::NORMAL | prop::num::f64::SUBNORMAL | prop::num::f64::ZERO, 0..100),
        min_warmup in prop::option::of(0usize..300),
        tau in any::<f64>(),
        quantum in any::<f64>(),
    ) {
        let odd = Thresholds { tau, tau_ok: tau, quantum, unit: Unit::Bytes };
        for th in [Thresholds::count(), Thresholds::heap_bytes(0.0), odd] {
            for series in [&s, &wide] {
                let j = judge(series, &th, min_warmup);
                prop_assert!(!j.reason.is_empty());
                if j.verdict == Verdict::Leak {
                    let [lo, _] = j.ci.unwrap();
                    prop_assert!(lo > th.tau && j.p_value.unwrap() < ALPHA);
                }
            }
        }
    }
}

#[test]
fn a_tooth_outgrowing_every_earlier_one_is_no_clean_sawtooth() {
    // Found by `a_flat_prefix_never_turns_clean_into_leak`: cleared twice back to 0 after
    // teeth of 3, then climbing to 11. It was "floors do not rise" (clean), and a leak with
    // seven more flat samples in front.
    let v = [
        0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0,
        2.0, 2.0, 2.0, 3.0, 3.0, 3.0, 3.0, 0.0, 0.0, 3.0, 0.0, 0.0, 4.0, 6.0, 8.0, 11.0,
    ];
    let j = judge(&v, &Thresholds::count(), None);
    assert_ne!(j.verdict, Verdict::Clean, "{j:#?}");
    let mut longer = vec![0.0; 7];
    longer.extend_from_slice(&v);
    let k = judge(&longer, &Thresholds::count(), None);
    assert!(
        j.verdict != Verdict::Clean || k.verdict != Verdict::Leak,
        "{j:#?} {k:#?}"
    );
}

/// A map's size under random keys wanders about its mean and comes back only over many
/// iterations (first-order autoregression, coefficient 0.93, like a dashmap under 300 random
/// inserts and removes per iteration over 2,000 keys). With a leak of one block every 3rd
/// iteration on top, Sen's bounds assume independent noise and came out too narrow: clean
/// in 6 of 20 seeds of the real map. The clean bill is held to bounds widened for it.
#[test]
fn a_leak_under_noise_that_persists_is_never_clean() {
    let th = Thresholds::heap_blocks(150.0);
    let mut clean = Vec::new();
    for seed in 0..40 {
        let mut rng = Rng::new(seed);
        let mut wander = 0.0;
        let y: Vec<f64> = (0..=160)
            .map(|i| {
                wander = 0.93 * wander + 12.0 * rng.gaussian();
                (2000.0 + f64::from(i as u32) / 3.0 + wander).round()
            })
            .collect();
        for n in [40, 80, 160] {
            let j = judge(&y[..=n], &th, None);
            if j.verdict == Verdict::Clean {
                clean.push((seed, n, j.reason));
            }
        }
    }
    // Sen's bounds alone: clean at 27 of these 120 checkpoints. Widened: 7, where the wander
    // fell so far that 32 to 144 samples cannot show how far it wanders (its lag-1
    // autocorrelation is estimated low or not significant on so few).
    assert!(clean.len() <= 8, "{} of 120: {clean:#?}", clean.len());
}

#[test]
fn a_run_shorter_than_its_warm_up_says_so_in_its_own_length() {
    // One iteration (two samples), the warm-up for it 2: no "samples after 2 warm-up
    // iterations" of a run that never reached its second iteration.
    let j = judge(&[100.0, 200.0], &count(), None);
    assert_eq!(j.shape, Shape::TooShort);
    assert_eq!(
        j.reason,
        "too short: the whole run (1 iteration) was warm-up, and at least 4 samples are needed \
         after it; run more iterations"
    );
    let j = judge(&[100.0], &count(), None);
    assert!(
        j.reason
            .starts_with("too short: no iteration was completed"),
        "{}",
        j.reason
    );
    // Past the warm-up, the samples after it are counted.
    let j = judge(&[0.0; 5], &count(), None);
    assert!(
        j.reason
            .starts_with("too short: 3 samples after 2 warm-up iterations"),
        "{}",
        j.reason
    );
}

#[test]
fn one_page_of_rss_touched_late_is_no_growth_rss_can_resolve() {
    // A program's RSS (less mapped files), flat but for one page touched at iteration 37 of
    // 40: it was a level shift late in the run, inconclusive, and an extension.
    let page = 4096.0;
    let series: Vec<f64> = (0..=40)
        .map(|i| 12.0 * MIB + if i >= 37 { page } else { 0.0 })
        .collect();
    let j = judge(&series, &Thresholds::rss_bytes(12.0 * MIB), None);
    assert_eq!(j.verdict, Verdict::Clean, "{}", j.reason);
    assert!(
        j.reason
            .starts_with("within one step of its resolution (4.0 KiB)"),
        "{}",
        j.reason
    );
    // Two pages are a step it can resolve: judged by the rules for steps.
    let series: Vec<f64> = (0..=40)
        .map(|i| 12.0 * MIB + if i >= 37 { 2.0 * page } else { 0.0 })
        .collect();
    let j = judge(&series, &Thresholds::rss_bytes(12.0 * MIB), None);
    assert_ne!(j.verdict, Verdict::Clean, "{}", j.reason);
}
