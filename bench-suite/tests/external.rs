//! End-to-end tests of `profile -- COMMAND` and `profile --pid`, through the real binary, on
//! small Python programs written for the purpose (python3 is on every machine we run on).

use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use serde_json::Value;

fn profile() -> Command {
    let mut cmd = Command::cargo_bin("profile").expect("the profile binary");
    cmd.env("NO_COLOR", "1").env_remove("RUST_LOG");
    cmd
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Run and check the exit code, returning the output for further checks.
fn expect_exit(cmd: &mut Command, code: i32) -> Output {
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

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).expect("report written")).expect("valid JSON")
}

/// Write a Python script into `dir`, returning its path.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, body).expect("script written");
    path
}

/// A loop that prints "done" after each iteration; `body` is the iteration, `setup` before.
/// It sleeps after the marker, so the sample falls between iterations rather than in the next
/// one. Bounded, so that a profiler that fails to stop it does not hang the test.
fn marked_loop(setup: &str, body: &str) -> String {
    let body: String = body.lines().map(|l| format!("    {l}\n")).collect();
    format!(
        "import os, sys, time, threading\n{setup}\nfor i in range(300):\n{body}    print('done', flush=True)\n    time.sleep(0.008)\n"
    )
}

/// Send `pid` SIGTERM, whether or not it is still there (a test's clean-up).
fn kill(pid: u64) {
    let _ = std::process::Command::new("kill")
        .arg(pid.to_string())
        .status();
}

fn alive(pid: u64) -> bool {
    // A reaped process has no /proc entry; a zombie is not alive either.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

fn metric<'a>(report: &'a Value, name: &str) -> &'a Value {
    &report["runs"][0]["metrics"][name]
}

#[test]
fn a_script_retaining_100_kib_per_marker_is_an_rss_leak_in_every_output() {
    let dir = tempfile::tempdir().unwrap();
    let leaky = script(
        dir.path(),
        "leaky.py",
        &marked_loop(
            "kept = []",
            "kept.append(bytearray(100 * 1024))\njunk = [str(j) * 10 for j in range(2000)]\ndel junk",
        ),
    );
    let json = dir.path().join("r.json");
    let svg = dir.path().join("r.svg");
    let md = dir.path().join("r.md");
    let out = expect_exit(
        profile()
            .args(["--marker", "^done$", "--iterations", "20"])
            .arg("--json")
            .arg(&json)
            .arg("--plot")
            .arg(&svg)
            .arg("--markdown")
            .arg(&md)
            .arg("--")
            .arg("python3")
            .arg(&leaky),
        1,
    );
    // The program's output passed through, then the table.
    let text = stdout(&out);
    assert!(text.starts_with("done\ndone\n"), "{text}");
    assert!(text.contains("rss_bytes"), "{text}");
    assert!(text.contains("stopped by profile after"), "{text}");

    let report = read_json(&json);
    let run = &report["runs"][0];
    assert_eq!(run["source"]["kind"], "command");
    assert_eq!(run["source"]["end"], "iterations");
    assert_eq!(run["source"]["marker"], "^done$");
    assert_eq!(run["x_axis"], "iteration");
    // The heap library counted it too (its own tests are in preload.rs).
    assert_eq!(run["heap_scope"], "program");
    let rss = metric(&report, "rss_bytes");
    assert_eq!(rss["verdict"], "leak", "{rss}");
    assert_eq!(rss["gating"], true);
    let slope = rss["slope_per_iteration"].as_f64().unwrap();
    assert!(
        (80.0 * 1024.0..130.0 * 1024.0).contains(&slope),
        "slope {slope}"
    );
    assert!(rss["slope_per_second"].is_null());
    // Confirmed at twice the iterations, like a workload in process.
    assert_eq!(run["iterations"], 40, "{}", run["extensions"]);
    let samples = run["samples"].as_array().unwrap();
    assert_eq!(samples.len(), 41);
    assert!(samples.iter().all(|s| s["heap_bytes"].is_i64()));
    assert!(samples.iter().all(|s| s["rss_bytes"].as_u64().unwrap() > 0));
    // The program was stopped, not left behind.
    assert!(!alive(run["source"]["pid"].as_u64().unwrap()));

    let summary = std::fs::read_to_string(&md).unwrap();
    assert!(summary.contains("rss_bytes)"), "{summary}");
    assert!(summary.contains("heap +"), "{summary}");
    let picture = std::fs::read_to_string(&svg).unwrap();
    assert!(
        picture.contains("RSS less mapped files — LEAK"),
        "plot lacks the RSS leak title"
    );
    assert!(picture.contains("iteration"));
}

#[test]
fn a_steady_script_allocating_and_freeing_is_not_a_leak() {
    let dir = tempfile::tempdir().unwrap();
    let steady = script(
        dir.path(),
        "steady.py",
        &marked_loop(
            "",
            "buf = bytearray(100 * 1024)\njunk = [str(j) * 10 for j in range(2000)]\nd = {j: str(j) for j in range(1000)}\ndel buf, junk, d",
        ),
    );
    let json = dir.path().join("r.json");
    expect_exit(
        profile()
            .args(["-q", "--marker", "done", "--iterations", "20", "--json"])
            .arg(&json)
            .arg("--")
            .arg("python3")
            .arg(&steady),
        0,
    );
    let report = read_json(&json);
    for name in ["rss_bytes", "fds", "threads"] {
        assert_ne!(metric(&report, name)["verdict"], "leak", "{name}");
    }
}

