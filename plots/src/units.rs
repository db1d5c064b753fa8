// Human-readable numbers: one value ("1.5 KiB") or a set of tick labels sharing one scale.
// It must never print a raw byte count like 1048576 where a person reads the label.

/// How the numbers on an axis are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Unit {
    /// Binary sizes: B, KiB, MiB, GiB, TiB.
    Bytes,
    /// Things counted (blocks, descriptors, iterations): 950, 12.3k, 4.5M. Ticks are whole numbers.
    Count,
    /// Durations given in milliseconds: 250 ms, 1.5 s.
    Millis,
    /// Plain numbers, no suffix; very large or very small ones in exponent form.
    #[default]
    Plain,
}

/// One rung of a unit's ladder: divide by `factor`, append `suffix`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Rung {
    pub factor: f64,
    pub suffix: &'static str,
}

const BYTES: [Rung; 5] = [
    Rung {
        factor: 1.0,
        suffix: " B",
    },
    Rung {
        factor: 1024.0,
        suffix: " KiB",
    },
    Rung {
        factor: 1048576.0,
        suffix: " MiB",
    },
    Rung {
        factor: 1073741824.0,
        suffix: " GiB",
    },
    Rung {
        factor: 1099511627776.0,
        suffix: " TiB",
    },
];
const COUNT: [Rung; 5] = [
    Rung {
        factor: 1.0,
        suffix: "",
    },
    Rung {
        factor: 1e3,
        suffix: "k",
    },
    Rung {
        factor: 1e6,
        suffix: "M",
    },
    Rung {
        factor: 1e9,
        suffix: "G",
    },
    Rung {
        factor: 1e12,
        suffix: "T",
    },
];
const MILLIS: [Rung; 2] = [
    Rung {
        factor: 1.0,
        suffix: " ms",
    },
    Rung {
        factor: 1e3,
        suffix: " s",
    },
];
const PLAIN: [Rung; 1] = [Rung {
    factor: 1.0,
    suffix: "",
}];

