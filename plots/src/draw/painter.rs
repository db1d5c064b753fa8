// Pixel-level drawing on any plotters backend: text with the embedded font, lines, fills.
// It must never decide layout; callers pass pixel positions and sizes.

use crate::glyphs;
use crate::model::Color;
use plotters::coord::Shift;
use plotters::prelude::{Circle, DrawingArea, DrawingBackend, PathElement, Polygon, Rectangle};
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontDesc, FontFamily, FontStyle, RGBAColor, ShapeStyle, TextStyle};

/// The font family SVG text asks the viewer for: the embedded font first, so that a viewer that
/// has it draws the text at the width it was measured with.
const SVG_FAMILY: &str = "DejaVu Sans, sans-serif";

pub(crate) type Res<T = ()> = Result<T, String>;

/// A pixel rectangle; `x0..x1` and `y0..y1`, y growing downwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rect {
    pub x0: i32,
    pub y0: i32,
    pub x1: i32,
    pub y1: i32,
}

impl Rect {
    pub fn w(&self) -> i32 {
        self.x1 - self.x0
    }
    pub fn h(&self) -> i32 {
        self.y1 - self.y0
    }
    pub fn center(&self) -> (i32, i32) {
        ((self.x0 + self.x1) / 2, (self.y0 + self.y1) / 2)
    }
}

/// Near-black for text: softer than pure black, still high contrast.
pub(crate) const INK: Color = Color(30, 30, 30);
/// Secondary text (tick labels, subtitle).
pub(crate) const MUTED: Color = Color(90, 90, 90);

pub(crate) fn rgba(c: Color, alpha: f64) -> RGBAColor {
    RGBAColor(c.0, c.1, c.2, alpha)
}

/// Text weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Weight {
    Normal,
    Bold,
}

/// Where a text's position is on its box.
#[derive(Clone, Copy)]
pub(crate) struct Anchor(pub HPos, pub VPos);

pub(crate) const LEFT_TOP: Anchor = Anchor(HPos::Left, VPos::Top);
pub(crate) const LEFT_MIDDLE: Anchor = Anchor(HPos::Left, VPos::Center);
pub(crate) const RIGHT_MIDDLE: Anchor = Anchor(HPos::Right, VPos::Center);
pub(crate) const RIGHT_BOTTOM: Anchor = Anchor(HPos::Right, VPos::Bottom);
pub(crate) const CENTER_TOP: Anchor = Anchor(HPos::Center, VPos::Top);
pub(crate) const CENTER_MIDDLE: Anchor = Anchor(HPos::Center, VPos::Center);

/// What the backend produces; pixels need a few workarounds that vectors do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    Raster,
    Vector,
}

pub(crate) struct Painter<'a, DB: DrawingBackend> {
    area: &'a DrawingArea<DB, Shift>,
    target: Target,
}

/// Where the baseline of a text is, as a fraction of its size, below the top of its box: where
/// an SVG viewer puts it (`dy="0.76em"` with em = size / 1.24), so PNG and SVG agree.
const BASELINE: f64 = 0.76 / 1.24;

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

impl<'a, DB: DrawingBackend> Painter<'a, DB> {
    pub fn new(area: &'a DrawingArea<DB, Shift>, target: Target) -> Self {
        Painter { area, target }
    }

    /// Width and height in pixels of `text` at `size`: the advance width in the embedded font,
    /// and the height of an em (size / 1.24, as SVG writes font sizes).
    pub fn measure(&self, text: &str, size: f64, weight: Weight) -> Res<(i32, i32)> {
        if text.is_empty() {
            return Ok((0, 0));
        }
        let width = glyphs::width(glyphs::dejavu(weight == Weight::Bold)?, text, size);
        Ok((width as i32, (size / 1.24) as i32))
    }