/// A program reading 2 MiB more of a file through mmap per iteration grows its RSS by pages
/// the kernel can drop and read again: not a leak (it was one, exit 1, 12 times in 12). The
/// same growth in an anonymous mapping, or in shared memory (memfd), is one. The mapping is
/// large enough (192 MiB) to keep growing past 80 iterations, where an RSS leak is confirmed.
#[test]
fn pages_of_a_mapped_file_are_no_rss_leak_and_anonymous_or_shared_ones_are() {
    let dir = tempfile::tempdir().unwrap();
    // Beside the target directory, on a disk: in a tmpfs, a file's pages are shared memory.
    let files = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let reader = script(
        dir.path(),
        "mapped.py",
        &marked_loop(
            "import mmap, tempfile\n\
             kind, size, step = sys.argv[1], 192 << 20, 2 << 20\n\
             if kind == 'file':\n    \
                 f = tempfile.TemporaryFile(dir=sys.argv[2])\n    \
                 f.truncate(size)\n    \
                 m = mmap.mmap(f.fileno(), size, access=mmap.ACCESS_READ)\n\
             elif kind == 'shm':\n    \
                 fd = os.memfd_create('grows')\n    \
                 os.ftruncate(fd, size)\n    \
                 m = mmap.mmap(fd, size)\n\
             else:\n    \
                 m = mmap.mmap(-1, size)\n\
             touched = 0",
            "for off in range(touched, min(touched + step, size), 4096):\n    \
                 if kind == 'file':\n        \
                     m[off]\n    \
                 else:\n        \
                     m[off] = 1\n\
             touched += step",
        ),
    );
    for (kind, code, verdict) in [
        ("file", 0, "clean"),
        ("anon", 1, "leak"),
        ("shm", 1, "leak"),
    ] {
        // The reader of this kind, with `extra` options.
        let read = |extra: &[&str]| {
            let mut cmd = profile();
            cmd.args([
                "-q",
                "--no-heap",
                "--marker",
                "^done$",
                "--iterations",
                "20",
            ])
            .args(extra)
            .arg("--")
            .arg("python3")
            .arg(&reader)
            .arg(kind)
            .arg(files.path());
            cmd
        };
        let json = dir.path().join(format!("{kind}.json"));
        expect_exit(&mut read(&["--json", json.to_str().unwrap()]), code);
        let report = read_json(&json);
        let rss = metric(&report, "rss_bytes");
        assert_eq!(rss["verdict"], verdict, "{kind}: {rss}");
        let samples = report["runs"][0]["samples"].as_array().unwrap();
        let file_grew = samples.last().unwrap()["rss_file_bytes"].as_u64().unwrap()
            - samples[0]["rss_file_bytes"].as_u64().unwrap();
        if kind == "file" {
            // The pages were there, in RSS, and the reason says they were left out.
            assert!(file_grew >= 30 << 20, "{file_grew}");
            let reason = rss["reason"].as_str().unwrap();
            assert!(
                reason.contains("pages of mapped files") && reason.contains("grew by"),
                "{reason}"
            );
            // A budget holds what the verdict judges: the file's pages are not over it.
            expect_exit(&mut read(&["--max-rss", "30MiB"]), 0);
        } else {
            assert!(file_grew < 8 << 20, "{kind}: {file_grew}");
        }
    }
}

/// RSS is read exact to the page (`/proc/<pid>/status`), not as the kernel's batched sum
/// (`/proc/<pid>/stat`, 128 KiB jumps here): 8 KiB of private memory kept per iteration is a
/// leak at its own rate, and the part of RSS that is not file pages is that growth.
#[test]
fn rss_is_read_to_the_page() {
    let dir = tempfile::tempdir().unwrap();
    let keeper = script(
        dir.path(),
        "keeper.py",
        &marked_loop(
            "import mmap\n\
             m = mmap.mmap(-1, 64 << 20, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)\n\
             touched = 0",
            "m[touched] = 1\nm[touched + 4096] = 1\ntouched += 8192",
        ),
    );
    let json = dir.path().join("k.json");
    expect_exit(
        profile()
            .args([
                "-q",
                "--no-heap",
                "--marker",
                "^done$",
                "--iterations",
                "40",
            ])
            .arg("--json")
            .arg(&json)
            .arg("--")
            .arg("python3")
            .arg(&keeper),
        1,
    );
    let report = read_json(&json);
    let rss = metric(&report, "rss_bytes");
    assert_eq!(rss["verdict"], "leak", "{rss}");
    let slope = rss["slope_per_iteration"].as_f64().unwrap();
    assert!((7.0 * 1024.0..9.5 * 1024.0).contains(&slope), "{rss}");
    if !status_is_exact() {
        eprintln!("skipped the per-sample check: this kernel's status counts RSS in batches");
        return;
    }
    // Read to the page, nearly every sample is above the one before (read from stat with
    // status's file pages, 1 in 16 was, and the rest 0 B apart).
    let judged: Vec<i64> = report["runs"][0]["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["rss_bytes"].as_i64().unwrap() - s["rss_file_bytes"].as_i64().unwrap())
        .collect();
    let rises = judged.windows(2).filter(|w| w[1] > w[0]).count();
    assert!(rises * 4 >= judged.len() * 3, "{judged:?}");
}

/// Whether this kernel's /proc/self/status counts RSS to the page: 64 pages touched here
/// move VmRSS by 64 pages (the kernel's batched sum would move by 0 or 32).
fn status_is_exact() -> bool {
    fn vm_rss() -> i64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace()
            .nth(1)
            .unwrap()
            .parse::<i64>()
            .unwrap()
            * 1024
    }
    let mut pages = vec![0u8; 64 * 4096 + 4096];
    let before = vm_rss();
    for page in pages.chunks_mut(4096) {
        page[0] = 1;
    }
    let grew = vm_rss() - before;
    std::hint::black_box(&pages);
    (60 * 4096..=68 * 4096).contains(&grew)
}

