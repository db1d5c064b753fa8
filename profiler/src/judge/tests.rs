// Owns the judge's own tests: verdicts per run, checkpoints, the settling of unconfirmed leaks.

use super::*;

fn metric(verdict: Verdict, gating: bool) -> MetricReport {
    MetricReport {
        verdict,
        gating,
        slope_per_iteration: None,
        slope_per_second: None,
        ci: None,
        warmup: 0,
        p_value: None,
        shape: crate::model::Shape::default(),
        after_warmup: 0.0,
        end: 0.0,
        growth: 0.0,
        reason: "r".into(),
        confirmed_within: false,
    }
}

fn map(entries: &[(Metric, Verdict)]) -> BTreeMap<Metric, MetricReport> {
    entries
        .iter()
        .map(|&(k, v)| (k, metric(v, k.gates())))
        .collect()
}

/// The ordinary bound `max`, and 8 x that for noise.
fn limits(max: u32) -> Limits {
    Limits {
        max,
        noisy: 8 * max,
        confirm: 16 * max,
    }
}

#[test]
fn a_new_leak_is_confirmed_at_twice_the_iterations() {
    let m = map(&[
        (Metric::Fds, Verdict::Leak),
        (Metric::Threads, Verdict::Clean),
    ]);
    assert!(matches!(
        next_step(&m, &Earlier::default(), 20, limits(160)),
        Next::ExtendTo(40, _)
    ));
    assert_eq!(
        next_step(&m, &leaked(&[Metric::Fds]), 40, limits(160)),
        Next::Stop
    );
}

/// A small `--iterations` does not confirm a leak on fewer iterations than the default run
/// first sees one at: a cache filling for 15 iterations was a leak at 8 and at 16 (exit 1).
#[test]
fn a_leak_is_not_confirmed_below_twenty_iterations_while_the_run_can_go_on() {
    let m = map(&[(Metric::HeapBlocks, Verdict::Leak)]);
    assert!(matches!(
        next_step(&m, &leaked(&[Metric::HeapBlocks]), 16, limits(40)),
        Next::ExtendTo(32, _)
    ));
    assert_eq!(
        next_step(&m, &leaked(&[Metric::HeapBlocks]), 32, limits(40)),
        Next::Stop
    );
    // Where it cannot go on, the leak seen twice stands.
    let bound = Limits {
        max: 16,
        noisy: 16,
        confirm: 16,
    };
    assert_eq!(
        next_step(&m, &leaked(&[Metric::HeapBlocks]), 16, bound),
        Next::Stop
    );
    let mut settled = m.clone();
    settle_unconfirmed(&mut settled, &[Metric::HeapBlocks], Unconfirmed::MayExtend);
    assert_eq!(settled[&Metric::HeapBlocks].verdict, Verdict::Leak);
}

#[test]
fn inconclusive_extends_until_the_bound() {
    let m = map(&[(Metric::HeapBytes, Verdict::Inconclusive)]);
    assert!(matches!(
        next_step(&m, &Earlier::default(), 80, limits(160)),
        Next::ExtendTo(160, _)
    ));
    assert_eq!(
        next_step(&m, &Earlier::default(), 160, limits(160)),
        Next::Stop
    );
    assert!(matches!(
        next_step(&m, &Earlier::default(), 100, limits(160)),
        Next::ExtendTo(160, _)
    ));
}

#[test]
fn a_metric_only_too_noisy_to_bound_extends_past_the_bound_and_nothing_else_does() {
    let with = |shape, p: f64| {
        let mut m = map(&[(Metric::HeapBlocks, Verdict::Inconclusive)]);
        let r = m.get_mut(&Metric::HeapBlocks).unwrap();
        r.shape = shape;
        r.p_value = Some(p);
        m
    };
    for shape in [Shape::Noisy, Shape::Sawtooth] {
        let m = with(shape, 0.3);
        assert!(too_noisy(&m[&Metric::HeapBlocks]));
        match next_step(&m, &Earlier::default(), 160, limits(160)) {
            Next::ExtendTo(320, why) => assert!(why.contains("too noisy"), "{why}"),
            other => panic!("{shape:?}: {other:?}"),
        }
        assert!(matches!(
            next_step(&m, &Earlier::default(), 640, limits(160)),
            Next::ExtendTo(1280, _)
        ));
        assert_eq!(
            next_step(&m, &Earlier::default(), 1280, limits(160)),
            Next::Stop
        );
    }
    // significant floors, steps, deceleration: more samples are not all they need
    for (shape, p) in [
        (Shape::Sawtooth, 1e-4),
        (Shape::Steps, 0.3),
        (Shape::Decelerating, 0.3),
        (Shape::Linear, 0.3),
    ] {
        let m = with(shape, p);
        assert!(!too_noisy(&m[&Metric::HeapBlocks]), "{shape:?}");
        assert_eq!(
            next_step(&m, &Earlier::default(), 160, limits(160)),
            Next::Stop,
            "{shape:?}"
        );
        assert_eq!(
            next_step(&m, &Earlier::default(), 320, limits(160)),
            Next::Stop,
            "{shape:?}"
        );
    }
    // a noisy metric beside one that needs more than samples: the ordinary bound
    let mut m = with(Shape::Noisy, 0.3);
    m.insert(
        Metric::HeapBytes,
        MetricReport {
            shape: Shape::Steps,
            ..metric(Verdict::Inconclusive, true)
        },
    );
    assert_eq!(
        next_step(&m, &Earlier::default(), 160, limits(160)),
        Next::Stop
    );
}

