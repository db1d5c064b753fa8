// Axis ranges and tick positions: from the data's extent to a padded range with "nice" ticks.
// It must never return an empty or non-finite range, whatever the data (flat, empty, huge).

use crate::units::{Unit, hard_to_read};

/// Fraction of the data span added above (and below, unless the axis starts at zero).
const PAD: f64 = 0.05;
/// The same for flat data, drawn against zero.
const FLAT_PAD: f64 = 0.15;

/// The smallest and largest finite value among `values`, or `None` if there is none.
pub(crate) fn extent(values: impl IntoIterator<Item = f64>) -> Option<(f64, f64)> {
    values
        .into_iter()
        .filter(|v| v.is_finite())
        .fold(None, |acc, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })
}

/// Joins two extents.
pub(crate) fn union(a: Option<(f64, f64)>, b: Option<(f64, f64)>) -> Option<(f64, f64)> {
    match (a, b) {
        (Some((a0, a1)), Some((b0, b1))) => Some((a0.min(b0), a1.max(b1))),
        (a, None) => a,
        (None, b) => b,
    }
}

/// The y range to draw for data spanning `extent`.
///
/// Quantities (bytes, counts, durations) include zero when the data are near it (closer to zero
/// than their own span) or flat, so a small wobble is not blown up into a cliff; data far from
/// zero keep a tight range so that growth stays visible. A flat series is padded so that it
/// sits inside the panel, never on a collapsed axis.
pub(crate) fn y_range(unit: Unit, extent: Option<(f64, f64)>) -> (f64, f64) {
    let Some((min, max)) = extent else {
        return empty_range(unit);
    };
    let (mut lo, mut hi) = (min, max);
    let flat = hi - lo <= lo.abs().max(hi.abs()) * 1e-9;
    if unit != Unit::Plain {
        if lo >= 0.0 && (flat || lo <= hi - lo) {
            lo = 0.0;
        } else if hi <= 0.0 && (flat || -hi <= hi - lo) {
            hi = 0.0;
        }
    }
    let magnitude = lo.abs().max(hi.abs());
    if hi - lo <= magnitude * 1e-9 {
        if magnitude == 0.0 {
            return empty_range(unit);
        }
        // Only plain units get here (quantities were stretched to zero above).
        return (lo - magnitude * 0.1, hi + magnitude * 0.1);
    }
    let span = hi - lo;
    // A flat line stretched to zero would sit on the frame: give it more room.
    let pad = if flat { FLAT_PAD } else { PAD };
    if !(lo == 0.0 && min >= 0.0) {
        lo -= pad * span;
    }
    if !(hi == 0.0 && max <= 0.0) {
        hi += pad * span;
    }
    (lo, hi)
}

/// The range used when there is nothing to show.
fn empty_range(unit: Unit) -> (f64, f64) {
    match unit {
        Unit::Bytes => (0.0, 1024.0),
        Unit::Count | Unit::Millis => (0.0, 1.0),
        Unit::Plain => (-1.0, 1.0),
    }
}

/// The x range: the data's extent exactly (the first and last sample sit on the frame), widened
/// around a single x value.
pub(crate) fn x_range(unit: Unit, extent: Option<(f64, f64)>) -> (f64, f64) {
    let Some((lo, hi)) = extent else {
        return (0.0, 1.0);
    };
    let magnitude = lo.abs().max(hi.abs());
    if hi - lo > magnitude * 1e-9 {
        return (lo, hi);
    }
    let mut half = if magnitude == 0.0 {
        1.0
    } else {
        magnitude * 0.1
    };
    if unit == Unit::Count {
        half = half.max(1.0);
    }
    (lo - half, hi + half)
}

