//! The CI gate through real binaries: budgets, baselines (and what must never overwrite
//! one), the Markdown summary and GITHUB_STEP_SUMMARY.

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;

/// The fixture catalog: `allocates` allocates FIXTURE_BYTES per iteration (default 100,000).
fn fixture() -> Command {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_profile"));
    let path = bin
        .parent()
        .unwrap()
        .join("examples")
        .join("fixture_catalog");
    let mut cmd = Command::new(path);
    cmd.env("NO_COLOR", "1").env_remove("GITHUB_STEP_SUMMARY");
    cmd
}

fn run(cmd: &mut Command, code: i32) -> Output {
    let out = cmd.output().expect("ran");
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn allocates(bytes: u64) -> Command {
    let mut cmd = fixture();
    cmd.env("FIXTURE_BYTES", bytes.to_string())
        .args(["--workload", "allocates", "-n", "10"]);
    cmd
}

#[test]
fn budgets_fail_the_run_with_the_iteration_and_the_amount() {
    let out = run(allocates(100_000).args(["--max-peak", "50KB"]), 1);
    let t = text(&out);
    assert!(t.contains("exceeds --max-peak 48.8 KiB"), "{t}");
    assert!(t.contains("in iteration "), "{t}");
    let out = run(allocates(100_000).args(["--max-allocated", "64KiB"]), 1);
    let t = text(&out);
    // 100,000 B per iteration (the first iteration may add a few bytes of lazy setup).
    assert!(t.contains("bytes allocated in one iteration 97."), "{t}");
    assert!(t.contains("exceeds --max-allocated 64.0 KiB"), "{t}");
    run(
        allocates(100_000).args([
            "--max-peak",
            "1MiB",
            "--max-allocated",
            "1MiB",
            "--max-rss",
            "4GiB",
        ]),
        0,
    );
    run(allocates(100_000).args(["--max-rss", "1KB"]), 1);
    let out = run(allocates(100_000).args(["--max-peak", "lots"]), 2);
    assert!(text(&out).contains("--max-peak"), "{}", text(&out));
}

#[test]
fn a_regression_against_the_baseline_exits_1_and_never_replaces_it() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.json");
    run(allocates(100_000).arg("--save-baseline").arg(&base), 0);
    let saved = std::fs::read(&base).unwrap();

    // 20% more per iteration: a regression, with the metric, old and new values.
    let out = run(
        allocates(120_000)
            .arg("--baseline")
            .arg(&base)
            .arg("--save-baseline")
            .arg(&base),
        1,
    );
    let t = text(&out);
    assert!(
        t.contains("regression: bytes allocated per iteration 97.7 KiB -> 117.2 KiB (+20.0%"),
        "{t}"
    );
    assert!(t.contains("baseline not saved"), "{t}");
    assert_eq!(
        std::fs::read(&base).unwrap(),
        saved,
        "the failed run left the baseline alone"
    );

    // A wider tolerance lets the same change pass; a smaller amount is an improvement.
    run(
        allocates(120_000).arg("--baseline").arg(&base).args([
            "--tolerance",
            "allocated=25%",
            "--tolerance",
            "peak=25%",
        ]),
        0,
    );
    let out = run(allocates(50_000).arg("--baseline").arg(&base), 0);
    assert!(
        text(&out).contains("improvement: bytes allocated per iteration"),
        "{}",
        text(&out)
    );

    // Workloads on one side only are named, not errors.
    let out = run(
        fixture()
            .args(["-w", "panics-at-3", "-n", "10", "--baseline"])
            .arg(&base),
        3,
    );
    let t = text(&out);
    assert!(
        t.contains("not run this time (in the baseline): allocates"),
        "{t}"
    );
    assert!(t.contains("new (not in the baseline): panics-at-3"), "{t}");
}

#[test]
fn in_process_rss_above_the_baseline_only_warns() {
    // In process, RSS is the whole process's: a loaded baseline, the samples kept for more
    // iterations and the other workloads all raise it, and an unchanged catalog re-run
    // against its own baseline failed on "peak RSS 8.3 MiB -> 10.6 MiB" half the time.
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.json");
    run(allocates(100_000).arg("--save-baseline").arg(&base), 0);
    let mut report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&base).unwrap()).unwrap();
    for sample in report["runs"][0]["samples"].as_array_mut().unwrap() {
        let rss = sample["rss_bytes"].as_u64().unwrap();
        sample["rss_bytes"] = (rss / 16).into();
        // RSS is compared without the pages of mapped files: scaled with it.
        let file = sample["rss_file_bytes"].as_u64().unwrap();
        sample["rss_file_bytes"] = (file / 16).into();
    }
    std::fs::write(&base, serde_json::to_vec(&report).unwrap()).unwrap();
    // RSS less mapped files is about 1.6 MiB here, under the default 2 MiB floor.
    let out = run(
        allocates(100_000)
            .args(["--tolerance", "rss=64KiB", "--baseline"])
            .arg(&base),
        0,
    );
    let t = text(&out);
    assert!(t.contains("regression, warning only: peak RSS"), "{t}");
    assert!(!t.contains("regression: peak RSS"), "{t}");
}

