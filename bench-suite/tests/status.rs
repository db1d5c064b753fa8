//! One status in every output: for each exit code (0, 1, 2, 3, 130) the Markdown headline, the
//! text summary and `profile plot`'s overview word what `Report::decision` decided, and the
//! session's exit 2 for an output that could not be written is never printed as "passed".

use std::path::Path;
use std::process::Output;
use std::sync::Arc;

use assert_cmd::Command;
use profiler::options::{Outputs, Settings};
use profiler::report::{End, Failure, FailureKind, HeapScope, TextOptions};
use profiler::session::{Outcome, Session};
use profiler::{Expected, Progress, Report, Run, Sample, Verdict, Workload};

/// A run of `verdict` with a few flat samples (enough to draw).
fn run(name: &str, verdict: Verdict) -> Run {
    let samples = (0..=10)
        .map(|i| Sample {
            iteration: i,
            elapsed_ms: f64::from(i),
            fds: Some(5),
            threads: Some(1),
            ..Sample::default()
        })
        .collect();
    Run {
        iterations: 10,
        samples,
        verdict,
        ..Run::new(name, HeapScope::None)
    }
}

fn report(runs: Vec<Run>, fail_on_inconclusive: bool) -> Report {
    let mut report = Report::new(runs);
    report.fail_on_inconclusive = fail_on_inconclusive;
    report
}

/// The one `overall:` line of the text summary.
fn overall_line(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("overall: "))
        .collect();
    assert_eq!(lines.len(), 1, "one overall line in:\n{text}");
    lines[0].to_string()
}

/// The Markdown headline and the text summary say what the decision says, with its exit code;
/// only exit 0 reads as passed; a saved report reproduces its status.
fn check(report: &Report, code: u8, headline_starts: &str) {
    let decision = report.decision();
    assert_eq!(decision.outcome.code(), code, "{decision:?}");
    assert_eq!(report.outcome(), decision.outcome);
    assert!(
        decision.headline.starts_with(headline_starts),
        "{decision:?}"
    );
    let passed = code == 0;
    assert_eq!(decision.outcome.passed(), passed);

    let markdown = report.to_markdown();
    let headline = markdown.lines().next().unwrap();
    assert!(headline.starts_with("## Leak check: "), "{markdown}");
    assert!(
        headline.ends_with(&format!(" {} (exit {code})", decision.headline)),
        "{headline}"
    );
    assert_eq!(headline.contains("passed"), passed, "{headline}");
    assert_eq!(
        headline.contains('✅') || headline.contains('⚠'),
        passed,
        "{headline}"
    );
    assert_eq!(headline.contains('❌'), matches!(code, 1..=3), "{headline}");

    let text = report.to_text(&TextOptions::default());
    assert_eq!(
        overall_line(&text),
        format!("overall: {} (exit {code})", decision.headline)
    );
    // The session's own status, when no output failed, changes nothing.
    let as_session = report.to_text(&TextOptions {
        exit: Some(decision.outcome),
        ..TextOptions::default()
    });
    assert_eq!(as_session, text);

    let saved = Report::from_json(&report.to_json().unwrap()).unwrap();
    assert_eq!(saved.decision(), decision);
}

#[test]
fn exit_0_clean_and_inconclusive_without_the_flag() {
    check(&report(vec![run("w", Verdict::Clean)], false), 0, "passed");
    let inconclusive = report(vec![run("w", Verdict::Inconclusive)], false);
    check(&inconclusive, 0, "passed, some verdicts inconclusive");
    assert!(
        inconclusive
            .to_markdown()
            .starts_with("## Leak check: ⚠️ passed")
    );
}

#[test]
fn exit_1_from_a_leak_and_from_fail_on_inconclusive() {
    let leak = report(
        vec![run("a", Verdict::Clean), run("b", Verdict::Leak)],
        false,
    );
    check(&leak, 1, "failed: a leak");
    // The Markdown said "passed, some verdicts inconclusive" here while the exit was 1.
    let inconclusive = report(vec![run("w", Verdict::Inconclusive)], true);
    check(
        &inconclusive,
        1,
        "failed: an inconclusive verdict (--fail-on-inconclusive)",
    );
}

#[test]
fn exit_3_from_a_failed_workload() {
    let mut failed = run("w", Verdict::Inconclusive);
    failed.failure = Some(Failure::new(FailureKind::Panic, 3, "malformed record 3"));
    check(&report(vec![failed], true), 3, "failed: a workload");
}

#[test]
fn exit_130_from_an_interrupted_run() {
    // The Markdown said "✅ passed" and the text "overall: clean" here while the exit was 130.
    let mut interrupted = run("w", Verdict::Clean);
    interrupted.source.end = Some(End::Interrupted);
    let report = report(vec![interrupted, run("v", Verdict::Leak)], false);
    check(&report, 130, "interrupted");
}

