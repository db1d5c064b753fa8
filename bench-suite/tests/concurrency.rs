//! End-to-end tests of `profile --concurrency`: K copies at once of a catalog workload (threads)
//! and of a program (processes), the levels in JSON, the scaling verdict, the load thresholds
//! and bad lists.

mod common;

use common::{profile, run, text};
use serde_json::Value;

fn report(dir: &tempfile::TempDir) -> Value {
    let bytes = std::fs::read(dir.path().join("r.json")).expect("report written");
    serde_json::from_slice(&bytes).expect("valid JSON")
}

fn concurrency<'a>(report: &'a Value, workload: &str) -> &'a Value {
    let runs = report["runs"].as_array().expect("runs");
    let run = runs
        .iter()
        .find(|r| r["workload"] == workload)
        .unwrap_or_else(|| panic!("{workload} not in {report}"));
    &run["concurrency"]
}

#[test]
fn a_cache_that_grows_with_contention_grows_per_copy_and_a_clean_workload_stays_flat() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        profile()
            .args(["-w", "contended-pool", "-w", "hashmap-churn"])
            .args(["--concurrency", "1,3,5", "--markdown"])
            .arg(dir.path().join("r.md"))
            .arg("--json")
            .arg(dir.path().join("r.json"))
            .arg("--plot")
            .arg(dir.path().join("r.png")),
        0,
    );
    let report = report(&dir);
    let grows = concurrency(&report, "contended-pool");
    let levels = grows["levels"].as_array().unwrap();
    assert_eq!(levels.len(), 3);
    for field in [
        "copies",
        "iterations",
        "failures",
        "throughput_per_s",
        "p50_ms",
        "p95_ms",
        "max_ms",
        "heap_peak_bytes",
        "rss_peak_bytes",
        "peak_per_copy_bytes",
        "cpu_ms",
        "verdict",
    ] {
        assert!(
            levels.iter().all(|l| !l[field].is_null()),
            "{field} in {levels:?}"
        );
    }
    let per_copy: Vec<u64> = levels
        .iter()
        .map(|l| l["peak_per_copy_bytes"].as_u64().unwrap())
        .collect();
    assert!(
        per_copy[0] < per_copy[1] && per_copy[1] < per_copy[2],
        "{per_copy:?}"
    );
    assert_eq!(grows["scaling"]["memory"], "grows", "{}", grows["scaling"]);
    assert!(
        grows["scaling"]["sentence"]
            .as_str()
            .unwrap()
            .contains("per extra copy")
    );
    assert_eq!(levels[2]["iterations"], 100);
    assert_eq!(levels[2]["verdict"], "clean");

    let flat = concurrency(&report, "hashmap-churn");
    assert_eq!(flat["scaling"]["memory"], "flat", "{}", flat["scaling"]);
    // The whole's heap peak holds every copy's: each copy's samples start windows of its
    // own thread's, which once cut the process's peak short (one copy read 0.2 MiB of its
    // 0.27 MiB).
    for level in flat["levels"].as_array().unwrap() {
        let field = |f: &str| level[f].as_u64().unwrap();
        assert!(
            field("heap_peak_bytes") >= field("peak_per_copy_bytes"),
            "{level}"
        );
    }

    let md = std::fs::read_to_string(dir.path().join("r.md")).unwrap();
    assert!(md.contains("K copies at once"), "{md}");
    assert!(md.contains("| copies | iterations | failures |"), "{md}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("scaling: memory per copy grows"),
        "{stdout}"
    );
    assert!(dir.path().join("r-contended-pool.png").exists());
}

