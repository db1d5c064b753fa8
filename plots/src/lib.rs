//! Charts from plain series: stacked panels or small multiples, bands, shaded spans, markers and
//! notes, written as PNG or SVG with an embedded font.
//!
//! ```
//! use plots::{Band, Color, Figure, LineStyle, Panel, Series, Unit, XSpan};
//!
//! let xs: Vec<f64> = (0..40).map(f64::from).collect();
//! let used: Vec<f64> = xs.iter().map(|x| 2e6 + 1024.0 * x).collect();
//! let peak: Vec<f64> = used.iter().map(|y| y + 300e3).collect();
//! let trend: Vec<f64> = xs.iter().map(|x| 2e6 + 1024.0 * x).collect();
//!
//! let memory = Panel::new("memory in use", Unit::Bytes)
//!     .series(Series::new("in use", xs.clone(), used.clone(), Color::BLUE))
//!     .series(Series::new("trend", xs.clone(), trend, Color::VERMILLION).style(LineStyle::Dashed))
//!     .band(Band { label: "peak".into(), xs: xs.clone(), lo: used, hi: peak, color: Color::BLUE })
//!     .x_span(XSpan { from: 0.0, to: 3.0, color: Color::GREY, label: "warm-up".into() })
//!     .x_markers(xs.iter().copied())
//!     .note(format!("slope +{}/step", Unit::Bytes.format(1024.0)));
//! let objects = Panel::new("objects", Unit::Count)
//!     .series(Series::new("live", xs.clone(), vec![12.0; 40], Color::BLUISH_GREEN));
//!
//! let figure = Figure::new("a growing workload")
//!     .subtitle("40 steps")
//!     .x_axis("step", Unit::Count)
//!     .panel(memory)
//!     .panel(objects);
//!
//! let path = std::env::temp_dir().join(format!("plots-doc-{}.svg", std::process::id()));
//! plots::render(&figure, &path)?;
//! let svg = std::fs::read_to_string(&path)?;
//! assert!(svg.starts_with("<svg") && svg.contains("1 KiB"));
//! # std::fs::remove_file(&path)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The model
//!
//! A [`Figure`] has a title, an optional subtitle, a size in pixels, a [`Layout`] and a list of
//! [`Panel`]s. [`Layout::Stacked`] puts the panels one under another on one shared x axis (for
//! several measures of one run); [`Layout::Grid`] arranges them as small multiples, each with
//! its own x axis (for one measure across several runs). The x axis is named by
//! [`Figure::x_label`] and written in [`Figure::x_unit`].
//!
//! Both axes are linear unless asked otherwise: [`Figure::x_log`] and [`Panel::y_log`] make
//! them logarithmic ([`Scale::Log`], for sizes and costs spanning decades), with ticks on
//! decades of the unit (1 KiB, 10 KiB, 100 KiB; 1k, 10k, 100k), 2 and 5 between them when
//! there is room; values that are not positive are skipped there.
//!
//! A panel has its own y axis, written in a [`Unit`]: bytes as B/KiB/MiB/GiB, counts as 950 or
//! 12.3k, milliseconds as ms or s, or plain numbers. Ticks fall on round values of that unit
//! (0.25 MiB, never 262144). The range includes zero for quantities whose data are near zero,
//! hugs data far from zero so growth stays visible, and pads flat data instead of collapsing.
//! Ticks on a large offset, whose labels would need more than four digits (`2.503227 GiB`), are
//! written relative to it (`+0`, `+2 KiB`), the offset once above them (`≈2.503 GiB +`). Also
//! above them, the panel's `y_label` names what the values are ("blocks"; "count" by default on
//! a [`Unit::Count`] axis).
//!
//! In a panel, drawn from back to front:
//! - [`XSpan`]s shade an x range (a warm-up, a phase) with a legend label;
//! - `x_markers` draw light vertical lines (iteration boundaries); above 60 only every k-th;
//! - [`Band`]s fill the area between two curves (a min..max range per x);
//! - [`Series`] are lines in a [`LineStyle`]: `Thin` under everything (a baseline), `Solid` for
//!   the data, `Dashed` on top (a fitted trend); optionally with a dot per point;
//! - `notes` are lines of text in a box in the corner the data cross least.
//!
//! The panel title is drawn in its `title_color` (e.g. [`Color::RED`] to flag it); one too long
//! for its panel is drawn a little smaller, then wrapped onto two lines, and only then cut. A
//! legend is drawn beside the title when there is more than one thing to tell apart. A panel
//! without a single finite value says "no data".
//!
//! # Rendering
//!
//! [`render`] picks the format from the extension (`.png` or `.svg`, any case) and writes the
//! file atomically: the picture goes to a temporary file in the same directory, which is then
//! renamed over the target, so a failure never leaves a half-written picture behind.
//! [`render_svg_string`] returns the SVG text instead.
//!
//! Non-finite values are skipped and break a line. Long series are thinned with [`decimate`]
//! (first, last, lowest and highest point per pixel column) before drawing, so peaks survive and
//! a million points render to PNG in about 40 ms (release build) and to an SVG well under 1 MB.
//!
//! Text uses DejaVu Sans compiled into the binary (the `dejavu` crate) and read with `ab_glyph`;
//! no system font or fontconfig is needed. PNG text is rasterized from that font by this crate;
//! SVG text is written as `<text>` asking for "DejaVu Sans, sans-serif" and drawn by the viewer.
//! plotters is used without its font features (`ab_glyph`, `ttf`), so depending on this crate
//! changes nothing for another user of plotters in the same build, such as criterion's charts.