/// About `target` evenly spaced ticks inside `lo..=hi` at round values of the unit: steps of
/// 1, 2, 2.5 or 5 times a power of ten in the unit's scale (so 0.25 MiB, not 262144 B). Counts
/// and bytes never step by less than 1, nor by 2.5 or 0.5 when that splits a unit.
///
/// The scale is the one the values are written in (MiB for 0..9.5 MiB). But ticks that will be
/// written relative to an offset (see [`Unit::offset_tick_labels`]) are round in the scale of
/// the range instead: 1 KiB apart on a 2.5 GiB offset, not 0.000001 GiB.
pub(crate) fn ticks(unit: Unit, lo: f64, hi: f64, target: usize) -> Vec<f64> {
    if !(lo.is_finite() && hi.is_finite() && hi > lo) {
        return Vec::new();
    }
    let target = target.max(1);
    let ticks = ticks_in(
        unit,
        unit.scale_for(lo.abs().max(hi.abs())).factor,
        lo,
        hi,
        target,
    );
    if (lo <= 0.0 && hi >= 0.0) || !hard_to_read(&unit.tick_labels(&ticks)) {
        return ticks;
    }
    // The offset labels are written in the scale of the largest distance from the offset; and
    // need two ticks, one of which is the offset, to show anything.
    let factor = unit.scale_for(hi - lo).factor;
    (target..=2 * target + 2)
        .map(|t| ticks_in(unit, factor, lo, hi, t))
        .find(|t| t.len() >= 2)
        .unwrap_or(ticks)
}