/// Exit 2 makes no report of its own, but an output that cannot be written (here the step
/// summary, a directory) makes the session's exit 2 on top of the report's status.
/// Outputs that pass the checks before the run; `spoil` then makes the step summary one
/// that cannot be written (a directory in its place).
fn unwritable_outputs(dir: &Path) -> Outputs {
    Outputs {
        markdown: Some(dir.join("summary.md")),
        step_summary: Some(dir.join("step.md")),
        ..Outputs::default()
    }
}

fn spoil(dir: &Path) {
    std::fs::create_dir(dir.join("step.md")).unwrap();
}

#[test]
fn exit_2_from_an_output_that_cannot_be_written_is_not_printed_as_passed() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Arc::new(vec![Workload::new(
        "steady",
        "does nothing",
        Expected::Clean,
        || Ok(|| {}),
    )]);
    let settings = Settings {
        workloads: vec!["steady".into()],
        iterations: 10,
        extend: false,
        outputs: unwritable_outputs(dir.path()),
        ..Settings::default()
    };
    let session = Session::prepare(&catalog, settings).unwrap();
    spoil(dir.path());
    let report = session.run(|_| |_: Progress| {}).unwrap();
    let finished = session.finish(&report);
    assert_eq!(finished.outcome, Outcome::Usage, "{finished:?}");
    assert_eq!(finished.outcome.code(), 2);
    assert!(!finished.errors.is_empty());
    // The report alone does not know (its Markdown was written before the step summary
    // failed); what the CLI prints after `finish` does.
    assert!(matches!(report.outcome(), Outcome::Clean | Outcome::Leak));
    let text = report.to_text(&TextOptions {
        exit: Some(finished.outcome),
        ..TextOptions::default()
    });
    let overall = overall_line(&text);
    assert!(
        overall.ends_with("an output could not be written (exit 2)"),
        "{overall}"
    );
    assert!(overall.starts_with("overall: failed: "), "{overall}");
    assert!(!text.contains("passed"), "{text}");
}

/// The real `profile` binary.
fn profile() -> Command {
    let mut cmd = Command::cargo_bin("profile").expect("the profile binary");
    cmd.env("NO_COLOR", "1")
        .env_remove("GITHUB_STEP_SUMMARY")
        .env_remove("RUST_LOG");
    cmd
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn the_profile_binary_prints_and_writes_the_status_it_exits_with() {
    let dir = tempfile::tempdir().unwrap();
    let md = dir.path().join("summary.md");
    let json = dir.path().join("r.json");
    // Often inconclusive (one step in the heap), sometimes clean: exit 1 or 0.
    let out = profile()
        .args(["-w", "hashmap-churn", "-n", "10", "--no-extend"])
        .args(["--fail-on-inconclusive", "--markdown"])
        .arg(&md)
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    let code = out.status.code().expect("an exit code");
    assert!(matches!(code, 0 | 1), "{out:?}");
    let saved = Report::read_json(&json).unwrap();
    let decision = saved.decision();
    assert_eq!(i32::from(decision.outcome.code()), code);
    assert_eq!(
        overall_line(&stdout(&out)),
        format!("overall: {} (exit {code})", decision.headline)
    );
    let summary = std::fs::read_to_string(&md).unwrap();
    assert!(
        summary
            .lines()
            .next()
            .unwrap()
            .ends_with(&format!(" {} (exit {code})", decision.headline)),
        "{summary}"
    );

    // The same run with an output that cannot be written (a run's figure, named after the
    // run, is a link to where nothing can be): exit 2, and nothing printed says it passed.
    std::os::unix::fs::symlink(
        dir.path().join("no/such/dir.png"),
        dir.path().join("p-hashmap-churn.png"),
    )
    .unwrap();
    let out = profile()
        .args(["-w", "hashmap-churn", "-w", "lru-cache", "-n", "10"])
        .args(["--no-extend", "--markdown"])
        .arg(&md)
        .arg("--plot")
        .arg(dir.path().join("p.png"))
        .output()
        .unwrap();
    let printed = stdout(&out);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(!printed.contains("passed"), "{printed}");
    let overall = overall_line(&printed);
    assert!(
        overall.ends_with("an output could not be written (exit 2)"),
        "{overall}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("error: "));
}

#[test]
fn profile_plot_draws_the_saved_reports_status() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    // Saved under --fail-on-inconclusive: the overview must say failed (exit 1), not passed.
    let saved = report(
        vec![run("a", Verdict::Clean), run("b", Verdict::Inconclusive)],
        true,
    );
    saved.write_json(&json).unwrap();
    let svg = dir.path().join("plot.svg");
    let out = profile()
        .arg("plot")
        .arg(&json)
        .arg("-o")
        .arg(&svg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let picture = std::fs::read_to_string(&svg).unwrap();
    let headline = saved.decision().headline;
    assert!(
        picture.contains(&format!("leak check: {headline} (exit 1)")),
        "{headline} not in the overview"
    );
    assert!(!picture.contains("passed"));
}