#[test]
fn past_the_bound_a_leak_is_still_confirmed_at_twice_the_iterations() {
    let m = map(&[(Metric::HeapBlocks, Verdict::Leak)]);
    // first seen at the ordinary bound: confirmed at twice it (it once ended inconclusive)
    assert!(matches!(
        next_step(&m, &Earlier::default(), 160, limits(160)),
        Next::ExtendTo(320, _)
    ));
    // ... and one first seen at the noise bound, at twice that (a tokio service on mimalloc
    // leaking 64 KiB per iteration was too noisy to bound up to 640 and a leak at 1280, the
    // last checkpoint: exit 0); never further
    assert!(matches!(
        next_step(&m, &Earlier::default(), 1280, limits(160)),
        Next::ExtendTo(2560, _)
    ));
    assert_eq!(
        next_step(&m, &leaked(&[Metric::HeapBlocks]), 2560, limits(160)),
        Next::Stop
    );
    assert_eq!(
        next_step(&m, &Earlier::default(), 2560, limits(160)),
        Next::Stop
    );
    assert_eq!(
        next_step(&m, &Earlier::default(), 10240, limits(160)),
        Next::Stop
    );
    // noise alone never goes past the noise bound
    let mut noisy = map(&[(Metric::HeapBlocks, Verdict::Inconclusive)]);
    noisy.get_mut(&Metric::HeapBlocks).unwrap().shape = Shape::Noisy;
    assert!(too_noisy(&noisy[&Metric::HeapBlocks]));
    assert_eq!(
        next_step(&noisy, &Earlier::default(), 1280, limits(160)),
        Next::Stop
    );
    // brought past it by noise: confirmed at twice the iterations
    assert!(matches!(
        next_step(&m, &Earlier::default(), 320, limits(160)),
        Next::ExtendTo(640, _)
    ));
    assert_eq!(
        next_step(&m, &leaked(&[Metric::HeapBlocks]), 640, limits(160)),
        Next::Stop
    );
}

/// Metrics leaking at the previous checkpoint.
fn leaked(metrics: &[Metric]) -> Earlier {
    Earlier::default().after(
        &metrics
            .iter()
            .map(|&k| (k, metric(Verdict::Leak, k.gates())))
            .collect(),
    )
}

#[test]
fn a_leak_undecided_at_twice_the_iterations_runs_on_to_the_same_bounds() {
    // A leak at 160, inconclusive at 320 (a staircase that paused: "growth that stopped; run
    // longer"): it ran no longer and ended exit 0.
    let leak_at = |slope: f64| {
        let mut m = map(&[(Metric::HeapBlocks, Verdict::Leak)]);
        m.get_mut(&Metric::HeapBlocks).unwrap().slope_per_iteration = Some(slope);
        m
    };
    let undecided = map(&[(Metric::HeapBlocks, Verdict::Inconclusive)]);
    let at_160 = Earlier::default().after(&leak_at(100.0));
    assert_eq!(at_160.leaked, [Metric::HeapBlocks]);
    assert!(matches!(
        next_step(&undecided, &at_160, 320, limits(160)),
        Next::ExtendTo(640, ref why) if why.contains("leak before")
    ));
    // Undecided again at 640, it runs on; at the bound it stops.
    let at_320 = at_160.after(&undecided);
    assert_eq!(at_320.undecided, [(Metric::HeapBlocks, 100.0)]);
    assert!(at_320.leaked.is_empty());
    assert!(matches!(
        next_step(&undecided, &at_320, 640, limits(160)),
        Next::ExtendTo(1280, _)
    ));
    assert_eq!(at_320.after(&undecided).undecided, at_320.undecided);
    assert_eq!(
        next_step(&undecided, &at_320.after(&undecided), 2560, limits(160)),
        Next::Stop
    );
    // A leak after the pause at a rate that held (at least half) confirms it; one that slowed
    // to under half is a new leak, confirmed at twice its iterations (RSS under jemalloc
    // filling for ~800 iterations of a clean service: 73 KiB per iteration at 40,
    // "decelerating" at 80, 12.8 KiB per iteration at 160: a false leak, taken as confirmed).
    assert_eq!(
        next_step(&leak_at(60.0), &at_320, 640, limits(160)),
        Next::Stop
    );
    assert_eq!(at_320.confirmed(&leak_at(60.0)), [Metric::HeapBlocks]);
    assert!(matches!(
        next_step(&leak_at(20.0), &at_320, 640, limits(160)),
        Next::ExtendTo(1280, ref why) if why.contains("leak at 640")
    ));
    assert!(at_320.confirmed(&leak_at(20.0)).is_empty());
    // Unconfirmed at the last checkpoint, it settles inconclusive.
    let mut last = leak_at(20.0);
    let confirmed = at_320.confirmed(&last);
    settle_unconfirmed(&mut last, &confirmed, Unconfirmed::MayExtend);
    assert_eq!(last[&Metric::HeapBlocks].verdict, Verdict::Inconclusive);
    // Cleared once, it is no longer pending; never seen leaking, inconclusive past the
    // ordinary bound stops as before.
    let clean = map(&[(Metric::HeapBlocks, Verdict::Clean)]);
    assert_eq!(at_320.after(&clean), Earlier::default());
    assert_eq!(
        next_step(&undecided, &Earlier::default(), 320, limits(160)),
        Next::Stop
    );
}

/// RSS without file pages, in KiB, of a clean tokio service on jemalloc with its retention
/// off (`msrv_je clean-churn`, 2.5 ms per iteration), samples 0 to 80: it approaches its
/// level for ~40 iterations and wanders by +-0.5 MiB after.
const JEMALLOC_CLEAN_RSS_KIB: [u32; 81] = [
    2360, 3872, 4068, 4340, 4632, 4932, 4860, 5068, 4916, 4772, 4684, 5260, 5344, 5196, 5044, 5012,
    5308, 5252, 5456, 5392, 5536, 5552, 5432, 5296, 5076, 5020, 5232, 5292, 5452, 5456, 5604, 5680,
    5572, 5684, 5688, 5696, 5516, 5580, 5472, 5244, 5408, 5644, 5656, 5584, 5484, 5608, 5292, 5348,
    5652, 5516, 5448, 5404, 5288, 5136, 5268, 5164, 5308, 5368, 5440, 5572, 5756, 5812, 5660, 5608,
    5560, 5428, 5340, 5284, 5100, 5128, 5416, 5924, 5924, 6016, 5984, 5980, 6360, 6336, 6328, 5860,
    5868,
];

