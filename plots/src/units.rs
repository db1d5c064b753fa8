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
pub(crate) struct Scale {
    pub factor: f64,
    pub suffix: &'static str,
}

const BYTES: [Scale; 5] = [
    Scale {
        factor: 1.0,
        suffix: " B",
    },
    Scale {
        factor: 1024.0,
        suffix: " KiB",
    },
    Scale {
        factor: 1048576.0,
        suffix: " MiB",
    },
    Scale {
        factor: 1073741824.0,
        suffix: " GiB",
    },
    Scale {
        factor: 1099511627776.0,
        suffix: " TiB",
    },
];
const COUNT: [Scale; 5] = [
    Scale {
        factor: 1.0,
        suffix: "",
    },
    Scale {
        factor: 1e3,
        suffix: "k",
    },
    Scale {
        factor: 1e6,
        suffix: "M",
    },
    Scale {
        factor: 1e9,
        suffix: "G",
    },
    Scale {
        factor: 1e12,
        suffix: "T",
    },
];
const MILLIS: [Scale; 2] = [
    Scale {
        factor: 1.0,
        suffix: " ms",
    },
    Scale {
        factor: 1e3,
        suffix: " s",
    },
];
const PLAIN: [Scale; 1] = [Scale {
    factor: 1.0,
    suffix: "",
}];

impl Unit {
    fn ladder(self) -> &'static [Scale] {
        match self {
            Unit::Bytes => &BYTES,
            Unit::Count => &COUNT,
            Unit::Millis => &MILLIS,
            Unit::Plain => &PLAIN,
        }
    }

    /// The largest rung whose factor does not exceed `magnitude`. Counts stay unscaled below
    /// 10,000 because "1500" reads better than "1.5k" on an axis.
    pub(crate) fn scale_for(self, magnitude: f64) -> Scale {
        let ladder = self.ladder();
        ladder
            .iter()
            .rev()
            .find(|s| magnitude >= self.threshold(s))
            .copied()
            .unwrap_or(ladder[0])
    }

    /// The magnitude from which `scale` is used.
    fn threshold(self, scale: &Scale) -> f64 {
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
        if !value.is_finite() {
            return "n/a".to_string();
        }
        if value == 0.0 {
            return format!("0{}", self.ladder()[0].suffix);
        }
        if self == Unit::Plain && !(1e-3..1e6).contains(&value.abs()) {
            return format_exponent(value);
        }
        let ladder = self.ladder();
        let mut scale = self.scale_for(value.abs());
        let mut text = significant(value / scale.factor);
        // 1023.9 KiB rounds to "1024 KiB": move up a rung instead.
        if let Some(next) = ladder.iter().find(|s| s.factor > scale.factor) {
            let rounded: f64 = text.parse().unwrap_or(0.0);
            if rounded.abs() * scale.factor >= self.threshold(next) {
                scale = *next;
                text = significant(value / scale.factor);
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
                        format_exponent(t)
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
}

/// Three significant digits, but whole numbers keep all their digits; trailing zeros dropped.
fn significant(v: f64) -> String {
    let digits_before_point = v.abs().log10().floor() as i32 + 1;
    let decimals = (3 - digits_before_point).clamp(0, 6) as usize;
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

fn format_exponent(v: f64) -> String {
    let s = format!("{v:.2e}");
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
}
