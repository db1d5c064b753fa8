// One plot: shaded spans, grid, markers, bands, series, frame, tick labels, notes, "no data".
// It must never draw outside its rectangle's data range, nor feed millions of points to a backend.

use super::painter::{
    CENTER_MIDDLE, CENTER_TOP, INK, LEFT_TOP, MUTED, Painter, RIGHT_BOTTOM, RIGHT_MIDDLE, Rect,
    Res, Weight, dashes, rgba,
};
use super::{Axis, BAND_ALPHA, Prepared, SPAN_ALPHA, Sizes, THIN_ALPHA};
use crate::decimate::{envelope, m4, runs};
use crate::model::{Band, Color, LineStyle, Series};
use crate::scale::extent;
use plotters::prelude::DrawingBackend;

const GRID: Color = Color(226, 226, 226);
const FRAME: Color = Color(160, 160, 160);
const MARKER: Color = Color(120, 120, 120);
/// More vertical markers than this and only every k-th is drawn.
const MAX_MARKERS: usize = 60;

/// Data to pixel mapping for one plot.
struct Map {
    r: Rect,
    xa: (f64, f64),
    ya: (f64, f64),
}

impl Map {
    fn x(&self, v: f64) -> i32 {
        let t = (v - self.xa.0) / (self.xa.1 - self.xa.0);
        (self.r.x0 as f64 + t * self.r.w() as f64)
            .round()
            .clamp(-1e6, 1e6) as i32
    }
    fn y(&self, v: f64) -> i32 {
        let t = (v - self.ya.0) / (self.ya.1 - self.ya.0);
        (self.r.y1 as f64 - t * self.r.h() as f64)
            .round()
            .clamp(-1e6, 1e6) as i32
    }
    fn pixel_width(&self, xs: &[f64]) -> usize {
        match extent(xs.iter().copied()) {
            Some((lo, hi)) => (self.x(hi) - self.x(lo)).unsigned_abs() as usize + 1,
            None => 1,
        }
    }
}

type Segment = ((i32, i32), (i32, i32));

pub(crate) fn draw<DB: DrawingBackend>(
    p: &Painter<DB>,
    z: &Sizes,
    pp: &Prepared,
    plot: Rect,
    xa: &Axis,
    ya: &Axis,
    x_labels: bool,
) -> Res {
    if plot.w() < 4 || plot.h() < 4 {
        return Ok(());
    }
    let map = Map {
        r: plot,
        xa: (xa.lo, xa.hi),
        ya: (ya.lo, ya.hi),
    };
    let panel = pp.panel;

    for span in &panel.x_spans {
        let (a, b) = (span.from.min(span.to), span.from.max(span.to));
        let (a, b) = (a.max(xa.lo), b.min(xa.hi));
        if a < b {
            let r = Rect {
                x0: map.x(a),
                x1: map.x(b),
                ..plot
            };
            p.fill_rect(r, rgba(span.color, SPAN_ALPHA))?;
        }
    }
    for &t in &ya.ticks {
        let y = map.y(t);
        p.polyline(vec![(plot.x0, y), (plot.x1, y)], rgba(GRID, 1.0), 1)?;
    }
    for &t in &xa.ticks {
        let x = map.x(t);
        p.polyline(vec![(x, plot.y0), (x, plot.y1)], rgba(GRID, 1.0), 1)?;
    }
    markers(p, z, &map, &panel.x_markers)?;

    let mut occupied: Vec<Segment> = Vec::new();
    for band in &panel.bands {
        draw_band(p, &map, band, &mut occupied)?;
    }
    for style in [LineStyle::Thin, LineStyle::Solid, LineStyle::Dashed] {
        for s in panel.series.iter().filter(|s| s.style == style) {
            draw_series(p, z, &map, s, &mut occupied)?;
        }
    }

    p.outline_rect(plot, rgba(FRAME, 1.0))?;
    for (&t, label) in ya.ticks.iter().zip(&ya.labels) {
        let y = map.y(t);
        p.polyline(
            vec![(plot.x0 - z.tick_len, y), (plot.x0, y)],
            rgba(FRAME, 1.0),
            1,
        )?;
        let at = (plot.x0 - z.tick_len - z.px(4.0), y);
        p.text(label, at, z.tick, Weight::Normal, MUTED, RIGHT_MIDDLE)?;
    }
    // The y header, bottom line first, just clear of a tick label at the top of the axis.
    let tick_h = p.measure("Hg", z.tick, Weight::Normal)?.1;
    for (k, line) in ya.header.iter().rev().enumerate() {
        let y = plot.y0 - tick_h / 2 - z.px(3.0) - k as i32 * (tick_h + z.px(2.0));
        let at = (plot.x0 - z.tick_len - z.px(4.0), y);
        p.text(line, at, z.tick, Weight::Normal, MUTED, RIGHT_BOTTOM)?;
    }
    if x_labels {
        for (&t, label) in xa.ticks.iter().zip(&xa.labels) {
            let x = map.x(t);
            p.polyline(
                vec![(x, plot.y1), (x, plot.y1 + z.tick_len)],
                rgba(FRAME, 1.0),
                1,
            )?;
            let at = (x, plot.y1 + z.tick_len + z.px(3.0));
            p.text(label, at, z.tick, Weight::Normal, MUTED, CENTER_TOP)?;
        }
    }

    notes(p, z, plot, &panel.notes, &occupied)?;
    if pp.y_extent.is_none() {
        p.text(
            "no data",
            plot.center(),
            z.note * 1.2,
            Weight::Normal,
            MUTED,
            CENTER_MIDDLE,
        )?;
    }
    Ok(())
}

