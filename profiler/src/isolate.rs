// Owns `Profiler::isolated`: re-running the calling test alone in a child process and reading
// its report back. Must never run the workload in the parent process.

//! Process scope inside parallel `cargo test`.
//!
//! libtest runs the tests of a binary on parallel threads of one process, so process-wide
//! counters see other tests' allocations, files and threads. An isolated profile starts the
//! test binary again as `<binary> <test name> --exact --include-ignored --test-threads=1
//! --nocapture`: in that child only the calling test runs (an `#[ignore]`d one too), the
//! profile runs in place with process scope (threads the workload spawns included) and writes
//! its report to a file the parent then reads. Profiles are told apart by name and by how many
//! of that name the test ran before on its thread: a table-driven test that runs one name per
//! case gets each case's own report, not the last case's.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::report::Report;

/// Set in the child: the directory where profiles write their reports for the parent.
const REPORT_DIR_ENV: &str = "PROFILER_ISOLATED_REPORT_DIR";
/// Set in the child: which profile of its name the parent wants (1 for the first).
const OCCURRENCE_ENV: &str = "PROFILER_ISOLATED_OCCURRENCE";

thread_local! {
    /// Profiles run on this thread so far, per name.
    static SEEN: std::cell::RefCell<std::collections::HashMap<String, u32>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// Count a profile called `name` starting on this thread: its occurrence (1 for the first).
pub(crate) fn occurrence(name: &str) -> u32 {
    SEEN.with(|seen| {
        let mut seen = seen.borrow_mut();
        let n = seen.entry(name.to_string()).or_insert(0);
        *n += 1;
        *n
    })
}

/// In the parent, run the calling test again in a child process and return the report of the
/// profile called `name`. `None` means "run in place": this is the child already, the test
/// runner gives every test its own process (cargo nextest), or this is not a libtest test.
pub(crate) fn in_child_process(name: &str, occurrence: u32) -> Option<Report> {
    if is_child() || one_test_per_process() || !test_binary() {
        return None;
    }
    let thread = std::thread::current();
    let test = thread.name().filter(|n| *n != "main")?.to_string();
    let exe = std::env::current_exe().ok()?;
    let dir = std::env::temp_dir().join(format!(
        "profiler-isolated-{}-{}",
        std::process::id(),
        crate::format::file_safe(&test)
    ));
    let _ = std::fs::create_dir_all(&dir);
    let output = Command::new(&exe)
        .args([
            test.as_str(),
            "--exact",
            "--include-ignored",
            "--test-threads=1",
            "--nocapture",
            "-q",
        ])
        .env(REPORT_DIR_ENV, &dir)
        .env(OCCURRENCE_ENV, occurrence.to_string())
        .output();
    let path = report_path(&dir, name);
    let report = Report::read_json(&path);
    let _ = std::fs::remove_dir_all(&dir);
    match (report, output) {
        (Ok(report), _) => Some(report),
        // The child ran no test of that name: the thread is not the test's own (libtest names
        // each test's thread after it; a tokio worker or a helper thread is another).
        (Err(_), Ok(out)) if String::from_utf8_lossy(&out.stdout).contains("running 0 tests") => {
            panic!(
                "profiler: `{name}` runs on thread `{test}`, which is not a test of this binary, \
                 so its test cannot be run again alone: run the profiler on the test's own \
                 thread, or use Scope::Process with `--test-threads=1` or cargo nextest"
            )
        }
        (Err(e), Ok(out)) => panic!(
            "profiler: the isolated run of test `{test}` gave no report for `{name}` ({e}); \
             it exited with {}. Its stderr ends with:\n{}",
            out.status,
            tail(&String::from_utf8_lossy(&out.stderr), 20)
        ),
        (Err(_), Err(e)) => panic!(
            "profiler: could not start '{}' again to isolate test `{test}`: {e}",
            exe.display()
        ),
    }
}

/// Whether this process is a test binary cargo built (`target/<profile>/deps/<name>-<hash>`,
/// not run as a bench): only then may it be started again with a test's name. A program of
/// the user's, run on a thread with a name, must never be started again with arguments it
/// does not expect.
fn test_binary() -> bool {
    let Ok(exe) = std::env::current_exe() else {
        return false;
    };
    let in_deps = exe
        .parent()
        .and_then(|d| d.file_name())
        .is_some_and(|d| d == "deps");
    let hashed = exe
        .file_stem()
        .and_then(|s| s.to_str())
        .and_then(|s| s.rsplit_once('-'))
        .is_some_and(|(_, hash)| hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()));
    in_deps && hashed && !std::env::args().any(|a| a == "--bench")
}

/// `true` in a child process started by [`in_child_process`].
pub(crate) fn is_child() -> bool {
    std::env::var_os(REPORT_DIR_ENV).is_some()
}

/// `true` when the test runner gives every test its own process (cargo nextest): process
/// scope is then this test's alone.
pub(crate) fn one_test_per_process() -> bool {
    std::env::var("NEXTEST_EXECUTION_MODE").as_deref() == Ok("process-per-test")
}

/// In the child, write the report where the parent looks for it, if it is the profile the
/// parent wants: the `occurrence`-th of its name on this thread.
pub(crate) fn hand_back(report: &Report, occurrence: u32) {
    let Some(dir) = std::env::var_os(REPORT_DIR_ENV) else {
        return;
    };
    let wanted = std::env::var(OCCURRENCE_ENV)
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(1);
    if occurrence != wanted {
        return;
    }
    for run in &report.runs {
        let path = report_path(Path::new(&dir), &run.workload);
        if let Err(e) = report.write_json(&path) {
            eprintln!("profiler: could not hand the isolated report back: {e}");
        }
    }
}

fn report_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{}.json", crate::format::file_safe(name)))
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
