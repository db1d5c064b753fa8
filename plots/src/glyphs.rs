// The embedded font, read with ab_glyph: how wide a text is, and which pixels its glyphs cover.
// It must never reach for a system font, nor go through plotters' font support (see below).
//
// Why not plotters' text: its `ab_glyph` feature makes every plotters in the build look fonts up
// in a registry filled in code. Cargo unifies features, so a crate using both this one and
// criterion would break criterion's own charts (`FontUnavailable`). plotters is therefore built
// without font support; SVG text is still written by plotters as `<text>` (no font needed),
// raster text is drawn here, glyph by glyph at sub-pixel positions.

use ab_glyph::{Font, FontRef, Glyph, PxScale, ScaleFont, point};
use std::sync::OnceLock;

/// DejaVu Sans regular or bold, parsed once.
pub(crate) fn dejavu(bold: bool) -> Result<&'static FontRef<'static>, String> {
    static REGULAR: OnceLock<Option<FontRef<'static>>> = OnceLock::new();
    static BOLD: OnceLock<Option<FontRef<'static>>> = OnceLock::new();
    let (cell, bytes, name) = if bold {
        (&BOLD, dejavu::sans::bold(), "bold")
    } else {
        (&REGULAR, dejavu::sans::regular(), "regular")
    };
    cell.get_or_init(|| FontRef::try_from_slice(bytes).ok())
        .as_ref()
        .ok_or_else(|| format!("the embedded DejaVu Sans ({name}) could not be loaded"))
}

/// The glyphs of `text` at font size `size` (ab_glyph's scale: `size` pixels from descender to
/// ascender), placed from a pen at x = 0 on the baseline y = 0, kerned; and the total advance.
fn layout(font: &FontRef<'static>, text: &str, size: f64) -> (Vec<Glyph>, f32) {
    let scaled = font.as_scaled(PxScale::from(size as f32));
    let mut pen = 0.0f32;
    let mut previous = None;
    let mut glyphs = Vec::with_capacity(text.len());
    for ch in text.chars() {
        let id = font.glyph_id(ch);
        if let Some(prev) = previous {
            pen += scaled.kern(prev, id);
        }
        glyphs.push(id.with_scale_and_position(scaled.scale(), point(pen, 0.0)));
        pen += scaled.h_advance(id);
        previous = Some(id);
    }
    (glyphs, pen)
}

/// The advance width of `text` at `size`, in pixels.
pub(crate) fn width(font: &FontRef<'static>, text: &str, size: f64) -> f64 {
    layout(font, text, size).1 as f64
}

/// Calls `paint(x, y, coverage)` for every pixel that `text` at `size` covers, the pen starting
/// at `(x, baseline)`. Coverage is in 0..=1; pixels left of or above 0 are passed too.
pub(crate) fn rasterize(
    font: &FontRef<'static>,
    text: &str,
    size: f64,
    (x, baseline): (f64, f64),
    mut paint: impl FnMut(i32, i32, f32),
) {
    let (glyphs, _) = layout(font, text, size);
    for mut glyph in glyphs {
        // Sub-pixel x keeps the spacing even; a whole-pixel baseline keeps horizontals sharp.
        glyph.position.x += x as f32;
        glyph.position.y += baseline.round() as f32;
        let Some(outline) = font.outline_glyph(glyph) else {
            continue; // blanks
        };
        let bounds = outline.px_bounds();
        let (x0, y0) = (bounds.min.x as i32, bounds.min.y as i32);
        outline.draw(|gx, gy, coverage| {
            paint(x0 + gx as i32, y0 + gy as i32, coverage.min(1.0));
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_dejavu_metrics() {
        let font = dejavu(false).expect("DejaVu Sans");
        // Known DejaVu Sans values, in font units (2048 per em).
        assert_eq!(
            font.ascent_unscaled() - font.descent_unscaled(),
            1901.0 + 483.0
        );
        assert_eq!(font.h_advance_unscaled(font.glyph_id('n')), 1298.0);
        assert_eq!(font.h_advance_unscaled(font.glyph_id(' ')), 651.0);
        for ch in ['…', 'µ', '≈', '−'] {
            assert_ne!(font.glyph_id(ch).0, 0, "{ch} missing");
        }
        assert!(dejavu(true).is_ok());
        // At size 2384 / 100 one font unit is 1/100 pixel.
        assert!((width(font, "n", 23.84) - 12.98).abs() < 1e-3);
    }

    #[test]
    fn widths_add_up_and_kern() {
        let font = dejavu(false).expect("DejaVu Sans");
        let w = width(font, "AVA ll", 20.0);
        assert!(w > 40.0 && w < 80.0, "{w}");
        assert_eq!(width(font, "", 20.0), 0.0);
        // 'A' 'V' kern together in DejaVu.
        let (a, v) = (width(font, "A", 20.0), width(font, "V", 20.0));
        assert!(width(font, "AV", 20.0) < a + v);
        // Bold is wider.
        let bold = dejavu(true).expect("DejaVu Sans Bold");
        assert!(width(bold, "hello", 20.0) > width(font, "hello", 20.0));
    }

    #[test]
    fn rasterized_ink_sits_on_the_baseline_within_the_advance() {
        let font = dejavu(false).expect("DejaVu Sans");
        let mut ink = Vec::new();
        rasterize(font, "Hl", 24.0, (10.0, 30.0), |x, y, c| {
            if c > 0.5 {
                ink.push((x, y));
            }
        });
        let (xs, ys): (Vec<i32>, Vec<i32>) = ink.iter().copied().unzip();
        let (x_min, x_max) = (*xs.iter().min().unwrap(), *xs.iter().max().unwrap());
        let (y_min, y_max) = (*ys.iter().min().unwrap(), *ys.iter().max().unwrap());
        assert!(x_min > 10 && x_max < 10 + width(font, "Hl", 24.0).ceil() as i32);
        // They stand on the baseline; 'l' rises 1556 of 2384 units: 15.7 px at size 24.
        assert_eq!(y_max, 29);
        assert!((13..=15).contains(&y_min), "{y_min}");
        let blank = std::cell::Cell::new(0);
        rasterize(font, "  ", 24.0, (0.0, 0.0), |_, _, _| {
            blank.set(blank.get() + 1)
        });
        assert_eq!(blank.get(), 0);
    }
}
