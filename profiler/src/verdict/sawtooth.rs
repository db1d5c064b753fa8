// Sawtooth and periodic clears: the floor of each stretch between drops.
// Never judges whether the floors rise; mod.rs runs the same trend statistics on them as on any series.

/// The lowest sample after each drop, up to the next drop.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Floors {
    /// iteration of each floor
    pub x: Vec<f64>,
    pub y: Vec<f64>,
}

/// Floors of `y` (sampled at iterations `x`) between the drops at sample indices `drops` (sorted).
/// The stretch before the first drop is left out: the tail may start in the middle of a tooth, so
/// its lowest point is not a floor.
pub fn floors(x: &[f64], y: &[f64], drops: &[usize]) -> Floors {
    let n = x.len().min(y.len());
    let mut out = Floors::default();
    for (k, &start) in drops.iter().enumerate() {
        let end = drops.get(k + 1).copied().unwrap_or(n).min(n);
        if start >= end {
            continue;
        }
        let lowest = (start..end)
            .min_by(|&a, &b| y[a].total_cmp(&y[b]))
            .unwrap_or(start);
        out.x.push(x[lowest]);
        out.y.push(y[lowest]);
    }
    out
}

/// Indices of the floors `y` that fall back by at least half of what the floors rose since
/// the previous such fall (or since the first floor), and by at least `threshold` (the jump
/// scale of the floors: several robust sigmas of their own noise): the resets of a sawtooth
/// on a sawtooth. A floor that wobbles down on rising floors, or noisy floors around a level,
/// have none.
pub fn resets(y: &[f64], threshold: f64) -> Vec<usize> {
    let mut out = Vec::new();
    let mut low = match y.first() {
        Some(&v) => v,
        None => return out,
    };
    for i in 1..y.len() {
        let risen = y[i - 1] - low;
        let fall = y[i - 1] - y[i];
        if fall >= threshold && risen > 0.0 && fall >= 0.5 * risen {
            out.push(i);
            low = y[i];
        } else {
            low = low.min(y[i]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floors_of_a_sawtooth_with_a_rising_floor() {
        // grows 100 per iteration, cleared every 5 down to a floor that rises by 1 each time
        let x: Vec<f64> = (0..17).map(|i| (4 + i) as f64).collect();
        let y: Vec<f64> = x
            .iter()
            .map(|&i| {
                let i = i as usize;
                (i / 5) as f64 + 100.0 * (i % 5) as f64
            })
            .collect();
        let f = floors(&x, &y, &[1, 6, 11, 16]);
        assert_eq!(f.x, vec![5.0, 10.0, 15.0, 20.0]);
        assert_eq!(f.y, vec![1.0, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn resets_are_falls_that_give_back_the_floors_rise() {
        // floors rising 200 a tooth, reset every 6 teeth; a wobble of 20 is no reset
        let y = [
            0.0, 200.0, 400.0, 380.0, 600.0, 800.0, 1000.0, 10.0, 210.0, 410.0, 610.0, 810.0,
            1010.0, 5.0, 205.0,
        ];
        assert_eq!(resets(&y, 100.0), vec![7, 13]);
        // steadily rising floors have none; neither has a flat level, nor falls under the
        // noise threshold
        let rising: Vec<f64> = (0..20).map(|i| 10.0 * i as f64).collect();
        assert!(resets(&rising, 1.0).is_empty());
        assert!(resets(&[5.0, 5.0, 5.0], 1.0).is_empty());
        assert!(resets(&y, 1_500.0).is_empty());
    }

    #[test]
    fn no_drops_no_floors_and_bad_indices_are_ignored() {
        assert_eq!(floors(&[0.0, 1.0], &[0.0, 1.0], &[]), Floors::default());
        assert_eq!(floors(&[0.0, 1.0], &[0.0, 1.0], &[5]), Floors::default());
    }
}
