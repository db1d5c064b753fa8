//! Ctrl-C or SIGTERM that arrives after a workload's last iteration (while it is judged, or
//! between workloads) still ends the session as interrupted: exit 130, the workloads left
//! named, no baseline saved. It was lost: the rest were skipped in silence and the exit
//! followed the verdicts so far, saving the partial report as the baseline on exit 0.
//!
//! `harness = false`: the interrupt request is process-wide, no other test may share it.

use std::sync::Arc;

use profiler::options::Settings;
use profiler::session::Session;
use profiler::{Expected, Outcome, Workload};

fn main() {
    const ITERATIONS: u32 = 6;
    let catalog = Arc::new(vec![
        Workload::new(
            "first",
            "asks to stop in its last iteration",
            Expected::Clean,
            || {
                let mut calls = 0;
                Ok(move || {
                    calls += 1;
                    if calls == ITERATIONS {
                        profiler::interrupt::request();
                    }
                })
            },
        ),
        Workload::new("second", "never reached", Expected::Clean, || Ok(|| ())),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let baseline = dir.path().join("baseline.json");
    let settings = Settings {
        iterations: ITERATIONS,
        extend: false,
        save_baseline: Some(baseline.clone()),
        ..Settings::default()
    };
    let session = Session::prepare(&catalog, settings).unwrap();
    let report = session.run(|_| |_| {}).unwrap();
    assert_eq!(report.runs.len(), 1, "the second workload ran");
    let run = &report.runs[0];
    assert_eq!(run.iterations, ITERATIONS);
    assert!(
        run.source
            .notes
            .iter()
            .any(|n| n.contains("interrupted: second")),
        "{:?}",
        run.source.notes
    );
    let finished = session.finish(&report);
    assert_eq!(finished.outcome, Outcome::Interrupted);
    assert!(
        !baseline.exists(),
        "an interrupted session saved its baseline"
    );
    println!("interrupted_between: ok");
}
