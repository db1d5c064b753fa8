//! `profile --attribute` through the real binary: on the heap-leaking workloads the first site
//! is the line marked `// leak site: <workload>` in the catalog's source, sampled during the
//! run (the default) and with `exact` (dhat passes, whose kept file is dhat's format and names
//! the same line); clean workloads report no site, even with `always`.

use assert_cmd::Command;
use serde_json::Value;

const LEAKING_SOURCE: &str = include_str!("../src/workloads/leaking.rs");

/// Lines marked `// leak site: <workload>`.
fn marked_lines(workload: &str) -> Vec<usize> {
    let mark = format!("// leak site: {workload}");
    LEAKING_SOURCE
        .lines()
        .enumerate()
        .filter(|(_, l)| l.trim_end().ends_with(&mark))
        .map(|(i, _)| i + 1)
        .collect()
}

fn attribute(workloads: &[&str], when: &str) -> (Value, std::path::PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let mut cmd = Command::cargo_bin("profile").unwrap();
    for w in workloads {
        cmd.args(["--workload", w]);
    }
    let out = cmd
        .args(["--attribute", when, "-q", "--json"])
        .arg(&json)
        .output()
        .unwrap();
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    (report, dir.path().to_path_buf(), dir)
}

const HEAP_LEAKS: [&str; 4] = [
    "box-leak",
    "small-leak-under-churn",
    "rc-cycle",
    "global-cache",
];

/// The line the first site of `run` names, checked to be a marked line of `workload`.
fn first_site_line(run: &Value, workload: &str) -> usize {
    assert_eq!(run["workload"], *workload);
    let lines = marked_lines(workload);
    assert!(!lines.is_empty(), "no `// leak site: {workload}` mark");
    let first = &run["leak_sites"][0];
    let location = first["location"]
        .as_str()
        .unwrap_or_else(|| panic!("{workload}: no site: {run}"));
    let (file, line) = location.rsplit_once(':').unwrap();
    assert!(
        file.ends_with("workloads/leaking.rs"),
        "{workload}: {location}"
    );
    let line: usize = line.parse().unwrap();
    assert!(
        lines.contains(&line),
        "{workload}: first site {location}, marked {lines:?}"
    );
    line
}

#[test]
fn sampling_names_the_line_that_leaks_with_honest_bounds() {
    let (report, _, _keep) = attribute(&HEAP_LEAKS, "growth");
    for (i, workload) in HEAP_LEAKS.iter().enumerate() {
        let mut run = &report["runs"][i];
        // A steady leak's samples fail the test of their spread over the window (binomial, at
        // 1%) about 0.6% of the time, and no site is named: a leak with no site is run once
        // more.
        let again;
        let no_site = run["leak_sites"].as_array().is_some_and(|s| s.is_empty());
        if run["verdict"] == "leak" && no_site {
            again = attribute(&[workload], "growth");
            run = &again.0["runs"][0];
        }
        first_site_line(run, workload);
        let info = &run["attribution"];
        assert_eq!(info["method"], "sampled", "{info}");
        assert!(info["samples"].as_u64().unwrap() > 0, "{info}");
        assert!(info["dhat_file"].is_null(), "no dhat pass ran: {info}");
        // Each of these leaks one block per iteration at its first site (rc-cycle: one per
        // payload line); an estimate resting on its samples lands near it, inside its bounds.
        let first = &run["leak_sites"][0];
        let blocks = first["blocks_per_iteration"].as_f64().unwrap();
        let [lo, hi] = [0, 1].map(|k| first["blocks_per_iteration_ci"][k].as_f64().unwrap());
        assert!((0.3..=3.0).contains(&blocks), "{workload}: {first}");
        assert!(
            lo <= blocks && blocks <= hi && lo < hi,
            "{workload}: {first}"
        );
        assert!(
            first["samples"].as_u64().unwrap() >= 4,
            "{workload}: {first}"
        );
    }
}

#[test]
fn exact_mode_names_the_line_with_dhat_and_cross_checks_the_counters() {
    let leaking = ["box-leak", "rc-cycle"];
    let (report, dir, _keep) = attribute(&leaking, "exact");
    for (i, workload) in leaking.iter().enumerate() {
        let run = &report["runs"][i];
        let line = first_site_line(run, workload);
        let first = &run["leak_sites"][0];
        assert!(first["bytes_per_iteration"].as_f64().unwrap() >= 64.0);
        assert!(first["blocks_per_iteration"].as_f64().unwrap() >= 0.9);
        assert_eq!(run["attribution"]["method"], "exact");

        // dhat's file of the longest pass: dhat's format, naming the same line.
        let kept = dir.join(format!("{workload}.dhat-heap.json"));
        assert_eq!(run["attribution"]["dhat_file"], kept.display().to_string());
        let dhat: Value = serde_json::from_slice(&std::fs::read(&kept).unwrap()).unwrap();
        assert_eq!(dhat["dhatFileVersion"], 2);
        assert_eq!(dhat["mode"], "rust-heap");
        let needle = format!("workloads/leaking.rs:{line}:");
        assert!(
            dhat["ftbl"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f.as_str().unwrap().contains(&needle)),
            "{workload}: dhat's ftbl does not name {needle}"
        );
        assert!(
            run["attribution"]["cross_check"].is_null(),
            "{}",
            run["attribution"]
        );
    }
}

#[test]
fn clean_workloads_report_no_leaking_site() {
    let clean = [
        "hashmap-churn",
        "lru-cache",
        "buffer-regrow",
        "temp-files",
        "json-roundtrip",
        "parse-records",
        "sort-strings",
        "index-keys",
    ];
    let (report, _, _keep) = attribute(&clean, "always");
    for (i, workload) in clean.iter().enumerate() {
        let run = &report["runs"][i];
        assert_eq!(run["workload"], *workload);
        assert!(
            run["attribution"].is_object(),
            "{workload}: attribution did not run"
        );
        assert_eq!(run["attribution"]["method"], "sampled");
        assert_eq!(run["leak_sites"], Value::Array(vec![]), "{workload}");
    }
}
