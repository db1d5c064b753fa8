//! End-to-end tests of `profile --sweep`: the catalog's sized workloads get the growth class
//! they were written to have, `--max-complexity` fails the quadratic one naming the metric,
//! the model and the coefficient, Python programs are fitted through `{n}`, and bad sweeps are
//! exit 2 with a sentence.

mod common;

use common::{profile, run, text};
use serde_json::Value;

fn report(path: &std::path::Path) -> Value {
    let bytes = std::fs::read(path).expect("report written");
    serde_json::from_slice(&bytes).expect("valid JSON")
}

fn sweep_of<'a>(report: &'a Value, workload: &str) -> &'a Value {
    let runs = report["runs"].as_array().expect("runs");
    let run = runs
        .iter()
        .find(|r| r["workload"].as_str().is_some_and(|w| w.contains(workload)))
        .unwrap_or_else(|| panic!("{workload} not in {report}"));
    &run["sweep"]
}

fn model<'a>(sweep: &'a Value, field: &str) -> &'a Value {
    &sweep["fits"][field]["model"]
}

#[test]
fn the_sized_workloads_get_the_class_they_were_written_to_have() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    // One range for the linear and constant ones, a smaller one for the quadratic one.
    run(
        profile()
            .args(["--sweep", "1k..200k", "-q", "--json"])
            .arg(&json)
            .args([
                "-w",
                "parse-records",
                "-w",
                "sort-strings",
                "-w",
                "index-keys",
            ])
            .args(["-w", "streaming-checksum"]),
        0,
    );
    let r = report(&json);
    for (workload, class) in [
        ("parse-records", "O(n)"),
        ("sort-strings", "O(n)"),
        ("index-keys", "O(n)"),
        ("streaming-checksum", "O(1)"),
    ] {
        let s = sweep_of(&r, workload);
        assert_eq!(model(s, "peak_bytes"), class, "{workload}: {}", s["fits"]);
        assert_eq!(
            model(s, "retained_bytes"),
            "O(1)",
            "{workload}: {}",
            s["fits"]
        );
        let points = s["points"].as_array().unwrap();
        assert_eq!(points.len(), 8, "1k..200k is 8 sizes: {points:?}");
        for p in points {
            for field in [
                "size",
                "peak_bytes",
                "retained_bytes",
                "allocated_bytes",
                "allocations",
                "rss_peak_bytes",
                "duration_ms",
                "repetitions",
            ] {
                assert!(p[field].is_number(), "{workload}: {field} in {p}");
            }
            assert!(p["repetitions"].as_u64().unwrap() >= 3, "{p}");
        }
        for field in ["coefficient", "intercept", "r2"] {
            assert!(s["fits"]["peak_bytes"][field].is_number(), "{}", s["fits"]);
        }
    }
    assert_eq!(r["runs"][0]["verdict"], "clean");
}

#[test]
fn max_complexity_fails_the_quadratic_naming_metric_model_and_coefficient() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let csv = dir.path().join("r.csv");
    let out = run(
        profile()
            .args(["--sweep", "100..2k", "--max-complexity", "O(n)", "--json"])
            .arg(&json)
            .arg("--csv")
            .arg(&csv)
            .arg("--markdown")
            .arg(dir.path().join("r.md"))
            .args(["-w", "pairwise-distances", "-w", "streaming-checksum"]),
        1,
    );
    let r = report(&json);
    let s = sweep_of(&r, "pairwise-distances");
    assert_eq!(model(s, "peak_bytes"), "O(n^2)", "{}", s["fits"]);
    // The CSV of a sweep has a row per size of each workload: 2 x 5 sizes.
    let table = std::fs::read_to_string(&csv).unwrap();
    assert!(table.starts_with("workload,size,peak_bytes,"), "{table}");
    assert_eq!(table.lines().count(), 1 + 2 * 5, "{table}");
    assert!(
        table.contains("pairwise-distances,2000,32000000,"),
        "{table}"
    );
    let coefficient = s["fits"]["peak_bytes"]["coefficient"].as_f64().unwrap();
    // An n x n matrix of f64: 8 bytes per cell.
    assert!((coefficient - 8.0).abs() < 0.5, "{coefficient}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("overall:"))
        .unwrap_or_else(|| panic!("{}", text(&out)));
    for part in ["peak_bytes", "O(n^2)", "8 B × n^2", "--max-complexity O(n)"] {
        assert!(line.contains(part), "{part} not in {line}");
    }
    // The summary's table says which workload failed the limit (it once read "✅ clean").
    let md = std::fs::read_to_string(dir.path().join("r.md")).unwrap();
    let row = md
        .lines()
        .find(|l| l.starts_with("| `pairwise-distances`"))
        .unwrap_or_else(|| panic!("{md}"));
    assert!(row.contains("❌ above --max-complexity"), "{row}");
    // Held to O(n^2), the same sweep passes.
    run(
        profile()
            .args(["--sweep", "100..1k", "--max-complexity", "O(n^2)", "-q"])
            .args(["-w", "pairwise-distances"]),
        0,
    );
}