/// Light vertical lines; thinned to every k-th when there are too many or they would be closer
/// than a few pixels.
fn markers<DB: DrawingBackend>(p: &Painter<DB>, z: &Sizes, map: &Map, xs: &[f64]) -> Res {
    let mut xs: Vec<f64> = xs
        .iter()
        .copied()
        .filter(|x| x.is_finite() && (map.xa.0..=map.xa.1).contains(x))
        .collect();
    if xs.is_empty() {
        return Ok(());
    }
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    let mut every = xs.len().div_ceil(MAX_MARKERS);
    let min_gap = z.px(5.0).max(2) as f64;
    while (map.r.w() as f64) / (xs.len() as f64) * (every as f64) < min_gap {
        every += 1;
    }
    for &x in xs.iter().step_by(every) {
        let px = map.x(x);
        p.polyline(vec![(px, map.r.y0), (px, map.r.y1)], rgba(MARKER, 0.22), 1)?;
    }
    Ok(())
}

fn draw_band<DB: DrawingBackend>(
    p: &Painter<DB>,
    map: &Map,
    band: &Band,
    occupied: &mut Vec<Segment>,
) -> Res {
    let n = band.xs.len().min(band.lo.len()).min(band.hi.len());
    let pieces = runs(n, |i| {
        band.xs[i].is_finite() && band.lo[i].is_finite() && band.hi[i].is_finite()
    });
    for r in pieces {
        let (xs, lo, hi) = (&band.xs[r.clone()], &band.lo[r.clone()], &band.hi[r]);
        let env = envelope(xs, lo, hi, map.pixel_width(xs));
        let upper: Vec<(i32, i32)> = dedup(env.iter().map(|b| (map.x(b.x), map.y(b.hi))));
        let lower: Vec<(i32, i32)> = dedup(env.iter().map(|b| (map.x(b.x), map.y(b.lo))));
        let color = rgba(band.color, BAND_ALPHA);
        if env.len() == 1 {
            let b = env[0];
            let x = map.x(b.x);
            p.polyline(vec![(x, map.y(b.lo)), (x, map.y(b.hi))], color, 3)?;
            continue;
        }
        occupied.extend(upper.windows(2).map(|w| (w[0], w[1])));
        occupied.extend(lower.windows(2).map(|w| (w[0], w[1])));
        let mut outline = upper;
        outline.extend(lower.into_iter().rev());
        p.fill_polygon(outline, color)?;
    }
    Ok(())
}

