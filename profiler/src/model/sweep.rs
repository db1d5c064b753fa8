// Owns the record of a sweep (`--sweep`): one point per input size, the growth class fitted to
// each metric, and the `--max-complexity` limit with the sentences of the fits above it.
// Never measures nor fits: the engine fills the points, the judge (`crate::fit`) the fits.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::format::{format_bytes, format_count};

/// A growth class of memory (or time) against the input size n.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Complexity {
    #[serde(rename = "O(1)")]
    Constant,
    #[serde(rename = "O(log n)")]
    Log,
    #[serde(rename = "O(n)")]
    Linear,
    #[serde(rename = "O(n log n)")]
    NLogN,
    #[serde(rename = "O(n^2)")]
    Quadratic,
    #[serde(rename = "O(n^3)")]
    Cubic,
}

impl Complexity {
    /// Every class, slowest-growing first.
    pub const ALL: [Complexity; 6] = [
        Complexity::Constant,
        Complexity::Log,
        Complexity::Linear,
        Complexity::NLogN,
        Complexity::Quadratic,
        Complexity::Cubic,
    ];

    /// The class as written in reports: `O(1)`, `O(log n)`, `O(n)`, `O(n log n)`, `O(n^2)`,
    /// `O(n^3)`.
    pub fn name(self) -> &'static str {
        match self {
            Complexity::Constant => "O(1)",
            Complexity::Log => "O(log n)",
            Complexity::Linear => "O(n)",
            Complexity::NLogN => "O(n log n)",
            Complexity::Quadratic => "O(n^2)",
            Complexity::Cubic => "O(n^3)",
        }
    }

    /// The term the coefficient multiplies, as written after it: `n`, `n log n`, `n^2`...
    /// (empty for `O(1)`, which has no coefficient).
    pub fn term(self) -> &'static str {
        match self {
            Complexity::Constant => "",
            Complexity::Log => "log n",
            Complexity::Linear => "n",
            Complexity::NLogN => "n log n",
            Complexity::Quadratic => "n^2",
            Complexity::Cubic => "n^3",
        }
    }

    /// g(n), the function whose multiple (plus an intercept) the class fits; natural log.
    pub fn eval(self, n: f64) -> f64 {
        let ln = n.max(1.0).ln();
        match self {
            Complexity::Constant => 1.0,
            Complexity::Log => ln,
            Complexity::Linear => n,
            Complexity::NLogN => n * ln,
            Complexity::Quadratic => n * n,
            Complexity::Cubic => n * n * n,
        }
    }
}

impl fmt::Display for Complexity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Complexity {
    type Err = String;

    /// `O(n)`, `n`, `O(n log n)`, `nlogn`, `O(n^2)`, `n2`, `O(n²)`, `O(1)`, `1`...: spaces,
    /// case, `O(...)` and `*` do not matter.
    fn from_str(text: &str) -> Result<Self, String> {
        let mut s: String = text
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '*')
            .collect::<String>()
            .to_lowercase();
        if let Some(inner) = s.strip_prefix("o(").and_then(|r| r.strip_suffix(')')) {
            s = inner.to_string();
        }
        let s = s.replace('²', "^2").replace('³', "^3");
        Ok(match s.as_str() {
            "1" | "const" | "constant" => Complexity::Constant,
            "logn" | "log(n)" => Complexity::Log,
            "n" => Complexity::Linear,
            "nlogn" | "nlog(n)" => Complexity::NLogN,
            "n^2" | "n2" | "nn" => Complexity::Quadratic,
            "n^3" | "n3" | "nnn" => Complexity::Cubic,
            _ => {
                return Err(format!(
                    "'{text}' is not a growth class: use one of O(1), O(log n), O(n), \
                     O(n log n), O(n^2), O(n^3)"
                ));
            }
        })
    }
}

/// The point fields a sweep fits, in the order outputs show them.
pub const SWEEP_FIELDS: [&str; 6] = [
    "peak_bytes",
    "retained_bytes",
    "allocated_bytes",
    "allocations",
    "rss_peak_bytes",
    "duration_ms",
];