impl Unit {
    fn ladder(self) -> &'static [Rung] {
        match self {
            Unit::Bytes => &BYTES,
            Unit::Count => &COUNT,
            Unit::Millis => &MILLIS,
            Unit::Plain => &PLAIN,
        }
    }

    /// The largest rung whose factor does not exceed `magnitude`. Counts stay unscaled below
    /// 10,000 because "1500" reads better than "1.5k" on an axis.
    pub(crate) fn scale_for(self, magnitude: f64) -> Rung {
        let ladder = self.ladder();
        ladder
            .iter()
            .rev()
            .find(|s| magnitude >= self.threshold(s))
            .copied()
            .unwrap_or(ladder[0])
    }

    /// The magnitude from which `scale` is used.
    fn threshold(self, scale: &Rung) -> f64 {
        match self {
            Unit::Count if scale.factor == 1e3 => 1e4,
            _ => scale.factor,
        }
    }

    /// Writes one value with at most three significant digits (never dropping integer digits)
    /// and the suffix that suits its size.
    ///
    /// ```
    /// use plots::Unit;
    /// assert_eq!(Unit::Bytes.format(1536.0), "1.5 KiB");
    /// assert_eq!(Unit::Bytes.format(1048576.0), "1 MiB");
    /// assert_eq!(Unit::Count.format(12345.0), "12.3k");
    /// assert_eq!(Unit::Millis.format(1500.0), "1.5 s");
    /// assert_eq!(Unit::Plain.format(0.125), "0.125");
    /// ```
    pub fn format(self, value: f64) -> String {
        self.format_digits(value, 3)
    }

    /// [`Unit::format`] with up to `digits` significant digits.
    fn format_digits(self, value: f64, digits: usize) -> String {
        if !value.is_finite() {
            return "n/a".to_string();
        }
        if value == 0.0 {
            return format!("0{}", self.ladder()[0].suffix);
        }
        if self == Unit::Plain && !(1e-3..1e6).contains(&value.abs()) {
            return format_exponent(value, digits);
        }
        let ladder = self.ladder();
        let mut scale = self.scale_for(value.abs());
        let mut text = significant(value / scale.factor, digits);
        // 1023.9 KiB rounds to "1024 KiB": move up a rung instead.
        if let Some(next) = ladder.iter().find(|s| s.factor > scale.factor) {
            let rounded: f64 = text.parse().unwrap_or(0.0);
            if rounded.abs() * scale.factor >= self.threshold(next) {
                scale = *next;
                text = significant(value / scale.factor, digits);
            }
        }
        format!("{text}{}", scale.suffix)
    }

    /// Labels for axis ticks: one scale for all of them (chosen by the largest), no trailing
    /// zeros, and a bare "0".
    ///
    /// ```
    /// use plots::Unit;
    /// let mib = 1048576.0;
    /// assert_eq!(
    ///     Unit::Bytes.tick_labels(&[0.0, 0.5 * mib, mib, 1.5 * mib]),
    ///     ["0", "0.5 MiB", "1 MiB", "1.5 MiB"]
    /// );
    /// ```
    pub fn tick_labels(self, ticks: &[f64]) -> Vec<String> {
        let largest = ticks
            .iter()
            .filter(|t| t.is_finite())
            .fold(0.0f64, |m, t| m.max(t.abs()));
        if self == Unit::Plain && !(1e-3..1e6).contains(&largest) && largest != 0.0 {
            return ticks
                .iter()
                .map(|&t| {
                    if t == 0.0 {
                        "0".to_string()
                    } else {
                        format_exponent(t, 3)
                    }
                })
                .collect();
        }
        let scale = self.scale_for(largest);
        let decimals = (0..=6)
            .find(|&d| {
                let m = 10f64.powi(d);
                ticks.iter().filter(|t| t.is_finite()).all(|t| {
                    let v = t / scale.factor * m;
                    (v - v.round()).abs() <= 1e-6 * v.abs().max(1.0)
                })
            })
            .unwrap_or(6) as usize;
        ticks
            .iter()
            .map(|&t| {
                if !t.is_finite() {
                    "n/a".to_string()
                } else if t == 0.0 {
                    "0".to_string()
                } else {
                    let number = trim_zeros(format!("{:.*}", decimals, t / scale.factor));
                    format!("{number}{}", scale.suffix)
                }
            })
            .collect()
    }

    /// Tick labels that stay short when the ticks sit far from zero: when [`Unit::tick_labels`]
    /// would need more than four significant digits (`2.503227 GiB`) or fail to tell the ticks
    /// apart, they are written relative to the tick nearest zero (`+0`, `+2 KiB`, `+4 KiB`) and
    /// that offset is returned once, for a header (`≈2.503 GiB +`; "≈" when four digits do not
    /// write it exactly).
    pub(crate) fn offset_tick_labels(self, ticks: &[f64]) -> (Option<String>, Vec<String>) {
        let labels = self.tick_labels(ticks);
        let Some((lo, hi)) = crate::scale::extent(ticks.iter().copied()) else {
            return (None, labels);
        };
        // Only away from zero: a range that reaches zero reads best as it is.
        if lo == hi || (lo <= 0.0 && hi >= 0.0) || !hard_to_read(&labels) {
            return (None, labels);
        }
        let base = if lo > 0.0 { lo } else { hi };
        let deltas: Vec<f64> = ticks.iter().map(|t| t - base).collect();
        let relative = self
            .tick_labels(&deltas)
            .into_iter()
            .map(|l| {
                if l.starts_with('-') {
                    l
                } else {
                    format!("+{l}")
                }
            })
            .collect();
        let short = self.format_digits(base, 4);
        let exact = short == self.format_digits(base, 15);
        let offset = if exact { short } else { format!("≈{short}") };
        (Some(offset), relative)
    }
}

impl Unit {
    /// The `i`-th decade of a logarithmic axis: 10^i written in the unit's ladder, so that every
    /// decade is a round number of its rung. Counts, durations and plain numbers: 1, 10, 100,
    /// 1000 (= 1k or 1 s)...; bytes: 1, 10, 100 B, then 1, 10, 100 KiB (1 KiB is 1024 B, not
    /// 1000), 1 MiB... Below the first rung, decades are 0.1, 0.01... of it; above the last,
    /// 10, 100... times the last.
    pub(crate) fn decade(self, i: i32) -> f64 {
        let ladder = self.ladder();
        let rung = i.div_euclid(3).clamp(0, ladder.len() as i32 - 1);
        ladder[rung as usize].factor * 10f64.powi(i - 3 * rung)
    }