#[test]
fn a_program_over_its_p95_limit_fails_naming_the_level_and_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        profile()
            .args([
                "--concurrency",
                "1,3",
                "--max-p95",
                "20ms",
                "--marker",
                "^tick",
            ])
            .args(["-n", "8", "--no-extend", "--json"])
            .arg(dir.path().join("r.json"))
            .args(["--", "sh", "-c", "while :; do sleep 0.05; echo tick; done"]),
        1,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("at K = 3, the p95 iteration time")
            && stdout.contains("is above --max-p95 20 ms"),
        "{}",
        text(&out)
    );
    let report = report(&dir);
    let levels = report["runs"][0]["concurrency"]["levels"]
        .as_array()
        .unwrap();
    assert_eq!(levels.len(), 2);
    assert_eq!(levels[1]["copies"], 3);
    assert_eq!(levels[1]["iterations"], 24, "{levels:?}");
    assert_eq!(
        levels[1]["failures"], 0,
        "copies the profiler stops are not failures"
    );
    assert!(levels[1]["p95_ms"].as_f64().unwrap() >= 40.0);
    assert_eq!(
        report["runs"][0]["concurrency"]["limits"]["max_p95_ms"],
        20.0
    );
    // The whole's heap peak holds its copies' (it once summed live bytes at the samples
    // only: 10.6 KiB for one copy whose peak was 14.6 KiB).
    for level in levels {
        let field = |f: &str| level[f].as_u64().unwrap();
        assert!(
            field("heap_peak_bytes") >= field("peak_per_copy_bytes"),
            "{level}"
        );
    }
}

#[test]
fn failures_above_the_limit_fail_and_below_it_pass_reported() {
    // Copy 1 exits 1 on its own after its ticks: one failed iteration at K = 2.
    let program = [
        "--",
        "sh",
        "-c",
        "for i in 1 2 3 4 5 6; do echo tick; sleep 0.02; done; [ {copy} != 1 ]",
    ];
    let out = run(
        profile()
            .args(["--concurrency", "1,2", "--marker", "^tick"])
            .args(program),
        1,
    );
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("at K = 2, 1 of 11 iterations failed (9.1%), above --max-failure-rate 0%"),
        "{}",
        text(&out)
    );
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        profile()
            .args(["--concurrency", "1,2", "--marker", "^tick"])
            .args(["--max-failure-rate", "20", "--json"])
            .arg(dir.path().join("r.json"))
            .args(program),
        0,
    );
    let report = report(&dir);
    let levels = report["runs"][0]["concurrency"]["levels"]
        .as_array()
        .unwrap();
    assert_eq!(levels[0]["failures"], 0, "{}", text(&out));
    assert_eq!(levels[1]["failures"], 1, "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 (9.1%)"));
}

#[test]
fn bad_lists_are_usage_errors_with_a_sentence() {
    for (list, words) in [
        ("0", "0 copies is out of range"),
        ("-1", "'-1' is not a number of copies"),
        ("", "the list of copies is empty"),
        (
            "1,65",
            "65 copies is out of range: each level runs from 1 to 64",
        ),
        ("1,,3", "'' is not a number of copies"),
    ] {
        let out = run(
            profile().args(["-w", "hashmap-churn", "--concurrency", list]),
            2,
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(words), "{list}: {stderr}");
    }
    let out = run(
        profile().args(["-w", "hashmap-churn", "--max-p95", "20ms"]),
        2,
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("--concurrency"));
}

#[test]
fn fd_and_thread_leaks_in_copies_fail_the_level() {
    // Each copy runs in thread scope, where fds and threads never gated: `fd-leak` passed
    // under --concurrency, even with one copy. The copies are all the process runs.
    // (Two copies each spawning a thread per iteration interleave irregularly: copy 0's
    // count of the level's threads may read as decelerating, inconclusive; its heap leaks.)
    for (workload, metric, levels) in [("fd-leak", "fds", "1,2"), ("thread-leak", "threads", "1")] {
        let dir = tempfile::tempdir().unwrap();
        run(
            profile()
                .args(["-w", workload, "--concurrency", levels, "--json"])
                .arg(dir.path().join("r.json")),
            1,
        );
        let report = report(&dir);
        let m = &report["runs"][0]["metrics"][metric];
        assert_eq!(m["verdict"], "leak", "{workload}: {m}");
        assert_eq!(m["gating"], true, "{workload}: {m}");
    }
}

#[test]
fn budgets_hold_every_copy() {
    // The copies' plan carried no budgets: --max-peak 1KiB passed, `budgets: []`.
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        profile()
            .args(["-w", "hashmap-churn", "--concurrency", "1,2"])
            .args(["--max-allocated", "1KiB", "--json"])
            .arg(dir.path().join("r.json")),
        1,
    );
    assert!(text(&out).contains("--max-allocated"), "{}", text(&out));
    let report = report(&dir);
    let budgets = &report["runs"][0]["budgets"];
    assert_eq!(budgets[0]["exceeded"], true, "{budgets}");
}