#[test]
fn two_outputs_or_an_output_and_the_baseline_on_one_file_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.json");
    run(allocates(100_000).arg("--save-baseline").arg(&base), 0);
    let saved = std::fs::read(&base).unwrap();
    // A report written over the baseline it is compared with replaced a good baseline.
    let out = run(
        allocates(120_000)
            .arg("--baseline")
            .arg(&base)
            .arg("--json")
            .arg(dir.path().join(".").join("base.json")),
        2,
    );
    assert!(
        text(&out).contains("invalid --baseline: names the same file as --json"),
        "{}",
        text(&out)
    );
    assert_eq!(std::fs::read(&base).unwrap(), saved);
    let same = dir.path().join("same.out");
    let out = run(
        allocates(100_000)
            .arg("--json")
            .arg(&same)
            .arg("--csv")
            .arg(&same),
        2,
    );
    assert!(text(&out).contains("invalid --csv: names the same file as --json"));
    // Saving over the baseline compared with is how a gate moves on.
    run(
        allocates(100_000)
            .arg("--baseline")
            .arg(&base)
            .arg("--save-baseline")
            .arg(&base),
        0,
    );
}

#[test]
fn a_baseline_that_compares_nothing_is_exit_2_and_not_replaced() {
    // A program's run is named by its command: `./prog 200` against a baseline of
    // `./prog 100` compared nothing and passed as "new".
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.json");
    run(allocates(100_000).arg("--save-baseline").arg(&base), 0);
    let saved = std::fs::read(&base).unwrap();
    let out = run(
        fixture()
            .args(["-w", "noop", "-n", "10", "--baseline"])
            .arg(&base),
        2,
    );
    let t = text(&out);
    assert!(
        t.contains("failed: nothing was compared with the baseline")
            && t.contains("which holds runs of another workload or kind: allocates"),
        "{t}"
    );
    assert_eq!(std::fs::read(&base).unwrap(), saved);
    // Quiet, as a CI gate runs it, the reason is still said (it used to be exit 2 and
    // nothing at all).
    let out = run(
        fixture()
            .args(["-q", "-w", "noop", "-n", "10", "--baseline"])
            .arg(&base),
        2,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("error: nothing was compared with the baseline"),
        "{}",
        text(&out)
    );
    // Saved over the same baseline, a new workload is added to it (the others kept).
    run(
        fixture()
            .args(["-w", "noop", "-n", "10", "--baseline"])
            .arg(&base)
            .arg("--save-baseline")
            .arg(&base),
        0,
    );
    let both = String::from_utf8(std::fs::read(&base).unwrap()).unwrap();
    assert!(both.contains("\"allocates\"") && both.contains("\"noop\""));
    // Two copies at once are another kind of run than one: not compared with it (threads
    // 2 -> 4 was once a "regression").
    let out = run(
        allocates(100_000)
            .args(["--concurrency", "2", "--baseline"])
            .arg(&base),
        2,
    );
    assert!(
        text(&out).contains("nothing was compared"),
        "{}",
        text(&out)
    );
    // K copies compare with the same K only.
    let k2 = dir.path().join("k2.json");
    run(
        allocates(100_000)
            .args(["--concurrency", "2", "--save-baseline"])
            .arg(&k2),
        0,
    );
    run(
        allocates(100_000)
            .args(["--concurrency", "4", "--baseline"])
            .arg(&k2),
        2,
    );
}

#[test]
fn saving_some_workloads_over_their_baseline_keeps_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.json");
    let names = |path: &Path| -> Vec<String> {
        let report: serde_json::Value =
            serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        report["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["workload"].as_str().unwrap().to_string())
            .collect()
    };
    run(
        allocates(100_000)
            .args(["-w", "noop", "--save-baseline"])
            .arg(&base),
        0,
    );
    assert_eq!(names(&base), ["allocates", "noop"]);
    run(
        allocates(100_000)
            .arg("--baseline")
            .arg(&base)
            .arg("--save-baseline")
            .arg(&base),
        0,
    );
    assert_eq!(
        names(&base),
        ["allocates", "noop"],
        "noop's run was dropped"
    );
    // Saved elsewhere, a baseline holds what this run ran.
    let other = dir.path().join("other.json");
    run(
        allocates(100_000)
            .arg("--baseline")
            .arg(&base)
            .arg("--save-baseline")
            .arg(&other),
        0,
    );
    assert_eq!(names(&other), ["allocates"]);
}

