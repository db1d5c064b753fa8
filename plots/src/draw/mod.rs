// Figure layout: title, then panels stacked on a shared x axis or in a grid, each with its header,
// axes and plot. It must never panic on odd input (no panels, no data, tiny sizes): it draws less.

mod header;
mod painter;
mod panel;

use crate::model::{Figure, Layout, Panel, Scale};
use crate::scale::{self, extent, union};
use crate::units::Unit;
pub(crate) use painter::Target;
use painter::{CENTER_MIDDLE, CENTER_TOP, INK, LEFT_TOP, MUTED, Painter, Rect, Res, Weight};
use plotters::coord::Shift;
use plotters::prelude::{DrawingArea, DrawingBackend, WHITE};
use std::borrow::Cow;

/// Opacity of band fills and x-span shading, and of thin lines.
pub(crate) const BAND_ALPHA: f64 = 0.22;
pub(crate) const SPAN_ALPHA: f64 = 0.12;
pub(crate) const THIN_ALPHA: f64 = 0.75;

/// Font sizes (plotters units, about 1.24 x the em in pixels) and spacings, scaled with the
/// figure so that a 2000-pixel-wide picture does not get 1000-pixel-sized text.
pub(crate) struct Sizes {
    scale: f64,
    pub title: f64,
    pub subtitle: f64,
    pub panel_title: f64,
    pub tick: f64,
    pub legend: f64,
    pub note: f64,
    pub axis_label: f64,
    pub margin: i32,
    pub tick_len: i32,
    pub line_w: u32,
    pub swatch_w: i32,
    pub dash_on: f64,
    pub dash_off: f64,
    pub dot_r: i32,
}

impl Sizes {
    fn for_figure(width: u32, height: u32) -> Sizes {
        let scale = (width as f64 / 1000.0)
            .min(height as f64 / 600.0)
            .clamp(0.8, 2.5);
        Sizes {
            scale,
            title: 22.0 * scale,
            subtitle: 15.0 * scale,
            panel_title: 16.0 * scale,
            tick: 13.5 * scale,
            legend: 13.5 * scale,
            note: 13.5 * scale,
            axis_label: 14.5 * scale,
            margin: (14.0 * scale).round() as i32,
            tick_len: (4.0 * scale).round() as i32,
            line_w: (2.0 * scale).round().max(1.0) as u32,
            swatch_w: (22.0 * scale).round() as i32,
            dash_on: 9.0 * scale,
            dash_off: 6.0 * scale,
            dot_r: (3.0 * scale).round().max(2.0) as i32,
        }
    }

    /// `v` design pixels at this figure's scale.
    pub fn px(&self, v: f64) -> i32 {
        (v * self.scale).round() as i32
    }
}

/// A range with its ticks and their labels. On a logarithmic axis, `lo`, `hi` and `ticks` are
/// in decades (log10 of the values), like the data the panel draws (see [`in_axis_space`]),
/// and the labels write the values.
pub(crate) struct Axis {
    pub lo: f64,
    pub hi: f64,
    pub ticks: Vec<f64>,
    pub labels: Vec<String>,
    /// Lines written once above the y tick labels: what the values are ("blocks") and the
    /// offset the labels are relative to ("≈2.503 GiB +"). Empty for none.
    pub header: Vec<String>,
}

impl Axis {
    /// An x axis: absolute labels, no header.
    fn x(unit: Unit, (lo, hi): (f64, f64), target: usize) -> Axis {
        let ticks = scale::ticks(unit, lo, hi, target);
        let labels = unit.tick_labels(&ticks);
        Axis {
            lo,
            hi,
            ticks,
            labels,
            header: Vec::new(),
        }
    }

    /// A logarithmic axis over `lo..hi` in decades: ticks at decades (see
    /// [`scale::log_ticks`]), each labelled on its own rung.
    fn log(unit: Unit, (lo, hi): (f64, f64), target: usize) -> Axis {
        let values = scale::log_ticks(unit, 10f64.powf(lo), 10f64.powf(hi), target);
        let labels = unit.log_tick_labels(&values);
        Axis {
            lo,
            hi,
            ticks: values.iter().map(|v| v.log10()).collect(),
            labels,
            header: Vec::new(),
        }
    }

