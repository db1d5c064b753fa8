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
    /// The title's lines (none, one, or two when it had to wrap), drawn at `title_size`.
    title: Vec<String>,
    title_size: f64,
    title_color: Color,
    /// Legend rows; the first ones are the title's rows (their legend part may be empty).
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

/// Smallest size a title is shrunk to, as a fraction of its size, before it is wrapped.
const MIN_TITLE_SCALE: f64 = 0.8;

/// The lines of a title that fit in `width` pixels, and their size: one line at `size` if it
/// fits, else one line a little smaller (down to [`MIN_TITLE_SCALE`] of it), else two lines
/// broken at a space, at the largest such size where both fit. Only a title too long for that
/// loses its end to an ellipsis, never its beginning ("hashmap-churn:" / "LEAK (heap_bytes)").
fn fit_title<DB: DrawingBackend>(
    p: &Painter<DB>,
    text: &str,
    size: f64,
    width: i32,
) -> Res<(f64, Vec<String>)> {
    let fits = |t: &str, s: f64| Ok::<_, String>(p.measure(t, s, Weight::Bold)?.0 <= width);
    if text.is_empty() {
        return Ok((size, Vec::new()));
    }
    let sizes = (0..=4).map(|k| size * (1.0 - (1.0 - MIN_TITLE_SCALE) * f64::from(k) / 4.0));
    for s in sizes.clone() {
        if fits(text, s)? {
            return Ok((s, vec![text.to_string()]));
        }
    }
    // The longest first line that fits at size `s`, and the rest.
    let split = |s: f64| -> Res<Option<(&str, &str)>> {
        for (at, _) in text.char_indices().rev().filter(|&(_, c)| c == ' ') {
            let (first, rest) = (text[..at].trim_end(), text[at..].trim_start());
            if !first.is_empty() && !rest.is_empty() && fits(first, s)? {
                return Ok(Some((first, rest)));
            }
        }
        Ok(None)
    };
    for s in sizes {
        if let Some((first, rest)) = split(s)?
            && fits(rest, s)?
        {
            return Ok((s, vec![first.to_string(), rest.to_string()]));
        }
    }
    let s = size * MIN_TITLE_SCALE;
    let lines = match split(s)? {
        Some((first, rest)) => vec![first.to_string(), p.fit(rest, s, Weight::Bold, width)?],
        None => vec![p.fit(text, s, Weight::Bold, width)?],
    };
    Ok((s, lines.into_iter().filter(|l| !l.is_empty()).collect()))
}

/// Lays out the header of `panel` in `width` pixels, leaving `below` pixels under its title and
/// legend (where the y axis header goes, left of the plot).
pub(crate) fn layout<DB: DrawingBackend>(
    p: &Painter<DB>,
    z: &Sizes,
    panel: &Panel,
    width: i32,
    below: i32,
) -> Res<Header> {
    let (title_size, title) = fit_title(p, &panel.title, z.panel_title, width)?;
    let last_title_w = match title.last() {
        Some(line) => p.measure(line, title_size, Weight::Bold)?.0,
        None => 0,
    };
    let title_h = p.measure("Hg", z.panel_title, Weight::Bold)?.1;
    let legend_h = p.measure("Hg", z.legend, Weight::Normal)?.1;
    let line_h = title_h.max(legend_h) + z.px(8.0);
    let spacing = z.px(14.0);

    // The title's rows; the legend starts beside its last line when it fits there.
    let mut rows: Vec<Vec<Entry>> = vec![Vec::new(); title.len().max(1)];
    let mut room = if title.is_empty() {
        width
    } else {
        width - last_title_w - z.px(24.0)
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
    // Room under the title and legend for the y axis header (see `Axis::header_room`).
    let height = height + below;
    Ok(Header {
        title,
        title_size,
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
    for (k, line) in h.title.iter().enumerate() {
        let at = (x0, mid(k));
        p.text(
            line,
            at,
            h.title_size,
            Weight::Bold,
            h.title_color,
            LEFT_MIDDLE,
        )?;
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::draw::painter::Target;
    use plotters::prelude::{IntoDrawingArea, SVGBackend};

    const SIZE: f64 = 20.0;

    /// Fits `title` into `fraction` of its own width at [`SIZE`]; returns the size, the lines
    /// and the widest line's width (which must fit).
    fn fit(title: &str, fraction: f64) -> (f64, Vec<String>) {
        let mut svg = String::new();
        let area = SVGBackend::with_string(&mut svg, (100, 100)).into_drawing_area();
        let p = Painter::new(&area, Target::Vector);
        let full = p.measure(title, SIZE, Weight::Bold).unwrap().0;
        let width = (full as f64 * fraction) as i32;
        let (size, lines) = fit_title(&p, title, SIZE, width).unwrap();
        for line in &lines {
            let w = p.measure(line, size, Weight::Bold).unwrap().0;
            assert!(w <= width, "{line:?} is {w} px in {width}");
        }
        (size, lines)
    }

    #[test]
    fn a_title_that_fits_is_kept_as_it_is() {
        assert_eq!(
            fit("hashmap-churn: clean", 1.0),
            (SIZE, vec!["hashmap-churn: clean".into()])
        );
        assert_eq!(fit("", 0.1).1, Vec::<String>::new());
    }

    #[test]
    fn a_slightly_long_title_is_drawn_a_little_smaller() {
        let (size, lines) = fit("hashmap-churn: clean", 0.9);
        assert!((SIZE * MIN_TITLE_SCALE..SIZE).contains(&size), "{size}");
        assert_eq!(lines, ["hashmap-churn: clean"]);
    }

    #[test]
    fn a_long_title_wraps_at_a_space_keeping_every_word() {
        let (size, lines) = fit("hashmap-churn: clean", 0.75);
        assert_eq!(size, SIZE);
        assert_eq!(lines, ["hashmap-churn:", "clean"]);
        // Narrower still: two lines, a little smaller.
        let (size, lines) = fit("hashmap-churn: clean", 0.6);
        assert!((SIZE * MIN_TITLE_SCALE..SIZE).contains(&size), "{size}");
        assert_eq!(lines, ["hashmap-churn:", "clean"]);
        let (_, lines) = fit("cache_fill: LEAK (heap_bytes, heap_blocks)", 0.6);
        assert_eq!(
            lines.join(" "),
            "cache_fill: LEAK (heap_bytes, heap_blocks)"
        );
        assert_eq!(lines.len(), 2);
    }

    #[test]
    fn only_a_title_too_long_for_two_lines_loses_its_end() {
        let (size, lines) = fit(
            "hashmap-churn: LEAK (heap_bytes, heap_blocks, rss_bytes)",
            0.3,
        );
        assert_eq!(size, SIZE * MIN_TITLE_SCALE);
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("hashmap-churn:"), "{lines:?}");
        assert!(lines[1].ends_with('…'), "{lines:?}");
        // One word that does not fit: one shortened line.
        let (_, lines) = fit("hashmap-churn:clean", 0.5);
        assert_eq!(lines.len(), 1);
        assert!(lines[0].starts_with("hashmap") && lines[0].ends_with('…'));
    }
}
