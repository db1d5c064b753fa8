// Owns the scaling verdict of `--concurrency`: does memory per copy stay flat as K grows
// (against the spread between copies of a level), and does throughput scale. Never runs.

use crate::format::format_bytes;
use crate::model::{Level, MemoryScaling, Scaling};

/// Per-copy growth below this is flat whatever the spread (allocator rounding, a lazily
/// grown buffer).
pub const FLAT_FLOOR_BYTES: f64 = 4096.0;
/// ...and below this share of the smallest level's per-copy peak.
pub const FLAT_SHARE: f64 = 0.10;

/// The scaling verdict of `levels` (in any order).
pub fn scaling(levels: &[Level]) -> Scaling {
    let mut measured: Vec<&Level> = levels
        .iter()
        .filter(|l| l.peak_per_copy_bytes.is_some())
        .collect();
    measured.sort_by_key(|l| l.copies);
    let (memory, growth, memory_sentence) = memory_scaling(&measured);
    let (speedup, efficiency, throughput_sentence) = throughput_scaling(levels);
    Scaling {
        memory,
        memory_growth_per_copy_bytes: growth,
        throughput_speedup: speedup,
        throughput_efficiency: efficiency,
        sentence: format!("{memory_sentence}; {throughput_sentence}"),
    }
}

fn memory_scaling(levels: &[&Level]) -> (MemoryScaling, Option<f64>, String) {
    let (Some(first), Some(last)) = (levels.first(), levels.last()) else {
        return (
            MemoryScaling::Inconclusive,
            None,
            "memory per copy cannot be told: no level measured one copy's peak".into(),
        );
    };
    let what = first.per_copy.word();
    if first.copies == last.copies {
        return (
            MemoryScaling::Inconclusive,
            None,
            format!(
                "memory per copy cannot be told from one level (K = {}): give several, \
                 e.g. --concurrency 1,3,5",
                first.copies
            ),
        );
    }
    let at = |l: &Level| l.peak_per_copy_bytes.unwrap_or(0) as f64;
    let (lo, hi) = (at(first), at(last));
    // The noise: how far copies of one level differ from each other.
    let spread = levels
        .iter()
        .map(|l| {
            let min = l.copy_peaks_bytes.iter().min().copied().unwrap_or(0);
            let max = l.copy_peaks_bytes.iter().max().copied().unwrap_or(0);
            (max - min) as f64
        })
        .fold(0.0, f64::max);
    let tolerance = spread.max(FLAT_FLOOR_BYTES).max(FLAT_SHARE * lo);
    let extra = f64::from(last.copies - first.copies);
    let growth = hi - lo;
    let range = format!(
        "{} of {what} per copy at K = {}, {} at K = {}",
        format_bytes(lo),
        first.copies,
        format_bytes(hi),
        last.copies
    );
    // A change within the spread between copies but beyond what rounding explains: copies
    // that differ (one doing more work, a `{copy}`-dependent command) make one level's largest
    // peak jump as soon as that copy runs. Said "flat, within 8.0 MiB of noise" for 8.0 KiB at
    // K = 1 and 8.0 MiB at K = 2, where copy 1 alone peaked at 8 MiB.
    let rounding = FLAT_FLOOR_BYTES.max(FLAT_SHARE * lo);
    if growth.abs() > rounding && growth.abs() <= spread {
        return (
            MemoryScaling::Inconclusive,
            None,
            format!(
                "memory per copy cannot be told: {range}, a change no larger than copies of one \
                 level differ by ({}): the copies do not do the same work",
                format_bytes(spread)
            ),
        );
    }
    if growth.abs() <= tolerance {
        return (
            MemoryScaling::Flat,
            None,
            format!(
                "memory per copy is flat as copies grow ({range}; within {} of noise, the \
                 spread between copies or 10%)",
                format_bytes(tolerance)
            ),
        );
    }
    if growth < 0.0 {
        return (
            MemoryScaling::Flat,
            None,
            format!("memory per copy shrinks as copies grow ({range})"),
        );
    }
    // Growth beyond the noise between the ends must also rise through the middle levels:
    // a lump at one level alone cannot be told from noise.
    let monotone = levels.windows(2).all(|w| at(w[1]) + tolerance >= at(w[0]));
    if !monotone {
        return (
            MemoryScaling::Inconclusive,
            None,
            format!(
                "memory per copy cannot be told: it moves up and down between levels ({range}; \
                 noise {})",
                format_bytes(tolerance)
            ),
        );
    }
    let per = growth / extra;
    (
        MemoryScaling::Grows,
        Some(per),
        format!(
            "memory per copy grows with the copies: {range}, +{} per extra copy (beyond {} of \
             noise)",
            format_bytes(per),
            format_bytes(tolerance)
        ),
    )
}