    /// The y axis of a panel: its range, ticks labelled relative to an offset when they sit far
    /// from zero, and the header naming what is counted.
    fn y(pp: &Prepared, target: usize) -> Axis {
        let unit = pp.panel.y_unit;
        let (lo, hi, ticks, labels, offset) = match pp.panel.y_scale {
            Scale::Linear => {
                let (lo, hi) = scale::y_range(unit, pp.y_extent);
                let ticks = scale::ticks(unit, lo, hi, target);
                let (mut offset, mut labels) = unit.offset_tick_labels(&ticks);
                let (mut lo, mut ticks) = (lo, ticks);
                if offset.is_some()
                    && let Some((min, _)) = pp.y_extent
                    && let Some((from, below)) = scale::tick_below(&ticks, min, lo)
                {
                    (lo, ticks) = (from, below);
                    (offset, labels) = unit.offset_tick_labels(&ticks);
                }
                (lo, hi, ticks, labels, offset)
            }
            Scale::Log => {
                // Decades are short labels read at a glance, not steps to count: they may sit
                // twice as close as linear ticks, so that a few decades get 2 and 5 between.
                let range = scale::log_y_range(unit, pp.y_extent);
                let axis = Axis::log(unit, range, 2 * target);
                (axis.lo, axis.hi, axis.ticks, axis.labels, None)
            }
        };
        let name = match pp.panel.y_label.as_str() {
            "" if unit == Unit::Count => "count",
            name => name,
        };
        let name = (!name.is_empty()).then(|| name.to_string());
        let header = name.into_iter().chain(offset.map(|o| format!("{o} +")));
        let header = header.collect();
        Axis {
            lo,
            hi,
            ticks,
            labels,
            header,
        }
    }

    /// The widest of the tick labels and the header.
    fn widest_label<DB: DrawingBackend>(&self, p: &Painter<DB>, z: &Sizes) -> Res<i32> {
        self.labels
            .iter()
            .chain(&self.header)
            .try_fold(0, |w, l| Ok(w.max(p.measure(l, z.tick, Weight::Normal)?.0)))
    }

    /// How much room the plot needs above it at the left, under the panel's title: the upper
    /// half of a tick label at the top of the axis, and the header's lines above that.
    fn header_room<DB: DrawingBackend>(&self, p: &Painter<DB>, z: &Sizes) -> Res<i32> {
        let h = p.measure("Hg", z.tick, Weight::Normal)?.1;
        Ok(self.header.len() as i32 * (h + z.px(2.0)) + h / 2 + z.px(4.0))
    }
}

/// `panel` with its values placed as its axes place them: on a logarithmic axis the data are
/// replaced by their log10, and values that are not positive by NaN (skipped, like any
/// non-finite value; an x span reaching zero or below reaches the left edge). Everything
/// downstream (extents, thinning, the pixel mapping) is then linear. A panel on linear axes
/// is borrowed as it is.
pub(crate) fn in_axis_space(panel: &Panel, x_scale: Scale) -> Cow<'_, Panel> {
    let (x_log, y_log) = (x_scale == Scale::Log, panel.y_scale == Scale::Log);
    if !x_log && !y_log {
        return Cow::Borrowed(panel);
    }
    let log = |v: f64| if v > 0.0 { v.log10() } else { f64::NAN };
    let logs = |vs: &mut Vec<f64>| vs.iter_mut().for_each(|v| *v = log(*v));
    let mut p = panel.clone();
    if x_log {
        for s in &mut p.series {
            logs(&mut s.xs);
        }
        for b in &mut p.bands {
            logs(&mut b.xs);
        }
        let edge = |v: f64| {
            if v > 0.0 {
                v.log10()
            } else {
                f64::NEG_INFINITY
            }
        };
        for span in &mut p.x_spans {
            (span.from, span.to) = (edge(span.from), edge(span.to));
        }
        logs(&mut p.x_markers);
    }
    if y_log {
        for s in &mut p.series {
            logs(&mut s.ys);
        }
        for b in &mut p.bands {
            logs(&mut b.lo);
            logs(&mut b.hi);
        }
    }
    Cow::Owned(p)
}