/// Marker lines still in the pipe when the profiler stopped the program (it had reached its
/// iterations) were written before the stop: not lines of a process it could not measure.
/// A program that wrote 500 as it was stopped lost every clean verdict to "lines came when
/// the program could no longer be measured".
#[test]
fn lines_left_in_the_pipe_when_the_profiler_stops_the_program_are_not_unseen() {
    let dir = tempfile::tempdir().unwrap();
    let burst = script(
        dir.path(),
        "burst.py",
        "import signal, sys, time\n\
         def bye(*_):\n    sys.stdout.write('done\\n' * 500)\n    sys.stdout.flush()\n    sys.exit(0)\n\
         signal.signal(signal.SIGTERM, bye)\n\
         for i in range(3000):\n    print('done', flush=True)\n    time.sleep(0.008)\n",
    );
    let json = dir.path().join("r.json");
    expect_exit(
        profile()
            .args(["-q", "--marker", "done", "--iterations", "20", "--json"])
            .arg(&json)
            .arg("--")
            .arg("python3")
            .arg(&burst),
        0,
    );
    let report = read_json(&json);
    let run = &report["runs"][0];
    assert_eq!(run["source"]["end"], "iterations", "{}", run["source"]);
    let said = format!("{} {}", run["metrics"], run["source"]["notes"]);
    assert!(!said.contains("could no longer be measured"), "{said}");
}

#[test]
fn leaked_fds_and_threads_fail_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "fds",
            marked_loop("files = []", "files.append(open(os.devnull))"),
        ),
        (
            "threads",
            marked_loop(
                "stop = threading.Event()",
                "threading.Thread(target=stop.wait, daemon=True).start()",
            ),
        ),
    ];
    for (leaking, body) in cases {
        let path = script(dir.path(), &format!("{leaking}.py"), &body);
        let json = dir.path().join(format!("{leaking}.json"));
        // Without heap counters: Python's heap grows with each thread or file object too, and
        // a heap leak confirmed first stops the run with this one seen at one checkpoint
        // only (inconclusive, as it happened once on a loaded machine).
        expect_exit(
            profile()
                .args(["-q", "--no-heap", "--marker", "done", "--iterations", "10"])
                .arg("--json")
                .arg(&json)
                .arg("--")
                .arg("python3")
                .arg(&path),
            1,
        );
        let report = read_json(&json);
        let m = metric(&report, leaking);
        assert_eq!(m["verdict"], "leak", "{leaking}: {m}");
        // One per iteration; a sample late enough to see the next iteration's start adds a bit.
        let slope = m["slope_per_iteration"].as_f64().unwrap();
        assert!((1.0..=1.2).contains(&slope), "{leaking}: {m}");
    }
}

#[test]
fn a_program_that_crashes_or_exits_non_zero_is_exit_3_with_its_samples() {
    let dir = tempfile::tempdir().unwrap();
    let aborts = script(
        dir.path(),
        "aborts.py",
        "import os, time\nfor i in range(8):\n    time.sleep(0.02)\n    print('done', flush=True)\ntime.sleep(0.05)\nos.abort()\n",
    );
    let json = dir.path().join("abort.json");
    let out = expect_exit(
        profile()
            .args(["--marker", "done", "--json"])
            .arg(&json)
            .arg("--")
            .arg("python3")
            .arg(&aborts),
        3,
    );
    assert!(stdout(&out).contains("SIGABRT"), "{}", stdout(&out));
    let report = read_json(&json);
    let run = &report["runs"][0];
    assert_eq!(run["source"]["end"], "exited");
    assert_eq!(run["source"]["exit"]["signal"], 6);
    assert!(
        run["failure"]["message"]
            .as_str()
            .unwrap()
            .contains("signal 6")
    );
    assert_eq!(run["samples"].as_array().unwrap().len(), 8, "{run}");

    // Without a marker, in time: exit code 3 of the program is exit 3 of profile.
    let exits = script(
        dir.path(),
        "exits.py",
        "import sys, time\ntime.sleep(0.3)\nsys.exit(3)\n",
    );
    let json = dir.path().join("exit.json");
    expect_exit(
        profile()
            .args(["-q", "--interval", "20", "--json"])
            .arg(&json)
            .arg("--")
            .arg("python3")
            .arg(&exits),
        3,
    );
    let report = read_json(&json);
    assert_eq!(report["runs"][0]["source"]["exit"]["code"], 3);
    assert!(report["runs"][0]["samples"].as_array().unwrap().len() >= 5);
}