/// A program's RSS samples of `kib` per iteration, `leak_kib` more per iteration on top.
fn program_rss(kib: &[u32], leak_kib: f64) -> Vec<Sample> {
    (kib.iter().enumerate())
        .map(|(i, &kib)| Sample {
            iteration: i as u32,
            elapsed_ms: 2.5 * i as f64,
            rss_bytes: Some(((f64::from(kib) + leak_kib * i as f64) * 1024.0) as u64),
            rss_file_bytes: Some(0),
            fds: Some(5),
            threads: Some(5),
            ..Sample::default()
        })
        .collect()
}

/// How a program's samples are judged per marked iteration, without heap counters.
fn program_judging() -> Judging {
    Judging {
        axis: XAxis::Iteration,
        scope: HeapScope::None,
        source: SourceKind::Command,
        warmup: None,
        process_alone: false,
    }
}

/// Drive `samples` through the engine's checkpoints from 20 (judge, look since the previous
/// checkpoint, next step) up to `until` iterations at most: the checkpoint it stopped at, the
/// RSS verdict at each, and the last checkpoint's verdicts with what confirmed them.
fn checkpoints(samples: &[Sample], until: u32) -> (u32, Vec<Verdict>, Vec<Metric>) {
    let how = program_judging();
    let (mut done, mut earlier, mut previous) = (20, Earlier::default(), None);
    let mut seen = Vec::new();
    loop {
        let upto = &samples[..=done as usize];
        let metrics = judge(upto, &how);
        seen.push(metrics[&Metric::RssBytes].verdict);
        if let Some(since) = previous {
            earlier.look_since(upto, &how, since);
        }
        match next_step(&metrics, &earlier, done, limits(160)) {
            Next::ExtendTo(to, _) if to <= until => {
                earlier = earlier.after(&metrics);
                (previous, done) = (Some(done), to);
            }
            _ => return (done, seen, earlier.confirmed(&metrics)),
        }
    }
}

#[test]
fn a_leak_is_confirmed_only_by_growth_that_went_on_after_it_was_seen() {
    // The clean service's RSS: a leak at 20 (44 KiB per iteration, its approach) and at 40
    // (17.6 KiB), which confirmed it (exit 1). Samples 21 to 40 alone do not rise
    // significantly: a new leak at 40, to be confirmed at 80, where it is none.
    let clean = program_rss(&JEMALLOC_CLEAN_RSS_KIB, 0.0);
    let (done, seen, confirmed) = checkpoints(&clean, 80);
    assert_eq!(seen[..2], [Verdict::Leak, Verdict::Leak]);
    assert_eq!(done, 80, "{seen:?}");
    assert_ne!(seen[2], Verdict::Leak);
    assert!(confirmed.is_empty());
    // 64 KiB per iteration more on the same wander goes on: a leak at every checkpoint,
    // confirmed at 80, the fewest iterations an RSS leak is confirmed at.
    let leak = program_rss(&JEMALLOC_CLEAN_RSS_KIB, 64.0);
    let (done, seen, confirmed) = checkpoints(&leak, 80);
    assert_eq!((done, &seen[..]), (80, &[Verdict::Leak; 3][..]));
    assert_eq!(confirmed, [Metric::RssBytes]);
}

#[test]
fn an_rss_leak_is_not_confirmed_below_eighty_iterations_while_the_run_can_go_on() {
    // Its start-up rise: 3 runs of 40 of the clean jemalloc service were RSS leaks at 20 and
    // 40 whose samples 21 to 40 rose by themselves.
    let rss_at = |slope| {
        let mut m = map(&[(Metric::RssBytes, Verdict::Leak)]);
        let r = m.get_mut(&Metric::RssBytes).unwrap();
        (r.gating, r.slope_per_iteration) = (true, Some(slope));
        m
    };
    let at_20 = Earlier::default().after(&rss_at(92.4));
    assert_eq!(at_20.confirmed(&rss_at(46.2)), [Metric::RssBytes]);
    assert!(matches!(
        next_step(&rss_at(46.2), &at_20, 40, limits(160)),
        Next::ExtendTo(80, ref why) if why.contains("rss_bytes leak at 40")
    ));
    let at_40 = at_20.after(&rss_at(46.2));
    assert_eq!(
        next_step(&rss_at(35.1), &at_40, 80, limits(160)),
        Next::Stop
    );
    // Where the run cannot extend, the leak seen twice stands.
    let bound = Limits {
        max: 40,
        noisy: 40,
        confirm: 40,
    };
    assert_eq!(next_step(&rss_at(46.2), &at_20, 40, bound), Next::Stop);
}