/// Memory against input size: one point per size, a fit per metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sweep {
    /// One per size, smallest first.
    pub points: Vec<Point>,
    /// The fitted class of each point field that was measured, keyed by the field's name.
    pub fits: BTreeMap<String, Fit>,
    /// The fields `--max-complexity` is held to: `peak_bytes` and `retained_bytes` with heap
    /// counters, else `rss_peak_bytes`; a program's `rss_peak_bytes` beside them when its RSS
    /// grew mostly outside the heap.
    #[serde(default)]
    pub gated: Vec<String>,
    /// `--max-complexity`, if asked for (part of the report, so that a saved report
    /// reproduces its own status).
    #[serde(default)]
    pub max_complexity: Option<Complexity>,
}

/// What one input size cost, over its repetitions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub size: u64,
    /// Heap peak above the heap at the start of a repetition (median over repetitions); for
    /// a program, its whole run's heap peak.
    pub peak_bytes: Option<u64>,
    /// Heap still live after the first repetition returned and its result was dropped (null
    /// for a program: what it did not free before exiting went back to the system).
    pub retained_bytes: Option<i64>,
    /// Bytes and allocations allocated by one repetition (median).
    pub allocated_bytes: Option<u64>,
    pub allocations: Option<u64>,
    /// The highest RSS of the process during the size's repetitions (a program's own, whole
    /// run, median over repetitions).
    pub rss_peak_bytes: Option<u64>,
    /// Wall time of one repetition (median).
    pub duration_ms: f64,
    /// Repetitions run at this size (until their peaks agreed, or a bound was reached).
    pub repetitions: u32,
}

impl Point {
    /// The value of field `field` (one of [`SWEEP_FIELDS`]), if measured.
    pub fn value(&self, field: &str) -> Option<f64> {
        match field {
            "peak_bytes" => self.peak_bytes.map(|v| v as f64),
            "retained_bytes" => self.retained_bytes.map(|v| v as f64),
            "allocated_bytes" => self.allocated_bytes.map(|v| v as f64),
            "allocations" => self.allocations.map(|v| v as f64),
            "rss_peak_bytes" => self.rss_peak_bytes.map(|v| v as f64),
            "duration_ms" => Some(self.duration_ms),
            _ => None,
        }
    }
}

/// The growth class fitted to one metric: value ≈ intercept + coefficient × g(n).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fit {
    /// The class, or null when the points do not decide (too few sizes, too noisy, two
    /// classes fit about equally well).
    pub model: Option<Complexity>,
    /// The fitted multiple of g(n) (0 for `O(1)`), null when the model is.
    pub coefficient: Option<f64>,
    /// The fitted value at g(n) = 0 (for `O(1)`, the level), null when the model is.
    pub intercept: Option<f64>,
    /// Coefficient of determination of the chosen fit, on the points themselves.
    pub r2: Option<f64>,
    /// The classes the points cannot tell apart, best first (just the model when decided).
    #[serde(default)]
    pub candidates: Vec<Complexity>,
    /// One sentence: the fit, or why it cannot tell.
    #[serde(default)]
    pub sentence: String,
}

/// How the sentence of a fit begins when it cannot tell for want of a fit, not between
/// classes: too few sizes, or no class that fits (`fit::fit_series` writes them).
pub const NO_CLASS: &str = "cannot tell:";

impl Fit {
    /// Undecided only between classes that each fit the points about equally well: not "no
    /// class fits" (noise, or a shape none of the classes has) nor too few sizes, whose
    /// sentences begin with [`NO_CLASS`].
    pub fn between_classes(&self) -> bool {
        self.model.is_none() && self.candidates.len() > 1 && !self.sentence.starts_with(NO_CLASS)
    }

    /// The class is decided and above `max`, or every candidate is.
    pub fn above(&self, max: Complexity) -> bool {
        match self.model {
            Some(m) => m > max,
            None => !self.candidates.is_empty() && self.candidates.iter().all(|&c| c > max),
        }
    }

    /// The points cannot tell whether the class is above `max`.
    pub fn undecided_against(&self, max: Complexity) -> bool {
        let all_within = !self.candidates.is_empty() && self.candidates.iter().all(|&c| c <= max);
        self.model.is_none() && !self.above(max) && !all_within
    }
}

