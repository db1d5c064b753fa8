// Horizontal metrics (advance, left side bearing, kerning) read from the embedded TrueType font,
// so raster text can be placed glyph by glyph. It must never be needed for SVG, nor panic on a
// font it cannot read: `None` means "let plotters place the text".
//
// Why: plotters 0.3.7's ab_glyph text drawing puts each glyph's ink at the pen position,
// dropping the glyph's left side bearing and truncating the pen to whole pixels. Letters then
// sit up to a pixel off ("inconc lusive"). Drawing one glyph at a time at the right place
// avoids it.

use std::sync::OnceLock;

/// Metrics of one font, borrowed from its file.
pub(crate) struct Metrics {
    data: &'static [u8],
    /// ascender - descender in font units: ab_glyph scales a font so that this is `size` px.
    height: f64,
    cmap: usize,
    hmtx: usize,
    long_metrics: u16,
    kern_pairs: Option<(usize, usize)>,
}

/// Where one glyph goes, relative to the start of the text, in pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Placed {
    pub ch: char,
    /// Pen position: where the glyph's advance starts.
    pub pen_x: f64,
    /// Left side bearing: from the pen to the glyph's ink.
    pub bearing: f64,
}

/// Metrics of DejaVu Sans regular and bold, or `None` where the tables cannot be read.
pub(crate) fn dejavu(bold: bool) -> Option<&'static Metrics> {
    static REGULAR: OnceLock<Option<Metrics>> = OnceLock::new();
    static BOLD: OnceLock<Option<Metrics>> = OnceLock::new();
    if bold {
        BOLD.get_or_init(|| Metrics::parse(dejavu::sans::bold()))
            .as_ref()
    } else {
        REGULAR
            .get_or_init(|| Metrics::parse(dejavu::sans::regular()))
            .as_ref()
    }
}

fn u16_at(d: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*d.get(at)?, *d.get(at + 1)?]))
}

fn i16_at(d: &[u8], at: usize) -> Option<i16> {
    u16_at(d, at).map(|v| v as i16)
}

fn u32_at(d: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes([
        *d.get(at)?,
        *d.get(at + 1)?,
        *d.get(at + 2)?,
        *d.get(at + 3)?,
    ]))
}

impl Metrics {
    fn parse(data: &'static [u8]) -> Option<Metrics> {
        let tables = u16_at(data, 4)? as usize;
        let table = |tag: &[u8; 4]| -> Option<usize> {
            (0..tables)
                .find_map(|i| {
                    let rec = 12 + 16 * i;
                    (data.get(rec..rec + 4)? == tag).then(|| u32_at(data, rec + 8))?
                })
                .map(|o| o as usize)
        };
        let hhea = table(b"hhea")?;
        let height = i16_at(data, hhea + 4)? as f64 - i16_at(data, hhea + 6)? as f64;
        let long_metrics = u16_at(data, hhea + 34)?;
        let hmtx = table(b"hmtx")?;
        // The Windows Unicode BMP subtable (format 4).
        let cmap_table = table(b"cmap")?;
        let cmap = (0..u16_at(data, cmap_table + 2)? as usize).find_map(|i| {
            let rec = cmap_table + 4 + 8 * i;
            let (platform, encoding) = (u16_at(data, rec)?, u16_at(data, rec + 2)?);
            let sub = cmap_table + u32_at(data, rec + 4)? as usize;
            (platform == 3 && encoding == 1 && u16_at(data, sub)? == 4).then_some(sub)
        })?;
        let kern_pairs = table(b"kern").and_then(|kern| {
            // Version 0, first subtable, format 0 (sorted pairs), horizontal.
            let sub = kern + 4;
            let coverage = u16_at(data, sub + 4)?;
            (u16_at(data, kern)? == 0 && coverage >> 8 == 0 && coverage & 1 == 1)
                .then(|| Some((sub + 14, u16_at(data, sub + 6)? as usize)))?
        });
        if height <= 0.0 || long_metrics == 0 {
            return None;
        }
        Some(Metrics {
            data,
            height,
            cmap,
            hmtx,
            long_metrics,
            kern_pairs,
        })
    }

    fn glyph(&self, c: char) -> u16 {
        self.lookup(c).unwrap_or(0)
    }

