//! End-to-end tests through the real `profile` binary (and two fixture binaries built from
//! tests/fixtures as examples): outputs, exit codes, and every bad argument.

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use serde_json::Value;

fn profile() -> Command {
    let mut cmd = Command::cargo_bin("profile").expect("the profile binary");
    cmd.env("NO_COLOR", "1").env_remove("RUST_LOG");
    cmd
}

/// A fixture binary: cargo test builds examples beside the binaries, in `examples/`.
fn fixture(name: &str) -> Command {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_profile"));
    let path = bin
        .parent()
        .expect("target dir")
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "fixture {} is missing: run the tests with `cargo test` (it builds examples)",
        path.display()
    );
    let mut cmd = Command::new(path);
    cmd.env("NO_COLOR", "1");
    cmd
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).expect("report written")).expect("valid JSON")
}

/// Run and check the exit code, returning the output for further checks.
fn run(cmd: &mut Command, code: i32) -> Output {
    let out = cmd.output().expect("ran");
    assert_eq!(
        out.status.code(),
        Some(code),
        "exit code\nstdout:\n{}\nstderr:\n{}",
        stdout(&out),
        stderr(&out)
    );
    out
}

#[test]
fn list_names_every_workload_with_its_expectation() {
    let out = run(profile().arg("list"), 0);
    let text = stdout(&out);
    for name in [
        "json-roundtrip",
        "box-leak",
        "fd-leak-every-5",
        "thread-leak",
    ] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
    assert!(text.contains("leak (fds)"));
}

/// `profile list | head -1`: a reader that goes away is no error (no panic, exit 0).
#[test]
fn a_closed_stdout_is_not_an_error() {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_profile"))
        .arg("list")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("profile starts");
    // Closed before the first line is written.
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("profile ends");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(0), "{err}");
}

#[test]
fn a_leaking_workload_shows_its_growth_in_every_output() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let csv = dir.path().join("r.csv");
    let out = run(
        profile()
            .args([
                "--workload",
                "box-leak",
                "--iterations",
                "20",
                "--no-extend",
                "--warmup",
                "1",
            ])
            .arg("--json")
            .arg(&json)
            .arg("--csv")
            .arg(&csv),
        1,
    );
    let text = stdout(&out);
    assert!(text.contains("box-leak") && text.contains("leak"), "{text}");
    let report = read_json(&json);
    assert_eq!(report["schema_version"], 1);
    assert_eq!(report["verdict"], "leak");
    let run = &report["runs"][0];
    assert_eq!(run["iterations"], 20);
    let samples = run["samples"].as_array().unwrap();
    assert_eq!(samples.len(), 21);
    let heap = |i: usize| samples[i]["heap_bytes"].as_i64().unwrap();
    let blocks = |i: usize| samples[i]["heap_blocks"].as_i64().unwrap();
    assert_eq!(
        heap(20) - heap(1),
        19 * 1024,
        "19 KiB over the 19 iterations after warm-up"
    );
    assert_eq!(blocks(20) - blocks(1), 19);
    assert_eq!(samples[5]["allocated_bytes"], 1024);
    assert_eq!(samples[5]["allocations"], 1);
    assert!(samples[0]["duration_ms"].is_null());
    assert!(samples[5]["cpu_ms"].as_f64().unwrap() >= 0.0);
    let growth = run["metrics"]["heap_bytes"]["growth"].as_f64().unwrap();
    assert_eq!(growth, 19.0 * 1024.0);
    assert_eq!(run["metrics"]["fds"]["growth"], 0.0);
    assert_eq!(run["metrics"]["threads"]["growth"], 0.0);
    let csv = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(csv.lines().count(), 22, "header + 21 samples");
    assert!(
        csv.lines()
            .nth(1)
            .unwrap()
            .starts_with("box-leak,boundary,0,")
    );
}

#[test]
fn fd_and_thread_leaks_show_as_counts() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    run(
        profile()
            .args([
                "-w",
                "fd-leak",
                "-w",
                "thread-leak",
                "-n",
                "10",
                "--no-extend",
                "--warmup",
                "0",
            ])
            .arg("--json")
            .arg(&json),
        1,
    );
    let report = read_json(&json);
    let growth =
        |run: usize, metric: &str| report["runs"][run]["metrics"][metric]["growth"].as_f64();
    assert_eq!(report["runs"][0]["workload"], "fd-leak");
    assert_eq!(growth(0, "fds"), Some(10.0));
    assert_eq!(growth(0, "threads"), Some(0.0));
    assert_eq!(report["runs"][1]["workload"], "thread-leak");
    assert_eq!(growth(1, "threads"), Some(10.0));
    // A thread still starting when the last sample is taken may hold a descriptor for a
    // moment (seen under load): at most one, never a trend.
    assert!(
        growth(1, "fds").is_some_and(|g| g <= 1.0),
        "{:?}",
        growth(1, "fds")
    );
    assert_ne!(report["runs"][1]["metrics"]["fds"]["verdict"], "leak");
}

#[test]
fn interval_sampling_records_between_boundaries() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    run(
        profile()
            .args([
                "-w",
                "temp-files",
                "-n",
                "5",
                "--no-extend",
                "--interval",
                "1",
            ])
            .arg("--json")
            .arg(&json),
        0,
    );
    let report = read_json(&json);
    let run = &report["runs"][0];
    let interval = run["interval_samples"].as_array().unwrap();
    assert!(!interval.is_empty(), "background samples recorded");
    assert!(
        interval
            .iter()
            .all(|s| s["rss_bytes"].as_u64().unwrap() > 0)
    );
    // The sampler thread is the profiler's own: it never shows in the thread count.
    let threads: Vec<u64> = run["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["threads"].as_u64().unwrap())
        .collect();
    assert!(threads.iter().all(|&t| t == threads[0]), "{threads:?}");
}