fn throughput_scaling(levels: &[Level]) -> (Option<f64>, Option<f64>, String) {
    let mut with: Vec<(u32, f64)> = levels
        .iter()
        .filter_map(|l| {
            l.throughput_per_s
                .filter(|t| *t > 0.0)
                .map(|t| (l.copies, t))
        })
        .collect();
    with.sort_by_key(|w| w.0);
    match (with.first(), with.last()) {
        (Some(&(k0, t0)), Some(&(k1, t1))) if k1 > k0 => {
            let speedup = t1 / t0;
            let efficiency = speedup / (f64::from(k1) / f64::from(k0));
            let words = if efficiency >= 0.8 {
                "scales"
            } else if speedup > 1.1 {
                "scales partly"
            } else {
                "does not scale"
            };
            (
                Some(speedup),
                Some(efficiency),
                format!(
                    "throughput {words}: {t0:.1}/s at K = {k0}, {t1:.1}/s at K = {k1} \
                     (x{speedup:.2}, {:.0}% of linear; {} CPUs)",
                    efficiency * 100.0,
                    std::thread::available_parallelism().map_or(1, |n| n.get())
                ),
            )
        }
        _ => (
            None,
            None,
            "throughput scaling cannot be told (one level, or no iterations timed)".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{PerCopy, Verdict};

    fn level(copies: u32, per_copy: &[u64], throughput: f64) -> Level {
        Level {
            copies,
            iterations: 20 * u64::from(copies),
            failures: 0,
            throughput_per_s: Some(throughput),
            p50_ms: Some(1.0),
            p95_ms: Some(2.0),
            max_ms: Some(3.0),
            heap_peak_bytes: None,
            rss_peak_bytes: None,
            peak_per_copy_bytes: per_copy.iter().max().copied(),
            per_copy: PerCopy::Heap,
            rss_peak_per_copy_bytes: None,
            copy_peaks_bytes: per_copy.to_vec(),
            cpu_ms: None,
            wall_ms: 1.0,
            verdict: Verdict::Clean,
            reason: String::new(),
        }
    }

    #[test]
    fn flat_growing_and_undecidable_memory_per_copy() {
        let flat = scaling(&[
            level(1, &[100_000], 10.0),
            level(3, &[101_000, 100_500, 100_000], 29.0),
            level(5, &[101_000; 5], 48.0),
        ]);
        assert_eq!(flat.memory, MemoryScaling::Flat, "{}", flat.sentence);
        assert!(
            flat.sentence.contains("throughput scales"),
            "{}",
            flat.sentence
        );
        let grows = scaling(&[
            level(1, &[50_000], 10.0),
            level(3, &[150_000; 3], 10.0),
            level(5, &[250_000; 5], 10.5),
        ]);
        assert_eq!(grows.memory, MemoryScaling::Grows, "{}", grows.sentence);
        assert_eq!(grows.memory_growth_per_copy_bytes, Some(50_000.0));
        assert!(
            grows.sentence.contains("does not scale"),
            "{}",
            grows.sentence
        );
        let one = scaling(&[level(4, &[1_000; 4], 10.0)]);
        assert_eq!(one.memory, MemoryScaling::Inconclusive, "{}", one.sentence);
        assert!(one.sentence.contains("cannot be told"), "{}", one.sentence);
        let noisy = scaling(&[
            level(1, &[50_000], 10.0),
            level(3, &[400_000, 50_000, 60_000], 12.0),
            level(5, &[120_000; 5], 12.0),
        ]);
        // 50 KB -> 120 KB is beyond rounding, and copies of one level differ by 350 KB: it
        // cannot be told (it read "flat, within 350 KB of noise").
        assert_eq!(
            noisy.memory,
            MemoryScaling::Inconclusive,
            "spread 350 KB: {}",
            noisy.sentence
        );
        assert!(noisy.sentence.contains("do not do the same work"));
        // Copy 1 alone peaks at 8 MiB: the largest peak jumps once it runs.
        let apart = scaling(&[level(1, &[8_192], 10.0), level(2, &[8_192, 8 << 20], 20.0)]);
        assert_eq!(
            apart.memory,
            MemoryScaling::Inconclusive,
            "{}",
            apart.sentence
        );
    }
}