#[test]
fn a_program_that_cannot_be_started_is_exit_2_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let out = expect_exit(
        profile()
            .arg("--json")
            .arg(&json)
            .args(["--", "no-such-program-xyz", "--flag"]),
        2,
    );
    let err = stderr(&out);
    assert!(
        err.contains("could not start 'no-such-program-xyz'"),
        "{err}"
    );
    assert!(!json.exists());
}

#[test]
fn arguments_that_do_not_apply_to_a_program_are_usage_errors_naming_them() {
    for (args, named) in [
        (&["--iterations", "5", "--", "true"][..], "--iterations"),
        (&["--marker", "(", "--", "true"][..], "--marker '('"),
        (
            &["--max-peak", "1MiB", "--no-heap", "--", "true"][..],
            "--max-peak",
        ),
        (
            &["--max-allocated", "1MiB", "--pid", "1"][..],
            "--max-allocated",
        ),
        (&["--timeout", "2", "--", "sleep", "6"][..], "--timeout"),
        (
            &["--warmup-secs", "1", "--marker", "x", "--", "true"][..],
            "--warmup-secs",
        ),
        (&["--duration", "1"][..], "--duration"),
        (
            &["--duration", "-1", "--", "true"][..],
            "invalid value '-1' for '--duration <SECS>'",
        ),
        (
            &["--warmup-secs", "-2", "--", "true"][..],
            "invalid value '-2' for '--warmup-secs <SECS>'",
        ),
        (&["--pid", "1", "--marker", "x"][..], "--marker"),
    ] {
        let out = expect_exit(profile().args(args), 2);
        assert!(stderr(&out).contains(named), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn a_bad_marker_is_one_line_naming_the_flag_the_position_and_the_fault() {
    let out = expect_exit(profile().args(["--marker", "ab(c", "--", "true"]), 2);
    let err = stderr(&out);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("--marker 'ab(c'"), "{err}");
    assert!(err.contains("unclosed group"), "{err}");
    assert!(err.contains("position 3"), "{err}");
}

#[test]
fn the_first_sample_of_a_started_program_is_taken_once_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    // With no warm-up, a first sample taken while the program is still being loaded would
    // show its loading as growth. (Three runs: a sample taken too early is not always caught.)
    for run in 0..3 {
        let json = dir.path().join(format!("sleep-{run}.json"));
        expect_exit(
            profile()
                .args(["-q", "--interval", "20", "--warmup-secs", "0"])
                .args(["--duration", "0.3", "--json"])
                .arg(&json)
                .args(["--", "sleep", "5"]),
            0,
        );
        let report = read_json(&json);
        let samples = report["runs"][0]["samples"].as_array().unwrap();
        let rss: Vec<u64> = samples
            .iter()
            .map(|s| s["rss_bytes"].as_u64().unwrap())
            .collect();
        let last = *rss.last().unwrap();
        assert!(
            rss[0] * 10 >= last * 9,
            "sample 0 is not the running program: {rss:?}"
        );
        assert_ne!(metric(&report, "rss_bytes")["verdict"], "leak");
    }

    // A program that is gone at once: nothing it did not measure is recorded as 0.
    let json = dir.path().join("exit.json");
    expect_exit(
        profile()
            .args(["-q", "--json"])
            .arg(&json)
            .args(["--", "sh", "-c", "exit 3"]),
        3,
    );
    let report = read_json(&json);
    // Gone before the first sample (one interval in): no sample at all, rather than zeros.
    let samples = report["runs"][0]["samples"].as_array().unwrap();
    assert!(samples.is_empty(), "{samples:?}");
    assert_eq!(report["runs"][0]["verdict"], "inconclusive");
}

#[test]
fn a_time_run_shows_one_warmup_in_its_header_and_its_reasons() {
    for (duration, program) in [("0.5", "3"), ("2", "5")] {
        let out = expect_exit(
            profile().args([
                "--duration",
                duration,
                "--interval",
                "20",
                "--",
                "sleep",
                program,
            ]),
            0,
        );
        let text = stdout(&out);
        let header = text
            .split("warm-up ")
            .nth(1)
            .and_then(|rest| rest.split(" s").next())
            .unwrap_or_else(|| panic!("no warm-up in the header: {text}"));
        let rows: Vec<&str> = text
            .lines()
            .filter(|l| {
                ["rss_bytes", "fds", "threads"]
                    .iter()
                    .any(|m| l.trim_start().starts_with(m))
            })
            .collect();
        assert_eq!(rows.len(), 3, "{text}");
        for row in rows {
            assert!(
                row.contains(&format!("{header} s")),
                "header says {header} s: {row}\n{text}"
            );
        }
    }
}

#[test]
fn a_marker_that_matches_no_line_is_bad_usage_and_a_lone_line_is_inconclusive() {
    let run = |script: &str, fail_on_inconclusive: bool, code: i32| {
        let mut cmd = profile();
        if fail_on_inconclusive {
            cmd.arg("--fail-on-inconclusive");
        }
        let out = expect_exit(
            cmd.args(["--marker", "done", "--", "sh", "-c", script]),
            code,
        );
        let text = stdout(&out);
        assert!(text.contains("inconclusive"), "{text}");
        text
    };
    // Nothing measured: a gate must not pass on a typo in its marker.
    for fail_on_inconclusive in [false, true] {
        let text = run("echo hi", fail_on_inconclusive, 2);
        assert!(
            text.contains("no output line matched --marker 'done'"),
            "{text}"
        );
        assert!(
            text.contains("failed: --marker 'done' matched no output line"),
            "{text}"
        );
    }
    // Lines that matched but came when the program had exited are not a typo, but nothing
    // was measured all the same: a gate must not pass a program it never saw. (Whether the
    // first line is sampled before `sh` exits is a race: on a loaded machine it sometimes
    // is, and the run is then the lone-line case below, saying the other lines came late.)
    let out = profile()
        .args([
            "--no-heap",
            "--marker",
            "done",
            "--",
            "sh",
            "-c",
            "echo done; echo done; echo done",
        ])
        .output()
        .unwrap();
    let text = stdout(&out);
    if text.contains("no metric could be judged") {
        assert_eq!(out.status.code(), Some(2), "{text}");
        assert!(
            text.contains(
                "failed: nothing of `sh -c 'echo done; echo done; echo done'` could be measured"
            ),
            "{text}"
        );
    } else {
        assert_eq!(out.status.code(), Some(0), "{text}");
        assert!(text.contains("0 marked iterations"), "{text}");
        assert!(
            text.contains("arrived when the program could no longer be measured"),
            "{text}"
        );
    }
    // One line starts an iteration that no line ends: nothing to judge, said so.
    let text = run("echo done", false, 0);
    assert!(text.contains("one output line matched --marker"), "{text}");
    run("echo done", true, 1);
}

#[test]
fn a_program_growing_in_time_is_judged_per_second() {
    let dir = tempfile::tempdir().unwrap();
    // 8 chunks of 256 KiB per second, paced by the clock (2 MiB/s), whatever the CPU does.
    let grows = script(
        dir.path(),
        "grows.py",
        "import time\nt0 = time.monotonic()\nkept = []\nwhile time.monotonic() - t0 < 30:\n    want = int((time.monotonic() - t0) * 8)\n    while len(kept) < want:\n        kept.append(bytearray(256 * 1024))\n    time.sleep(0.005)\n",
    );
    let json = dir.path().join("r.json");
    let svg = dir.path().join("r.svg");
    let out = expect_exit(
        profile()
            .args(["--duration", "2.5", "--interval", "20", "--json"])
            .arg(&json)
            .arg("--plot")
            .arg(&svg)
            .arg("--")
            .arg("python3")
            .arg(&grows),
        1,
    );
    assert!(stdout(&out).contains("per second"), "{}", stdout(&out));
    let report = read_json(&json);
    let run = &report["runs"][0];
    assert_eq!(run["x_axis"], "second");
    assert_eq!(run["source"]["end"], "duration");
    let rss = metric(&report, "rss_bytes");
    assert_eq!(rss["verdict"], "leak", "{rss}");
    assert!(rss["slope_per_iteration"].is_null());
    let per_second = rss["slope_per_second"].as_f64().unwrap();
    let mib = 1024.0 * 1024.0;
    assert!((1.5 * mib..2.5 * mib).contains(&per_second), "{per_second}");
    assert!(rss["reason"].as_str().unwrap().contains("MiB/s"), "{rss}");
    let picture = std::fs::read_to_string(&svg).unwrap();
    assert!(
        picture.contains("seconds"),
        "the plot's x axis is not in seconds"
    );
    assert!(picture.contains("/s"), "the plot's slope is not per second");
}

#[test]
fn include_children_sums_the_process_tree() {
    let dir = tempfile::tempdir().unwrap();
    // The parent stays flat, waiting; its child opens a file every 20 ms (and ends with its
    // parent).
    let child = "import os, time\nparent = os.getppid()\nkept = []\nwhile os.getppid() == parent:\n    kept.append(open(os.devnull))\n    time.sleep(0.02)\n";
    let parent = script(
        dir.path(),
        "parent.py",
        &format!("import subprocess, sys\nsubprocess.run([sys.executable, '-c', {child:?}])\n"),
    );
    let mut fds_verdicts = Vec::new();
    for (tree, code) in [(false, 0), (true, 1)] {
        let json = dir.path().join(format!("tree-{tree}.json"));
        let mut cmd = profile();
        cmd.args(["-q", "--duration", "2", "--interval", "20", "--json"])
            .arg(&json);
        if tree {
            cmd.arg("--include-children");
        }
        expect_exit(cmd.arg("--").arg("python3").arg(&parent), code);
        let report = read_json(&json);
        assert_eq!(report["runs"][0]["source"]["include_children"], tree);
        fds_verdicts.push(metric(&report, "fds")["verdict"].clone());
    }
    // Without the tree, the parent only waited for the child: not clean, not a leak.
    assert_eq!(fds_verdicts, ["inconclusive", "leak"]);
}

/// Start `sleep 30` for the pid tests; killed when dropped.
struct Sleeper(Child);

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn attaching_to_a_pid_samples_it_without_disturbing_it() {
    let mut sleeper = Sleeper(
        std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("sleep"),
    );
    let pid = sleeper.0.id();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let out = expect_exit(
        profile()
            .args([
                "--pid",
                &pid.to_string(),
                "--duration",
                "1.5",
                "--interval",
                "20",
            ])
            .arg("--json")
            .arg(&json),
        0,
    );
    assert!(stdout(&out).contains("left running"), "{}", stdout(&out));
    let report = read_json(&json);
    let run = &report["runs"][0];
    assert_eq!(run["source"]["kind"], "pid");
    assert_eq!(run["source"]["pid"], pid);
    assert_eq!(run["source"]["end"], "duration");
    assert!(run["source"]["exit"].is_null());
    assert_eq!(run["x_axis"], "second");
    assert!(run["workload"].as_str().unwrap().contains("sleep"));
    // 75 ticks of 20 ms; a loaded machine skips late ones.
    assert!(run["samples"].as_array().unwrap().len() >= 30, "{run}");
    assert_eq!(metric(&report, "rss_bytes")["verdict"], "clean");
    // Still running, not stopped, never signalled.
    assert!(sleeper.0.try_wait().unwrap().is_none(), "sleep ended");
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let state = stat.rsplit_once(')').unwrap().1.split_whitespace().next();
    assert_eq!(state, Some("S"), "{stat}");

    // A pid that does not exist: exit 2 naming it.
    let out = expect_exit(profile().args(["--pid", "999999999", "--duration", "1"]), 2);
    assert!(
        stderr(&out).contains("no process 999999999"),
        "{}",
        stderr(&out)
    );
}

/// A marked program whose output never matches the marker, and which does not exit: the run
/// used to print nothing at all while it waited. After 10 s it says so, once.
#[test]
fn a_marker_that_has_not_matched_for_10_s_is_said_while_the_run_waits() {
    let out = profile()
        .args(["--marker", "^DONE", "--duration", "11", "--"])
        .args(["sh", "-c", "while :; do echo tick; sleep 1; done"])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(
        err.matches("has matched --marker '^DONE' in 10 s").count(),
        1,
        "{err}"
    );
}

/// A launcher's helper that ran for an instant of its start-up (a pyenv shim's version
/// lookups) is not named as where the work may happen; the child that lasts is.
#[test]
fn only_children_that_last_are_named_as_left_out_of_the_samples() {
    let out = expect_exit(
        profile().args([
            "--duration",
            "2",
            "--",
            "sh",
            "-c",
            "sleep 0.3 & exec sh -c 'sleep 0.2; sleep 5'",
        ]),
        0,
    );
    let text = stdout(&out);
    let note = text
        .lines()
        .find(|l| l.contains("has child processes that these samples do not include"))
        .unwrap_or_else(|| panic!("no note on children in {text}"));
    assert_eq!(note.matches("(pid ").count(), 1, "{note}");
}

/// A program that ends before its first sample: nothing to judge, said once, with no note
/// pointing at heap notes that are not there, and not a pass (exit 2).
#[test]
fn a_program_that_ends_before_its_first_sample_says_so_and_nothing_else() {
    let out = expect_exit(profile().args(["--", "true"]), 2);
    let text = stdout(&out);
    assert!(text.contains("no sample taken"), "{text}");
    assert!(
        text.contains("failed: nothing of `true` could be measured"),
        "{text}"
    );
    assert!(text.contains("ended before its first sample"), "{text}");
    assert!(!text.contains("heap metrics are null"), "{text}");
}

/// A program that exits leaving a process running (a daemon, a background job): that process
/// is named, with how to measure it, and left running.
#[test]
fn a_program_that_exits_leaving_a_process_running_names_it() {
    let out = expect_exit(
        profile().args(["--", "sh", "-c", "sleep 30 >/dev/null 2>&1 & exit 0"]),
        // Ended before its first sample: nothing of it was measured.
        2,
    );
    let text = stdout(&out);
    // Named as it is when the program's exit is seen: `sleep`, or `sh` in the instant
    // before the forked shell exec'd it.
    let left: u64 = text
        .split("left running what it started: ")
        .nth(1)
        .and_then(|rest| rest.split("(pid ").nth(1))
        .and_then(|rest| rest.split(')').next())
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("no process named in {text}"));
    let was_alive = alive(left);
    kill(left);
    assert!(was_alive, "sleep (pid {left}) is not the one left running");
    assert!(text.contains(&format!("--pid {left}")), "{text}");
    assert!(text.contains("the program's alone"), "{text}");
    // Summed with the program's while it ran: "the program's alone" was said all the same.
    let out = expect_exit(
        profile().args([
            "--include-children",
            "--",
            "sh",
            "-c",
            "sleep 30 >/dev/null 2>&1 & exit 0",
        ]),
        2,
    );
    let text = stdout(&out);
    for pid in text.split("(pid ").skip(1).filter_map(|rest| {
        rest.split(')')
            .next()
            .and_then(|pid| pid.parse::<u64>().ok())
    }) {
        kill(pid);
    }
    assert!(text.contains("only until the program exited"), "{text}");
    assert!(!text.contains("the program's alone"), "{text}");
}