fn python() -> Option<&'static str> {
    std::process::Command::new("python3")
        .arg("-c")
        .arg("pass")
        .status()
        .ok()
        .filter(|s| s.success())
        .map(|_| "python3")
}

#[test]
fn python_scripts_are_fitted_through_n_in_their_command() {
    let Some(python) = python() else {
        eprintln!("skipped: no python3");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let strings = dir.path().join("strings.py");
    std::fs::write(
        &strings,
        "import sys\nn = int(sys.argv[1])\nwords = ['item-%d' % i for i in range(n)]\n",
    )
    .unwrap();
    let table = dir.path().join("table.py");
    std::fs::write(
        &table,
        "import sys\nn = int(sys.argv[1])\ntable = [[i * j for j in range(n)] for i in range(n)]\n",
    )
    .unwrap();
    let json = dir.path().join("s.json");
    run(
        profile()
            .args(["--sweep", "10k..500k", "-q", "--json"])
            .arg(&json)
            .args(["--", python])
            .arg(&strings)
            .arg("{n}"),
        0,
    );
    let r = report(&json);
    let s = &r["runs"][0]["sweep"];
    assert_eq!(r["runs"][0]["heap_scope"], "program", "{r}");
    assert_eq!(model(s, "peak_bytes"), "O(n)", "{}", s["fits"]);
    assert!(s["points"][0]["retained_bytes"].is_null());
    let json = dir.path().join("t.json");
    run(
        profile()
            .args([
                "--sweep",
                "100..1k",
                "--max-complexity",
                "O(n)",
                "-q",
                "--json",
            ])
            .arg(&json)
            .args(["--", python])
            .arg(&table)
            .arg("{n}"),
        1,
    );
    let r = report(&json);
    let s = &r["runs"][0]["sweep"];
    assert_eq!(model(s, "peak_bytes"), "O(n^2)", "{}", s["fits"]);
}

/// A program whose memory grows outside malloc (an anonymous mapping of 512 B per n) has a
/// constant heap: its RSS peak is held to `--max-complexity` beside the heap (it passed
/// `O(1)` before), and only where most of the growth is outside the heap.
#[test]
fn a_program_growing_outside_malloc_is_held_by_its_rss_peak() {
    let Some(python) = python() else {
        eprintln!("skipped: no python3");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mapped = dir.path().join("mapped.py");
    std::fs::write(
        &mapped,
        "import mmap, sys\nn = int(sys.argv[1])\nm = mmap.mmap(-1, 512 * n)\n\
         for off in range(0, 512 * n, 4096):\n    m[off] = 1\n",
    )
    .unwrap();
    for (limit, code) in [("O(1)", 1), ("O(n)", 0)] {
        let json = dir.path().join(format!("{code}.json"));
        run(
            profile()
                .args(["--sweep", "2k..100k", "--max-complexity", limit, "-q"])
                .arg("--json")
                .arg(&json)
                .args(["--", python])
                .arg(&mapped)
                .arg("{n}"),
            code,
        );
        let r = report(&json);
        let s = &r["runs"][0]["sweep"];
        assert_eq!(model(s, "rss_peak_bytes"), "O(n)", "{}", s["fits"]);
        assert!(
            s["gated"]
                .as_array()
                .unwrap()
                .iter()
                .any(|g| g == "rss_peak_bytes"),
            "{}",
            s["gated"]
        );
    }
}

#[test]
fn bad_sweeps_are_exit_2_with_a_sentence() {
    for (args, words) in [
        (vec!["--sweep", "1000", "-w", "sort-strings"], "one size"),
        (vec!["--sweep", "0,1000", "-w", "sort-strings"], "size of 0"),
        (vec!["--sweep", "1k..1M", "--", "echo", "7"], "no {n}"),
        (
            vec!["--sweep", "1k..10k", "-w", "box-leak"],
            "box-leak takes no input size",
        ),
        (
            vec!["--sweep", "1k,2k", "--max-complexity", "O(2^n)"],
            "not a growth class",
        ),
        (
            vec!["--max-complexity", "O(n)", "-w", "sort-strings"],
            "--sweep",
        ),
        (
            vec!["--sweep", "1k,2k", "--concurrency", "1,2"],
            "--concurrency",
        ),
        // Every size above the workload's limit: it reported "0 sizes" and clean, exit 0.
        (
            vec!["--sweep", "5k..100k", "-w", "pairwise-distances"],
            "pairwise-distances takes sizes up to 4k, and 0 of the sizes given are within it",
        ),
        (
            vec!["--sweep", "1k,5k", "-w", "pairwise-distances"],
            "1 of the sizes given is within it",
        ),
    ] {
        let out = run(profile().args(&args), 2);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(words), "{args:?}: {words} not in {stderr}");
        assert!(
            stderr.lines().filter(|l| !l.trim().is_empty()).count() <= 4,
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn a_baseline_compares_the_fitted_coefficient_and_the_class() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.json");
    let sweep = ["--sweep", "1k..100k", "-w", "sort-strings"];
    run(profile().args(sweep).arg("--save-baseline").arg(&base), 0);
    // The same code again: no change beyond the tolerance.
    run(profile().args(sweep).arg("--baseline").arg(&base), 0);
    // A baseline whose code needed half the memory per item: a regression of the coefficient.
    let mut old = report(&base);
    let fit = &mut old["runs"][0]["sweep"]["fits"]["peak_bytes"];
    let c = fit["coefficient"].as_f64().unwrap();
    fit["coefficient"] = (c / 2.0).into();
    let halved = dir.path().join("halved.json");
    std::fs::write(&halved, serde_json::to_vec(&old).unwrap()).unwrap();
    let json = dir.path().join("r.json");
    run(
        profile()
            .args(sweep)
            .arg("--baseline")
            .arg(&halved)
            .arg("--json")
            .arg(&json),
        1,
    );
    let r = report(&json);
    let changes = r["runs"][0]["baseline"]["changes"].as_array().unwrap();
    let peak = changes
        .iter()
        .find(|ch| ch["metric"] == "peak")
        .unwrap_or_else(|| panic!("{changes:?}"));
    assert_eq!(peak["status"], "regression", "{peak}");
    assert_eq!(peak["classes"], serde_json::json!(["O(n)", "O(n)"]));
    // The summary gives the coefficients with their term ("16 B → 32.2 B" lost the "× n").
    let md = dir.path().join("r.md");
    run(
        profile()
            .args(sweep)
            .arg("--baseline")
            .arg(&halved)
            .arg("--markdown")
            .arg(&md),
        1,
    );
    let md = std::fs::read_to_string(&md).unwrap();
    assert!(md.contains("🔺 peak ") && md.contains(" × n →"), "{md}");
    // A baseline that was O(1): the class rose.
    let mut old = report(&base);
    let fit = &mut old["runs"][0]["sweep"]["fits"]["peak_bytes"];
    fit["model"] = "O(1)".into();
    fit["intercept"] = 4096.0.into();
    std::fs::write(&halved, serde_json::to_vec(&old).unwrap()).unwrap();
    let out = run(profile().args(sweep).arg("--baseline").arg(&halved), 1);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("heap peak against n grows as O(n), was O(1)"),
        "{stdout}"
    );
}

#[test]
fn a_small_programs_rss_peak_is_its_own_and_a_wrapper_is_named() {
    // The kernel's ru_maxrss of a started program also counts the image it was exec'd from,
    // the profiler's: `true` read 14 MiB at every size. The heap library reads the program's
    // own high-water mark as it exits.
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("true.json");
    run(
        profile()
            .args(["--sweep", "1,2,3", "-q", "--json"])
            .arg(&json)
            .args(["--", "true", "{n}"]),
        0,
    );
    let r = report(&json);
    for point in r["runs"][0]["sweep"]["points"].as_array().unwrap() {
        let rss = point["rss_peak_bytes"].as_u64().expect("an RSS peak");
        assert!(rss < 8 << 20, "true's RSS peak read {rss} B: {point}");
    }
    // A wrapper's child is not counted: a note says so.
    let json = dir.path().join("sh.json");
    run(
        profile()
            .args(["--sweep", "1,2,3", "-q", "--json"])
            .arg(&json)
            .args(["--", "sh", "-c", "/bin/true {n}; true"]),
        0,
    );
    let notes = report(&json)["runs"][0]["source"]["notes"].to_string();
    assert!(notes.contains("started processes of its own"), "{notes}");
}

/// Runs that exit leaving a process running (a daemon): said once in the notes, since that
/// memory is in none of the numbers, and left running.
#[test]
fn runs_that_leave_processes_running_are_said_and_left_running() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("daemon.json");
    let pids = dir.path().join("pids");
    let script = format!(
        "sleep 20 >/dev/null 2>&1 & echo $! >> {}; true {{n}}",
        pids.display()
    );
    let out = profile()
        .args(["--sweep", "1,2", "-q", "--json"])
        .arg(&json)
        .args(["--", "sh", "-c", &script])
        .output()
        .expect("ran");
    let left: Vec<i32> = std::fs::read_to_string(&pids)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    let alive = left
        .iter()
        .filter(|&&pid| std::path::Path::new(&format!("/proc/{pid}")).exists())
        .count();
    for &pid in &left {
        let _ = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status();
    }
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        !left.is_empty() && alive == left.len(),
        "{alive} of {left:?} alive"
    );
    let notes = report(&json)["runs"][0]["source"]["notes"].clone();
    let said = notes
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n.as_str().unwrap().contains("left processes running"))
        .count();
    assert_eq!(said, 1, "{notes}");
}

#[test]
fn a_program_run_past_the_timeout_is_stopped_and_the_sweep_fails() {
    // A sweep of a program had no bound: a run that hung hung the gate (--timeout was refused
    // with --sweep, and --duration too).
    let out = run(
        profile()
            .args(["--sweep", "10,20,60000", "--timeout", "2", "--"])
            .args(["sh", "-c", "sleep $(({n} / 1000)).$(({n} % 1000 / 10))"]),
        3,
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(
            "at n = 60000, repetition 1: a run of the program did not end within --timeout 2 s"
        ),
        "{}",
        text(&out)
    );
}
