//! `scripts/leak-check.sh`, the gate a CI job runs, around this workspace's `profile`
//! (`LEAK_CHECK_CMD`, so that nothing is built).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn gate(dir: &Path) -> Command {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/leak-check.sh");
    let mut cmd = Command::new("bash");
    cmd.arg(script)
        .current_dir(dir)
        .env("LEAK_CHECK_CMD", env!("CARGO_BIN_EXE_profile"))
        .env("LEAK_CHECK_OUT", dir.join("out"))
        .env("NO_COLOR", "1")
        .env_remove("LEAK_CHECK_SAVE_BASELINE")
        .env_remove("RUST_LOG");
    cmd
}

fn saved_baseline(dir: &Path) -> PathBuf {
    let base = dir.join("base.json");
    let status = Command::new(env!("CARGO_BIN_EXE_profile"))
        .args(["-q", "-w", "hashmap-churn", "-n", "10", "--save-baseline"])
        .arg(&base)
        .status()
        .unwrap();
    assert!(status.success());
    base
}

/// A CI runner stopping the job step signals the script alone: profile must stop with it
/// (exit 130, its report written), not run on unwatched and save the baseline afterwards.
#[test]
fn a_signal_to_the_gate_alone_stops_profile_and_keeps_the_baseline() {
    let dir = tempfile::tempdir().unwrap();
    let base = saved_baseline(dir.path());
    let before = std::fs::read(&base).unwrap();
    let script = gate(dir.path())
        .env("LEAK_CHECK_BASELINE", &base)
        .env("LEAK_CHECK_SAVE_BASELINE", "1")
        .args(["-q", "-w", "hashmap-churn", "-n", "1000000", "--no-extend"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Until profile runs (the script's cargo metadata first), then signal the script only.
    let report = dir.path().join("out");
    let start = Instant::now();
    while !report.exists() && start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(1500));
    let status = Command::new("kill")
        .args(["-TERM", &script.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = script.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("leak-check: exit 130; report:"), "{err}");
    // Nothing runs on to save it later.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        std::fs::read(&base).unwrap(),
        before,
        "the baseline changed"
    );
}

/// A baseline named and not there (a typo) is bad input, not a pass that compared nothing;
/// nor is a directory a baseline.
#[test]
fn a_named_baseline_that_is_not_a_file_is_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("baselines/typo.json");
    let out = gate(dir.path())
        .env("LEAK_CHECK_BASELINE", &missing)
        .args(["-q", "-w", "hashmap-churn", "-n", "5"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("no baseline at") && err.contains("typo.json"),
        "{err}"
    );
    let out = gate(dir.path())
        .env("LEAK_CHECK_BASELINE", dir.path())
        .args(["-q", "-w", "hashmap-churn", "-n", "5"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("is a directory"), "{err}");
    // Saving the first one there is how a baseline starts.
    let out = gate(dir.path())
        .env("LEAK_CHECK_BASELINE", &missing)
        .env("LEAK_CHECK_SAVE_BASELINE", "1")
        .args(["-q", "-w", "hashmap-churn", "-n", "5"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(missing.is_file());
}

/// LEAK_CHECK_SAVE_BASELINE=true saves as 1 does (it once saved nothing and said nothing),
/// and a value that is neither yes nor no is bad input.
#[test]
fn save_baseline_takes_true_and_refuses_what_is_neither() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("saved.json");
    let out = gate(dir.path())
        .env("LEAK_CHECK_BASELINE", &base)
        .env("LEAK_CHECK_SAVE_BASELINE", "true")
        .args(["-q", "-w", "hashmap-churn", "-n", "5"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(base.is_file(), "not saved: {err}");
    let out = gate(dir.path())
        .env("LEAK_CHECK_BASELINE", &base)
        .env("LEAK_CHECK_SAVE_BASELINE", "sure")
        .args(["-q", "-w", "hashmap-churn", "-n", "5"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("LEAK_CHECK_SAVE_BASELINE='sure'"), "{err}");
}

/// A run that stops on bad usage leaves no earlier run's report or summary behind for CI to
/// upload as this run's ("passed" beside an exit 2).
#[test]
fn bad_usage_leaves_no_earlier_report_behind() {
    let dir = tempfile::tempdir().unwrap();
    let out = gate(dir.path())
        .args(["-q", "-w", "hashmap-churn", "-n", "5"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let report = dir.path().join("out/report.json");
    let summary = dir.path().join("out/summary.md");
    assert!(report.is_file() && summary.is_file());
    let out = gate(dir.path())
        .args(["-q", "-w", "no-such-workload"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(!report.exists() && !summary.exists(), "{err}");
    assert!(err.contains("no report written"), "{err}");
}

/// Two gates writing to one output directory (two CI jobs on one runner) each deleted the
/// other's plots and left one report for both: the second is refused while the first runs.
#[test]
fn a_second_gate_on_the_same_output_directory_is_refused_while_the_first_runs() {
    if Command::new("flock").arg("--version").output().is_err() {
        eprintln!("no flock(1) here: the gate locks nothing");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut first = gate(dir.path())
        .args(["-q", "-w", "hashmap-churn", "-n", "400"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Until the first holds the lock (its report is not there yet).
    let lock = dir.path().join("out/.leak-check.lock");
    let started = Instant::now();
    while !lock.exists() && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    let second = gate(dir.path())
        .args(["-q", "-w", "hashmap-churn", "-n", "5"])
        .output()
        .unwrap();
    let still_running = first.try_wait().unwrap().is_none();
    // TERM, which the gate passes on to profile (a kill would leave profile running).
    let _ = Command::new("kill")
        .args(["-TERM", &first.id().to_string()])
        .status();
    let _ = first.wait();
    assert!(
        still_running,
        "the first gate ended before the second started"
    );
    let err = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(2), "{err}");
    assert!(err.contains("another leak check is writing to"), "{err}");
    // Once the first is gone, the directory is free.
    let third = gate(dir.path())
        .args(["-q", "-w", "hashmap-churn", "-n", "5"])
        .output()
        .unwrap();
    assert_eq!(
        third.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&third.stderr)
    );
}

#[test]
fn a_flock_without_the_exit_code_option_still_locks() {
    let dir = tempfile::tempdir().unwrap();
    // busybox's flock(1) takes no -E: a usage error; plain -n locks.
    let out = gate_with_flock(
        dir.path(),
        "for a in \"$@\"; do [ \"$a\" = -E ] && exit 1; done\nexit 0",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(!err.contains("could not lock"), "{err}");
}

#[test]
fn a_lock_that_fails_for_another_reason_says_so() {
    let dir = tempfile::tempdir().unwrap();
    // A flock(1) that fails as it does on a file system without locks.
    let out = gate_with_flock(dir.path(), "exit 1");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("could not lock"), "{err}");
    assert!(!err.contains("another leak check"), "{err}");
}

/// A short gate run (`hashmap-churn`, 5 iterations) in `dir` with a stand-in `flock(1)` first
/// on the PATH, a shell script whose body is `script`.
fn gate_with_flock(dir: &Path, script: &str) -> std::process::Output {
    let bin = dir.join("bin");
    std::fs::create_dir(&bin).unwrap();
    let flock = bin.join("flock");
    std::fs::write(&flock, format!("#!/bin/sh\n{script}\n")).unwrap();
    let mut perms = std::fs::metadata(&flock).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&flock, perms).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    gate(dir)
        .env("PATH", path)
        .args(["-q", "-w", "hashmap-churn", "-n", "5"])
        .output()
        .unwrap()
}
