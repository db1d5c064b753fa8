//! The verdict on arbitrary series and thresholds: never a panic, and a leak always has a
//! lower bound above tau.
#![no_main]

use libfuzzer_sys::fuzz_target;
use profiler::verdict::{Thresholds, Verdict, judge};

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let (head, body) = data.split_at(2);
    let series: Vec<f64> = body
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
        .collect();
    let th = match head[0] % 3 {
        0 => Thresholds::count(),
        1 => Thresholds::heap_bytes(f64::from(head[1]) * 4096.0),
        _ => Thresholds::rss_bytes(f64::from(head[1]) * 4096.0),
    };
    let warmup = (head[1] % 4 == 0).then_some(usize::from(head[1] / 4));
    let j = judge(&series, &th, warmup);
    if j.verdict == Verdict::Leak {
        let [lo, _] = j.ci.expect("a leak has bounds");
        assert!(lo > th.tau, "leak with lower bound {lo} <= tau {}", th.tau);
    }
});