#[test]
fn a_bad_baseline_exits_2_naming_the_file_and_is_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.json");
    run(allocates(1_000).arg("--json").arg(&good), 0);
    let good_text = std::fs::read_to_string(&good).unwrap();
    let cases: Vec<(&str, String, &str)> = vec![
        ("empty.json", String::new(), "empty"),
        (
            "truncated.json",
            good_text[..good_text.len() / 2].to_string(),
            "truncated",
        ),
        ("not-json.json", "plain words".into(), "not JSON"),
        (
            "other-version.json",
            good_text.replacen("\"schema_version\": 1", "\"schema_version\": 99", 1),
            "schema_version 99",
        ),
        (
            "other-tool.json",
            good_text.replacen("\"name\": \"profiler\"", "\"name\": \"heaptrack\"", 1),
            "heaptrack",
        ),
        (
            "negative.json",
            good_text.replacen("\"allocated_bytes\": 1000", "\"allocated_bytes\": -1000", 1),
            "negative",
        ),
    ];
    for (name, content, expected) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, &content).unwrap();
        let out = run(
            allocates(1_000)
                .arg("--baseline")
                .arg(&path)
                .arg("--save-baseline")
                .arg(&path),
            2,
        );
        let t = text(&out);
        assert!(t.contains(name) && t.contains(expected), "{name}: {t}");
        assert!(!t.contains("panicked"), "{name}: {t}");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            content,
            "{name} was modified"
        );
    }
    let out = run(
        allocates(1_000).args(["--baseline", "/nonexistent/base.json"]),
        2,
    );
    assert!(text(&out).contains("/nonexistent/base.json"));
    let out = run(
        allocates(1_000)
            .args(["--tolerance", "speed=5%", "--baseline"])
            .arg(&good),
        2,
    );
    assert!(text(&out).contains("--tolerance"));
}

#[test]
fn the_markdown_summary_is_written_and_appended_to_the_step_summary() {
    let dir = tempfile::tempdir().unwrap();
    let md = dir.path().join("summary.md");
    let step: &Path = &dir.path().join("step.md");
    std::fs::write(step, "# earlier step\n").unwrap();
    run(
        allocates(100_000)
            .env("GITHUB_STEP_SUMMARY", step)
            .args(["--max-peak", "50KB", "--markdown"])
            .arg(&md),
        1,
    );
    let summary = std::fs::read_to_string(&md).unwrap();
    assert!(summary.contains("| workload | verdict |"), "{summary}");
    assert!(summary.contains("`allocates`"), "{summary}");
    assert!(summary.contains("❌ --max-peak"), "{summary}");
    assert!(summary.contains("## Leak check: ❌ failed"), "{summary}");
    let appended = std::fs::read_to_string(step).unwrap();
    assert!(appended.starts_with("# earlier step\n") && appended.ends_with(&summary));
}

/// A budget already exceeded ends the run at once: no extension to 8x the iterations.
#[test]
fn an_exceeded_budget_stops_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let out = Command::cargo_bin("profile")
        .unwrap()
        .args(["-w", "box-leak", "-n", "20", "--max-peak", "8KiB", "--json"])
        .arg(&json)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let run = &report["runs"][0];
    let n = run["iterations"].as_u64().unwrap();
    assert!(
        n < 20,
        "stopped when the peak passed 8 KiB, not after {n} iterations"
    );
    assert_eq!(run["budgets"][0]["exceeded"], true);
}

/// --max-iterations equal to --iterations leaves no room to confirm: the leak is reported as
/// found (saying it is unconfirmed), as with --no-extend; the two flags together are refused.
#[test]
fn no_room_to_extend_reports_the_leak_unconfirmed() {
    let out = run(
        Command::cargo_bin("profile").unwrap().args([
            "-w",
            "box-leak",
            "-n",
            "10",
            "--max-iterations",
            "10",
        ]),
        1,
    );
    assert!(text(&out).contains("not confirmed"), "{}", text(&out));
    let out = run(
        Command::cargo_bin("profile").unwrap().args([
            "-w",
            "box-leak",
            "--no-extend",
            "--max-iterations",
            "50",
        ]),
        2,
    );
    assert!(text(&out).contains("--max-iterations"), "{}", text(&out));
}