#[test]
fn only_plain_growth_must_go_on_by_itself_after_its_checkpoint() {
    // Samples after 20 that do not rise: a plain-growth leak there is not confirmed by them,
    // a leak of another shape (a sawtooth's floors, steps) is, as before.
    let flat_after: Vec<Sample> = (0..=40u32)
        .map(|i| Sample {
            iteration: i,
            fds: Some(u64::from(i.min(20))),
            ..Sample::default()
        })
        .collect();
    let how = program_judging();
    let mut m = map(&[(Metric::Fds, Verdict::Leak)]);
    let mut earlier = Earlier::default().after(&m);
    earlier.look_since(&flat_after, &how, 20);
    assert!(earlier.confirmed(&m).is_empty());
    // It settles inconclusive, saying why.
    let mut settled = m.clone();
    settle(&mut settled, &earlier, Unconfirmed::MayExtend);
    let fds = &settled[&Metric::Fds];
    assert_eq!(fds.verdict, Verdict::Inconclusive);
    assert!(
        fds.reason
            .contains("a leak at iteration 20 too, but its samples since did not rise")
    );
    // So does one leaking before an inconclusive pause.
    let inconclusive = map(&[(Metric::Fds, Verdict::Inconclusive)]);
    let mut paused = Earlier::default().after(&m).after(&inconclusive);
    paused.look_since(&flat_after, &how, 20);
    assert!(paused.confirmed(&m).is_empty());
    // Fewer than 20 iterations after the checkpoint (a bound just past it) tell nothing.
    earlier.look_since(&flat_after[..=30], &how, 20);
    assert_eq!(earlier.confirmed(&m), [Metric::Fds]);
    earlier.look_since(&flat_after, &how, 20);
    m.get_mut(&Metric::Fds).unwrap().shape = Shape::Sawtooth;
    assert_eq!(earlier.confirmed(&m), [Metric::Fds]);
    // Samples that rise after it confirm it; so does an earlier that never looked.
    let rising: Vec<Sample> = (0..=40u32)
        .map(|i| Sample {
            iteration: i,
            fds: Some(u64::from(i)),
            ..Sample::default()
        })
        .collect();
    m.get_mut(&Metric::Fds).unwrap().shape = Shape::Linear;
    earlier.look_since(&rising, &how, 20);
    assert_eq!(earlier.confirmed(&m), [Metric::Fds]);
    assert_eq!(Earlier::default().after(&m).confirmed(&m), [Metric::Fds]);
}

#[test]
fn rss_never_extends_nor_fails() {
    let m = map(&[
        (Metric::RssBytes, Verdict::Leak),
        (Metric::Fds, Verdict::Clean),
    ]);
    assert_eq!(
        next_step(&m, &Earlier::default(), 20, limits(160)),
        Next::Stop
    );
    assert_eq!(run_verdict(&m), Verdict::Clean);
}

#[test]
fn a_doubling_leak_confirmed_within_the_run_stands_at_the_bound() {
    let within = |confirmed_within| {
        let mut m = map(&[(Metric::HeapBytes, Verdict::Leak)]);
        let r = m.get_mut(&Metric::HeapBytes).unwrap();
        r.shape = crate::model::Shape::Steps;
        r.confirmed_within = confirmed_within;
        m
    };
    let mut m = within(true);
    // While the run can extend, it still goes to twice the iterations: a cache filling ever
    // slower doubles on time early on (an interner over a bounded vocabulary was confirmed
    // within the run at 20 and clean at 40).
    assert!(
        matches!(
            next_step(&m, &Earlier::default(), 20, limits(160)),
            Next::ExtendTo(40, _)
        ),
        "{:?}",
        next_step(&m, &Earlier::default(), 20, limits(160))
    );
    let bound = Limits {
        max: 160,
        noisy: 160,
        confirm: 160,
    };
    assert_eq!(next_step(&m, &Earlier::default(), 160, bound), Next::Stop);
    settle_unconfirmed(&mut m, &[], Unconfirmed::MayExtend);
    assert_eq!(m[&Metric::HeapBytes].verdict, Verdict::Leak);
    // without the flag, the same leak must wait for twice the iterations
    let mut m = within(false);
    settle_unconfirmed(&mut m, &[], Unconfirmed::MayExtend);
    assert_eq!(m[&Metric::HeapBytes].verdict, Verdict::Inconclusive);
}

#[test]
fn an_unconfirmed_leak_becomes_inconclusive_when_the_bound_stops_the_run() {
    let mut m = map(&[(Metric::Fds, Verdict::Leak)]);
    settle_unconfirmed(&mut m, &[], Unconfirmed::MayExtend);
    assert_eq!(m[&Metric::Fds].verdict, Verdict::Inconclusive);
    let mut m = map(&[(Metric::Fds, Verdict::Leak)]);
    settle_unconfirmed(&mut m, &[], Unconfirmed::ExtensionOff);
    assert_eq!(m[&Metric::Fds].verdict, Verdict::Leak);
    assert!(m[&Metric::Fds].reason.ends_with("extension is off)"));
}

#[test]
fn a_run_stopped_by_a_budget_says_so_where_it_could_not_confirm_or_judge() {
    let mut m = map(&[
        (Metric::Fds, Verdict::Leak),
        (Metric::Threads, Verdict::Inconclusive),
    ]);
    m.get_mut(&Metric::Threads).unwrap().reason =
        "too short: 0 samples after 2 warm-up iterations, at least 4 needed; run more iterations"
            .to_string();
    settle_unconfirmed(&mut m, &[], Unconfirmed::OverBudget { iteration: 3 });
    assert_eq!(m[&Metric::Fds].verdict, Verdict::Leak);
    assert!(
        m[&Metric::Fds].reason.ends_with(
            "(not confirmed at twice the iterations: the run stopped at iteration 3, over a budget)"
        ),
        "{}",
        m[&Metric::Fds].reason
    );
    assert_eq!(
        m[&Metric::Threads].reason,
        "too short: 0 samples after 2 warm-up iterations, at least 4 needed: the run stopped at \
         iteration 3, over a budget"
    );
}

