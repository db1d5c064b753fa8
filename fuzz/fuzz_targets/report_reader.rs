//! The report/baseline reader on arbitrary bytes: an error or a report, never a panic; a report
//! it accepts can be judged again, compared, exported and read back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use profiler::Report;
use profiler::baseline::{Tolerances, compare};

fuzz_target!(|data: &[u8]| {
    let Ok(mut report) = Report::from_json(data) else {
        return;
    };
    let copy = report.clone();
    compare(&mut report, &copy, "fuzz", &Tolerances::default());
    for run in &mut report.runs {
        profiler::judge::rejudge(run, None);
    }
    let _ = report.to_text(&Default::default());
    let _ = report.to_markdown();
    let _ = report.to_csv();
    let Ok(json) = report.to_json() else {
        return;
    };
    let again = Report::from_json(&json);
    assert!(again.is_ok(), "a report we wrote is refused: {again:?}");
});
