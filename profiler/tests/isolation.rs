//! Re-running a test alone in a child process (`Profiler::isolated`, the thread scope's
//! re-check, the confirmation of a leak seen in place) must find the same profile: in an
//! `#[ignore]`d test, one of several of the same name, beside libtest's output capture.

use profiler::{Profiler, Verdict};

#[global_allocator]
static ALLOC: profiler::Alloc = profiler::Alloc::new();

fn keep(kept: &mut Vec<Vec<u8>>, leak: bool) {
    if leak {
        kept.push(vec![1; 1024]);
    }
}

#[test]
#[ignore = "run by the test below, with --include-ignored"]
fn an_ignored_isolated_check() {
    let report = Profiler::new("ignored").isolated().iterations(10).run(|| {
        std::hint::black_box(vec![0u8; 64]);
    });
    report.assert_no_leaks();
}

#[test]
fn an_ignored_test_can_be_isolated() {
    // The child was started without --include-ignored: it ran nothing and the parent panicked
    // ("gave no report").
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .args([
            "an_ignored_isolated_check",
            "--exact",
            "--ignored",
            "--test-threads=2",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn each_case_of_a_table_gets_its_own_isolated_report() {
    // One profile name per case: every case read the last case's report (a leak passed, or
    // clean cases were blamed).
    let verdicts: Vec<Verdict> = [false, true, false]
        .into_iter()
        .map(|leak| {
            let mut kept = Vec::new();
            Profiler::new("case")
                .isolated()
                .iterations(20)
                .run(|| keep(&mut kept, leak))
                .verdict()
        })
        .collect();
    assert_eq!(
        verdicts,
        [Verdict::Clean, Verdict::Leak, Verdict::Clean],
        "case by case"
    );
}

#[test]
fn a_clean_function_that_prints_is_clean_under_output_capture() {
    // libtest captures a test's output into a buffer that doubles as it fills: in place it
    // read as a leak of ~450 B per iteration. The leak is checked again in a child process
    // that does not capture.
    let report = Profiler::new("prints").iterations(20).run(|| {
        for i in 0..10 {
            println!("request {i} handled");
        }
    });
    assert_ne!(
        report.verdict(),
        Verdict::Leak,
        "{:#?}",
        report.runs[0].metrics
    );
}

#[inline(never)]
fn remember(kept: &mut Vec<Vec<u8>>) {
    kept.push(vec![7; 2048]);
}

#[test]
fn a_failed_leak_check_names_the_sites_attribution_found() {
    let mut kept = Vec::new();
    let report = Profiler::new("sites")
        .isolated()
        .attribute(profiler::Attribute::OnGrowth)
        .iterations(40)
        .run(|| remember(&mut kept));
    assert!(
        !report.runs[0].leak_sites.is_empty(),
        "{:?}",
        report.runs[0].attribution_note
    );
    let failed = std::panic::catch_unwind(|| report.assert_no_leaks()).unwrap_err();
    let message = failed.downcast_ref::<String>().unwrap();
    assert!(
        message.contains("    at ") && message.contains("remember"),
        "{message}"
    );
    // What else grows that way, and how to tell.
    assert!(
        message.ends_with("give the check more iterations than the bound, with .iterations(n))"),
        "{message}"
    );
}

#[test]
fn a_profile_of_the_same_name_on_a_helper_thread_is_not_the_tests() {
    // In the child both wrote the report of that name, and the last one won.
    let mut kept = Vec::new();
    let verdict = Profiler::new("shared-name")
        .isolated()
        .iterations(20)
        .run(|| keep(&mut kept, true))
        .verdict();
    let helper = std::thread::spawn(|| {
        Profiler::new("shared-name")
            .iterations(20)
            .run(|| {
                std::hint::black_box(vec![0u8; 64]);
            })
            .verdict()
    });
    let _ = helper.join();
    assert_eq!(verdict, Verdict::Leak);
}