#[test]
fn a_blind_run_is_neither_leak_nor_clean_and_fails_a_leak_check() {
    for seen in [Verdict::Leak, Verdict::Clean] {
        let mut run = Run::new("w", HeapScope::Thread);
        run.metrics = map(&[(Metric::HeapBlocks, seen), (Metric::Fds, Verdict::Clean)]);
        let run = blind(run, "thread scope: other threads moved memory");
        let m = &run.metrics[&Metric::HeapBlocks];
        assert_eq!(m.verdict, Verdict::Inconclusive);
        assert_eq!(m.shape, crate::model::Shape::Blind);
        assert!(m.reason.contains("use .isolated()"), "{}", m.reason);
        assert_eq!(run.verdict, Verdict::Inconclusive);
        let report = crate::model::Report::new(vec![run]);
        let failed = std::panic::catch_unwind(|| report.assert_no_leaks());
        assert!(failed.is_err(), "a check that could not see must not pass");
    }
}

#[test]
fn rss_gates_for_a_program_and_only_warns_in_process() {
    use SourceKind::*;
    assert!(!gates(Metric::RssBytes, HeapScope::Process, InProcess));
    assert!(!gates(Metric::RssBytes, HeapScope::None, InProcess));
    assert!(gates(Metric::RssBytes, HeapScope::None, Command));
    assert!(gates(Metric::RssBytes, HeapScope::None, Pid));
    assert!(gates(Metric::Fds, HeapScope::None, Pid));
    assert!(!gates(Metric::Fds, HeapScope::Thread, InProcess));
}

/// Samples every 50 ms whose RSS grows `per_second`, with a page of jitter.
fn timed(per_second: f64, seconds: f64) -> Vec<Sample> {
    let n = (seconds / 0.05) as u32;
    (0..=n)
        .map(|i| {
            let t = f64::from(i) * 0.05;
            Sample {
                iteration: i,
                elapsed_ms: t * 1e3,
                rss_bytes: Some(
                    (50e6 + per_second * t) as u64 / 4096 * 4096 + 4096 * u64::from(i % 3),
                ),
                fds: Some(7),
                threads: Some(3),
                ..Sample::default()
            }
        })
        .collect()
}

#[test]
fn a_time_series_is_judged_per_second_with_a_warmup_in_seconds() {
    let leak = judge_time_series(&timed(1e6, 6.0), None, SourceKind::Pid);
    let rss = &leak[&Metric::RssBytes];
    assert_eq!(rss.verdict, Verdict::Leak, "{}", rss.reason);
    assert!(rss.gating);
    assert_eq!(rss.slope_per_iteration, None);
    let slope = rss.slope_per_second.unwrap();
    assert!((0.95e6..1.05e6).contains(&slope), "{slope}");
    let [lo, hi] = rss.ci.unwrap();
    assert!(lo <= slope && slope <= hi);
    // Default warm-up: 20% of 6 s = 1.2 s = 24 samples of 50 ms.
    assert_eq!(rss.warmup, 24);
    assert!(
        rss.reason.contains("KiB/s") && rss.reason.contains("1.2 s"),
        "{}",
        rss.reason
    );

    let flat = judge_time_series(&timed(0.0, 6.0), Some(2.0), SourceKind::Command);
    let rss = &flat[&Metric::RssBytes];
    assert_eq!(rss.verdict, Verdict::Clean, "{}", rss.reason);
    assert_eq!(rss.warmup, 40);
    assert_eq!(flat[&Metric::Fds].verdict, Verdict::Clean);
}

#[test]
fn a_slow_time_series_is_not_a_leak_below_the_threshold_per_second() {
    // 1 KiB/s: below the 4 KiB/s threshold, whatever the sampling interval.
    let slow = judge_time_series(&timed(1024.0, 60.0), None, SourceKind::Pid);
    assert_ne!(slow[&Metric::RssBytes].verdict, Verdict::Leak);
}

/// `samples` through a store keeping at most `cap` of them, merged pairwise past it.
fn merged(samples: Vec<Sample>, cap: usize) -> Vec<Sample> {
    let mut store = crate::store::SampleStore::new(cap, cap);
    samples.into_iter().for_each(|s| store.push(s));
    store.finish()
}

#[test]
fn merged_time_samples_are_judged_per_second_of_what_they_span() {
    // 121 intervals of 50 ms kept in 16: 15 samples of 8 intervals, then a bucket of 1.
    let samples = merged(timed(1e6, 6.06), 16);
    assert_eq!(samples.len(), 17);
    assert_eq!((samples[1].span, samples[16].span), (8, 1));
    let leak = judge_time_series(&samples, None, SourceKind::Pid);
    let rss = &leak[&Metric::RssBytes];
    assert_eq!(rss.verdict, Verdict::Leak, "{}", rss.reason);
    let slope = rss.slope_per_second.unwrap();
    assert!((0.97e6..1.03e6).contains(&slope), "{slope}");
    assert!(rss.reason.contains("merged"), "{}", rss.reason);
    // The default warm-up, 20% of the 6 s judged, ends at the merged sample at 1.2 s
    // (`warmup` counts intervals, the `iteration` of a time sample, on every axis).
    let first_judged = samples.iter().find(|s| s.iteration == rss.warmup).unwrap();
    assert!((first_judged.elapsed_ms - 1200.0).abs() < 1e-6);

    // Below the threshold per second stays below it, however many intervals a sample holds.
    let slow = judge_time_series(&merged(timed(1024.0, 120.0), 16), None, SourceKind::Pid);
    assert_ne!(slow[&Metric::RssBytes].verdict, Verdict::Leak);
    let flat = judge_time_series(&merged(timed(0.0, 60.0), 16), None, SourceKind::Pid);
    assert_eq!(flat[&Metric::RssBytes].verdict, Verdict::Clean);
    assert_eq!(flat[&Metric::Fds].verdict, Verdict::Clean);
}

/// An idle look after `iterations` whose floors were `blocks` live blocks and `bytes` bytes,
/// taken for the metrics `held`.
fn look(iterations: u32, blocks: i64, bytes: i64, held: &[Metric]) -> IdleLook {
    IdleLook {
        iterations,
        sample: Sample {
            iteration: iterations,
            heap_blocks: Some(blocks),
            heap_bytes: Some(bytes),
            ..Sample::default()
        },
        waited: Duration::from_millis(250),
        held: held.to_vec(),
    }
}