    /// `text` shortened with an ellipsis to fit in `max_w` pixels (empty if nothing fits).
    pub fn fit(&self, text: &str, size: f64, weight: Weight, max_w: i32) -> Res<String> {
        if self.measure(text, size, weight)?.0 <= max_w {
            return Ok(text.to_string());
        }
        let chars: Vec<char> = text.chars().collect();
        // Binary search the longest prefix that fits with the ellipsis.
        let (mut lo, mut hi) = (0usize, chars.len());
        while lo < hi {
            let mid = (lo + hi).div_ceil(2);
            let candidate: String = chars[..mid].iter().collect::<String>() + "…";
            if self.measure(&candidate, size, weight)?.0 <= max_w {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        if lo == 0 {
            return Ok(String::new());
        }
        let prefix: String = chars[..lo].iter().collect();
        Ok(prefix.trim_end().to_string() + "…")
    }

    /// [`Painter::fit`], shortening what comes before `keep`'s last occurrence instead, so
    /// that the end stays whole: a figure's title ends with its verdict, which a long command
    /// as the workload's name cut to "… — L…".
    pub fn fit_keeping(
        &self,
        text: &str,
        keep: &str,
        size: f64,
        weight: Weight,
        max_w: i32,
    ) -> Res<String> {
        let Some(at) = text.rfind(keep) else {
            return self.fit(text, size, weight, max_w);
        };
        if self.measure(text, size, weight)?.0 <= max_w {
            return Ok(text.to_string());
        }
        let tail = &text[at..];
        let room = max_w - self.measure(tail, size, weight)?.0;
        let head = self.fit(&text[..at], size, weight, room)?;
        if head.is_empty() {
            return self.fit(text, size, weight, max_w);
        }
        Ok(head + tail)
    }

    /// Draws `text` with its box anchored at `(x, y)`: as an SVG `<text>` for vectors (the
    /// viewer draws it), rasterized from the embedded font for pixels.
    pub fn text(
        &self,
        text: &str,
        (x, y): (i32, i32),
        size: f64,
        weight: Weight,
        color: Color,
        anchor: Anchor,
    ) -> Res {
        if text.is_empty() {
            return Ok(());
        }
        if self.target == Target::Vector {
            let style = match weight {
                Weight::Normal => FontStyle::Normal,
                Weight::Bold => FontStyle::Bold,
            };
            let ink = rgba(color, 1.0);
            let style = TextStyle::from(FontDesc::new(FontFamily::Name(SVG_FAMILY), size, style))
                .color(&ink)
                .pos(Pos::new(anchor.0, anchor.1));
            return self.area.draw_text(text, &style, (x, y)).map_err(err);
        }
        let font = glyphs::dejavu(weight == Weight::Bold)?;
        let width = glyphs::width(font, text, size);
        let left = match anchor.0 {
            HPos::Left => x as f64,
            HPos::Center => x as f64 - width / 2.0,
            HPos::Right => x as f64 - width,
        };
        let height = self.measure(text, size, weight)?.1 as f64;
        let top = match anchor.1 {
            VPos::Top => y as f64,
            VPos::Center => y as f64 - height / 2.0,
            VPos::Bottom => y as f64 - height,
        };
        let mut failed = None;
        glyphs::rasterize(
            font,
            text,
            size,
            (left, top + BASELINE * size),
            |px, py, c| {
                if c > 0.0 && failed.is_none() {
                    let ink = RGBAColor(color.0, color.1, color.2, c as f64);
                    failed = self.area.draw_pixel((px, py), &ink).err();
                }
            },
        );
        failed.map_or(Ok(()), |e| Err(err(e)))
    }

    pub fn polyline(&self, points: Vec<(i32, i32)>, color: RGBAColor, width: u32) -> Res {
        if points.len() < 2 {
            return Ok(());
        }
        let stroke = |points: Vec<(i32, i32)>, stroke_width| {
            let style = ShapeStyle {
                color,
                filled: false,
                stroke_width,
            };
            self.area
                .draw(&PathElement::new(points, style))
                .map_err(err)
        };
        if width <= 1 || self.target == Target::Vector {
            return stroke(points, width.max(1));
        }
        // plotters fills a wide raster path as one polygon, which leaves holes where the line
        // doubles back and long spikes at sharp angles (every pixel column of a dense series).
        // A square brush of 1-pixel lines has neither problem.
        let w = width as i32;
        for dx in -(w - 1) / 2..=w / 2 {
            for dy in -(w - 1) / 2..=w / 2 {
                stroke(points.iter().map(|&(x, y)| (x + dx, y + dy)).collect(), 1)?;
            }
        }
        Ok(())
    }

    pub fn fill_rect(&self, r: Rect, color: RGBAColor) -> Res {
        if r.w() <= 0 || r.h() <= 0 {
            return Ok(());
        }
        self.area
            .draw(&Rectangle::new(
                [(r.x0, r.y0), (r.x1, r.y1)],
                ShapeStyle::from(color).filled(),
            ))
            .map_err(err)
    }

    pub fn outline_rect(&self, r: Rect, color: RGBAColor) -> Res {
        self.polyline(
            vec![
                (r.x0, r.y0),
                (r.x1, r.y0),
                (r.x1, r.y1),
                (r.x0, r.y1),
                (r.x0, r.y0),
            ],
            color,
            1,
        )
    }

    pub fn fill_polygon(&self, points: Vec<(i32, i32)>, color: RGBAColor) -> Res {
        if points.len() < 3 {
            return Ok(());
        }
        self.area
            .draw(&Polygon::new(points, ShapeStyle::from(color).filled()))
            .map_err(err)
    }

    pub fn dot(&self, center: (i32, i32), radius: i32, color: RGBAColor) -> Res {
        self.area
            .draw(&Circle::new(
                center,
                radius.max(1),
                ShapeStyle::from(color).filled(),
            ))
            .map_err(err)
    }
}

/// Cuts a polyline into dashes of `on` pixels separated by gaps of `off` pixels.
pub(crate) fn dashes(points: &[(i32, i32)], on: f64, off: f64) -> Vec<Vec<(i32, i32)>> {
    let (on, off) = (on.max(1.0), off.max(1.0));
    let mut out = Vec::new();
    let mut current: Vec<(f64, f64)> = Vec::new();
    let mut drawing = true;
    let mut left = on;
    let round = |v: &[(f64, f64)]| -> Vec<(i32, i32)> {
        v.iter()
            .map(|&(x, y)| (x.round() as i32, y.round() as i32))
            .collect()
    };
    for seg in points.windows(2) {
        let (a, b) = (
            (seg[0].0 as f64, seg[0].1 as f64),
            (seg[1].0 as f64, seg[1].1 as f64),
        );
        let len = ((b.0 - a.0).powi(2) + (b.1 - a.1).powi(2)).sqrt();
        if len == 0.0 {
            continue;
        }
        if drawing && current.is_empty() {
            current.push(a);
        }
        let mut t = 0.0;
        while len - t > left {
            t += left;
            let p = (a.0 + (b.0 - a.0) * t / len, a.1 + (b.1 - a.1) * t / len);
            if drawing {
                current.push(p);
                out.push(round(&current));
                current.clear();
            } else {
                current.push(p);
            }
            drawing = !drawing;
            left = if drawing { on } else { off };
        }
        left -= len - t;
        if drawing {
            current.push(b);
        }
    }
    if drawing && current.len() >= 2 {
        out.push(round(&current));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dashes_alternate_along_the_line() {
        let d = dashes(&[(0, 0), (100, 0)], 10.0, 5.0);
        // 100 px of 10-on/5-off: dashes start at 0, 15, 30, ... 90.
        assert_eq!(d.len(), 7);
        assert_eq!(d[0], vec![(0, 0), (10, 0)]);
        assert_eq!(d[1], vec![(15, 0), (25, 0)]);
        assert_eq!(d[6], vec![(90, 0), (100, 0)]);
    }

    #[test]
    fn a_long_title_keeps_its_end() {
        let mut svg = String::new();
        let area = {
            use plotters::prelude::{IntoDrawingArea, SVGBackend};
            SVGBackend::with_string(&mut svg, (100, 100)).into_drawing_area()
        };
        let p = Painter::new(&area, Target::Vector);
        let title = format!("sh -c '{}' — LEAK; over --max-peak", "x=1; ".repeat(40));
        let width = p.measure(&title, 20.0, Weight::Bold).unwrap().0 / 2;
        let fitted = p
            .fit_keeping(&title, " — ", 20.0, Weight::Bold, width)
            .unwrap();
        assert!(fitted.ends_with("… — LEAK; over --max-peak"), "{fitted}");
        assert!(p.measure(&fitted, 20.0, Weight::Bold).unwrap().0 <= width);
        // Nothing to keep: cut at the end.
        let plain = "y".repeat(200);
        let cut = p
            .fit_keeping(&plain, " — ", 20.0, Weight::Bold, width)
            .unwrap();
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn dashes_carry_across_vertices() {
        let d = dashes(&[(0, 0), (6, 0), (6, 6)], 10.0, 5.0);
        assert_eq!(d[0], vec![(0, 0), (6, 0), (6, 4)]);
        assert!(dashes(&[(3, 3)], 10.0, 5.0).is_empty());
    }
}