    /// Labels for the ticks of a logarithmic axis. The ticks span decades, so each is written
    /// on its own rung ("500 KiB", "1 MiB"; "500", "1k"), not all on the largest one as
    /// [`Unit::tick_labels`] does ("0.001M"). Counts use "k" from 1000 on, like the decades.
    pub(crate) fn log_tick_labels(self, ticks: &[f64]) -> Vec<String> {
        ticks
            .iter()
            .map(|&t| {
                if !t.is_finite() || t <= 0.0 {
                    return self.format(t);
                }
                if self == Unit::Plain && !(1e-3..1e6).contains(&t) {
                    return format_exponent(t, 3);
                }
                let ladder = self.ladder();
                let rung = ladder
                    .iter()
                    .rev()
                    .find(|r| t >= r.factor * (1.0 - 1e-9))
                    .copied()
                    .unwrap_or(ladder[0]);
                format!("{}{}", significant(t / rung.factor, 3), rung.suffix)
            })
            .collect()
    }
}

/// The most significant digits a tick label may have before the ticks are written relative to
/// an offset.
const MAX_DIGITS: usize = 4;

/// Whether tick labels are too long ("2.503227 GiB") or fail to tell the ticks apart. Leading
/// and trailing zeros do not count: "0.0125" and "150000" are short.
pub(crate) fn hard_to_read(labels: &[String]) -> bool {
    let digits = |l: &String| {
        let all: String = l.chars().filter(char::is_ascii_digit).collect();
        all.trim_matches('0').len()
    };
    let distinct = labels.windows(2).all(|w| w[0] != w[1]);
    !distinct || labels.iter().map(digits).max().unwrap_or(0) > MAX_DIGITS
}

/// `digits` significant digits (three for one value), but whole numbers keep all their digits;
/// trailing zeros dropped.
fn significant(v: f64, digits: usize) -> String {
    let digits_before_point = v.abs().log10().floor() as i32 + 1;
    let decimals = (digits as i32 - digits_before_point).clamp(0, digits as i32 + 3) as usize;
    trim_zeros(format!("{v:.decimals$}"))
}

fn trim_zeros(s: String) -> String {
    if s.contains('.') {
        let t = s.trim_end_matches('0').trim_end_matches('.');
        if t == "-0" {
            "0".to_string()
        } else {
            t.to_string()
        }
    } else {
        s
    }
}