fn leaking(verdict: Verdict) -> BTreeMap<Metric, MetricReport> {
    [Metric::HeapBlocks, Metric::HeapBytes]
        .into_iter()
        .map(|k| {
            let mut m = metric(verdict, true);
            m.growth = 100.0;
            m.after_warmup = 100.0;
            (k, m)
        })
        .collect()
}

fn idle_judged(
    mut metrics: BTreeMap<Metric, MetricReport>,
    before: Option<&IdleLook>,
    last: &IdleLook,
) -> BTreeMap<Metric, MetricReport> {
    let how = Judging::in_process(HeapScope::Process, None);
    idle_verdicts(&mut metrics, &[], &how, before, last);
    metrics
}

/// A series of 41 samples whose blocks are `blocks(iteration)`, and bytes 256 times that.
fn series(blocks: impl Fn(u32) -> i64) -> Vec<Sample> {
    (0..=40)
        .map(|i| Sample {
            iteration: i,
            heap_blocks: Some(blocks(i)),
            heap_bytes: Some(256 * blocks(i)),
            ..Sample::default()
        })
        .collect()
}

fn idle_judged_over(
    mut metrics: BTreeMap<Metric, MetricReport>,
    samples: &[Sample],
    before: Option<&IdleLook>,
    last: &IdleLook,
) -> BTreeMap<Metric, MetricReport> {
    for (metric, m) in metrics.iter_mut() {
        m.after_warmup = samples.first().and_then(|s| metric.of(s)).unwrap_or(0.0);
    }
    let how = Judging::in_process(HeapScope::Process, None);
    idle_verdicts(&mut metrics, samples, &how, before, last);
    metrics
}

#[test]
fn idle_looks_release_what_was_given_back_and_confirm_what_was_kept() {
    let both = [Metric::HeapBlocks, Metric::HeapBytes];
    // Nothing kept between the looks' floors, and the last is down to the lowest level the
    // series read after the warm-up: released, clean.
    let backlog = series(|i| 480 + 5 * i64::from(i));
    let m = idle_judged_over(
        leaking(Verdict::Leak),
        &backlog,
        Some(&look(20, 500, 64_000, &both)),
        &look(40, 480, 61_000, &both),
    );
    assert_eq!(m[&Metric::HeapBlocks].verdict, Verdict::Clean);
    assert_eq!(m[&Metric::HeapBlocks].shape, Shape::Released);
    // A block and 1 KiB per iteration kept: the leak the series shows is confirmed.
    let m = idle_judged(
        leaking(Verdict::Leak),
        Some(&look(20, 500, 64_000, &both)),
        &look(40, 520, 84_480, &both),
    );
    for metric in both {
        assert_eq!(m[&metric].verdict, Verdict::Leak, "{metric}");
        assert!(m[&metric].confirmed_within, "{metric}");
    }
    // Kept, but less than a leak needs (a block in 20 iterations of 400 allocations, under
    // the blocks' clean limit of 0.4 a iteration; 20 B per iteration): what the series shows
    // cannot be told from a backlog.
    let churn: Vec<Sample> = (0..40)
        .map(|i| Sample {
            iteration: i,
            allocations: Some(400),
            allocated_bytes: Some(40_000),
            ..Sample::default()
        })
        .collect();
    let mut m = leaking(Verdict::Leak);
    let how = Judging::in_process(HeapScope::Process, None);
    let (before, last) = (look(20, 500, 64_000, &both), look(40, 501, 64_400, &both));
    idle_verdicts(&mut m, &churn, &how, Some(&before), &last);
    for metric in both {
        assert_eq!(m[&metric].verdict, Verdict::Inconclusive, "{metric}");
    }
    // Without churn, a block kept in 20 iterations is above the blocks' limit (0).
    let m = idle_judged(leaking(Verdict::Leak), Some(&before), &last);
    assert_eq!(m[&Metric::HeapBlocks].verdict, Verdict::Leak);
    assert!(m[&Metric::HeapBlocks].confirmed_within);
}

/// A backlog another thread frees less often than a look lasts (every 500 ms): held at the
/// look after 20 iterations, freed during the look after 40. The floors then read the same
/// although a block per iteration was kept: "released", clean, exit 0 on a real leak. The
/// last floor is measured from the lowest level the series read instead.
#[test]
fn a_backlog_held_through_the_first_look_does_not_release_a_leak() {
    let both = [Metric::HeapBlocks, Metric::HeapBytes];
    // 100 blocks at rest, a block kept and a line buffered per iteration.
    let kept_and_buffered = series(|i| 100 + 2 * i64::from(i));
    let first = look(20, 140, 140 * 256, &both);
    let last = look(40, 140, 140 * 256, &both);
    let m = idle_judged_over(
        leaking(Verdict::Leak),
        &kept_and_buffered,
        Some(&first),
        &last,
    );
    for metric in both {
        assert_eq!(
            m[&metric].verdict,
            Verdict::Leak,
            "{metric}: {}",
            m[&metric].reason
        );
        assert_ne!(m[&metric].shape, Shape::Released, "{metric}");
    }
    // Above the lowest level by less than a leak needs: cannot be told, inconclusive.
    let m = idle_judged_over(
        leaking(Verdict::Leak),
        &series(|i| 10_000 + i64::from(i)),
        Some(&look(20, 10_001, 10_001 * 256, &both)),
        &look(40, 10_001, 10_001 * 256, &both),
    );
    let bytes = &m[&Metric::HeapBytes];
    assert_eq!(bytes.verdict, Verdict::Inconclusive, "{}", bytes.reason);
    assert!(bytes.reason.contains("cannot be told"), "{}", bytes.reason);
}

