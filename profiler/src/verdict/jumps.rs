// Jumps between consecutive samples: the noise scale of the deltas, short excursions, up-steps, drops.
// Never judges growth or decides a verdict; it only classifies deltas against the noise and the quantum.

use crate::stats::{median, robust_sigma};

/// A delta is a jump when it departs from the typical delta by this many robust sigmas: Gaussian
/// noise essentially never does (the deltas of i.i.d. noise have sigma * sqrt 2, so this is ~8.5
/// sigma of the samples), a spike or a cleared cache does.
const JUMP_SIGMAS: f64 = 6.0;

/// An excursion lasts at most this many samples before the opposite jump.
const MAX_EXCURSION: usize = 3;

/// What an ordinary delta looks like, so that jumps can be told apart from steady growth and noise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JumpScale {
    /// median delta between consecutive samples (the steady growth per sample)
    pub typical: f64,
    /// how far a delta must depart from `typical` to count as a jump
    pub threshold: f64,
}

impl JumpScale {
    /// The scale of the deltas of `y`: at least one quantum (a counter moves by whole units), at
    /// least `JUMP_SIGMAS` robust sigmas of the deltas, and at least half the typical delta, so that
    /// jitter on a steady leak (1000 B, 1040 B, 1024 B...) is not mistaken for steps.
    ///
    /// The sigma is the smaller of two robust estimates: from the deltas, and from the second
    /// differences / sqrt 3 (the same quantity for i.i.d. noise). The first is blind to a series
    /// that switches regime (flat, then +42 KiB per iteration: the deltas are half 0, half 42 KiB);
    /// the second to frequent steps (a staircase +1 every 3). Each is ~0 where the other misleads.
    pub fn of(y: &[f64], quantum: f64) -> Self {
        let d = deltas(y);
        let typical = median(&d);
        let noise = noise_of_deltas(&d);
        let threshold = quantum.max(JUMP_SIGMAS * noise).max(0.5 * typical.abs());
        JumpScale { typical, threshold }
    }

    /// A positive delta that departs upward from the typical delta by at least the threshold.
    fn is_up_step(&self, delta: f64) -> bool {
        let excess = delta - self.typical;
        delta > 0.0 && excess > 0.0 && excess >= self.threshold
    }

    /// A real decrease (not merely less growth than usual) that departs by at least the threshold.
    fn is_drop(&self, delta: f64) -> bool {
        let excess = delta - self.typical;
        delta < 0.0 && excess < 0.0 && -excess >= self.threshold
    }
}

/// The robust noise of a series (see [`JumpScale::of`]): 0 for an exact series whose deltas
/// are all alike but for a few jumps.
pub fn noise(y: &[f64]) -> f64 {
    noise_of_deltas(&deltas(y))
}

fn noise_of_deltas(d: &[f64]) -> f64 {
    robust_sigma(d).min(robust_sigma(&deltas(d)) / 3f64.sqrt())
}

/// `y[i] - y[i-1]` for i = 1..len.
pub fn deltas(y: &[f64]) -> Vec<f64> {
    y.windows(2).map(|w| w[1] - w[0]).collect()
}

/// Removes short excursions in place: a jump into sample i and an opposite jump out of sample
/// j - 1 <= i + 2 (at most three samples away) that cancel, i.e. what is left after both, beyond the
/// typical growth, is at most half the smaller jump. The excursion samples are replaced by a straight
/// line between their neighbours, so a spike neither adds a step nor hides growth. Returns how many
/// excursions were removed. An excursion that has not returned by the last sample is left alone: it
/// cannot be told from a step.
pub fn remove_excursions(y: &mut [f64], scale: &JumpScale) -> usize {
    let n = y.len();
    // Excursions are rare spikes. Where jumps are the regime (a structure that adds a batch
    // and reclaims it every few samples), pairing a jump with "its" return a few samples later
    // is guesswork, and a wrong pairing leaves an orphan step behind: there, only a jump that
    // returns at the very next sample is a spike; the rest is left to the sawtooth rule.
    let jumps = y
        .windows(2)
        .filter(|p| {
            let d = p[1] - p[0] - scale.typical;
            d != 0.0 && d.abs() >= scale.threshold
        })
        .count();
    let longest = if jumps >= 10 && jumps * 4 >= n {
        1
    } else {
        MAX_EXCURSION
    };
    // Each sample's level once the typical growth is taken out, as it was before any removal.
    let level: Vec<f64> = (0..n).map(|k| y[k] - scale.typical * k as f64).collect();
    let mut removed = 0;
    let mut i = 1;
    while i < n {
        let into = y[i] - y[i - 1] - scale.typical;
        let mut next = i + 1;
        if into != 0.0 && into.abs() >= scale.threshold {
            for len in 1..=longest {
                let j = i + len;
                if j >= n {
                    break;
                }
                let out = y[j] - y[j - 1] - scale.typical;
                if out.signum() != -into.signum() || out.abs() < scale.threshold {
                    continue;
                }
                let net = y[j] - y[i - 1] - scale.typical * (len + 1) as f64;
                if net.abs() <= 0.5 * into.abs().min(out.abs()) && departs(&level, i, j) {
                    let (from, to) = (y[i - 1], y[j]);
                    // What is left besides the usual growth is itself a jump (a clear or a
                    // step that fell on the same samples): keep it in one delta, at the way
                    // out, so that it stays one drop or one step; spread over the excursion it
                    // would be two, with a made-up level between them.
                    let whole = net != 0.0 && net.abs() >= scale.threshold;
                    for (k, v) in y[i..j].iter_mut().enumerate() {
                        *v = if whole {
                            from + scale.typical * (k + 1) as f64
                        } else {
                            from + (to - from) * (k + 1) as f64 / (len + 1) as f64
                        };
                    }
                    removed += 1;
                    next = j;
                    break;
                }
            }
        }
        i = next;
    }
    removed
}

