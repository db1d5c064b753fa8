// Owns how the profiler writes numbers for people: sizes, counts, durations, p-values, the
// words of a verdict. Never decides anything and never prints; it only turns numbers into text.

use crate::sample::Metric;

/// What a series counts: bytes, or things (blocks, fds, threads).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Bytes,
    Count,
}

const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];

/// A byte amount in human units: whole bytes below 1 KiB ("128 B", "64.5 B"), otherwise one decimal
/// in the largest unit that keeps the number at or above 1 ("1.0 KiB", "-2.5 MiB", "3.0 GiB").
///
/// ```
/// # use profiler::format::format_bytes;
/// assert_eq!(format_bytes(1024.0), "1.0 KiB");
/// assert_eq!(format_bytes(96.0), "96 B");
/// ```
pub fn format_bytes(bytes: f64) -> String {
    let (value, unit) = scale(bytes.abs());
    format!(
        "{} {}",
        number(bytes.signum() * value, unit == 0),
        UNITS[unit]
    )
}

/// A count as a plain number: "3", "0.2", "0.33", "12.5".
pub fn format_count(count: f64) -> String {
    if !count.is_finite() {
        return count.to_string();
    }
    if (count - count.round()).abs() < 1e-9 {
        return format!("{}", clean_zero(count.round()));
    }
    let decimals = if count.abs() >= 10.0 { 1 } else { 2 };
    let s = format!("{:.*}", decimals, clean_zero(count));
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// An amount of the metric, in its unit.
pub fn amount(value: f64, unit: Unit) -> String {
    match unit {
        Unit::Bytes => format_bytes(value),
        Unit::Count => format_count(value),
    }
}

/// Bounds in one unit chosen by the larger of the two: "[1.0, 1.0] KiB", "[64, 64] B", "[1, 1]".
pub fn bounds(lo: f64, hi: f64, unit: Unit) -> String {
    match unit {
        Unit::Count => format!("[{}, {}]", format_count(lo), format_count(hi)),
        Unit::Bytes => {
            let (_, u) = scale(lo.abs().max(hi.abs()));
            let f = 1024f64.powi(u as i32);
            let whole = u == 0;
            format!(
                "[{}, {}] {}",
                number(lo / f, whole),
                number(hi / f, whole),
                UNITS[u]
            )
        }
    }
}

/// "p < 0.001" or "p = 0.034".
pub fn p_value(p: f64) -> String {
    if p < 0.001 {
        "p < 0.001".to_string()
    } else if p < 0.01 {
        // Two digits near alpha: 0.0014 is not significant, and "0.001" would read as if it were.
        format!("p = {:.4}", p)
    } else {
        format!("p = {:.3}", p)
    }
}

/// "1 warm-up iteration", "4 warm-up iterations".
pub fn warmup(iterations: usize) -> String {
    iterations_of(iterations as u64, "warm-up ")
}

/// "1 iteration", "20 iterations", with `kind` ("marked ", "warm-up ") before the noun.
pub fn iterations_of(n: u64, kind: &str) -> String {
    let s = if n == 1 { "" } else { "s" };
    format!("{n} {kind}iteration{s}")
}

/// Format a metric's value: bytes in KiB/MiB, counts as integers.
pub fn format_value(metric: Metric, value: f64) -> String {
    if metric.is_bytes() {
        format_bytes(value)
    } else if value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}

/// Format a change (with its sign) of a metric.
pub fn format_delta(metric: Metric, value: f64) -> String {
    let sign = if value > 0.0 { "+" } else { "" };
    format!("{sign}{}", format_value(metric, value))
}

/// A duration given in milliseconds: "0.55 ns", "340 ns", "12 us", "3.4 ms", "2.50 s".
pub fn format_ms(ms: f64) -> String {
    if ms > 0.0 && ms < 1e-5 {
        // Below 10 ns (criterion times a no-op call at 0.55 ns): "0 ns" would say it took
        // nothing, or was not measured.
        format!("{:.2} ns", ms * 1e6)
    } else if ms < 1e-3 {
        format!("{:.0} ns", ms * 1e6)
    } else if ms < 1.0 {
        format!("{:.0} us", ms * 1e3)
    } else if ms < 1e3 {
        format!("{ms:.1} ms")
    } else {
        format!("{:.2} s", ms / 1e3)
    }
}

/// The factor and name of the byte unit that `typical` is shown in ("KiB" for 2048).
pub fn byte_unit(typical: f64) -> (f64, &'static str) {
    let (_, unit) = scale(typical.abs());
    (1024f64.powi(unit as i32), UNITS[unit])
}

/// A workload name as a piece of a file name: ASCII letters, digits, `-` and `_` kept, every
/// other character `_`.
pub fn file_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn scale(abs: f64) -> (f64, usize) {
    let mut value = abs;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    (value, unit)
}

fn number(value: f64, whole_bytes: bool) -> String {
    let value = clean_zero(value);
    if whole_bytes && (value - value.round()).abs() < 0.05 {
        format!("{:.0}", value)
    } else {
        format!("{:.1}", value)
    }
}

/// -0.0 prints as "-0"; nobody wants to read that.
fn clean_zero(v: f64) -> f64 {
    if v == 0.0 { 0.0 } else { v }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_in_human_units() {
        assert_eq!(format_bytes(0.0), "0 B");
        assert_eq!(format_bytes(-0.0), "0 B");
        assert_eq!(format_bytes(128.0), "128 B");
        assert_eq!(format_bytes(64.5), "64.5 B");
        assert_eq!(format_bytes(1024.0), "1.0 KiB");
        assert_eq!(format_bytes(16.0 * 1024.0), "16.0 KiB");
        assert_eq!(format_bytes(-1536.0), "-1.5 KiB");
        assert_eq!(format_bytes(3.0 * 1024.0 * 1024.0), "3.0 MiB");
        assert_eq!(format_bytes(5.0 * 1024f64.powi(3)), "5.0 GiB");
        assert_eq!(format_bytes(2048.0 * 1024f64.powi(3)), "2048.0 GiB");
    }

    #[test]
    fn counts_bounds_and_p() {
        assert_eq!(format_count(1.0), "1");
        assert_eq!(format_count(0.2), "0.2");
        assert_eq!(format_count(1.0 / 3.0), "0.33");
        assert_eq!(format_count(-0.0), "0");
        assert_eq!(format_count(12.34), "12.3");
        assert_eq!(bounds(1024.0, 1024.0, Unit::Bytes), "[1.0, 1.0] KiB");
        assert_eq!(bounds(60.0, 64.0, Unit::Bytes), "[60, 64] B");
        assert_eq!(bounds(512.0, 2048.0, Unit::Bytes), "[0.5, 2.0] KiB");
        assert_eq!(bounds(1.0, 1.0, Unit::Count), "[1, 1]");
        assert_eq!(p_value(1e-6), "p < 0.001");
        assert_eq!(p_value(0.0342), "p = 0.034");
        assert_eq!(warmup(1), "1 warm-up iteration");
        assert_eq!(warmup(4), "4 warm-up iterations");
    }

    #[test]
    fn durations_from_nanoseconds_to_seconds() {
        assert_eq!(format_ms(0.00034), "340 ns");
        assert_eq!(format_ms(0.012), "12 us");
        assert_eq!(format_ms(3.42), "3.4 ms");
        assert_eq!(format_ms(2500.0), "2.50 s");
        assert_eq!(format_ms(0.55e-6), "0.55 ns", "not \"0 ns\"");
        assert_eq!(format_ms(0.0), "0 ns");
        assert_eq!(format_ms(9.5e-6), "9.50 ns");
        assert_eq!(byte_unit(2048.0), (1024.0, "KiB"));
        assert_eq!(byte_unit(10.0), (1.0, "B"));
    }
}