/// The x range for data spanning `extent` (in the axis's space).
fn x_range(fig: &Figure, extent: Option<(f64, f64)>) -> (f64, f64) {
    match fig.x_scale {
        Scale::Linear => scale::x_range(fig.x_unit, extent),
        Scale::Log => scale::log_x_range(extent),
    }
}

/// A panel with the extents of what it will draw.
pub(crate) struct Prepared<'a> {
    pub panel: &'a Panel,
    pub x_extent: Option<(f64, f64)>,
    /// `None` when the panel has no finite data point: it then says "no data".
    pub y_extent: Option<(f64, f64)>,
}

fn prepare(panel: &Panel) -> Prepared<'_> {
    let mut x_extent = None;
    let mut y_extent = None;
    for s in &panel.series {
        let finite = || {
            s.xs.iter()
                .zip(&s.ys)
                .filter(|(x, y)| x.is_finite() && y.is_finite())
        };
        x_extent = union(x_extent, extent(finite().map(|(x, _)| *x)));
        y_extent = union(y_extent, extent(finite().map(|(_, y)| *y)));
    }
    for b in &panel.bands {
        let finite = || {
            b.xs.iter()
                .zip(&b.lo)
                .zip(&b.hi)
                .filter(|((x, lo), hi)| x.is_finite() && lo.is_finite() && hi.is_finite())
        };
        x_extent = union(x_extent, extent(finite().map(|((x, _), _)| *x)));
        y_extent = union(
            y_extent,
            extent(finite().flat_map(|((_, lo), hi)| [*lo, *hi])),
        );
    }
    let spans = panel.x_spans.iter().flat_map(|s| [s.from, s.to]);
    x_extent = union(x_extent, extent(spans));
    x_extent = union(x_extent, extent(panel.x_markers.iter().copied()));
    Prepared {
        panel,
        x_extent,
        y_extent,
    }
}

/// How many y ticks suit a plot this tall.
fn y_target(z: &Sizes, plot_h: i32) -> usize {
    (plot_h as f64 / (z.scale * 45.0)).round().clamp(2.0, 8.0) as usize
}

/// An x axis whose tick labels do not collide at this plot width.
fn x_axis<DB: DrawingBackend>(
    p: &Painter<DB>,
    z: &Sizes,
    fig: &Figure,
    range: (f64, f64),
    plot_w: i32,
) -> Res<Axis> {
    let unit = fig.x_unit;
    let mut target = (plot_w as f64 / (z.scale * 60.0)).round().clamp(2.0, 12.0) as usize;
    loop {
        let axis = match fig.x_scale {
            Scale::Linear => Axis::x(unit, range, target),
            Scale::Log => Axis::log(unit, range, target),
        };
        let step_px = match (fig.x_scale, axis.ticks.as_slice()) {
            (Scale::Linear, [a, b, ..]) => (b - a) / (range.1 - range.0) * plot_w as f64,
            // Log ticks are not evenly spaced (1, 2, 5): the closest pair must not collide.
            (Scale::Log, ticks) => ticks
                .windows(2)
                .map(|w| (w[1] - w[0]) / (range.1 - range.0) * plot_w as f64)
                .fold(f64::INFINITY, f64::min),
            _ => f64::INFINITY,
        };
        let needed = (axis.widest_label(p, z)? + z.px(14.0)) as f64;
        if step_px >= needed || target <= 2 {
            return Ok(axis);
        }
        target -= 1;
    }
}