fn draw_series<DB: DrawingBackend>(
    p: &Painter<DB>,
    z: &Sizes,
    map: &Map,
    s: &Series,
    occupied: &mut Vec<Segment>,
) -> Res {
    let n = s.xs.len().min(s.ys.len());
    let finite = |i: usize| s.xs[i].is_finite() && s.ys[i].is_finite();
    let pieces = runs(n, finite);
    if pieces.len() > map.r.w().max(1) as usize {
        // More gaps than pixels: they cannot be seen anyway, so draw one line through the points.
        let (xs, ys): (Vec<f64>, Vec<f64>) = (0..n)
            .filter(|&i| finite(i))
            .map(|i| (s.xs[i], s.ys[i]))
            .unzip();
        return draw_run(p, z, map, s, &xs, &ys, occupied);
    }
    for r in pieces {
        draw_run(p, z, map, s, &s.xs[r.clone()], &s.ys[r], occupied)?;
    }
    Ok(())
}

/// One unbroken piece of a series (all points finite).
fn draw_run<DB: DrawingBackend>(
    p: &Painter<DB>,
    z: &Sizes,
    map: &Map,
    s: &Series,
    xs: &[f64],
    ys: &[f64],
    occupied: &mut Vec<Segment>,
) -> Res {
    let keep = m4(xs, ys, map.pixel_width(xs));
    let points = dedup(keep.iter().map(|&i| (map.x(xs[i]), map.y(ys[i]))));
    let solid = rgba(s.color, 1.0);
    if points.len() == 1 {
        // A lone sample between gaps: a line of one point would be invisible.
        return p.dot(points[0], z.dot_r, solid);
    }
    occupied.extend(points.windows(2).map(|w| (w[0], w[1])));
    match s.style {
        LineStyle::Solid => p.polyline(points.clone(), solid, z.line_w)?,
        LineStyle::Thin => p.polyline(points.clone(), rgba(s.color, THIN_ALPHA), 1)?,
        LineStyle::Dashed => {
            for dash in dashes(&points, z.dash_on, z.dash_off) {
                p.polyline(dash, solid, z.line_w)?;
            }
        }
    }
    // Dots only where they stay apart; on a dense series they would merge into a smear.
    let room = map.r.w() / (3 * z.dot_r).max(1);
    if s.points && keep.len() as i32 <= room {
        for &pt in &points {
            p.dot(pt, z.dot_r, solid)?;
        }
    }
    Ok(())
}

/// Drops consecutive repeats (many samples land on the same pixel).
fn dedup(points: impl Iterator<Item = (i32, i32)>) -> Vec<(i32, i32)> {
    let mut out: Vec<(i32, i32)> = Vec::new();
    for pt in points {
        if out.last() != Some(&pt) {
            out.push(pt);
        }
    }
    out
}

/// The notes in a white box, in the corner of the plot that the data cross least.
fn notes<DB: DrawingBackend>(
    p: &Painter<DB>,
    z: &Sizes,
    plot: Rect,
    notes: &[String],
    occupied: &[Segment],
) -> Res {
    let lines: Vec<&str> = notes.iter().flat_map(|n| n.lines()).collect();
    if lines.is_empty() {
        return Ok(());
    }
    let (pad, inset) = (z.px(6.0), z.px(8.0));
    let max_text_w = plot.w() - 2 * (inset + pad);
    let line_h = p.measure("Hg", z.note, Weight::Normal)?.1 + z.px(5.0);
    let max_lines = ((plot.h() - 2 * (inset + pad)) / line_h.max(1)).max(0) as usize;
    if max_text_w < z.px(30.0) || max_lines == 0 {
        return Ok(());
    }
    let mut shown = Vec::new();
    for line in lines.iter().take(max_lines) {
        shown.push(p.fit(line, z.note, Weight::Normal, max_text_w)?);
    }
    let text_w = shown.iter().try_fold(0, |w, l| {
        Ok::<_, String>(w.max(p.measure(l, z.note, Weight::Normal)?.0))
    })?;
    let (bw, bh) = (
        text_w + 2 * pad,
        shown.len() as i32 * line_h + 2 * pad - z.px(3.0),
    );
    let best = note_box(plot, (bw, bh), inset, occupied);
    p.fill_rect(best, rgba(Color(255, 255, 255), 0.88))?;
    p.outline_rect(best, rgba(Color(200, 200, 200), 1.0))?;
    for (k, line) in shown.iter().enumerate() {
        let at = (best.x0 + pad, best.y0 + pad + k as i32 * line_h);
        p.text(line, at, z.note, Weight::Normal, INK, LEFT_TOP)?;
    }
    Ok(())
}