/// A program that orphans a short-lived process per request (a double fork): profile adopts
/// them and reaps those that ended while the run goes on, instead of keeping 200 zombies.
#[test]
fn orphans_that_ended_are_reaped_while_the_run_goes_on() {
    orphans_reaped_while(&[]);
}

/// The same under `--concurrency`, where what is adopted cannot be told by copy: reaping
/// needs no attribution.
#[test]
fn orphans_of_copies_run_at_once_are_reaped_while_the_run_goes_on() {
    orphans_reaped_while(&["--concurrency", "2"]);
}

/// Runs a program double-forking 200 short-lived processes with `args`, and asserts that few
/// of them are zombies under profile 1.5 s after the last.
fn orphans_reaped_while(args: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let done = dir.path().join("done");
    // With copies, each touches its own file; the first one done is waited for.
    let script = format!(
        "i=0; while [ $i -lt 200 ]; do (true &); i=$((i+1)); sleep 0.005; done; touch {}$$; sleep 4",
        done.display()
    );
    let mut profiler = std::process::Command::new(env!("CARGO_BIN_EXE_profile"))
        .args(["-q", "--interval", "20"])
        .args(args)
        .args(["--", "sh", "-c", &script])
        .stdout(Stdio::null())
        .spawn()
        .expect("profile");
    let me = profiler.id();
    let start = Instant::now();
    let finished = || {
        std::fs::read_dir(dir.path())
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("done"))
    };
    while !finished() && start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(20));
    }
    // A reap every 16 samples of 20 ms: 1.5 s is several, even on a busy machine.
    std::thread::sleep(Duration::from_millis(1500));
    // Children of profile's threads that are there and not alive: zombies.
    let zombies = std::fs::read_dir(format!("/proc/{me}/task"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|children| {
            children
                .split_whitespace()
                .filter_map(|pid| pid.parse::<u64>().ok())
                .collect::<Vec<_>>()
        })
        .filter(|&pid| std::path::Path::new(&format!("/proc/{pid}")).exists() && !alive(pid))
        .count();
    let status = profiler.wait().unwrap();
    assert!(finished(), "the script did not finish its loop");
    assert!(zombies < 20, "{zombies} zombies under profile");
    assert_eq!(status.code(), Some(0));
}