/// Draws the whole figure onto `area` (already sized to the figure).
pub(crate) fn figure<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    fig: &Figure,
    target: Target,
) -> Res {
    area.fill(&WHITE).map_err(|e| e.to_string())?;
    let p = Painter::new(area, target);
    let z = Sizes::for_figure(fig.width, fig.height);
    let (w, h) = (fig.width as i32, fig.height as i32);
    let text_w = w - 2 * z.margin;
    let mut y = z.margin;
    if !fig.title.is_empty() {
        let title = if fig.title_keeps_end {
            p.fit_keeping(&fig.title, " — ", z.title, Weight::Bold, text_w)?
        } else {
            p.fit(&fig.title, z.title, Weight::Bold, text_w)?
        };
        p.text(&title, (z.margin, y), z.title, Weight::Bold, INK, LEFT_TOP)?;
        y += p.measure("Hg", z.title, Weight::Bold)?.1 + z.px(6.0);
    }
    if let Some(subtitle) = fig.subtitle.as_deref().filter(|s| !s.is_empty()) {
        let subtitle = p.fit(subtitle, z.subtitle, Weight::Normal, text_w)?;
        p.text(
            &subtitle,
            (z.margin, y),
            z.subtitle,
            Weight::Normal,
            MUTED,
            LEFT_TOP,
        )?;
        y += p.measure("Hg", z.subtitle, Weight::Normal)?.1 + z.px(4.0);
    }
    if y > z.margin {
        y += z.px(10.0);
    }
    let body = Rect {
        x0: z.margin,
        y0: y,
        x1: w - z.margin,
        y1: h - z.margin,
    };
    let spaced: Vec<Cow<Panel>> = fig
        .panels
        .iter()
        .map(|panel| in_axis_space(panel, fig.x_scale))
        .collect();
    let panels: Vec<Prepared> = spaced.iter().map(|panel| prepare(panel)).collect();
    if body.w() < 20 || body.h() < 20 {
        return Ok(());
    }
    if panels.is_empty() {
        return p.text(
            "no data",
            body.center(),
            z.note * 1.2,
            Weight::Normal,
            MUTED,
            CENTER_MIDDLE,
        );
    }
    match fig.layout {
        Layout::Stacked => stacked(&p, &z, fig, &panels, body),
        Layout::Grid { columns } => grid(&p, &z, fig, &panels, body, columns),
    }
}

/// Height of a line of x tick labels below a plot, tick marks included.
fn x_ticks_height<DB: DrawingBackend>(p: &Painter<DB>, z: &Sizes) -> Res<i32> {
    Ok(z.tick_len + z.px(4.0) + p.measure("0123456789", z.tick, Weight::Normal)?.1)
}

/// Height of the x axis name line (0 without a name).
fn x_name_height<DB: DrawingBackend>(p: &Painter<DB>, z: &Sizes, fig: &Figure) -> Res<i32> {
    if fig.x_label.is_empty() {
        return Ok(0);
    }
    Ok(p.measure("Hg", z.axis_label, Weight::Normal)?.1 + z.px(8.0))
}

fn draw_x_name<DB: DrawingBackend>(
    p: &Painter<DB>,
    z: &Sizes,
    fig: &Figure,
    (x0, x1): (i32, i32),
    y: i32,
) -> Res {
    let name = p.fit(&fig.x_label, z.axis_label, Weight::Normal, x1 - x0)?;
    p.text(
        &name,
        ((x0 + x1) / 2, y),
        z.axis_label,
        Weight::Normal,
        MUTED,
        CENTER_TOP,
    )
}