/// Whether the samples `i..j` depart from the level around them further than their neighbours
/// `i - 1` and `j` do: then they are the excursion. Otherwise the neighbours are (a baseline
/// sample between two spikes looks like a dip between two high samples): a program's heap
/// summed with its children's, read while a child was alive, rises by a child's 900 KB at
/// some samples, and a leak's baseline sample between two such spikes once was "removed" as a
/// dip and replaced by a level between the spikes, which made the floors fall.
fn departs(level: &[f64], i: usize, j: usize) -> bool {
    let around = &level[i.saturating_sub(1 + LOCAL)..(j + 1 + LOCAL).min(level.len())];
    let m = median(around);
    let off = |k: usize| (level[k] - m).abs();
    let neighbours = off(i - 1).max(off(j));
    (i..j).all(|k| off(k) > neighbours)
}

/// Samples on each side of an excursion whose median is the level it departs from.
const LOCAL: usize = 5;

/// Up-steps: `(i, size)` for every sample i whose delta from sample i - 1 is an upward jump.
pub fn up_steps(y: &[f64], scale: &JumpScale) -> Vec<(usize, f64)> {
    y.windows(2)
        .enumerate()
        .filter_map(|(k, w)| {
            let d = w[1] - w[0];
            scale.is_up_step(d).then_some((k + 1, d))
        })
        .collect()
}

/// Drops: every sample i that is a real, jump-sized decrease from sample i - 1.
pub fn drops(y: &[f64], scale: &JumpScale) -> Vec<usize> {
    y.windows(2)
        .enumerate()
        .filter_map(|(k, w)| scale.is_drop(w[1] - w[0]).then_some(k + 1))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_counter_has_quantum_threshold() {
        let y = [3.0, 3.0, 4.0, 4.0, 4.0, 4.0, 4.0, 5.0, 5.0];
        let s = JumpScale::of(&y, 1.0);
        assert_eq!((s.typical, s.threshold), (0.0, 1.0));
        assert_eq!(up_steps(&y, &s), vec![(2, 1.0), (7, 1.0)]);
        assert!(drops(&y, &s).is_empty());
    }

    #[test]
    fn steady_growth_is_not_a_step() {
        let y: Vec<f64> = (0..20)
            .map(|i| 1024.0 * i as f64 + if i % 3 == 0 { 16.0 } else { 0.0 })
            .collect();
        let s = JumpScale::of(&y, 1.0);
        assert!(up_steps(&y, &s).is_empty(), "{s:?}");
        assert!(drops(&y, &s).is_empty());
    }

    #[test]
    fn spike_is_replaced_by_its_neighbours() {
        let mut y = vec![10.0, 10.0, 10.0, 5000.0, 10.0, 10.0, 10.0];
        let s = JumpScale::of(&y, 1.0);
        assert_eq!(remove_excursions(&mut y, &s), 1);
        assert_eq!(y, vec![10.0; 7]);
    }

    #[test]
    fn three_sample_excursion_on_a_leak_keeps_the_leak() {
        // +1 per sample, with samples 4..=6 lifted by 1000 (a transient buffer).
        let mut y: Vec<f64> = (0..12).map(|i| i as f64).collect();
        for v in &mut y[4..7] {
            *v += 1000.0;
        }
        let s = JumpScale::of(&y, 1.0);
        assert_eq!(remove_excursions(&mut y, &s), 1);
        let expected: Vec<f64> = (0..12).map(|i| i as f64).collect();
        for (a, b) in y.iter().zip(&expected) {
            assert!((a - b).abs() < 1e-9, "{y:?}");
        }
    }

    #[test]
    fn a_step_and_a_long_lived_level_are_not_excursions() {
        // returns after 4 samples: too long to be a spike
        let mut y = vec![0.0, 0.0, 9.0, 9.0, 9.0, 9.0, 0.0, 0.0];
        let s = JumpScale::of(&y, 1.0);
        assert_eq!(remove_excursions(&mut y, &s), 0);
        // a step that stays
        let mut z = vec![0.0, 0.0, 0.0, 9.0, 9.0, 9.0, 9.0, 9.0];
        let s = JumpScale::of(&z, 1.0);
        assert_eq!(remove_excursions(&mut z, &s), 0);
        // up 10, down 4: does not cancel
        let mut w = vec![0.0, 0.0, 10.0, 6.0, 6.0, 6.0, 6.0];
        let s = JumpScale::of(&w, 1.0);
        assert_eq!(remove_excursions(&mut w, &s), 0);
    }

    #[test]
    fn sawtooth_drops_are_found() {
        let y: Vec<f64> = (0..20).map(|i| (i % 5) as f64 * 100.0).collect();
        let s = JumpScale::of(&y, 1.0);
        assert_eq!(drops(&y, &s), vec![5, 10, 15]);
        assert!(up_steps(&y, &s).is_empty());
    }

    #[test]
    fn degenerate_inputs_do_not_panic() {
        for y in [&[][..], &[1.0][..], &[1.0, 1.0][..]] {
            let s = JumpScale::of(y, 0.0);
            let mut v = y.to_vec();
            assert_eq!(remove_excursions(&mut v, &s), 0);
            assert!(up_steps(y, &s).is_empty() && drops(y, &s).is_empty());
        }
    }
}
