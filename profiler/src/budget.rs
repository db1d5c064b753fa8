// Owns memory budgets (heap peak, bytes allocated per iteration, RSS): parsing sizes and
// checking a run's samples against limits. Must never look at anything but the samples.

use crate::format::format_bytes;
use crate::model::{BudgetCheck, BudgetKind, Run};
use crate::sample::Sample;

/// Limits a run must stay within. `None` means no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Budgets {
    /// Heap peak within any iteration, above the live heap at the run's start.
    pub peak: Option<u64>,
    /// Bytes allocated by any single iteration.
    pub allocated: Option<u64>,
    /// Resident set size of the process in any sample (at a boundary, or between them with an
    /// interval).
    pub rss: Option<u64>,
}

impl Budgets {
    pub fn is_empty(&self) -> bool {
        self.peak.is_none() && self.allocated.is_none() && self.rss.is_none()
    }

    /// Does this one boundary sample already exceed a budget? `start_heap` is the live heap
    /// of the run's first sample. Cheap enough to ask after every iteration.
    pub fn exceeded_by(&self, s: &Sample, start_heap: Option<i64>) -> bool {
        let over = |limit: Option<u64>, value: Option<i64>| match (limit, value) {
            (Some(l), Some(v)) => v > l as i64,
            _ => false,
        };
        over(
            self.peak,
            s.heap_peak_bytes.map(|p| p - start_heap.unwrap_or(0)),
        ) || over(self.allocated, s.allocated_bytes)
            || over(self.rss, s.judged_rss().map(|r| r as i64))
    }

    /// Check every budget set against the run's boundary samples.
    pub fn check(&self, run: &Run) -> Vec<BudgetCheck> {
        let start = run.samples.first().and_then(|s| s.heap_bytes).unwrap_or(0);
        let limits = [
            (BudgetKind::Peak, self.peak),
            (BudgetKind::Allocated, self.allocated),
            (BudgetKind::Rss, self.rss),
        ];
        limits
            .into_iter()
            .filter_map(|(kind, limit)| Some((kind, limit?)))
            .map(|(kind, limit)| {
                let boundaries = run.samples.iter().filter_map(|s| {
                    let v = match kind {
                        BudgetKind::Peak => s.heap_peak_bytes.map(|p| p - start),
                        BudgetKind::Allocated => s.allocated_bytes,
                        // As the verdict judges it: without the pages of mapped files.
                        BudgetKind::Rss => s.judged_rss().map(|r| r as i64),
                    }?;
                    Some((v, s.iteration))
                });
                // RSS is read between boundaries too (`interval`): any sample counts.
                let between = run
                    .interval_samples
                    .iter()
                    .filter(|_| kind == BudgetKind::Rss)
                    .filter_map(|s| Some((s.judged_rss()? as i64, s.iteration)));
                let worst = boundaries.chain(between).max_by_key(|&(v, _)| v);
                let exceeded = worst.is_some_and(|(v, _)| v > limit as i64);
                let message = match worst {
                    None => format!("{} not measured: {} not checked", kind.what(), kind.flag()),
                    Some((v, i)) => format!(
                        "{} {} in iteration {i} {} {} {}",
                        kind.what(),
                        format_bytes(v as f64),
                        if exceeded { "exceeds" } else { "within" },
                        kind.flag(),
                        format_bytes(limit as f64)
                    ),
                };
                BudgetCheck {
                    kind,
                    limit_bytes: limit,
                    worst_bytes: worst.map(|w| w.0),
                    iteration: worst.map(|w| w.1),
                    exceeded,
                    message,
                }
            })
            .collect()
    }
}

/// Parse a size such as `64MiB`, `512KB`, `1.5 GiB`, `4096` (bytes). Binary units (KiB, MiB,
/// GiB, TiB, and the short K, M, G, T) are powers of 1024; SI units (KB, MB, GB, TB) of 1000.
/// Case does not matter.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a size (examples: 64MiB, 512KB, 4096)"))?;
    let factor: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kib" => 1024.0,
        "m" | "mib" => 1024.0 * 1024.0,
        "g" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tib" => 1024f64.powi(4),
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        other => {
            return Err(format!(
                "'{text}' has an unknown unit '{other}' (use B, KiB, MiB, GiB, KB, MB or GB)"
            ));
        }
    };
    let bytes = value * factor;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(format!("'{text}' is too large"));
    }
    Ok(bytes.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{HeapScope, IntervalSample};

    #[test]
    fn rss_between_boundaries_counts_against_max_rss() {
        let mut run = Run::new("spiky", HeapScope::None);
        run.samples = (0..3)
            .map(|iteration| Sample {
                iteration,
                rss_bytes: Some(10 << 20),
                ..Sample::default()
            })
            .collect();
        let budgets = Budgets {
            rss: Some(32 << 20),
            ..Budgets::default()
        };
        assert!(!budgets.check(&run)[0].exceeded);
        // A spike that was gone by the next boundary: the limit was exceeded all the same.
        run.interval_samples.push(IntervalSample {
            elapsed_ms: 5.0,
            iteration: 2,
            heap_bytes: None,
            rss_bytes: Some(64 << 20),
            rss_file_bytes: None,
        });
        let check = &budgets.check(&run)[0];
        assert!(check.exceeded, "{}", check.message);
        assert_eq!(check.iteration, Some(2));
    }

    #[test]
    fn sizes_parse_in_binary_and_si_units() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("512KB"), Ok(512_000));
        assert_eq!(parse_size("1.5 GiB"), Ok(3 << 29));
        assert_eq!(parse_size("2k"), Ok(2048));
        assert_eq!(parse_size("10 b"), Ok(10));
        for bad in [
            "",
            "MiB",
            "-5MiB",
            "12 parsecs",
            "1e999",
            "1.2.3KiB",
            "99999999999TiB",
        ] {
            assert!(parse_size(bad).is_err(), "{bad:?} should not parse");
        }
    }
}