/// Panels one under another on one x axis: same range, same left edge, tick labels at the bottom.
fn stacked<DB: DrawingBackend>(
    p: &Painter<DB>,
    z: &Sizes,
    fig: &Figure,
    panels: &[Prepared],
    body: Rect,
) -> Res {
    let n = panels.len() as i32;
    let gap = z.px(14.0);
    let x_ticks_h = x_ticks_height(p, z)?;
    let x_axis_h = x_ticks_h + x_name_height(p, z, fig)?;
    let rough_header = p.measure("Hg", z.panel_title, Weight::Bold)?.1 + z.px(8.0);
    let rough_plot_h = (body.h() - x_axis_h - gap * (n - 1)) / n - rough_header;
    let target = y_target(z, rough_plot_h);
    let y_axes: Vec<Axis> = panels.iter().map(|pp| Axis::y(pp, target)).collect();
    let widest = y_axes
        .iter()
        .try_fold(0, |w, a| Ok::<_, String>(w.max(a.widest_label(p, z)?)))?;
    let plot_x0 = body.x0 + widest + z.tick_len + z.px(6.0);
    let plot_x1 = body.x1 - z.px(16.0);
    let plot_w = plot_x1 - plot_x0;
    if plot_w < 20 {
        return Ok(());
    }
    let headers = panels
        .iter()
        .zip(&y_axes)
        .map(|(pp, axis)| header::layout(p, z, pp.panel, plot_w, axis.header_room(p, z)?))
        .collect::<Res<Vec<_>>>()?;
    let headers_h: i32 = headers.iter().map(|h| h.height).sum();
    let plot_h = (body.h() - x_axis_h - headers_h - gap * (n - 1)) / n;
    let x_extent = panels.iter().fold(None, |acc, pp| union(acc, pp.x_extent));
    let x_range = x_range(fig, x_extent);
    let xa = x_axis(p, z, fig, x_range, plot_w)?;

    let mut y = body.y0;
    for (i, pp) in panels.iter().enumerate() {
        header::draw(p, z, &headers[i], (plot_x0, y))?;
        y += headers[i].height;
        let plot = Rect {
            x0: plot_x0,
            y0: y,
            x1: plot_x1,
            y1: y + plot_h,
        };
        let last = i + 1 == panels.len();
        panel::draw(p, z, pp, plot, &xa, &y_axes[i], last)?;
        y = plot.y1 + gap;
    }
    if plot_h >= 4 {
        draw_x_name(
            p,
            z,
            fig,
            (plot_x0, plot_x1),
            y - gap + x_ticks_h + z.px(4.0),
        )?;
    }
    Ok(())
}

