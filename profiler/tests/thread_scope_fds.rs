//! Fds and threads are process-wide: in `Scope::Thread` a growth of them seen in place may be
//! another test's, so it is checked again alone (in a child process, where the process is
//! this test's) before it fails anything, and then it does.

use std::fs::File;
use std::sync::Once;
use std::time::Duration;

use profiler::{Metric, Profiler, Scope, Verdict};

#[global_allocator]
static ALLOC: profiler::Alloc = profiler::Alloc::new();

/// Another test of the binary that opens files and keeps them (600 at most), one every half
/// millisecond, without allocating: in place, every test's fd count grows with it. Not in a
/// child process that runs one test alone.
fn neighbour_opening_files() {
    static START: Once = Once::new();
    // Nor where the process runs one test (nextest): the neighbour is another test.
    if std::env::var_os("PROFILER_ISOLATED_REPORT_DIR").is_some()
        || std::env::var("NEXTEST_EXECUTION_MODE").as_deref() == Ok("process-per-test")
    {
        return;
    }
    START.call_once(|| {
        std::thread::spawn(|| {
            let mut held: [Option<File>; 600] = [const { None }; 600];
            for slot in &mut held {
                *slot = File::open("/dev/null").ok();
                std::thread::sleep(Duration::from_micros(500));
            }
            std::thread::sleep(Duration::MAX);
        });
    });
}

/// A call that takes 2 ms: the neighbour opens 4 files meanwhile.
fn slow(call: impl Fn()) -> impl FnMut() {
    move || {
        call();
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn a_file_left_open_per_call_fails_the_check() {
    neighbour_opening_files();
    let report = Profiler::new("keeps-files")
        .scope(Scope::Thread)
        .iterations(20)
        .run(slow(|| std::mem::forget(File::open("/dev/null").unwrap())));
    let fds = &report.runs[0].metrics[&Metric::Fds];
    assert_eq!(fds.verdict, Verdict::Leak, "{}", fds.reason);
    // Seen in place, where fds do not gate in thread scope, then alone, where they do.
    assert!(fds.gating, "{:?}", report.runs[0].source.notes);
    assert!(std::panic::catch_unwind(|| report.assert_no_leaks()).is_err());
}

/// Runs `a_file_left_open_per_call_fails_the_check` alone in a process of its own, run
/// as libtest runs it or (`nextest`) as nextest does: nothing else moves memory there, so no
/// re-check for other threads' memory happens, and the fds' growth alone must lead to the
/// check in process scope (under nextest, the thread scope is the process scope from the
/// start).
fn alone(nextest: bool) {
    let mut test = std::process::Command::new(std::env::current_exe().unwrap());
    test.args([
        "a_file_left_open_per_call_fails_the_check",
        "--exact",
        "--test-threads=1",
    ]);
    if nextest {
        test.env("NEXTEST_EXECUTION_MODE", "process-per-test");
    } else {
        test.env_remove("NEXTEST_EXECUTION_MODE");
    }
    let out = test.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn alone_in_its_binary_it_is_confirmed_in_a_child_process() {
    alone(false);
}

#[test]
fn under_nextest_it_is_judged_in_process_scope() {
    alone(true);
}

#[test]
fn files_opened_and_closed_are_clean_beside_a_neighbour_opening_files() {
    neighbour_opening_files();
    let report = Profiler::new("closes-files")
        .scope(Scope::Thread)
        .iterations(20)
        .run(slow(|| drop(File::open("/dev/null").unwrap())));
    report.assert_no_leaks();
}