/// Copies run at once that exit leaving processes running: those are named once, for the
/// level, and never as one copy's (what each left cannot be told apart), and left running.
#[test]
fn copies_that_exit_leaving_processes_running_name_them_for_the_level() {
    let out = expect_exit(
        profile().args([
            "--concurrency",
            "2",
            "--",
            "sh",
            "-c",
            "sleep 30 >/dev/null 2>&1 & sleep 0.5; exit 0",
        ]),
        0,
    );
    let text = stdout(&out);
    let left: Vec<u64> = text
        .split("the copies left running what they started: ")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .unwrap_or_else(|| panic!("no note naming them in {text}"))
        .split("(pid ")
        .skip(1)
        .filter_map(|rest| rest.split(')').next()?.parse().ok())
        .collect();
    let were_alive: Vec<bool> = left.iter().map(|&pid| alive(pid)).collect();
    for &pid in &left {
        kill(pid);
    }
    assert_eq!(left.len(), 2, "{text}");
    assert!(were_alive.iter().all(|&a| a), "{text}");
    assert!(
        !text.contains("the program exited and left running"),
        "{text}"
    );
}

/// Stopping a program stops what left its tree while it ran (a double fork: the subshell that
/// started it exited at once), not only its descendants.
#[test]
fn stopping_a_program_stops_what_its_tree_orphaned() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    let script = format!(
        "(sleep 31 >/dev/null 2>&1 & echo $! > {}); sleep 32",
        pid_file.display()
    );
    expect_exit(
        profile().args(["--duration", "1", "--", "sh", "-c", &script]),
        0,
    );
    let orphan: u64 = std::fs::read_to_string(&pid_file)
        .expect("the pid written")
        .trim()
        .parse()
        .unwrap();
    let still = alive(orphan);
    if still {
        kill(orphan);
    }
    assert!(!still, "sleep (pid {orphan}) left running after the run");
}

