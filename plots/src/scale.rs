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
    let value_factor = unit.scale_for(lo.abs().max(hi.abs())).factor;
    let mut ticks = ticks_in(unit, value_factor, lo, hi, target);
    // One tick gives no scale to read (4.9 MiB alone on a panel spanning 66 KiB): finer
    // round steps first.
    if ticks.len() < 2
        && let Some(finer) = (target + 1..=2 * target + 2)
            .map(|t| ticks_in(unit, value_factor, lo, hi, t))
            .find(|t| t.len() >= 2)
    {
        ticks = finer;
    }
    if (lo <= 0.0 && hi >= 0.0) || (ticks.len() >= 2 && !hard_to_read(&unit.tick_labels(&ticks))) {
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

/// Ticks labelled relative to an offset read their lowest tick, "+0", as the base: data drawn
/// below it read as less than the offset (a flat heap line under "≈4.887 MiB +0"). When the
/// data's minimum `min` lies below the lowest tick, one more tick a step lower, and the range's
/// bottom `lo` lowered to it if needed: `None` when the data already start at or above it.
pub(crate) fn tick_below(ticks: &[f64], min: f64, lo: f64) -> Option<(f64, Vec<f64>)> {
    let [first, second, ..] = ticks else {
        return None;
    };
    if min >= *first {
        return None;
    }
    let below = first - (second - first);
    let mut all = Vec::with_capacity(ticks.len() + 1);
    all.push(below);
    all.extend_from_slice(ticks);
    Some((lo.min(below), all))
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

/// On a logarithmic axis, the share of the data's span (in decades) added at each end.
const LOG_PAD: f64 = 0.05;
/// On a logarithmic axis, flat data are shown from half to twice their value.
const LOG_FLAT_PAD: f64 = std::f64::consts::LOG10_2;

/// The y range of a logarithmic axis, in decades, for data spanning `extent` (in decades):
/// padded by a share of the span at both ends (there is no zero to reach), flat data from half
/// to twice their value.
pub(crate) fn log_y_range(unit: Unit, extent: Option<(f64, f64)>) -> (f64, f64) {
    let Some((lo, hi)) = extent else {
        let (lo, hi) = empty_range(unit);
        return (lo.max(1.0).log10(), hi.max(10.0).log10());
    };
    if hi - lo < 1e-9 {
        return (lo - LOG_FLAT_PAD, hi + LOG_FLAT_PAD);
    }
    let pad = LOG_PAD * (hi - lo);
    (lo - pad, hi + pad)
}

/// The x range of a logarithmic axis, in decades: the data's extent exactly, from half to twice
/// a single value.
pub(crate) fn log_x_range(extent: Option<(f64, f64)>) -> (f64, f64) {
    match extent {
        None => (0.0, 1.0),
        Some((lo, hi)) if hi - lo < 1e-9 => (lo - LOG_FLAT_PAD, hi + LOG_FLAT_PAD),
        Some(range) => range,
    }
}

/// Ticks of a logarithmic axis from `lo` to `hi` (values, not decades; both positive), at most
/// about `target` of them: at 1, 2 and 5 times each decade of the unit ([`Unit::decade`]: 1 KiB,
/// 10 KiB, 100 KiB, 1 MiB) when that is few enough, else at each decade, else at every 2nd,
/// 3rd (one per rung: 1 B, 1 KiB, 1 MiB), 6th... decade. A range too narrow for three of those
/// gets about `target / 2` of the linear axis's round ticks (5, 10, 15 MiB) when they are more.
pub(crate) fn log_ticks(unit: Unit, lo: f64, hi: f64, target: usize) -> Vec<f64> {
    if !(lo.is_finite() && hi.is_finite() && lo > 0.0 && hi > lo) {
        return Vec::new();
    }
    let target = target.max(2);
    // Decades are within a few percent of 10^i (1 KiB is 1.024e3), so these bound them.
    let (first, last) = (lo.log10().floor() as i32 - 1, hi.log10().ceil() as i32 + 1);
    let inside = |v: &f64| *v >= lo * (1.0 - 1e-9) && *v <= hi * (1.0 + 1e-9);
    let with_mantissas = |mantissas: &[f64]| -> Vec<f64> {
        (first..=last)
            .flat_map(|i| mantissas.iter().map(move |m| m * unit.decade(i)))
            .filter(inside)
            .collect()
    };
    let every = |stride: i32| -> Vec<f64> {
        (first..=last)
            .filter(|i| i.rem_euclid(stride) == 0)
            .map(|i| unit.decade(i))
            .filter(inside)
            .collect()
    };
    let densest = with_mantissas(&[1.0, 2.0, 5.0]);
    if densest.len() < 3 {
        // Within a decade or so: round linear steps say more than one or two decade marks.
        // Half as many: on a log axis they crowd towards the top.
        let linear = ticks(unit, lo, hi, target.div_ceil(2));
        if linear.len() > densest.len() {
            return linear;
        }
    }
    let levels =
        std::iter::once(densest).chain([1, 2, 3, 6, 9, 12, 15, 18, 24, 30].into_iter().map(every));
    let mut denser: Option<Vec<f64>> = None;
    for level in levels {
        if level.len() < 2 {
            // Sparser levels have no more ticks: rather too many than one.
            return denser.unwrap_or(level);
        }
        if level.len() <= target {
            return level;
        }
        denser = Some(level);
    }
    denser.unwrap_or_default()
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
    fn offset_ticks_start_at_or_below_the_data() {
        let base = 5_124_300.0;
        // The data's minimum under the lowest tick: one tick a step lower, and the range
        // lowered to it.
        let ticks = [base + 100.0, base + 200.0, base + 300.0];
        let (lo, all) = tick_below(&ticks, base + 40.0, base + 30.0).expect("a tick below");
        assert_eq!(all, [base, base + 100.0, base + 200.0, base + 300.0]);
        assert_eq!(lo, base);
        // Data from the lowest tick up: nothing to add.
        assert!(tick_below(&ticks, base + 100.0, base + 90.0).is_none());
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
    fn a_narrow_range_gets_two_ticks_or_more() {
        // A heap of 4.87-4.94 MiB: steps of 0.05 MiB left 4.9 MiB alone on the axis.
        let (lo, hi) = (4.87 * MIB, 4.94 * MIB);
        for target in 2..=6 {
            let t = ticks(Unit::Bytes, lo, hi, target);
            assert!(t.len() >= 2, "{target}: {t:?}");
            assert!(t.iter().all(|v| (lo..=hi).contains(v)));
        }
    }

    #[test]
    fn ticks_stay_inside_and_degenerate_ranges_give_none() {
        let t = ticks(Unit::Plain, -3.3, 7.7, 6);
        assert!(t.iter().all(|&v| (-3.3..=7.7).contains(&v)));
        assert!(t.contains(&0.0));
        assert!(ticks(Unit::Plain, 1.0, 1.0, 5).is_empty());
        assert!(ticks(Unit::Plain, f64::NAN, 1.0, 5).is_empty());
    }

    const KIB: f64 = 1024.0;

    #[test]
    fn log_ticks_fall_on_decades_with_2_and_5_between_when_there_is_room() {
        assert_eq!(
            log_ticks(Unit::Bytes, KIB, MIB, 12),
            [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1024.0].map(|k| k * KIB)
        );
        // Too many for 8: the decades only.
        assert_eq!(
            log_ticks(Unit::Bytes, KIB, MIB, 8),
            [KIB, 10.0 * KIB, 100.0 * KIB, MIB]
        );
        assert_eq!(log_ticks(Unit::Count, 1e3, 1e6, 5), [1e3, 1e4, 1e5, 1e6]);
        // Inside the range only, which need not start on a decade.
        assert_eq!(
            log_ticks(Unit::Millis, 0.3, 4000.0, 12),
            [
                0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0
            ]
        );
        assert_eq!(
            log_ticks(Unit::Count, 0.3, 4000.0, 6),
            [1.0, 10.0, 100.0, 1000.0]
        );
    }

    #[test]
    fn log_ticks_over_many_decades_skip_decades_evenly() {
        // 13 decades: every 3rd, one per rung of the unit.
        assert_eq!(
            log_ticks(Unit::Count, 1.0, 1e12, 6),
            [1.0, 1e3, 1e6, 1e9, 1e12]
        );
        let tib = 1024.0 * 1024.0 * MIB;
        assert_eq!(
            log_ticks(Unit::Bytes, 1.0, tib, 6),
            [1.0, KIB, MIB, 1024.0 * MIB, tib]
        );
        // Every 2nd when that is few enough.
        assert_eq!(
            log_ticks(Unit::Count, 1.0, 1e8, 5),
            [1.0, 100.0, 1e4, 1e6, 1e8]
        );
    }

    #[test]
    fn narrow_log_ranges_get_round_linear_ticks_and_bad_ones_none() {
        // Not even three of 1, 2, 5 x 10^k between 300 and 900: linear round ticks.
        let t = log_ticks(Unit::Count, 300.0, 900.0, 5);
        assert!(t.len() >= 2, "{t:?}");
        assert!(t.iter().all(|v| (300.0..=900.0).contains(v)), "{t:?}");
        assert!(t.iter().all(|v| v % 100.0 == 0.0), "{t:?}");
        let mib = MIB;
        assert_eq!(
            log_ticks(Unit::Bytes, 4.0 * mib, 17.0 * mib, 8),
            [5.0, 10.0, 15.0].map(|m| m * mib)
        );
        // Rather more ticks than target than a single one.
        assert_eq!(
            log_ticks(Unit::Plain, 0.15, 9.0, 3),
            [0.2, 0.5, 1.0, 2.0, 5.0]
        );
        assert!(log_ticks(Unit::Plain, 0.0, 10.0, 5).is_empty());
        assert!(log_ticks(Unit::Plain, -1.0, 10.0, 5).is_empty());
        assert!(log_ticks(Unit::Plain, 10.0, 10.0, 5).is_empty());
        assert!(log_ticks(Unit::Plain, 1.0, f64::INFINITY, 5).is_empty());
    }

    #[test]
    fn log_ranges_are_in_decades() {
        let (lo, hi) = log_y_range(Unit::Bytes, Some((3.0, 6.0)));
        assert!(
            (lo - 2.85).abs() < 1e-12 && (hi - 6.15).abs() < 1e-12,
            "{lo}..{hi}"
        );
        // Flat: from half to twice the value.
        let (lo, hi) = log_y_range(Unit::Bytes, Some((3.0, 3.0)));
        assert!((10f64.powf(lo) - 500.0).abs() < 1e-9 && (10f64.powf(hi) - 2000.0).abs() < 1e-9);
        let (lo, hi) = log_y_range(Unit::Bytes, None);
        assert!(hi > lo && lo.is_finite());
        // The x axis hugs the data.
        assert_eq!(log_x_range(Some((3.0, 6.0))), (3.0, 6.0));
        let (lo, hi) = log_x_range(Some((2.0, 2.0)));
        assert!(lo < 2.0 && 2.0 < hi);
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