/// Two floors that kept memory do not make a leak of a series that could not tell, where
/// it says why memory is kept: a cache still filling (`decelerating`), or a process that
/// reclaims memory by running (it read below the first floor between the looks: epoch-based
/// reclamation, whose garbage waits for the next pin).
#[test]
fn looks_do_not_make_a_leak_of_a_cache_filling_or_of_floors_that_do_not_compare() {
    let both = [Metric::HeapBlocks, Metric::HeapBytes];
    let (first, last) = (look(20, 500, 64_000, &both), look(40, 520, 84_480, &both));
    let mut filling = leaking(Verdict::Inconclusive);
    for m in filling.values_mut() {
        m.shape = Shape::Decelerating;
    }
    let rising = series(|i| 480 + i64::from(i));
    let m = idle_judged_over(filling, &rising, Some(&first), &last);
    for metric in both {
        assert_eq!(m[&metric].verdict, Verdict::Inconclusive, "{metric}");
        assert!(m[&metric].reason.contains("a cache filling"), "{metric}");
    }
    let mut steps = leaking(Verdict::Inconclusive);
    for m in steps.values_mut() {
        m.shape = Shape::Steps;
    }
    let wandering = series(|i| if i == 30 { 160 } else { 3_000 + i64::from(i) });
    let m = idle_judged_over(steps.clone(), &wandering, Some(&first), &last);
    for metric in both {
        assert_eq!(m[&metric].verdict, Verdict::Inconclusive, "{metric}");
        assert!(!m[&metric].confirmed_within, "{metric}");
    }
    // Never below the first floor: the floors compare, and what they kept decides.
    let m = idle_judged_over(steps, &rising, Some(&first), &last);
    for metric in both {
        assert_eq!(m[&metric].verdict, Verdict::Leak, "{metric}");
        assert!(m[&metric].confirmed_within, "{metric}");
    }
}

/// Looks never overturn a series that saw growth stop: a cache filling between them keeps
/// memory too. One that leaked at the look before and can no longer tell (level shifts) is
/// decided by what was kept.
#[test]
fn idle_looks_never_make_a_leak_of_a_series_that_saw_growth_stop() {
    let both = [Metric::HeapBlocks, Metric::HeapBytes];
    let before = look(20, 500, 64_000, &both);
    let last = look(40, 520, 84_480, &both);
    let m = idle_judged(leaking(Verdict::Clean), Some(&before), &last);
    for metric in both {
        assert_eq!(m[&metric].verdict, Verdict::Clean, "{metric}");
        assert!(!m[&metric].confirmed_within, "{metric}");
    }
    let m = idle_judged(leaking(Verdict::Inconclusive), Some(&before), &last);
    for metric in both {
        assert_eq!(m[&metric].verdict, Verdict::Leak, "{metric}");
        assert!(m[&metric].confirmed_within, "{metric}");
    }
    // Not held at the look before: the series could not tell, and the looks do not decide.
    let fresh = look(20, 500, 64_000, &[]);
    let m = idle_judged(leaking(Verdict::Inconclusive), Some(&fresh), &last);
    assert_eq!(m[&Metric::HeapBlocks].verdict, Verdict::Inconclusive);
    // A metric that does not gate is not judged by looks at all.
    let mut rss = leaking(Verdict::Leak);
    for m in rss.values_mut() {
        m.gating = false;
    }
    let m = idle_judged(rss, Some(&before), &look(40, 480, 63_000, &both));
    assert_eq!(m[&Metric::HeapBlocks].verdict, Verdict::Leak);
    assert!(held(&m, Some(&before), true).is_empty());
}

/// With one look only, growth given back to the lowest level after the warm-up cannot be
/// told from a smaller leak; above it, the series stands.
#[test]
fn a_single_look_back_to_the_lowest_level_is_inconclusive() {
    let both = [Metric::HeapBlocks, Metric::HeapBytes];
    let samples: Vec<Sample> = [120, 90, 130, 150]
        .into_iter()
        .enumerate()
        .map(|(i, blocks)| Sample {
            iteration: i as u32,
            heap_blocks: Some(blocks),
            heap_bytes: Some(blocks * 100),
            ..Sample::default()
        })
        .collect();
    let how = Judging::in_process(HeapScope::Process, None);
    let mut m = leaking(Verdict::Leak);
    idle_verdicts(&mut m, &samples, &how, None, &look(3, 95, 9_500, &both));
    assert_eq!(m[&Metric::HeapBlocks].verdict, Verdict::Leak);
    idle_verdicts(&mut m, &samples, &how, None, &look(3, 90, 9_000, &both));
    assert_eq!(m[&Metric::HeapBlocks].verdict, Verdict::Inconclusive);
}

