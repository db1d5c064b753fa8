//! A profiler runs code that misbehaves: signals, hangs, timeouts, crashing threads, outputs
//! that cannot be written, and bad input files, each through the real binaries.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn fixture_path() -> PathBuf {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_profile"));
    bin.parent()
        .unwrap()
        .join("examples")
        .join("fixture_catalog")
}

fn fixture() -> Command {
    let mut cmd = Command::new(fixture_path());
    cmd.env("NO_COLOR", "1").env_remove("GITHUB_STEP_SUMMARY");
    cmd
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn read(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).expect("report written")).expect("JSON")
}

/// Start `cmd`, send `signal` after `after`, and return its output and how long it took to
/// end after the signal.
fn signal_after(mut cmd: Command, signal: &str, after: Duration) -> (Output, Duration) {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(after);
    let sent = Instant::now();
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    (out, sent.elapsed())
}

#[test]
fn sigint_and_sigterm_end_the_run_with_every_output_written() {
    for signal in ["-INT", "-TERM"] {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = fixture();
        cmd.args(["-w", "slow", "-n", "100", "--json"])
            .arg(dir.path().join("r.json"))
            .arg("--markdown")
            .arg(dir.path().join("s.md"))
            .arg("--plot")
            .arg(dir.path().join("p.png"));
        let (out, took) = signal_after(cmd, signal, Duration::from_millis(1200));
        assert_eq!(out.status.code(), Some(130), "{signal}: {}", text(&out));
        // From the signal: the iteration under way ends, and the run is judged and written (a
        // PNG drawn by a debug build, beside other tests on 2 cores): seconds at most, not
        // the rest of the 100 iterations' 20 s.
        assert!(
            took < Duration::from_millis(4000),
            "{signal}: took {took:?}"
        );
        let report = read(&dir.path().join("r.json"));
        let run = &report["runs"][0];
        assert_eq!(run["source"]["end"], "interrupted", "{signal}");
        let n = run["iterations"].as_u64().unwrap();
        assert!((2..100).contains(&n), "{signal}: {n} iterations");
        assert_eq!(run["samples"].as_array().unwrap().len() as u64, n + 1);
        assert!(std::fs::metadata(dir.path().join("s.md")).unwrap().len() > 0);
        assert!(std::fs::metadata(dir.path().join("p.png")).unwrap().len() > 0);
    }
}

#[test]
fn an_interrupted_hung_iteration_is_abandoned_within_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = fixture();
    cmd.args(["-w", "hangs-at-3", "--json"])
        .arg(dir.path().join("r.json"));
    let (out, took) = signal_after(cmd, "-INT", Duration::from_millis(800));
    assert_eq!(out.status.code(), Some(130), "{}", text(&out));
    // From the signal: the second of grace, then the report written (a debug build, beside
    // other tests on 2 cores), never the hung iteration's end.
    assert!(took < Duration::from_millis(3500), "took {took:?}");
    let run = &read(&dir.path().join("r.json"))["runs"][0];
    assert_eq!(run["source"]["end"], "interrupted");
    assert_eq!(run["iterations"], 2, "the samples before the hang are kept");
    let notes = run["source"]["notes"].to_string();
    assert!(notes.contains("iteration 3 was running"), "{notes}");
}

#[test]
fn an_interrupted_sweep_with_a_hung_repetition_reports_the_sizes_before() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = fixture();
    cmd.args([
        "-w",
        "hangs-from-5000",
        "--sweep",
        "1000,2000,5000,10000",
        "--json",
    ])
    .arg(dir.path().join("r.json"));
    let (out, took) = signal_after(cmd, "-INT", Duration::from_millis(1500));
    assert_eq!(out.status.code(), Some(130), "{}", text(&out));
    assert!(took < Duration::from_millis(4000), "took {took:?}");
    let run = &read(&dir.path().join("r.json"))["runs"][0];
    assert_eq!(run["source"]["end"], "interrupted");
    let points = run["sweep"]["points"].as_array().unwrap();
    assert_eq!(points.len(), 2, "the sizes before the hang: {points:?}");
    assert!(
        run["source"]["notes"]
            .to_string()
            .contains("did not return")
    );
}