    fn lookup(&self, c: char) -> Option<u16> {
        let c = u16::try_from(c as u32).ok()?;
        let (d, sub) = (self.data, self.cmap);
        let segments = u16_at(d, sub + 6)? as usize / 2;
        let ends = sub + 14;
        let starts = ends + 2 * segments + 2;
        let deltas = starts + 2 * segments;
        let offsets = deltas + 2 * segments;
        // The first segment whose end is >= c (ends are sorted).
        let (mut lo, mut hi) = (0, segments);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if u16_at(d, ends + 2 * mid)? < c {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let i = lo;
        if i == segments || u16_at(d, starts + 2 * i)? > c {
            return Some(0);
        }
        let start = u16_at(d, starts + 2 * i)?;
        let delta = u16_at(d, deltas + 2 * i)?;
        let range_offset = u16_at(d, offsets + 2 * i)?;
        if range_offset == 0 {
            return Some(c.wrapping_add(delta));
        }
        let at = offsets + 2 * i + range_offset as usize + 2 * (c - start) as usize;
        match u16_at(d, at)? {
            0 => Some(0),
            g => Some(g.wrapping_add(delta)),
        }
    }

    /// (advance, left side bearing) in font units.
    fn h_metrics(&self, glyph: u16) -> (f64, f64) {
        let d = self.data;
        let n = self.long_metrics as usize;
        let g = glyph as usize;
        let advance = u16_at(d, self.hmtx + 4 * g.min(n - 1)).unwrap_or(0) as f64;
        let lsb = if g < n {
            i16_at(d, self.hmtx + 4 * g + 2)
        } else {
            i16_at(d, self.hmtx + 4 * n + 2 * (g - n))
        };
        (advance, lsb.unwrap_or(0) as f64)
    }

    fn kern(&self, left: u16, right: u16) -> f64 {
        let Some((pairs, count)) = self.kern_pairs else {
            return 0.0;
        };
        let key = (left as u32) << 16 | right as u32;
        let (mut lo, mut hi) = (0, count);
        while lo < hi {
            let mid = (lo + hi) / 2;
            let Some(k) = u32_at(self.data, pairs + 6 * mid) else {
                return 0.0;
            };
            match k.cmp(&key) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => {
                    return i16_at(self.data, pairs + 6 * mid + 4).unwrap_or(0) as f64;
                }
            }
        }
        0.0
    }

    /// Places the glyphs of `text` at font size `size` (ab_glyph's scale: `size` pixels from
    /// descender to ascender). Returns the placements and the total advance width.
    pub fn layout(&self, text: &str, size: f64) -> (Vec<Placed>, f64) {
        let px = size / self.height;
        let mut pen = 0.0;
        let mut previous = None;
        let mut placed = Vec::with_capacity(text.len());
        for ch in text.chars() {
            let glyph = self.glyph(ch);
            if let Some(prev) = previous {
                pen += self.kern(prev, glyph) * px;
            }
            let (advance, lsb) = self.h_metrics(glyph);
            placed.push(Placed {
                ch,
                pen_x: pen,
                bearing: lsb * px,
            });
            pen += advance * px;
            previous = Some(glyph);
        }
        (placed, pen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_dejavu_metrics() {
        let m = dejavu(false).expect("DejaVu Sans tables");
        assert_eq!(m.height, 1901.0 + 483.0);
        // Known DejaVu Sans values, in font units (2048 per em).
        let n = m.glyph('n');
        assert_ne!(n, 0);
        assert_eq!(m.h_metrics(n).0, 1298.0);
        assert_eq!(m.h_metrics(m.glyph(' ')).0, 651.0);
        assert!(
            m.h_metrics(m.glyph('l')).1 > 150.0,
            "'l' has a wide left bearing"
        );
        assert_ne!(m.glyph('…'), 0);
        assert_ne!(m.glyph('µ'), 0);
        assert_eq!(m.glyph('\u{10FFFF}'), 0);
        assert!(dejavu(true).is_some());
    }

    #[test]
    fn layout_advances_monotonically() {
        let m = dejavu(false).expect("DejaVu Sans tables");
        let (placed, width) = m.layout("AVA ll", 20.0);
        assert_eq!(placed.len(), 6);
        assert!(width > 40.0 && width < 80.0, "{width}");
        // 'A' 'V' kern together in DejaVu.
        let (_, tight) = m.layout("AV", 20.0);
        let (_, a) = m.layout("A", 20.0);
        let (_, v) = m.layout("V", 20.0);
        assert!(tight < a + v, "{tight} vs {}", a + v);
    }
}
