// Owns the words of a judgement: Verdict and Shape, as every output and the JSON write them.
// Must never decide anything: the verdict module does.

use serde::{Deserialize, Serialize};

/// Whether a metric, a run or a report leaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Leak,
    Clean,
    Inconclusive,
}

impl Verdict {
    /// The verdict's word as every output writes it: `leak`, `clean`, `inconclusive`.
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Leak => "leak",
            Verdict::Clean => "clean",
            Verdict::Inconclusive => "inconclusive",
        }
    }
}

/// Which rule of the verdict decided (docs/VERDICT.md), written as in the JSON report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Shape {
    /// Steady growth, or its absence, judged by the trend.
    #[default]
    Linear,
    /// Growth that stopped during the (extended) warm-up: a cache that filled.
    Plateau,
    /// Growth still slowing down when the warm-up extension ran out.
    Decelerating,
    /// One or two level shifts, or steps that are not a rhythm.
    Steps,
    /// Up-steps at a steady rhythm.
    RecurringSteps,
    /// Drops between rises: judged by the floors between drops.
    Sawtooth,
    /// Every sample of the tail the same, or no significant trend.
    Flat,
    /// No significant trend, but too noisy to bound it.
    Noisy,
    /// Too few samples after the warm-up.
    TooShort,
    /// Samples that are not finite numbers.
    NonFinite,
    /// The scope could not see what the verdict needs (a thread scope beside other threads
    /// that moved memory): neither leak nor clean.
    Blind,
    /// Growth the process gave back once the iterations stopped, within a moment of idling:
    /// held by work other threads finished later (a batching logger's buffer, a detached
    /// thread still sleeping), not kept.
    Released,
}

impl Shape {
    /// The name the JSON report uses: `linear`, `recurring-steps`, `too-short`...
    pub fn as_str(self) -> &'static str {
        match self {
            Shape::Linear => "linear",
            Shape::Plateau => "plateau",
            Shape::Decelerating => "decelerating",
            Shape::Steps => "steps",
            Shape::RecurringSteps => "recurring-steps",
            Shape::Sawtooth => "sawtooth",
            Shape::Flat => "flat",
            Shape::Noisy => "noisy",
            Shape::TooShort => "too-short",
            Shape::NonFinite => "non-finite",
            Shape::Released => "released",
            Shape::Blind => "blind",
        }
    }
}

impl PartialEq<&str> for Shape {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.word())
    }
}