#[test]
fn a_hung_workload_is_reported_after_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let out = fixture()
        .args(["-w", "hangs-at-3", "--timeout", "1", "--json"])
        .arg(dir.path().join("r.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(text(&out).contains("hung"), "{}", text(&out));
    let run = &read(&dir.path().join("r.json"))["runs"][0];
    assert_eq!(run["failure"]["iteration"], 3);
    assert!(
        run["failure"]["message"]
            .as_str()
            .unwrap()
            .starts_with("hung")
    );
    assert_eq!(run["samples"].as_array().unwrap().len(), 3);
}

#[test]
fn a_slow_run_ends_at_the_timeout_with_its_samples_judged() {
    let dir = tempfile::tempdir().unwrap();
    let out = fixture()
        .args(["-w", "slow", "-n", "100", "--timeout", "0.5", "--json"])
        .arg(dir.path().join("r.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let run = &read(&dir.path().join("r.json"))["runs"][0];
    assert!(
        run["failure"]["message"]
            .as_str()
            .unwrap()
            .contains("--timeout")
    );
    assert!(run["iterations"].as_u64().unwrap() < 10);
    assert!(
        run["metrics"]["fds"].is_object(),
        "the samples so far are judged"
    );
}

#[test]
fn a_worker_thread_that_panics_fails_the_run_with_its_message() {
    let out = fixture().args(["-w", "worker-panics"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains("panicked in iteration 2: the worker thread panicked"),
        "{}",
        text(&out)
    );
}

/// The fixture with writes past 2 blocks failing with EFBIG (ulimit -f; SIGXFSZ ignored), as
/// on a full disk, even for root.
fn fixture_with_small_files() -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("ulimit -f 2 && trap '' XFSZ && exec \"$0\" \"$@\"")
        .arg(fixture_path())
        .env("NO_COLOR", "1");
    cmd
}

/// An output that fails in the middle of being written (here: the file size limit is hit,
/// as on a full disk) leaves the previous file untouched and no temp file behind: outputs go
/// to a temp file that is renamed over the target only when complete.
#[test]
fn a_failed_write_leaves_the_previous_output_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    std::fs::write(&json, b"previous report").unwrap();
    let out = fixture_with_small_files()
        .args(["-w", "allocates", "-n", "40", "--no-extend", "--json"])
        .arg(&json)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("could not write") && err.contains("r.json"),
        "{err}"
    );
    assert_eq!(std::fs::read(&json).unwrap(), b"previous report");
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names,
        vec![std::ffi::OsString::from("r.json")],
        "no temp file left behind"
    );
}

