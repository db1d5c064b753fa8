// A panel's header: its title on the left, the legend flowing in from the right (wrapping onto
// more lines when needed). It must never overlap the plot: its height is known before layout.

use super::Sizes;
use super::painter::{INK, LEFT_MIDDLE, Painter, Res, Weight, dashes, rgba};
use crate::model::{Color, LineStyle, Panel};
use plotters::prelude::DrawingBackend;

/// What a legend entry shows before its label.
#[derive(Debug, Clone, Copy)]
enum Swatch {
    Line {
        color: Color,
        style: LineStyle,
        points: bool,
    },
    Fill {
        color: Color,
        alpha: f64,
    },
}

#[derive(Debug, Clone)]
struct Entry {
    label: String,
    swatch: Swatch,
    /// Swatch, gap and label, in pixels.
    width: i32,
}

/// A laid-out header, ready to draw at any position.
#[derive(Debug, Clone)]
pub(crate) struct Header {
    title: String,
    title_color: Color,
    /// Legend rows; row 0 is the title's row (its legend part may be empty).
    rows: Vec<Vec<Entry>>,
    line_h: i32,
    width: i32,
    pub height: i32,
}

/// The legend entries of a panel: shown when there is more than one thing to tell apart, or a
/// band or span whose shading needs a name. Unlabelled items are left out.
fn entries(panel: &Panel) -> Vec<(String, Swatch)> {
    let mut out: Vec<(String, Swatch)> = Vec::new();
    for s in panel.series.iter().filter(|s| !s.label.is_empty()) {
        let swatch = Swatch::Line {
            color: s.color,
            style: s.style,
            points: s.points,
        };
        out.push((s.label.clone(), swatch));
    }
    let lines = out.len();
    for b in panel.bands.iter().filter(|b| !b.label.is_empty()) {
        let swatch = Swatch::Fill {
            color: b.color,
            alpha: super::BAND_ALPHA,
        };
        out.push((b.label.clone(), swatch));
    }
    for s in panel.x_spans.iter().filter(|s| !s.label.is_empty()) {
        let swatch = Swatch::Fill {
            color: s.color,
            alpha: super::SPAN_ALPHA,
        };
        out.push((s.label.clone(), swatch));
    }
    if out.len() < 2 && lines == out.len() {
        out.clear();
    }
    out
}

pub(crate) fn layout<DB: DrawingBackend>(
    p: &Painter<DB>,
    z: &Sizes,
    panel: &Panel,
    width: i32,
) -> Res<Header> {
    let title = p.fit(&panel.title, z.panel_title, Weight::Bold, width)?;
    let title_w = p.measure(&title, z.panel_title, Weight::Bold)?.0;
    let title_h = p.measure("Hg", z.panel_title, Weight::Bold)?.1;
    let legend_h = p.measure("Hg", z.legend, Weight::Normal)?.1;
    let line_h = title_h.max(legend_h) + z.px(8.0);
    let spacing = z.px(14.0);

    // Row 0 is the title's row; the legend starts beside the title when it fits there.
    let mut rows: Vec<Vec<Entry>> = vec![Vec::new()];
    let mut room = if title.is_empty() {
        width
    } else {
        width - title_w - z.px(24.0)
    };
    let mut measured = Vec::new();
    for (label, swatch) in entries(panel) {
        let label_room = width - z.swatch_w - z.px(5.0);
        let label = p.fit(&label, z.legend, Weight::Normal, label_room)?;
        let w = z.swatch_w + z.px(5.0) + p.measure(&label, z.legend, Weight::Normal)?.0;
        measured.push((label, swatch, w));
    }
    // A legend that does not fit beside the title starts on its own row rather than splitting.
    let total: i32 = measured.iter().map(|m| m.2 + spacing).sum::<i32>() - spacing;
    if !measured.is_empty() && total > room {
        rows.push(Vec::new());
        room = width;
    }
    let mut used = 0;
    for (label, swatch, w) in measured {
        loop {
            let row_empty = rows.last().is_none_or(|r| r.is_empty());
            let need = if row_empty { w } else { used + spacing + w };
            // An empty full-width row takes anything: the label was fitted to that width.
            if need <= room || (row_empty && room == width) {
                if let Some(row) = rows.last_mut() {
                    row.push(Entry {
                        label,
                        swatch,
                        width: w,
                    });
                }
                used = need;
                break;
            }
            rows.push(Vec::new());
            room = width;
            used = 0;
        }
    }
    let row_count = if title.is_empty() && rows[0].is_empty() {
        0
    } else {
        rows.len() as i32
    };
    let height = if row_count == 0 {
        z.px(4.0)
    } else {
        row_count * line_h
    };
    Ok(Header {
        title,
        title_color: panel.title_color,
        rows,
        line_h,
        width,
        height,
    })
}

fn row_width(row: &[Entry], spacing: i32) -> i32 {
    row.iter().map(|e| e.width).sum::<i32>() + spacing * (row.len() as i32 - 1).max(0)
}

pub(crate) fn draw<DB: DrawingBackend>(
    p: &Painter<DB>,
    z: &Sizes,
    h: &Header,
    (x0, y0): (i32, i32),
) -> Res {
    let spacing = z.px(14.0);
    let mid = |row: usize| y0 + row as i32 * h.line_h + h.line_h / 2;
    p.text(
        &h.title,
        (x0, mid(0)),
        z.panel_title,
        Weight::Bold,
        h.title_color,
        LEFT_MIDDLE,
    )?;
    for (k, row) in h.rows.iter().enumerate() {
        let y = mid(k);
        let mut x = x0 + h.width - row_width(row, spacing);
        for e in row {
            swatch(p, z, e.swatch, (x, y))?;
            p.text(
                &e.label,
                (x + z.swatch_w + z.px(5.0), y),
                z.legend,
                Weight::Normal,
                INK,
                LEFT_MIDDLE,
            )?;
            x += e.width + spacing;
        }
    }
    Ok(())
}

fn swatch<DB: DrawingBackend>(p: &Painter<DB>, z: &Sizes, s: Swatch, (x, y): (i32, i32)) -> Res {
    let w = z.swatch_w;
    match s {
        Swatch::Line {
            color,
            style,
            points,
        } => {
            let line = vec![(x, y), (x + w, y)];
            match style {
                LineStyle::Solid => p.polyline(line, rgba(color, 1.0), z.line_w)?,
                LineStyle::Thin => p.polyline(line, rgba(color, super::THIN_ALPHA), 1)?,
                LineStyle::Dashed => {
                    for d in dashes(&line, z.dash_on * 0.6, z.dash_off * 0.6) {
                        p.polyline(d, rgba(color, 1.0), z.line_w)?;
                    }
                }
            }
            if points {
                p.dot((x + w / 2, y), z.dot_r, rgba(color, 1.0))?;
            }
        }
        Swatch::Fill { color, alpha } => {
            let half = z.px(6.0);
            let r = super::painter::Rect {
                x0: x,
                y0: y - half,
                x1: x + w,
                y1: y + half,
            };
            p.fill_rect(r, rgba(color, alpha))?;
            p.outline_rect(r, rgba(color, (alpha * 2.5).min(1.0)))?;
        }
    }
    Ok(())
}