/// Small multiples filled row by row, each with its own axes; plots aligned per row and column.
fn grid<DB: DrawingBackend>(
    p: &Painter<DB>,
    z: &Sizes,
    fig: &Figure,
    panels: &[Prepared],
    body: Rect,
    columns: usize,
) -> Res {
    let n = panels.len();
    let cols = columns.clamp(1, n);
    let rows = n.div_ceil(cols);
    let (hgap, vgap) = (z.px(30.0), z.px(18.0));
    let x_ticks_h = x_ticks_height(p, z)?;
    let name_h = x_name_height(p, z, fig)?;
    let cell_w = (body.w() - hgap * (cols as i32 - 1)) / cols as i32;
    let cell_h = (body.h() - name_h - vgap * (rows as i32 - 1)) / rows as i32;
    let rough_header = p.measure("Hg", z.panel_title, Weight::Bold)?.1 + z.px(8.0);
    let target = y_target(z, cell_h - rough_header - x_ticks_h);

    let y_axes: Vec<Axis> = panels.iter().map(|pp| Axis::y(pp, target)).collect();
    // One left gutter per column, so plots in a column line up.
    let mut gutters = vec![0; cols];
    for (i, axis) in y_axes.iter().enumerate() {
        let w = axis.widest_label(p, z)? + z.tick_len + z.px(6.0);
        gutters[i % cols] = gutters[i % cols].max(w);
    }
    let right_pad = z.px(12.0);
    let headers = panels
        .iter()
        .enumerate()
        .map(|(i, pp)| {
            header::layout(
                p,
                z,
                pp.panel,
                cell_w - right_pad,
                y_axes[i].header_room(p, z)?,
            )
        })
        .collect::<Res<Vec<_>>>()?;
    // One header height per row, so plots in a row line up.
    let mut header_h = vec![0; rows];
    for (i, h) in headers.iter().enumerate() {
        header_h[i / cols] = header_h[i / cols].max(h.height);
    }

    for (i, pp) in panels.iter().enumerate() {
        let (r, c) = (i / cols, i % cols);
        let cell_x0 = body.x0 + c as i32 * (cell_w + hgap);
        let cell_y0 = body.y0 + r as i32 * (cell_h + vgap);
        let plot = Rect {
            x0: cell_x0 + gutters[c],
            y0: cell_y0 + header_h[r],
            x1: cell_x0 + cell_w - right_pad,
            y1: cell_y0 + cell_h - x_ticks_h,
        };
        if plot.w() < 20 || plot.h() < 4 {
            continue;
        }
        // The title spans the cell, tick label gutter included: a narrow cell needs the room.
        header::draw(p, z, &headers[i], (cell_x0, cell_y0))?;
        let x_range = x_range(fig, pp.x_extent);
        let xa = x_axis(p, z, fig, x_range, plot.w())?;
        panel::draw(p, z, pp, plot, &xa, &y_axes[i], true)?;
    }
    if name_h > 0 {
        draw_x_name(p, z, fig, (body.x0, body.x1), body.y1 - name_h + z.px(6.0))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Band, Color, Series, XSpan};

    #[test]
    fn log_axes_place_decades_evenly_and_skip_what_is_not_positive() {
        let panel = Panel::new("p", Unit::Bytes)
            .y_log()
            .series(Series::new(
                "s",
                vec![-1.0, 0.0, 1.0, 10.0, 100.0],
                vec![1.0, 2.0, 1024.0, 0.0, 1e6],
                Color::BLUE,
            ))
            .band(Band {
                label: String::new(),
                xs: vec![1.0, 10.0],
                lo: vec![-3.0, 10.0],
                hi: vec![100.0, 1000.0],
                color: Color::BLUE,
            })
            .x_span(XSpan {
                from: 0.0,
                to: 10.0,
                color: Color::GREY,
                label: String::new(),
            })
            .x_markers([0.0, 1000.0]);
        let spaced = in_axis_space(&panel, Scale::Log);
        let s = &spaced.series[0];
        assert!(s.xs[0].is_nan() && s.xs[1].is_nan(), "{:?}", s.xs);
        assert_eq!(&s.xs[2..], [0.0, 1.0, 2.0]);
        assert!(s.ys[3].is_nan());
        assert_eq!(s.ys[2], 1024f64.log10());
        assert!(spaced.bands[0].lo[0].is_nan());
        assert_eq!(spaced.bands[0].hi, [2.0, 3.0]);
        // A span from zero reaches the left edge.
        assert_eq!(spaced.x_spans[0].from, f64::NEG_INFINITY);
        assert_eq!(spaced.x_spans[0].to, 1.0);
        assert!(spaced.x_markers[0].is_nan() && spaced.x_markers[1] == 3.0);
        // What is left defines the extents: x from 1 to 1000 (the marker), y from 10 B (the
        // band; the series' 1 B and 2 B are at x <= 0) to 1e6 B.
        let pp = prepare(&spaced);
        assert_eq!(pp.x_extent, Some((0.0, 3.0)));
        assert_eq!(pp.y_extent, Some((1.0, 6.0)));
        // Only the y axis is logarithmic here: x stays as it was.
        let y_only = in_axis_space(&panel, Scale::Linear);
        assert_eq!(y_only.series[0].xs, panel.series[0].xs);
        assert!(y_only.series[0].ys[1] == 2f64.log10());
        // Linear axes draw the panel itself.
        let linear = Panel::new("p", Unit::Bytes);
        assert!(matches!(
            in_axis_space(&linear, Scale::Linear),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn a_log_axis_ticks_its_values_at_their_decades() {
        // 1 KiB .. 1 MiB is 3.01 .. 6.02 in decades; ticks sit at the log of their values.
        let (lo, hi) = (1024f64.log10(), 1048576f64.log10());
        let axis = Axis::log(Unit::Bytes, (lo, hi), 6);
        assert_eq!(axis.labels, ["1 KiB", "10 KiB", "100 KiB", "1 MiB"]);
        let positions: Vec<f64> = axis.ticks.iter().map(|t| (t - lo) / (hi - lo)).collect();
        assert!((positions[0]).abs() < 1e-12 && (positions[3] - 1.0).abs() < 1e-12);
        // Equal ratios, equal room: 1 -> 10 KiB as far as 10 -> 100 KiB.
        assert!(((positions[1] - positions[0]) - (positions[2] - positions[1])).abs() < 1e-12);
        let axis = Axis::log(Unit::Count, (3.0, 6.0), 12);
        assert_eq!(
            axis.labels,
            [
                "1k", "2k", "5k", "10k", "20k", "50k", "100k", "200k", "500k", "1M"
            ]
        );
        // 2 sits at log10(2) of a decade, not a fifth of it.
        assert!((axis.ticks[1] - (3.0 + 2f64.log10())).abs() < 1e-12);
    }
}