#[test]
fn attribution_is_refused_rather_than_skipped() {
    let out = run(
        profile().args(["-w", "box-leak", "--concurrency", "1,2", "--attribute"]),
        2,
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--attribute"),
        "{}",
        text(&out)
    );
}

#[test]
fn an_interval_is_refused_rather_than_ignored() {
    // Accepted, and no copy took a sample between its boundaries.
    let out = run(
        profile().args(["-w", "box-leak", "--concurrency", "1,2", "--interval", "5"]),
        2,
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--interval does not apply"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_marker_no_copy_matched_is_exit_2_as_without_copies() {
    // It passed, "some verdicts inconclusive", exit 0: nothing was measured.
    let out = run(
        profile()
            .args(["--concurrency", "1,2", "--marker", "^tock"])
            .args(["--", "sh", "-c", "for i in 1 2 3; do echo tick; done"]),
        2,
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("matched no output line"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_copy_handing_work_to_a_pool_is_not_a_leak() {
    // A copy's heap is its thread's counters: the pool's workers free the jobs it allocates,
    // and `thread-pool` (clean) read as a leak of 2.3 KiB per iteration. The process's heap
    // over the level did not grow by what the copies claimed.
    let dir = tempfile::tempdir().unwrap();
    run(
        profile()
            .args([
                "-w",
                "thread-pool",
                "-w",
                "box-leak",
                "--concurrency",
                "1,2",
            ])
            .arg("--json")
            .arg(dir.path().join("r.json")),
        1,
    );
    let report = report(&dir);
    let run_of = |name: &str| {
        report["runs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["workload"] == name)
            .unwrap()
            .clone()
    };
    let pool = run_of("thread-pool");
    assert_ne!(pool["verdict"], "leak", "{}", pool["metrics"]);
    assert_eq!(pool["metrics"]["heap_blocks"]["shape"], "blind");
    assert_eq!(run_of("box-leak")["verdict"], "leak");
}

#[test]
fn a_baseline_of_copies_compares_every_copy() {
    // The run's samples are one copy's (copy 0): copy 1 peaking at 8 MiB instead of a few KiB
    // compared as "no change beyond tolerance", exit 0.
    let script = "import os, sys, time\n\
                  big = os.environ.get('BIG') == '1' and sys.argv[1] == '1'\n\
                  for i in range(8):\n    \
                      if big:\n        b = bytearray(8 << 20); del b\n    \
                      print('tick', flush=True); time.sleep(0.02)\n";
    let dir = tempfile::tempdir().unwrap();
    let baseline = dir.path().join("base.json");
    let profile_copies = |big: &str, flag: &str| {
        let mut cmd = profile();
        cmd.env("BIG", big)
            .args(["--concurrency", "1,2", "--marker", "^tick", "-n", "6"])
            .arg(flag)
            .arg(&baseline)
            .args(["--", "python3", "-c", script, "{copy}"]);
        cmd
    };
    run(&mut profile_copies("0", "--save-baseline"), 0);
    let out = run(&mut profile_copies("1", "--baseline"), 1);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("regression: heap peak"),
        "{}",
        text(&out)
    );
}

#[test]
fn the_level_heap_peak_is_the_copies_not_the_profilers_reports() {
    // The level's heap peak was read after the copies had started building their reports:
    // ~200 B per iteration of samples, so temp-files' level peak went 14 KiB -> 31 KiB from
    // 8 to 100 iterations while each copy's stayed 8.3 KiB.
    let peak = |n: &str| {
        let dir = tempfile::tempdir().unwrap();
        run(
            profile()
                .args(["-q", "-w", "temp-files", "-n", n, "--no-extend"])
                .args(["--concurrency", "1", "--json"])
                .arg(dir.path().join("r.json")),
            0,
        );
        let report = report(&dir);
        let level = &concurrency(&report, "temp-files")["levels"][0];
        level["heap_peak_bytes"].as_f64().expect("a heap peak")
    };
    let (short, long) = (peak("8"), peak("100"));
    assert!(
        (long - short).abs() < 1024.0,
        "level heap peak {short} B at 8 iterations, {long} B at 100"
    );
}