/// Where a note box of `size` goes in `plot`: the corner the data cross least, else (when
/// every corner is crossed, as by two flat lines at the top and the bottom of a narrow
/// range) half-way down the left or the right side, if that is crossed less.
fn note_box(plot: Rect, (bw, bh): (i32, i32), inset: i32, occupied: &[Segment]) -> Rect {
    let (left, right) = (plot.x0 + inset, plot.x1 - inset - bw);
    let (top, bottom, middle) = (
        plot.y0 + inset,
        plot.y1 - inset - bh,
        (plot.y0 + plot.y1 - bh) / 2,
    );
    let places = [
        (left, top),
        (right, top),
        (right, bottom),
        (left, bottom),
        (left, middle),
        (right, middle),
    ];
    let boxes = places.map(|(x0, y0)| Rect {
        x0,
        y0,
        x1: x0 + bw,
        y1: y0 + bh,
    });
    let crossings = |r: &Rect| occupied.iter().filter(|s| crosses(s, r)).count();
    // The first of the least crossed: corners win ties.
    boxes
        .iter()
        .min_by_key(|r| crossings(r))
        .copied()
        .unwrap_or(boxes[0])
}

/// Whether a segment passes through a rectangle (Liang-Barsky clipping).
fn crosses(&((x0, y0), (x1, y1)): &Segment, r: &Rect) -> bool {
    let (x0, y0, dx, dy) = (x0 as f64, y0 as f64, (x1 - x0) as f64, (y1 - y0) as f64);
    let (mut t0, mut t1) = (0.0f64, 1.0f64);
    let edges = [
        (-dx, x0 - r.x0 as f64),
        (dx, r.x1 as f64 - x0),
        (-dy, y0 - r.y0 as f64),
        (dy, r.y1 as f64 - y0),
    ];
    for (p, q) in edges {
        if p == 0.0 {
            if q < 0.0 {
                return false;
            }
        } else {
            let t = q / p;
            if p < 0.0 {
                t0 = t0.max(t);
            } else {
                t1 = t1.min(t);
            }
            if t0 > t1 {
                return false;
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_crossing_a_box() {
        let r = Rect {
            x0: 10,
            y0: 10,
            x1: 20,
            y1: 20,
        };
        assert!(crosses(&((0, 0), (30, 30)), &r));
        assert!(crosses(&((12, 12), (13, 13)), &r));
        assert!(!crosses(&((0, 0), (30, 0)), &r));
        assert!(!crosses(&((0, 25), (25, 40)), &r));
    }

    #[test]
    fn a_note_goes_to_a_free_corner_else_half_way_down_a_side() {
        let plot = Rect {
            x0: 0,
            y0: 0,
            x1: 1000,
            y1: 400,
        };
        let top = ((0, 20), (1000, 20));
        let bottom = ((0, 380), (1000, 380));
        let wide = (900, 40);
        // Only the top crossed: a bottom corner.
        assert_eq!(note_box(plot, wide, 8, &[top]).y0, 400 - 8 - 40);
        // Both crossed (two flat lines in a narrow range): the middle, which neither crosses.
        let middle = note_box(plot, wide, 8, &[top, bottom]);
        assert_eq!(middle.y0, 180);
        assert!(!crosses(&top, &middle) && !crosses(&bottom, &middle));
        // Nothing crossed anywhere: the first corner.
        assert_eq!(note_box(plot, wide, 8, &[]).y0, 8);
    }

    #[test]
    fn dedup_drops_only_consecutive_repeats() {
        let v = dedup([(1, 1), (1, 1), (2, 2), (1, 1)].into_iter());
        assert_eq!(v, vec![(1, 1), (2, 2), (1, 1)]);
    }
}