/// A run stopped by a budget reports the leak it saw (no checkpoint was reached, so nothing
/// could be confirmed): the verdict stays leak, it is not turned inconclusive.
#[test]
fn a_budget_stop_keeps_the_leak_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    run(
        Command::cargo_bin("profile")
            .unwrap()
            .args(["-w", "box-leak", "--max-peak", "12KiB", "--json"])
            .arg(&json),
        1,
    );
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(
        report["runs"][0]["metrics"]["heap_blocks"]["verdict"],
        "leak"
    );
    assert_eq!(report["runs"][0]["verdict"], "leak");
}

/// One picture that cannot be written does not cost the others, and a run whose outputs
/// failed (exit 2) never becomes the baseline.
#[test]
fn a_failed_picture_keeps_the_others_and_the_old_baseline() {
    let dir = tempfile::tempdir().unwrap();
    // A link to where nothing can be written (a directory in the way is stepped around).
    std::os::unix::fs::symlink(
        dir.path().join("no/such/dir.png"),
        dir.path().join("p-allocates.png"),
    )
    .unwrap();
    let base = dir.path().join("base.json");
    let out = fixture()
        .args([
            "-w",
            "allocates",
            "-w",
            "slow",
            "-n",
            "5",
            "--no-extend",
            "-q",
            "--plot",
        ])
        .arg(dir.path().join("p.png"))
        .arg("--save-baseline")
        .arg(&base)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("p-allocates.png"), "{}", text(&out));
    assert!(
        dir.path().join("p-slow.png").is_file(),
        "the other picture is written"
    );
    assert!(
        dir.path().join("p.png").is_file(),
        "the overview is written"
    );
    assert!(
        !base.exists(),
        "a run that lost an output is not a baseline"
    );
}

/// The catalog's `profile` (box-leak leaks 1 KiB per iteration).
fn catalog() -> Command {
    let mut cmd = Command::cargo_bin("profile").unwrap();
    cmd.env("NO_COLOR", "1").env_remove("GITHUB_STEP_SUMMARY");
    cmd
}

#[test]
fn a_leak_missing_from_the_baseline_is_still_exit_1() {
    // No leaking run is ever saved as a baseline, so against a committed one every leaking
    // workload is new: it was exit 2 ("nothing was compared"), and the gate's negative
    // control failed.
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.json");
    run(
        catalog()
            .args(["-q", "-w", "lru-cache", "-n", "8", "--save-baseline"])
            .arg(&base),
        0,
    );
    let out = run(
        catalog()
            .args(["-w", "box-leak", "-n", "8", "--baseline"])
            .arg(&base),
        1,
    );
    let t = text(&out);
    assert!(
        t.contains("failed: a leak (nothing was compared with the baseline"),
        "{t}"
    );
}

#[test]
fn runs_sampled_at_another_interval_are_not_compared() {
    // "Per iteration" of a program sampled in time is per sample: a clean program sampled
    // every 25 ms against a baseline sampled every 5 ms read as a regression, 6x more
    // allocated "per iteration".
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.json");
    let sleeper = |interval: &str| {
        let mut cmd = catalog();
        cmd.args(["--interval", interval]);
        cmd
    };
    run(
        sleeper("20")
            .arg("--save-baseline")
            .arg(&base)
            .args(["--", "sleep", "0.5"]),
        0,
    );
    let out = run(
        sleeper("50")
            .arg("--baseline")
            .arg(&base)
            .args(["--", "sleep", "0.5"]),
        2,
    );
    let t = text(&out);
    assert!(
        t.contains("holds runs of another kind (sleep 0.5: a plain run, in time, every 50.0 ms here, a plain run, in time, every 20.0 ms in the baseline)"),
        "{t}"
    );
    // Same interval: compared, and clean (with no tolerance for fds: the count at the end is
    // no longer one last sample, which could catch `sleep` closing stdout as it exits).
    run(
        sleeper("20")
            .arg("--baseline")
            .arg(&base)
            .args(["--", "sleep", "0.5"]),
        0,
    );
}

#[test]
fn an_unwritable_step_summary_is_refused_before_the_run() {
    // Found only once the run was over, it turned a leak into exit 2.
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        allocates(100_000)
            .env(
                "GITHUB_STEP_SUMMARY",
                dir.path().join("no/such/dir/summary.md"),
            )
            .arg("--markdown")
            .arg(dir.path().join("m.md")),
        2,
    );
    let t = text(&out);
    assert!(
        t.contains("invalid GITHUB_STEP_SUMMARY: cannot write"),
        "{t}"
    );
    assert!(!dir.path().join("m.md").exists());
}