#[test]
fn a_panicking_workload_exits_3_and_keeps_its_samples() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let out = run(
        fixture("fixture_catalog")
            .args(["--workload", "panics-at-3", "--json"])
            .arg(&json),
        3,
    );
    assert!(stdout(&out).contains("panicked in iteration 3: malformed record 3"));
    let report = read_json(&json);
    let run = &report["runs"][0];
    assert_eq!(run["failure"]["iteration"], 3);
    assert_eq!(run["failure"]["message"], "malformed record 3");
    assert_eq!(
        run["samples"].as_array().unwrap().len(),
        3,
        "baseline + 2 iterations"
    );
}

#[test]
fn a_failing_setup_exits_3_with_its_error() {
    let out = run(
        fixture("fixture_catalog").args(["--workload", "setup-fails"]),
        3,
    );
    assert!(stdout(&out).contains("setup failed"), "{}", stdout(&out));
}

#[test]
fn without_the_allocator_heap_is_null_and_a_hint_is_printed() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let out = run(
        fixture("fixture_no_alloc")
            .args(["--workload", "fd-leak", "-n", "10", "--no-extend", "--json"])
            .arg(&json),
        1,
    );
    assert!(
        stdout(&out).contains("global_allocator"),
        "{}",
        stdout(&out)
    );
    let report = read_json(&json);
    let sample = &report["runs"][0]["samples"][3];
    assert!(sample["heap_bytes"].is_null());
    assert!(sample["heap_blocks"].is_null());
    assert!(sample["fds"].as_u64().is_some());
    assert_eq!(report["runs"][0]["heap_scope"], "none");
}

/// Every bad argument: exit 2, one line naming the argument, nothing run or written.
#[test]
fn bad_arguments_exit_2_naming_the_argument() {
    let dir = tempfile::tempdir().unwrap();
    let missing_dir = dir.path().join("no/such/dir/r.json");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["--workload".into(), "nope".into()], "nope"),
        (vec!["--iterations".into(), "0".into()], "--iterations"),
        (
            vec!["--iterations".into(), "99999999999".into()],
            "--iterations",
        ),
        (vec!["--iterations".into(), "ten".into()], "--iterations"),
        (vec!["--warmup".into(), "-1".into()], "--warmup"),
        (vec!["--interval".into(), "0".into()], "--interval"),
        // A negative number is a bad value of its flag, not a flag of its own (clap's tip
        // was "to pass '-5' as a value, use '-- -5'", which would make it the command).
        (
            vec!["--interval".into(), "-5".into()],
            "invalid value '-5' for '--interval <MS>'",
        ),
        (
            vec!["--timeout".into(), "-1".into()],
            "invalid value '-1' for '--timeout <SECS>'",
        ),
        (
            vec!["--max-iterations".into(), "-2".into()],
            "invalid value '-2' for '--max-iterations <N>'",
        ),
        // The same for sizes and durations with units, which clap cannot read as numbers.
        (
            vec!["--max-rss".into(), "-5MiB".into()],
            "invalid value '-5MiB' for '--max-rss': it cannot be negative",
        ),
        (
            vec!["--max-p95".into(), "-20ms".into()],
            "invalid value '-20ms' for '--max-p95': it cannot be negative",
        ),
        (vec!["--warmup".into(), "18".into()], "--warmup"),
        (
            vec!["--max-iterations".into(), "5".into()],
            "--max-iterations",
        ),
        (
            vec!["--json".into(), missing_dir.display().to_string()],
            "--json",
        ),
        (
            vec!["--csv".into(), dir.path().display().to_string()],
            "--csv",
        ),
        (vec!["--frobnicate".into()], "--frobnicate"),
        (
            vec!["--timeout".into(), "0".into()],
            "is not a number of seconds above 0",
        ),
        // Two percentages for one name: the first was silently dropped.
        (
            [
                "--baseline",
                "b.json",
                "--tolerance",
                "peak=5%",
                "--tolerance",
                "peak=9%",
            ]
            .map(String::from)
            .to_vec(),
            "gives peak a second percentage",
        ),
        (vec!["-q".into(), "-v".into()], "--quiet"),
        // A program named without `--` before it: told where it goes.
        (
            vec!["python3".into(), "x.py".into()],
            "tip: to profile a program, put it after `--`: profile [OPTIONS] -- python3",
        ),
    ];
    for (args, named) in cases {
        let out = run(profile().args(&args).args(["-w", "box-leak"]), 2);
        let err = stderr(&out);
        assert!(
            err.contains(named),
            "{args:?}: stderr does not name {named}:\n{err}"
        );
        assert!(!err.contains("panicked"), "{args:?} panicked:\n{err}");
        assert!(stdout(&out).is_empty(), "{args:?} ran anyway");
    }
    assert!(!missing_dir.exists());
}

/// A run a budget stopped says so in its header, beside verdicts too short to mean much
/// (it read "box-leak  inconclusive" above an exit 1, and "1 iterations").
#[test]
fn a_run_stopped_by_a_budget_says_so_in_its_header() {
    let out = profile()
        .args(["-w", "box-leak", "--max-peak", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("box-leak  inconclusive, over budget"),
        "{text}"
    );
    assert!(text.contains("  1 iteration, warm-up"), "{text}");
}