/// `v` in exponent form with `digits` significant digits (three for one value).
fn format_exponent(v: f64, digits: usize) -> String {
    let s = format!("{v:.*e}", digits.max(1) - 1);
    match s.split_once('e') {
        Some((mantissa, exp)) => format!("{}e{exp}", trim_zeros(mantissa.to_string())),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIB: f64 = 1024.0;
    const MIB: f64 = 1024.0 * 1024.0;
    const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

    #[test]
    fn bytes_use_binary_prefixes() {
        assert_eq!(Unit::Bytes.format(0.0), "0 B");
        assert_eq!(Unit::Bytes.format(1.0), "1 B");
        assert_eq!(Unit::Bytes.format(1023.0), "1023 B");
        assert_eq!(Unit::Bytes.format(1536.0), "1.5 KiB");
        assert_eq!(Unit::Bytes.format(1280.0), "1.25 KiB");
        assert_eq!(Unit::Bytes.format(123.4 * KIB), "123 KiB");
        assert_eq!(Unit::Bytes.format(MIB), "1 MiB");
        assert_eq!(Unit::Bytes.format(1234567.0), "1.18 MiB");
        assert_eq!(Unit::Bytes.format(3.0 * GIB), "3 GiB");
        assert_eq!(Unit::Bytes.format(-1536.0), "-1.5 KiB");
    }

    #[test]
    fn rounding_up_moves_to_the_next_rung() {
        assert_eq!(Unit::Bytes.format(MIB - 1.0), "1 MiB");
        assert_eq!(Unit::Millis.format(999.9), "1 s");
    }

    #[test]
    fn counts_millis_plain() {
        assert_eq!(Unit::Count.format(7.0), "7");
        assert_eq!(Unit::Count.format(1500.0), "1500");
        assert_eq!(Unit::Count.format(12345.0), "12.3k");
        assert_eq!(Unit::Count.format(4.5e6), "4.5M");
        assert_eq!(Unit::Count.format(0.5), "0.5");
        assert_eq!(Unit::Millis.format(250.0), "250 ms");
        assert_eq!(Unit::Millis.format(0.25), "0.25 ms");
        assert_eq!(Unit::Millis.format(1500.0), "1.5 s");
        assert_eq!(Unit::Plain.format(42.0), "42");
        assert_eq!(Unit::Plain.format(2.5e7), "2.5e7");
        assert_eq!(Unit::Plain.format(1.5e-5), "1.5e-5");
        assert_eq!(Unit::Plain.format(f64::NAN), "n/a");
    }

    #[test]
    fn tick_labels_share_one_scale_and_never_show_raw_bytes() {
        assert_eq!(
            Unit::Bytes.tick_labels(&[0.0, 2.0 * MIB, 4.0 * MIB, 6.0 * MIB]),
            ["0", "2 MiB", "4 MiB", "6 MiB"]
        );
        assert_eq!(
            Unit::Bytes.tick_labels(&[0.0, 256.0 * KIB, 512.0 * KIB, 768.0 * KIB]),
            ["0", "256 KiB", "512 KiB", "768 KiB"]
        );
        assert_eq!(
            Unit::Bytes.tick_labels(&[0.25 * MIB, 0.5 * MIB, 0.75 * MIB, MIB]),
            ["0.25 MiB", "0.5 MiB", "0.75 MiB", "1 MiB"]
        );
        for label in Unit::Bytes.tick_labels(&[0.0, MIB, 2.0 * MIB]) {
            assert!(!label.contains("1048576"), "{label}");
        }
    }

    #[test]
    fn tick_labels_for_counts_millis_and_plain() {
        assert_eq!(
            Unit::Count.tick_labels(&[0.0, 5.0, 10.0, 15.0]),
            ["0", "5", "10", "15"]
        );
        assert_eq!(
            Unit::Count.tick_labels(&[0.0, 20000.0, 40000.0]),
            ["0", "20k", "40k"]
        );
        assert_eq!(
            Unit::Millis.tick_labels(&[0.0, 500.0, 1000.0, 1500.0]),
            ["0", "0.5 s", "1 s", "1.5 s"]
        );
        assert_eq!(
            Unit::Plain.tick_labels(&[-0.5, 0.0, 0.5]),
            ["-0.5", "0", "0.5"]
        );
        assert_eq!(
            Unit::Plain.tick_labels(&[0.0, 2e7, 4e7]),
            ["0", "2e7", "4e7"]
        );
    }

    #[test]
    fn ticks_on_a_large_offset_are_labelled_relative_to_it() {
        // 2.5032 GiB +- a few KiB: absolute labels would read "2.503227 GiB".
        let (lo, hi) = (2.503225 * GIB, 2.503229 * GIB);
        let ticks = crate::scale::ticks(Unit::Bytes, lo, hi, 5);
        let plain = Unit::Bytes.tick_labels(&ticks);
        assert!(plain[0].len() > 10, "{plain:?}");
        let (offset, labels) = Unit::Bytes.offset_tick_labels(&ticks);
        assert_eq!(offset.as_deref(), Some("≈2.503 GiB"));
        assert_eq!(labels, ["+0", "+1 KiB", "+2 KiB", "+3 KiB"]);
        for l in &labels {
            assert!(l.len() <= 6, "{l}");
        }
        // An offset that four digits write exactly has no "≈".
        let ticks = [2.5 * GIB, 2.5 * GIB + 512.0, 2.5 * GIB + 1024.0];
        let (offset, labels) = Unit::Bytes.offset_tick_labels(&ticks);
        assert_eq!(offset.as_deref(), Some("2.5 GiB"));
        assert_eq!(labels, ["+0", "+0.5 KiB", "+1 KiB"]);
    }

    #[test]
    fn offsets_for_counts_negatives_and_identical_labels() {
        let (offset, labels) = Unit::Count.offset_tick_labels(&[100_001.0, 100_002.0, 100_003.0]);
        assert_eq!(offset.as_deref(), Some("≈100k"));
        assert_eq!(labels, ["+0", "+1", "+2"]);
        // Below zero the offset is the tick nearest zero, the others go down from it.
        let (offset, labels) = Unit::Millis.offset_tick_labels(&[-2000.2, -2000.1, -2000.0]);
        assert_eq!(offset.as_deref(), Some("-2 s"));
        assert_eq!(labels, ["-0.2 ms", "-0.1 ms", "+0"]);
        // Plain numbers whose exponent labels would all read "1e9".
        let (offset, labels) = Unit::Plain.offset_tick_labels(&[1e9 + 1.0, 1e9 + 2.0]);
        assert_eq!(offset.as_deref(), Some("≈1e9"));
        assert_eq!(labels, ["+0", "+1"]);
    }

    #[test]
    fn decades_are_round_in_the_units_ladder() {
        let bytes: Vec<f64> = (-1..=7).map(|i| Unit::Bytes.decade(i)).collect();
        assert_eq!(
            bytes,
            [
                0.1,
                1.0,
                10.0,
                100.0,
                KIB,
                10.0 * KIB,
                100.0 * KIB,
                MIB,
                10.0 * MIB
            ]
        );
        for unit in [Unit::Count, Unit::Millis, Unit::Plain] {
            for i in -4..=14 {
                let d = unit.decade(i);
                assert!((d / 10f64.powi(i) - 1.0).abs() < 1e-12, "{unit:?} {i}: {d}");
            }
        }
        // Past the last rung, on by tens.
        assert_eq!(Unit::Bytes.decade(13), 10.0 * 1024f64.powi(4));
    }

    #[test]
    fn log_tick_labels_write_each_tick_on_its_own_rung() {
        assert_eq!(
            Unit::Bytes.log_tick_labels(&[100.0, KIB, 2.0 * KIB, 500.0 * KIB, MIB, 10.0 * MIB]),
            ["100 B", "1 KiB", "2 KiB", "500 KiB", "1 MiB", "10 MiB"]
        );
        assert_eq!(
            Unit::Count.log_tick_labels(&[1.0, 500.0, 1e3, 1e4, 2e5, 1e6, 1e9]),
            ["1", "500", "1k", "10k", "200k", "1M", "1G"]
        );
        assert_eq!(
            Unit::Millis.log_tick_labels(&[0.01, 0.1, 1.0, 100.0, 1e3, 2e4]),
            ["0.01 ms", "0.1 ms", "1 ms", "100 ms", "1 s", "20 s"]
        );
        assert_eq!(
            Unit::Plain.log_tick_labels(&[1e-4, 0.01, 1.0, 1e3, 1e7]),
            ["1e-4", "0.01", "1", "1000", "1e7"]
        );
    }

    #[test]
    fn short_labels_and_ranges_through_zero_keep_absolute_ticks() {
        let bytes = Unit::Bytes;
        for (unit, ticks) in [
            (bytes, vec![510.0 * KIB, 512.0 * KIB, 514.0 * KIB]),
            (bytes, vec![1.48 * GIB, 1.5 * GIB, 1.52 * GIB]),
            (bytes, vec![0.0, 2.0 * MIB, 4.0 * MIB]),
            (bytes, vec![-0.000_001, 0.0, 0.000_001]),
            (bytes, vec![3.0 * GIB]),
            (bytes, vec![]),
            // Leading and trailing zeros are not digits to read.
            (Unit::Plain, vec![0.0125, 0.025, 0.0375]),
            (Unit::Plain, vec![100e3, 150e3, 200e3]),
        ] {
            let (offset, labels) = unit.offset_tick_labels(&ticks);
            assert_eq!(offset, None, "{ticks:?}");
            assert_eq!(labels, unit.tick_labels(&ticks));
        }
    }
}