/// `profile -q --json <json> -- sleep 30`, started, with the pid of its `sleep` once it runs
/// (profile has its handlers installed by then).
fn profile_sleeping(json: &Path) -> (Child, u64) {
    let mut profiler = std::process::Command::new(env!("CARGO_BIN_EXE_profile"))
        .args(["-q", "--json"])
        .arg(json)
        .args(["--", "sleep", "30"])
        .stdout(Stdio::null())
        .spawn()
        .expect("profile");
    let me = profiler.id();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        let children =
            std::fs::read_to_string(format!("/proc/{me}/task/{me}/children")).unwrap_or_default();
        if let Some(pid) = children.split_whitespace().next() {
            return (profiler, pid.parse::<u64>().unwrap());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = profiler.kill();
    let _ = profiler.wait();
    panic!("no child started");
}

fn send(signal: &str, pid: u32) {
    let sent = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
}

/// Ctrl-C, and the hangup of a closed terminal or a dropped SSH session (which used to end
/// profile at once, leaving the program running and no report).
#[test]
fn sigint_and_sighup_stop_the_program_and_still_write_the_report() {
    for signal in ["-INT", "-HUP"] {
        let dir = tempfile::tempdir().unwrap();
        let json = dir.path().join("r.json");
        let (mut profiler, child) = profile_sleeping(&json);
        std::thread::sleep(Duration::from_millis(300));
        send(signal, profiler.id());
        let start = Instant::now();
        let status = loop {
            if let Some(status) = profiler.try_wait().unwrap() {
                break status;
            }
            if start.elapsed() > Duration::from_secs(15) {
                let _ = profiler.kill();
                panic!("profile did not stop after {signal}");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        assert_eq!(status.code(), Some(130), "{signal}");
        assert!(!alive(child), "{signal}: the program is still running");
        let report = read_json(&json);
        let run = &report["runs"][0];
        assert_eq!(run["source"]["end"], "interrupted", "{signal}");
        assert_eq!(run["source"]["pid"], child, "{signal}");
        assert_eq!(run["source"]["exit"]["signal"], 15, "{signal}");
        assert!(run["failure"].is_null(), "{signal}");
        assert!(!run["samples"].as_array().unwrap().is_empty(), "{signal}");
    }
}

/// A profiler killed outright (SIGKILL, a crash) cannot stop its program: the program gets
/// SIGTERM from the kernel instead of running on (holding its port, its files) unwatched.
#[test]
fn a_killed_profile_takes_its_program_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let (mut profiler, child) = profile_sleeping(&dir.path().join("r.json"));
    send("-KILL", profiler.id());
    profiler.wait().unwrap();
    let start = Instant::now();
    while alive(child) && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!alive(child), "sleep (pid {child}) outlived profile");
}

#[test]
fn a_program_whose_child_does_the_work_gets_a_note_naming_it() {
    // A wrapper (a shell, a launcher) whose child does the work: the samples are the
    // wrapper's alone unless --include-children; say so, naming the child.
    let run = |extra: &[&str]| {
        let out = expect_exit(
            profile()
                .args(["--duration", "0.6", "--interval", "20"])
                .args(extra)
                .args(["--", "sh", "-c", "sleep 5; true"]),
            0,
        );
        stdout(&out)
    };
    let text = run(&[]);
    assert!(
        text.contains("sleep (pid") && text.contains("add --include-children"),
        "{text}"
    );
    // Stopping the program stops its child too, summed or not: no sleep is left running.
    let child: u64 = text
        .split("sleep (pid ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("no child pid in {text}"));
    assert!(!alive(child), "sleep (pid {child}) left running");
    assert!(
        !run(&["--include-children"]).contains("add --include-children"),
        "no note once children are included"
    );
}

#[test]
fn marker_lines_in_a_burst_cannot_make_rss_clean() {
    // 100 marker lines within a few milliseconds: the samples are taken together and show no
    // growth between them, whatever the program does; RSS is then not called clean.
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    expect_exit(
        profile()
            .args([
                "--marker",
                "^tick",
                "--iterations",
                "20",
                "--no-heap",
                "--json",
            ])
            .arg(&json)
            .args([
                "--",
                "sh",
                "-c",
                "for i in $(seq 100); do echo tick; done; sleep 2",
            ]),
        0,
    );
    let report = read_json(&json);
    let rss = metric(&report, "rss_bytes");
    assert_eq!(rss["verdict"], "inconclusive", "{rss}");
    assert!(
        rss["reason"].as_str().unwrap().contains("not clean"),
        "{rss}"
    );
}

#[test]
fn flags_a_program_run_would_ignore_are_refused() {
    // Each was accepted and did nothing: a time series and a program run until it exits are
    // never extended, and --pid has no heap counters to turn off.
    for (args, flag) in [
        (
            vec!["--no-extend", "--duration", "1", "--", "true"],
            "--no-extend",
        ),
        (
            vec!["--max-iterations", "50", "--marker", "x", "--", "true"],
            "--max-iterations",
        ),
        (
            vec!["--no-heap", "--pid", "1", "--duration", "1"],
            "--no-heap",
        ),
    ] {
        let out = profile().args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(flag), "{args:?}: {stderr}");
        // And what to add instead, for a marked program.
        if args.contains(&"--marker") {
            assert!(stderr.contains("add --iterations N"), "{args:?}: {stderr}");
        }
    }
}

/// A shell that only waits while its child does the work (`sh -c './server; true'`, which
/// does not exec): its numbers are the waiting's. A child leaking 100 B an iteration that way
/// read as clean, exit 0. Without --include-children nothing is then clean; a shell running
/// its own loop, whose `sleep`s come and go, is judged as before.
#[test]
fn a_program_idle_while_its_child_works_is_not_clean() {
    let inner = "sh -c 'for i in $(seq 300); do echo done; sleep 0.01; done'; true";
    let out = expect_exit(
        profile()
            .args(["--no-heap", "--marker", "done", "--iterations", "20", "--"])
            .args(["sh", "-c", inner]),
        0,
    );
    let text = stdout(&out);
    for metric in ["rss_bytes", "fds", "threads"] {
        let row = text
            .lines()
            .find(|l| l.trim_start().starts_with(metric))
            .unwrap_or_else(|| panic!("no {metric} row in {text}"));
        assert!(row.contains("inconclusive"), "{row}");
        assert!(row.contains("but the program was idle"), "{row}");
    }
    let own_loop = "for i in $(seq 300); do echo done; sleep 0.01; done";
    let out = expect_exit(
        profile()
            .args(["--no-heap", "--marker", "done", "--iterations", "20", "--"])
            .args(["sh", "-c", own_loop]),
        0,
    );
    let text = stdout(&out);
    assert!(!text.contains("was idle"), "{text}");
}