#![warn(missing_docs)]

mod decimate;
mod draw;
mod error;
mod glyphs;
mod model;
mod output;
mod scale;
mod units;

pub use decimate::decimate;
pub use error::PlotError;
pub use model::{Band, Color, Figure, Layout, LineStyle, Panel, Scale, Series, XSpan};
pub use units::Unit;

use output::{Format, TempFile};
use plotters::prelude::{BitMapBackend, IntoDrawingArea, SVGBackend};
use std::fs;
use std::path::Path;

/// Largest width or height accepted, in pixels.
pub const MAX_SIDE: u32 = 16_384;
/// Largest width x height accepted: a PNG is drawn in memory at 3 bytes per pixel.
pub const MAX_PIXELS: u64 = 50_000_000;

/// Draws `figure` into the file at `path`, as PNG or SVG according to its extension.
///
/// The file appears complete or not at all (temporary file + rename in the same directory);
/// the directory must exist. Errors name the path: [`PlotError::UnsupportedFormat`] for another
/// extension (nothing is created), [`PlotError::InvalidFigure`] for a zero or oversized figure,
/// [`PlotError::Io`] when the directory is missing or not writable.
pub fn render(figure: &Figure, path: impl AsRef<Path>) -> Result<(), PlotError> {
    let path = path.as_ref();
    let format = Format::of(path).ok_or_else(|| PlotError::UnsupportedFormat {
        path: path.to_path_buf(),
    })?;
    check_size(figure, path)?;
    let draw_error = |message: String| PlotError::Draw {
        path: path.to_path_buf(),
        message,
    };
    let tmp = TempFile::beside(path, format)?;
    match format {
        Format::Png => {
            let size = (figure.width, figure.height);
            let area = BitMapBackend::new(tmp.path(), size).into_drawing_area();
            draw::figure(&area, figure, draw::Target::Raster).map_err(draw_error)?;
            area.present().map_err(|e| draw_error(e.to_string()))?;
        }
        Format::Svg => {
            let svg = svg_string(figure).map_err(draw_error)?;
            fs::write(tmp.path(), svg).map_err(|error| PlotError::Io {
                path: path.to_path_buf(),
                error,
            })?;
        }
    }
    tmp.commit(path)
}

/// Draws `figure` as an SVG document and returns its text.
///
/// ```
/// let figure = plots::Figure::new("empty").size(400, 300);
/// let svg = plots::render_svg_string(&figure)?;
/// assert!(svg.starts_with("<svg") && svg.contains("no data"));
/// # Ok::<(), plots::PlotError>(())
/// ```
pub fn render_svg_string(figure: &Figure) -> Result<String, PlotError> {
    let path = Path::new("");
    check_size(figure, path)?;
    svg_string(figure).map_err(|message| PlotError::Draw {
        path: path.to_path_buf(),
        message,
    })
}

fn svg_string(figure: &Figure) -> Result<String, String> {
    let mut out = String::new();
    {
        let area =
            SVGBackend::with_string(&mut out, (figure.width, figure.height)).into_drawing_area();
        draw::figure(&area, figure, draw::Target::Vector)?;
        area.present().map_err(|e| e.to_string())?;
    }
    Ok(out)
}

fn check_size(figure: &Figure, path: &Path) -> Result<(), PlotError> {
    let (w, h) = (figure.width, figure.height);
    let reason = if w == 0 || h == 0 {
        format!("width and height must be at least 1 pixel, got {w}x{h}")
    } else if w > MAX_SIDE || h > MAX_SIDE || w as u64 * h as u64 > MAX_PIXELS {
        format!("{w}x{h} is too large (at most {MAX_SIDE} pixels a side and {MAX_PIXELS} in all)")
    } else {
        return Ok(());
    };
    Err(PlotError::InvalidFigure {
        path: path.to_path_buf(),
        reason,
    })
}