/// A FIFO cache of 500 entries over 800 random keys, 20 lookups per iteration, measured at
/// 40 iterations (it is full at 39): the bytes grow in the lumps of its table doubling and
/// read as linear growth, while the blocks' growth is still slowing down.
#[test]
fn bytes_growing_while_the_blocks_still_fill_like_a_cache_are_not_a_leak_yet() {
    let bytes = [
        46095, 47651, 49203, 51543, 52259, 52475, 52679, 58155, 58359, 58515, 58695, 58875, 59055,
        59211, 67827, 68007, 70211, 70403, 70607, 70763, 70907, 71063, 71195, 71327, 71471, 71615,
        71771, 71891, 72023, 72155, 72287, 72395, 89399, 89483, 89591, 89675, 89759, 89831, 89903,
        89999, 89999,
    ];
    let blocks = [
        99, 120, 140, 159, 176, 194, 211, 230, 247, 260, 275, 290, 305, 318, 332, 347, 360, 376,
        393, 406, 418, 431, 442, 453, 465, 477, 490, 500, 511, 522, 533, 542, 551, 558, 567, 574,
        581, 587, 593, 601, 601,
    ];
    let samples: Vec<Sample> = (0..bytes.len())
        .map(|i| Sample {
            iteration: i as u32,
            heap_bytes: Some(bytes[i]),
            heap_blocks: Some(blocks[i]),
            allocated_bytes: (i > 0).then_some(2_500),
            allocations: (i > 0).then_some(40),
            ..Sample::default()
        })
        .collect();
    let metrics = judge(&samples, &Judging::in_process(HeapScope::Process, None));
    let blocks = &metrics[&Metric::HeapBlocks];
    assert_eq!(blocks.shape, Shape::Decelerating, "{blocks:#?}");
    let bytes = &metrics[&Metric::HeapBytes];
    assert_eq!(bytes.verdict, Verdict::Inconclusive, "{bytes:#?}");
    assert!(
        bytes.reason.contains("like a cache filling"),
        "{}",
        bytes.reason
    );
}

/// A program's heap blocks in time, sampled every 100 ms with 2,000 allocations in each
/// interval, wandering within 40 blocks with no trend (a collector's backlog): clean, with
/// the clean limit of an iteration's blocks per interval. With a limit of 0 per second it
/// was clean or inconclusive on the sign of a bound.
#[test]
fn a_program_s_heap_blocks_in_time_are_clean_within_the_churn_s_limit() {
    let mut state = 7u64;
    let samples: Vec<Sample> = (0..=200u32)
        .map(|i| Sample {
            iteration: i,
            elapsed_ms: f64::from(i) * 100.0,
            heap_bytes: Some(1 << 20),
            heap_blocks: Some(
                5000 + {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((state >> 33) % 41) as i64
                },
            ),
            allocated_bytes: (i > 0).then_some(64_000),
            allocations: (i > 0).then_some(2_000),
            ..Sample::default()
        })
        .collect();
    let metrics = judge_time_series(&samples, None, SourceKind::Command);
    let blocks = &metrics[&Metric::HeapBlocks];
    assert_eq!(blocks.verdict, Verdict::Clean, "{}", blocks.reason);
}

/// A program idle for 4 s, then keeping a block every ~2 ms (an evaluator's, sampled every
/// 100 ms, exactly as read): the rise after the idle stretch is steady growth, not two level
/// shifts. It was "two steps, at 5.0 s and 6.5 s, flat between" (inconclusive, exit 0) in 2
/// runs of 9, though every sample after 4 s is above the one before.
#[test]
fn steady_growth_after_an_idle_stretch_is_no_level_shift() {
    let blocks: [i64; 40] = [
        27, 46, 81, 125, 172, 218, 255, 291, 316, 331, 372, 407, 449, 491, 524, 546, 587, 618, 654,
        701, 747, 795, 843, 887, 935, 983, 1031, 1079, 1127, 1175, 1224, 1272, 1320, 1367, 1406,
        1454, 1496, 1518, 1543, 1589,
    ];
    let samples: Vec<Sample> = (0..79u32)
        .map(|i| {
            let b = if i < 39 { 0 } else { blocks[i as usize - 39] };
            Sample {
                iteration: i,
                elapsed_ms: 100.0 * f64::from(i) + 6.0,
                heap_blocks: Some(b),
                heap_bytes: Some(80 * b),
                ..Sample::default()
            }
        })
        .collect();
    let how = Judging {
        axis: XAxis::Second,
        scope: HeapScope::Program,
        source: SourceKind::Command,
        warmup: None,
        process_alone: false,
    };
    let metrics = judge(&samples, &how);
    for metric in [Metric::HeapBlocks, Metric::HeapBytes] {
        let m = &metrics[&metric];
        assert_eq!(m.verdict, Verdict::Leak, "{metric}: {}", m.reason);
    }
}

/// RSS growing past the whole counted heap gates; within it, or beside a heap that is still
/// filling (a cache: heap bytes inconclusive), it stays a warning. A filling cache of short
/// strings takes 32 B chunks for 8 B of heap each: its RSS outgrows its heap bytes.
#[test]
fn rss_past_the_counted_heap_gates_only_beside_a_clean_heap() {
    let samples: Vec<Sample> = (0..=20u32)
        .map(|i| Sample {
            iteration: i,
            heap_bytes: Some(1 << 20),
            heap_peak_bytes: Some(1 << 20),
            heap_blocks: Some(1000),
            ..Sample::default()
        })
        .collect();
    let judged = |heap: Verdict, growth: f64| {
        let mut metrics = BTreeMap::new();
        metrics.insert(Metric::HeapBytes, metric(heap, true));
        metrics.insert(Metric::HeapBlocks, metric(Verdict::Clean, true));
        metrics.insert(
            Metric::RssBytes,
            MetricReport {
                growth,
                ..metric(Verdict::Leak, false)
            },
        );
        rss_outside_heap(&samples, &mut metrics);
        metrics.remove(&Metric::RssBytes).unwrap()
    };
    // 1 MiB of heap and 1000 blocks (31 KiB of chunks): the bound is about 2.03 MiB.
    let past = judged(Verdict::Clean, 3.0 * 1048576.0);
    assert!(past.gating, "{}", past.reason);
    assert!(
        past.reason.contains("outside profiler::Alloc"),
        "{}",
        past.reason
    );
    let within = judged(Verdict::Clean, 1.9 * 1048576.0);
    assert!(!within.gating, "{}", within.reason);
    assert!(
        within.reason.contains("within what the counted heap"),
        "{}",
        within.reason
    );
    let filling = judged(Verdict::Inconclusive, 3.0 * 1048576.0);
    assert!(!filling.gating, "{}", filling.reason);
    assert_eq!(filling.reason, "r");
}