/// An output directory that does not exist is refused before anything runs.
#[test]
fn an_unwritable_output_is_refused_before_the_run() {
    let started = Instant::now();
    let out = fixture()
        .args([
            "-w",
            "slow",
            "-n",
            "100",
            "--json",
            "/nonexistent-dir/r.json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "it ran before refusing"
    );
    assert!(text(&out).contains("--json"));
}

/// `profile plot` on reports that are empty, truncated, of another schema version, with
/// negative or NaN numbers, or not JSON: exit 2 and one sentence naming the file.
#[test]
fn bad_reports_are_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.json");
    let out = fixture()
        .args(["-w", "allocates", "-n", "10", "--json"])
        .arg(&good)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let good_text = std::fs::read_to_string(&good).unwrap();
    let cases = [
        ("empty.json", String::new()),
        (
            "truncated.json",
            good_text[..good_text.len() / 3].to_string(),
        ),
        (
            "version.json",
            good_text.replacen("\"schema_version\": 1", "\"schema_version\": 2", 1),
        ),
        (
            "negative.json",
            good_text.replacen("\"duration_ms\": ", "\"duration_ms\": -", 1),
        ),
        (
            "nan.json",
            good_text.replacen("\"elapsed_ms\": ", "\"elapsed_ms\": NaN, \"was\": ", 1),
        ),
        ("words.txt", "hello".to_string()),
    ];
    for (name, content) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        let out = fixture()
            .arg("plot")
            .arg(&path)
            .arg("-o")
            .arg(dir.path().join("out.png"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{name}: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(name), "{name}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{name}: one sentence: {err}");
        assert!(!err.contains("panicked"));
    }
    assert!(!dir.path().join("out.png").exists());
    // A good report draws; a picture format other than png/svg is refused.
    let out = fixture()
        .arg("plot")
        .arg(&good)
        .args(["-o"])
        .arg(dir.path().join("out.png"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // A baseline with no run of the same name is said to be left out, not silently.
    let other = dir.path().join("other.json");
    std::fs::write(
        &other,
        good_text.replace("\"workload\": \"", "\"workload\": \"not-"),
    )
    .unwrap();
    let out = fixture()
        .arg("plot")
        .arg(&good)
        .arg("--baseline")
        .arg(&other)
        .args(["-o"])
        .arg(dir.path().join("out.png"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--baseline has no run named"),
        "{}",
        text(&out)
    );
    // One of the same name over seconds, not iterations: said to be left out too.
    assert!(good_text.contains("\"x_axis\": \"iteration\""));
    std::fs::write(
        &other,
        good_text.replace("\"x_axis\": \"iteration\"", "\"x_axis\": \"second\""),
    )
    .unwrap();
    let out = fixture()
        .arg("plot")
        .arg(&good)
        .arg("--baseline")
        .arg(&other)
        .args(["-o"])
        .arg(dir.path().join("out.png"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("is per second, this one per iteration: drawn without it"),
        "{}",
        text(&out)
    );
    let out = fixture()
        .arg("plot")
        .arg(&good)
        .args(["-o"])
        .arg(dir.path().join("out.jpg"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("out.jpg"));
    // A picture over its own input (a report saved as .svg, or the baseline) lost it.
    let svg = dir.path().join("report.svg");
    std::fs::write(&svg, &good_text).unwrap();
    for (input, baseline) in [(&svg, None), (&good, Some(&svg))] {
        let mut cmd = fixture();
        cmd.arg("plot").arg(input).arg("-o").arg(&svg);
        if let Some(b) = baseline {
            cmd.arg("--baseline").arg(b);
        }
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(
            text(&out).contains("names the same file as"),
            "{}",
            text(&out)
        );
        assert_eq!(std::fs::read_to_string(&svg).unwrap(), good_text);
    }
}

/// One output failing does not cost the others: the Markdown is still written when the JSON
/// write fails half-way, and the exit status says an output was lost (2).
#[test]
fn a_failed_output_does_not_stop_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let md = dir.path().join("s.md");
    let out = fixture_with_small_files()
        .args(["-w", "allocates", "-n", "40", "--no-extend", "--json"])
        .arg(&json)
        .arg("--markdown")
        .arg(&md)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(!json.exists(), "the JSON could not be written whole");
    let summary = std::fs::read_to_string(&md).expect("the Markdown was still written");
    assert!(summary.contains("`allocates`"));
}

/// What ended a run is said in words and in the JSON: a setup error, a timeout, a hang.
#[test]
fn failures_say_what_happened() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let out = fixture()
        .args([
            "-w",
            "setup-fails",
            "-w",
            "hangs-at-3",
            "--timeout",
            "0.5",
            "--json",
        ])
        .arg(&json)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("FAILED: the workload's setup failed: "), "{t}");
    assert!(!t.contains("panicked"), "{t}");
    let report = read(&json);
    assert_eq!(report["runs"][0]["failure"]["kind"], "setup");
    assert_eq!(report["runs"][1]["failure"]["kind"], "hung");
    assert_eq!(report["runs"][1]["verdict"], "inconclusive");
}

/// --timeout bounds the iterations only: a run that finished in time is not "hung" because
/// its attribution (sites resolved after the iterations) takes longer than the timeout.
#[test]
fn attribution_after_the_iterations_is_not_counted_against_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let out = fixture()
        .args([
            "-w",
            "slow",
            "-n",
            "5",
            "--no-extend",
            "--timeout",
            "2",
            "--attribute",
            "always",
        ])
        .arg("--json")
        .arg(&json)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let run = &read(&json)["runs"][0];
    assert!(run["failure"].is_null(), "{}", run["failure"]);
    // Sampled during the run, the sites named after it.
    assert_eq!(
        run["attribution"]["method"], "sampled",
        "{}",
        run["attribution"]
    );
}

#[test]
fn copies_that_hang_are_abandoned_after_the_timeout_or_an_interrupt() {
    // `--concurrency` ran its copies without a watch: a copy's iteration that never returned
    // held profile forever, --timeout and Ctrl-C alike.
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let out = fixture()
        .args(["-w", "hangs-at-3", "--concurrency", "1,2", "--timeout", "1"])
        .arg("--json")
        .arg(dir.path().join("t.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(started.elapsed() < Duration::from_secs(6));
    let run = &read(&dir.path().join("t.json"))["runs"][0];
    let message = run["failure"]["message"].as_str().unwrap();
    assert!(message.starts_with("hung: at 1 copy,"), "{message}");

    let mut cmd = fixture();
    cmd.args(["-w", "hangs-at-3", "--concurrency", "1,2", "--json"])
        .arg(dir.path().join("i.json"));
    let (out, took) = signal_after(cmd, "-INT", Duration::from_millis(800));
    assert_eq!(out.status.code(), Some(130), "{}", text(&out));
    assert!(took < Duration::from_millis(3500), "took {took:?}");
    let run = &read(&dir.path().join("i.json"))["runs"][0];
    assert_eq!(run["source"]["end"], "interrupted");
    let notes = run["source"]["notes"].to_string();
    assert!(notes.contains("interrupted while 1 copy ran"), "{notes}");
}
