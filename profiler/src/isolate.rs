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
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::alloc::Untracked;
use crate::report::Report;

/// Set in the child: the directory where profiles write their reports for the parent.
const REPORT_DIR_ENV: &str = "PROFILER_ISOLATED_REPORT_DIR";
/// Set in the child: which profile of its name the parent wants (1 for the first).
const OCCURRENCE_ENV: &str = "PROFILER_ISOLATED_OCCURRENCE";
/// Set in the child: the test's name, the name of the thread whose profiles count (a profile
/// of the same name on a helper thread has occurrences of its own).
const TEST_ENV: &str = "PROFILER_ISOLATED_TEST";

type Seen = std::collections::HashMap<String, u32>;

thread_local! {
    /// Profiles run on this thread so far, per name. The toolkit's, on the user's thread: made
    /// and freed untracked (the thread's exit drops it untracked too), never on the heap.
    static SEEN: std::cell::RefCell<Option<Untracked<Seen>>> = const { std::cell::RefCell::new(None) };
}

/// Count a profile called `name` starting on this thread: its occurrence (1 for the first).
pub(crate) fn occurrence(name: &str) -> u32 {
    SEEN.with(|seen| {
        let mut seen = seen.borrow_mut();
        let seen = seen.get_or_insert_with(|| Untracked::make(Seen::new));
        seen.with_mut(|seen| {
            let n = seen.entry(name.to_string()).or_insert(0);
            *n += 1;
            *n
        })
    })
}

/// In the parent, run the calling test again in a child process and return the report of the
/// profile called `name`. `None` means "run in place": this is the child already, the test
/// runner gives every test its own process (cargo nextest), or this is not a libtest test.
/// Panics when the child gives no report (for `.isolated()`, which has no answer of its own).
pub(crate) fn in_child_process(name: &str, occurrence: u32) -> Option<Report> {
    match child_report(name, occurrence, None)? {
        Ok(report) => Some(report),
        Err(why) => panic!("profiler: {why}"),
    }
}

/// [`in_child_process`] for a thread-scope check that other threads disturbed, which has an
/// answer of its own (neither leak nor clean): the child's report, or why there is none.
pub(crate) fn second_look(name: &str, occurrence: u32) -> Option<Result<Report, String>> {
    child_report(name, occurrence, None)
}

/// [`in_child_process`] for a leak seen in place, which has an answer of its own: the child's
/// report, or why there is none (then the leak stands). The child is given `limit`: a test
/// holding a lock its own re-run waits for (a file lock, a serial-test guard) would
/// otherwise wait for the child forever while the child waits for it.
pub(crate) fn confirmation(
    name: &str,
    occurrence: u32,
    limit: Duration,
) -> Option<Result<Report, String>> {
    child_report(name, occurrence, Some(limit))
}

fn child_report(
    name: &str,
    occurrence: u32,
    limit: Option<Duration>,
) -> Option<Result<Report, String>> {
    if is_child() || one_test_per_process() || !test_binary() {
        return None;
    }
    let thread = std::thread::current();
    let test = thread.name().filter(|n| *n != "main")?.to_string();
    let exe = std::env::current_exe().ok()?;
    let dir = match tempfile::Builder::new()
        .prefix("profiler-isolated-")
        .tempdir()
    {
        Ok(dir) => dir,
        Err(e) => {
            return Some(Err(format!(
                "could not make a directory for the isolated run: {e}"
            )));
        }
    };
    let child = Command::new(&exe)
        .args([
            test.as_str(),
            "--exact",
            "--include-ignored",
            "--test-threads=1",
            "--nocapture",
            "-q",
        ])
        .env(REPORT_DIR_ENV, dir.path())
        .env(OCCURRENCE_ENV, occurrence.to_string())
        .env(TEST_ENV, &test)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let output = child.and_then(|child| wait_within(child, limit));
    let report = Report::read_json(report_path(dir.path(), name));
    Some(match (report, output) {
        (Ok(report), _) => Ok(report),
        (Err(_), Ok(None)) => Err(format!(
            "the isolated run of test `{test}` did not end within {:.0} s (does the test hold \
             a lock or a port its own second run waits for?): stopped",
            limit.unwrap_or_default().as_secs_f64()
        )),
        // The child ran no test of that name: the thread is not the test's own (libtest names
        // each test's thread after it; a tokio worker or a helper thread is another).
        (Err(_), Ok(Some(out)))
            if String::from_utf8_lossy(&out.stdout).contains("running 0 tests") =>
        {
            Err(format!(
                "`{name}` runs on thread `{test}`, which is not a test of this binary, so its \
                 test cannot be run again alone: run the profiler on the test's own thread, or \
                 use Scope::Process with `--test-threads=1` or cargo nextest"
            ))
        }
        (Err(e), Ok(Some(out))) => Err(format!(
            "the isolated run of test `{test}` gave no report for `{name}` ({e}); it exited \
             with {}. Its stderr ends with:\n{}",
            out.status,
            tail(&String::from_utf8_lossy(&out.stderr), 20)
        )),
        (Err(_), Err(e)) => Err(format!(
            "could not start '{}' again to isolate test `{test}`: {e}",
            exe.display()
        )),
    })
}

/// The child's output once it ended, or `None` when it was still running after `limit` (it
/// is then killed).
fn wait_within(mut child: Child, limit: Option<Duration>) -> std::io::Result<Option<Output>> {
    let Some(limit) = limit else {
        return child.wait_with_output().map(Some);
    };
    // Drain the pipes meanwhile: a child writing more than a pipe holds would block.
    fn drain(
        pipe: Option<impl std::io::Read + Send + 'static>,
    ) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut bytes);
            }
            bytes
        })
    }
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ok(Some(Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }))
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

/// Whether other tests may run in this process beside the caller: a test binary run by
/// libtest, in place (not a child process re-running one test, not under nextest's process
/// per test, not the main thread of a binary with a `main` of its own).
pub(crate) fn shared_with_other_tests() -> bool {
    test_binary() && !is_child() && !one_test_per_process() && !on_main_thread()
}

/// Whether the caller is the process's main thread. libtest runs every test on a thread of
/// its own (with one test thread too), so a test binary's main thread is running a `main` of
/// its own (`harness = false`): the whole process is that one test.
fn on_main_thread() -> bool {
    #[cfg(target_os = "linux")]
    {
        crate::quiet::current_tid() == std::process::id()
    }
    #[cfg(not(target_os = "linux"))]
    {
        std::thread::current().name() == Some("main")
    }
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
    // Only the test's own thread (libtest names it after the test; with one test thread it
    // may be the main thread).
    let thread = std::thread::current();
    let on_test_thread = match std::env::var(TEST_ENV) {
        Ok(test) => matches!(thread.name(), Some(n) if n == test || n == "main"),
        Err(_) => true,
    };
    if !on_test_thread {
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