/// [`ticks`] with steps round in the scale of `factor`.
fn ticks_in(unit: Unit, factor: f64, lo: f64, hi: f64, target: usize) -> Vec<f64> {
    let raw = (hi - lo) / factor / target as f64;
    let mut magnitude = 10f64.powf(raw.log10().floor());
    let whole_only = matches!(unit, Unit::Count | Unit::Bytes);
    let step = loop {
        let found = [1.0, 2.0, 2.5, 5.0]
            .iter()
            .map(|m| m * magnitude * factor)
            .find(|&s| {
                s >= raw * factor * (1.0 - 1e-9)
                    && (!whole_only || s >= 1.0 && (s.fract() == 0.0 || s >= 1000.0))
            });
        if let Some(s) = found {
            break s;
        }
        magnitude *= 10.0;
    };
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    if last < first || last - first > 200 {
        return Vec::new();
    }
    (first..=last)
        .map(|k| if k == 0 { 0.0 } else { k as f64 * step })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: f64 = 1024.0 * 1024.0;

    #[test]
    fn flat_series_are_padded_not_collapsed() {
        let (lo, hi) = y_range(Unit::Plain, Some((5.0, 5.0)));
        assert!(lo < 5.0 && 5.0 < hi, "{lo}..{hi}");
        assert!(hi - lo >= 0.5, "{lo}..{hi}");

        // A flat quantity is shown against zero, with room above.
        let (lo, hi) = y_range(Unit::Bytes, Some((3.0 * MIB, 3.0 * MIB)));
        assert_eq!(lo, 0.0);
        assert!(
            hi >= 3.3 * MIB,
            "flat line too close to the top: {}",
            hi / MIB
        );

        // Flat at zero still gets a usable axis.
        for unit in [Unit::Bytes, Unit::Count, Unit::Millis, Unit::Plain] {
            let (lo, hi) = y_range(unit, Some((0.0, 0.0)));
            assert!(lo <= 0.0 && 0.0 < hi, "{unit:?}: {lo}..{hi}");
        }
    }

    #[test]
    fn zero_is_included_only_when_data_are_near_it() {
        // Near zero: counts 10..30 are drawn from 0.
        let (lo, hi) = y_range(Unit::Count, Some((10.0, 30.0)));
        assert_eq!(lo, 0.0);
        assert!(hi > 30.0);
        // Far from zero: 50..52 MiB keeps a tight range so growth shows.
        let (lo, hi) = y_range(Unit::Bytes, Some((50.0 * MIB, 52.0 * MIB)));
        assert!(lo > 49.0 * MIB && lo < 50.0 * MIB, "{}", lo / MIB);
        assert!(hi > 52.0 * MIB && hi < 53.0 * MIB, "{}", hi / MIB);
        // Plain numbers never force zero.
        let (lo, _) = y_range(Unit::Plain, Some((10.0, 30.0)));
        assert!(lo > 0.0);
        // Negative quantities mirror it.
        let (_, hi) = y_range(Unit::Millis, Some((-30.0, -10.0)));
        assert_eq!(hi, 0.0);
    }

    #[test]
    fn empty_data_get_a_default_range() {
        assert_eq!(y_range(Unit::Count, None), (0.0, 1.0));
        assert_eq!(x_range(Unit::Count, None), (0.0, 1.0));
        let (lo, hi) = x_range(Unit::Count, Some((7.0, 7.0)));
        assert!(lo <= 6.0 && hi >= 8.0);
    }

    #[test]
    fn ticks_are_round_in_the_unit() {
        let t = ticks(Unit::Bytes, 0.0, 9.5 * MIB, 5);
        assert_eq!(t, [0.0, 2.0, 4.0, 6.0, 8.0].map(|v| v * MIB));
        let t = ticks(Unit::Bytes, 0.0, 10.5 * MIB, 5);
        assert_eq!(t, [0.0, 2.5, 5.0, 7.5, 10.0].map(|v| v * MIB));
        let t = ticks(Unit::Bytes, 0.0, 1.1 * MIB, 5);
        assert_eq!(t, [0.0, 0.25, 0.5, 0.75, 1.0].map(|v| v * MIB));
        let t = ticks(Unit::Count, 0.0, 39.0, 8);
        assert_eq!(t, [0.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 35.0]);
        let t = ticks(Unit::Millis, 0.0, 3200.0, 4);
        assert_eq!(t, [0.0, 1000.0, 2000.0, 3000.0]);
    }

    #[test]
    fn count_and_byte_ticks_are_whole() {
        assert_eq!(ticks(Unit::Count, 0.0, 1.05, 5), [0.0, 1.0]);
        assert_eq!(ticks(Unit::Count, 0.0, 6.3, 4), [0.0, 2.0, 4.0, 6.0]);
        assert!(
            ticks(Unit::Bytes, 0.0, 3.0, 10)
                .iter()
                .all(|t| t.fract() == 0.0)
        );
        // ... but large byte ranges still get several ticks (0.01 GiB is not a whole byte count).
        let gib = 1024.0 * MIB;
        assert!(ticks(Unit::Bytes, 1.47 * gib, 1.53 * gib, 6).len() >= 4);
        // Plain ticks may be fractional.
        assert_eq!(ticks(Unit::Plain, 0.0, 1.0, 4), [0.0, 0.25, 0.5, 0.75, 1.0]);
    }

    #[test]
    fn ticks_on_a_large_offset_are_round_in_the_scale_of_the_range() {
        let gib = 1024.0 * MIB;
        let (lo, hi) = (2.503225 * gib, 2.503229 * gib);
        let t = ticks(Unit::Bytes, lo, hi, 5);
        assert!(t.len() >= 3, "{t:?}");
        assert!(t.iter().all(|v| (lo..=hi).contains(v)));
        assert!(t.windows(2).all(|w| w[1] - w[0] == 1024.0), "{t:?}");
        // Even when the first try gives a single tick ("2.503226 GiB").
        let t = ticks(Unit::Bytes, 2.503224 * gib, 2.503228 * gib, 2);
        assert!(t.len() >= 2, "{t:?}");
        // Written in their own scale when no offset is needed: 0.25 MiB, not 256 KiB.
        let t = ticks(Unit::Bytes, 0.0, 1.1 * MIB, 5);
        assert_eq!(t[1], 0.25 * MIB);
    }

    #[test]
    fn ticks_stay_inside_and_degenerate_ranges_give_none() {
        let t = ticks(Unit::Plain, -3.3, 7.7, 6);
        assert!(t.iter().all(|&v| (-3.3..=7.7).contains(&v)));
        assert!(t.contains(&0.0));
        assert!(ticks(Unit::Plain, 1.0, 1.0, 5).is_empty());
        assert!(ticks(Unit::Plain, f64::NAN, 1.0, 5).is_empty());
    }

    #[test]
    fn extents_skip_non_finite() {
        assert_eq!(
            extent([f64::NAN, 3.0, -1.0, f64::INFINITY]),
            Some((-1.0, 3.0))
        );
        assert_eq!(extent([f64::NAN]), None);
        assert_eq!(
            union(Some((0.0, 1.0)), Some((-1.0, 0.5))),
            Some((-1.0, 1.0))
        );
        assert_eq!(union(None, Some((2.0, 3.0))), Some((2.0, 3.0)));
    }
}
