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
    fn no_drops_no_floors_and_bad_indices_are_ignored() {
        assert_eq!(floors(&[0.0, 1.0], &[0.0, 1.0], &[]), Floors::default());
        assert_eq!(floors(&[0.0, 1.0], &[0.0, 1.0], &[5]), Floors::default());
    }
}
