// Figure layout: title, then panels stacked on a shared x axis or in a grid, each with its header,
// axes and plot. It must never panic on odd input (no panels, no data, tiny sizes): it draws less.

mod header;
mod painter;
mod panel;

use crate::model::{Figure, Layout, Panel};
use crate::scale::{self, extent, union};
use crate::units::Unit;
pub(crate) use painter::Target;
use painter::{CENTER_MIDDLE, CENTER_TOP, INK, LEFT_TOP, MUTED, Painter, Rect, Res, Weight};
use plotters::coord::Shift;
use plotters::prelude::{DrawingArea, DrawingBackend, WHITE};

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

/// A range with its ticks and their labels.
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

    /// The y axis of a panel: its range, ticks labelled relative to an offset when they sit far
    /// from zero, and the header naming what is counted.
    fn y(pp: &Prepared, target: usize) -> Axis {
        let unit = pp.panel.y_unit;
        let (lo, hi) = scale::y_range(unit, pp.y_extent);
        let ticks = scale::ticks(unit, lo, hi, target);
        let (offset, labels) = unit.offset_tick_labels(&ticks);
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
    unit: Unit,
    range: (f64, f64),
    plot_w: i32,
) -> Res<Axis> {
    let mut target = (plot_w as f64 / (z.scale * 60.0)).round().clamp(2.0, 12.0) as usize;
    loop {
        let axis = Axis::x(unit, range, target);
        let step_px = match axis.ticks.as_slice() {
            [a, b, ..] => (b - a) / (range.1 - range.0) * plot_w as f64,
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
        let title = p.fit(&fig.title, z.title, Weight::Bold, text_w)?;
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
    let panels: Vec<Prepared> = fig.panels.iter().map(prepare).collect();
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
    let x_range = scale::x_range(fig.x_unit, x_extent);
    let xa = x_axis(p, z, fig.x_unit, x_range, plot_w)?;

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
        let x_range = scale::x_range(fig.x_unit, pp.x_extent);
        let xa = x_axis(p, z, fig.x_unit, x_range, plot.w())?;
        panel::draw(p, z, pp, plot, &xa, &y_axes[i], true)?;
    }
    if name_h > 0 {
        draw_x_name(p, z, fig, (body.x0, body.x1), body.y1 - name_h + z.px(6.0))?;
    }
    Ok(())
}