/// "48 B × n + 2.1 KiB" for a fit of `field` (bytes, a count or milliseconds).
pub fn formula(field: &str, model: Complexity, coefficient: f64, intercept: f64) -> String {
    let amount = |v: f64| match field {
        "allocations" => format_count(v),
        "duration_ms" => crate::format::format_ms(v),
        _ => format_bytes(v),
    };
    if model == Complexity::Constant {
        return amount(intercept);
    }
    let slope = match field {
        // Below a nanosecond per unit of n, milliseconds would print as "0 ns".
        "duration_ms" if coefficient.abs() < 1e-6 => format!("{coefficient:.1e} ms"),
        // Below a byte (or an allocation) per unit of n, "0 B × n^2" would say no growth.
        "duration_ms" => amount(coefficient),
        _ if coefficient != 0.0 && coefficient.abs() < 1.0 => {
            let unit = if field == "allocations" { "" } else { " B" };
            format!("{}{unit}", significant(coefficient))
        }
        _ => amount(coefficient),
    };
    let offset = amount(intercept.abs());
    if offset == amount(0.0) {
        return format!("{slope} × {}", model.term());
    }
    let sign = if intercept < 0.0 { "-" } else { "+" };
    format!("{slope} × {} {sign} {offset}", model.term())
}

/// `v` with three significant digits ("0.0156", "0.25").
fn significant(v: f64) -> String {
    let digits = (2 - v.abs().log10().floor() as i32).max(0) as usize;
    let text = format!("{v:.digits$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

impl Sweep {
    /// The fit of `field`, if it was measured.
    pub fn fit(&self, field: &str) -> Option<&Fit> {
        self.fits.get(field)
    }

    /// The gated fields with their fits, and the limit, when `--max-complexity` is set.
    fn gated_fits(&self) -> impl Iterator<Item = (&str, &Fit, Complexity)> {
        self.max_complexity.into_iter().flat_map(move |max| {
            self.gated
                .iter()
                .filter_map(move |f| Some((f.as_str(), self.fits.get(f)?, max)))
        })
    }

    /// The gated fields whose class is above `--max-complexity`.
    pub fn above_limit(&self) -> Vec<&str> {
        self.gated_fits()
            .filter(|(_, fit, max)| fit.above(*max))
            .map(|(field, ..)| field)
            .collect()
    }

    /// One sentence per gated metric whose class is above `--max-complexity`.
    pub fn violations(&self) -> Vec<String> {
        self.gated_fits()
            .filter(|(_, fit, max)| fit.above(*max))
            .map(|(field, fit, max)| match fit.model {
                Some(_) => format!("{field}: {}, above --max-complexity {max}", fit.sentence),
                None => format!(
                    "{field}: every class that fits ({}) is above --max-complexity {max}",
                    names(&fit.candidates)
                ),
            })
            .collect()
    }

    /// The measured code keeps memory that grows with its input after its result is
    /// dropped (the retained bytes' class is decided and above O(1)): a leak of the input.
    /// So does one whose class cannot be told when every class that fits grows: a HashMap
    /// memo retaining 34 KiB at n = 1k and 34 MiB at 1M was "cannot tell O(n) from
    /// O(n log n)", inconclusive, exit 0.
    pub fn retains_input(&self) -> Option<String> {
        let fit = self.fits.get("retained_bytes")?;
        let grows = |c: &Complexity| *c > Complexity::Constant;
        match fit.model {
            Some(model) => grows(&model).then(|| {
                format!(
                    "memory retained after each call grows with the input: retained_bytes {}",
                    fit.sentence
                )
            }),
            None if fit.between_classes() && fit.candidates.iter().all(grows) => Some(format!(
                "memory retained after each call grows with the input: retained_bytes \
                     grows as {} ({})",
                fit.candidates
                    .iter()
                    .map(|c| c.name())
                    .collect::<Vec<_>>()
                    .join(" or "),
                fit.sentence
            )),
            None => None,
        }
    }

    /// The verdict of the sweep: a leak when it retains its input, inconclusive when a
    /// gated class cannot be told against `--max-complexity` (or the retained bytes' class
    /// cannot be told at all), else clean. The fitted classes themselves are not verdicts:
    /// `--max-complexity` fails them (see [`Sweep::violations`]).
    pub fn verdict(&self) -> super::Verdict {
        use super::Verdict;
        if self.retains_input().is_some() {
            Verdict::Leak
        } else if !self.undecided().is_empty()
            || self
                .fits
                .get("retained_bytes")
                .is_some_and(|f| f.model.is_none())
        {
            Verdict::Inconclusive
        } else {
            Verdict::Clean
        }
    }

    /// One sentence per gated metric whose fit cannot tell whether it is above the limit.
    pub fn undecided(&self) -> Vec<String> {
        self.gated_fits()
            .filter(|(_, fit, max)| fit.undecided_against(*max))
            .map(|(field, fit, _)| format!("{field}: {}", fit.sentence))
            .collect()
    }
}

/// "O(n), O(n log n)".
pub fn names(classes: &[Complexity]) -> String {
    classes
        .iter()
        .map(|c| c.name())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_parse_as_people_write_them_and_print_as_the_contract_says() {
        for (text, c) in [
            ("O(n)", Complexity::Linear),
            ("n", Complexity::Linear),
            ("O(n log n)", Complexity::NLogN),
            ("nlogn", Complexity::NLogN),
            ("O(n^2)", Complexity::Quadratic),
            ("O(n²)", Complexity::Quadratic),
            ("o(1)", Complexity::Constant),
            ("O(log n)", Complexity::Log),
            ("O(N^3)", Complexity::Cubic),
        ] {
            assert_eq!(text.parse::<Complexity>(), Ok(c), "{text}");
        }
        assert!("O(2^n)".parse::<Complexity>().is_err());
        for c in Complexity::ALL {
            assert_eq!(c.name().parse::<Complexity>(), Ok(c));
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(json, format!("\"{}\"", c.name()));
        }
        assert!(Complexity::Quadratic > Complexity::Linear);
    }

    #[test]
    fn an_undecided_fit_fails_the_limit_only_when_every_candidate_is_above_it() {
        let fit = |candidates: Vec<Complexity>| Fit {
            model: None,
            coefficient: None,
            intercept: None,
            r2: None,
            candidates,
            sentence: String::new(),
        };
        let both = fit(vec![Complexity::Linear, Complexity::NLogN]);
        assert!(!both.above(Complexity::Quadratic));
        assert!(!both.undecided_against(Complexity::Quadratic));
        assert!(both.undecided_against(Complexity::Linear));
        assert!(both.above(Complexity::Constant));
        assert!(fit(Vec::new()).undecided_against(Complexity::Linear));
    }

    #[test]
    fn retained_bytes_retain_the_input_when_every_class_that_fits_grows() {
        let sweep = |candidates: Vec<Complexity>, sentence: &str| Sweep {
            points: Vec::new(),
            fits: BTreeMap::from([(
                "retained_bytes".to_string(),
                Fit {
                    model: None,
                    coefficient: None,
                    intercept: None,
                    r2: None,
                    candidates,
                    sentence: sentence.into(),
                },
            )]),
            gated: Vec::new(),
            max_complexity: None,
        };
        let between = "cannot tell O(n) from O(n log n): they fit the 10 sizes about equally well";
        let grows = sweep(vec![Complexity::Linear, Complexity::NLogN], between);
        let said = grows.retains_input().expect("a leak of the input");
        assert!(said.contains("grows as O(n) or O(n log n)"), "{said}");
        assert_eq!(grows.verdict(), super::super::Verdict::Leak);
        let maybe_flat = sweep(vec![Complexity::Constant, Complexity::Log], between);
        assert_eq!(maybe_flat.retains_input(), None);
        assert_eq!(maybe_flat.verdict(), super::super::Verdict::Inconclusive);
        assert_eq!(sweep(Vec::new(), between).retains_input(), None);
        // No class fits (noise): its candidates are not what the points grow as.
        let noisy = sweep(
            vec![Complexity::Linear, Complexity::NLogN],
            "cannot tell: no class fits the points (noisy, or shaped like none of the \
             classes): the best fit, O(n), is off by 40% on average",
        );
        assert_eq!(noisy.retains_input(), None);
    }

    #[test]
    fn a_formula_reads_like_the_fit() {
        assert_eq!(
            formula("peak_bytes", Complexity::Linear, 48.0, 2150.0),
            "48 B × n + 2.1 KiB"
        );
        assert_eq!(formula("allocations", Complexity::Constant, 0.0, 3.0), "3");
        // n^2 / 64 bytes once read "0 B × n^2 + 817.3 B".
        assert_eq!(
            formula("peak_bytes", Complexity::Quadratic, 1.0 / 64.0, 817.3),
            "0.0156 B × n^2 + 817.3 B"
        );
        assert_eq!(
            formula("allocations", Complexity::Linear, 0.25, 0.0),
            "0.25 × n"
        );
    }
}
