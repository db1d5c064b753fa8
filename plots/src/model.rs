// The figure model: plain data that describes a picture (panels, series, bands, spans, notes).
// It must never know what the numbers mean; callers bring their own labels and colours.

use crate::units::Unit;

/// A whole picture: a title, an optional subtitle and one or more panels.
///
/// Build it with a struct literal (every field is public) or start from [`Figure::new`] and the
/// builder methods. `width` and `height` are in pixels for PNG and in SVG user units for SVG.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// Drawn in bold at the top left.
    pub title: String,
    /// A second, lighter line under the title (e.g. the command or the host).
    pub subtitle: Option<String>,
    /// Width of the picture in pixels (1..=16384).
    pub width: u32,
    /// Height of the picture in pixels (1..=16384).
    pub height: u32,
    /// How the panels are arranged.
    pub layout: Layout,
    /// The panels, drawn top to bottom (stacked) or row by row (grid).
    pub panels: Vec<Panel>,
    /// Name of the x axis, e.g. "iteration" or "elapsed".
    pub x_label: String,
    /// How x tick labels are written. Use [`Unit::Count`] for iterations (integer ticks).
    pub x_unit: Unit,
    /// Linear (the default) or logarithmic x axis, shared by all panels.
    pub x_scale: Scale,
    /// When the title is too long, what follows its last `" — "` stays whole and the part
    /// before is shortened (a title ending with its verdict); otherwise it is cut at its end.
    pub title_keeps_end: bool,
}

impl Default for Figure {
    fn default() -> Self {
        Figure {
            title: String::new(),
            subtitle: None,
            width: 1000,
            height: 700,
            layout: Layout::Stacked,
            panels: Vec::new(),
            x_label: String::new(),
            x_unit: Unit::Plain,
            x_scale: Scale::Linear,
            title_keeps_end: false,
        }
    }
}

impl Figure {
    /// A 1000x700 stacked figure with a title and no panels yet.
    pub fn new(title: impl Into<String>) -> Self {
        Figure {
            title: title.into(),
            ..Figure::default()
        }
    }

    /// Keeps what follows the title's last `" — "` whole when the title is too long (see
    /// [`Figure::title_keeps_end`]).
    pub fn keep_title_end(mut self) -> Self {
        self.title_keeps_end = true;
        self
    }

    /// Sets the subtitle.
    pub fn subtitle(mut self, subtitle: impl Into<String>) -> Self {
        self.subtitle = Some(subtitle.into());
        self
    }

    /// Sets the size in pixels.
    pub fn size(mut self, width: u32, height: u32) -> Self {
        self.width = width;
        self.height = height;
        self
    }

    /// Sets the layout.
    pub fn layout(mut self, layout: Layout) -> Self {
        self.layout = layout;
        self
    }

    /// Sets the x axis name and how its ticks are written.
    pub fn x_axis(mut self, label: impl Into<String>, unit: Unit) -> Self {
        self.x_label = label.into();
        self.x_unit = unit;
        self
    }

    /// Makes the x axis logarithmic (see [`Scale::Log`]): for sizes that span decades.
    pub fn x_log(mut self) -> Self {
        self.x_scale = Scale::Log;
        self
    }

    /// Appends a panel.
    pub fn panel(mut self, panel: Panel) -> Self {
        self.panels.push(panel);
        self
    }
}

/// How values are placed along an axis.
///
/// On a [`Scale::Log`] axis equal ratios take equal room (1 KiB to 10 KiB as much as 100 KiB to
/// 1 MiB), so a quantity measured over sizes that span decades stays readable at every size,
/// and a power law is a straight line. Its ticks fall on powers of ten in the axis unit (1 KiB,
/// 10 KiB, 100 KiB, 1 MiB; 1k, 10k, 100k, 1M; 1 ms, 10 ms, 100 ms, 1 s), with 2 and 5 between
/// them when the range spans few decades, and fewer decades labelled when it spans many.
/// Values that are zero or negative have no place on it: they are skipped like non-finite ones
/// (they break a line, a band, and are left out of the range).
///
/// ```
/// use plots::{Color, Figure, Panel, Series, Unit};
///
/// let sizes: Vec<f64> = (0..=6).map(|k| 10f64.powi(k)).collect();
/// let bytes: Vec<f64> = sizes.iter().map(|n| 48.0 * n + 2048.0).collect();
/// let figure = Figure::new("memory against input size")
///     .x_axis("input size n", Unit::Count)
///     .x_log()
///     .panel(
///         Panel::new("peak", Unit::Bytes)
///             .y_log()
///             .series(Series::new("peak", sizes, bytes, Color::BLUE).with_points()),
///     );
/// let svg = plots::render_svg_string(&figure)?;
/// assert!(svg.contains("100k") && svg.contains("1 MiB"));
/// # Ok::<(), plots::PlotError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Scale {
    /// Equal differences take equal room.
    #[default]
    Linear,
    /// Equal ratios take equal room; only positive values are drawn.
    Log,
}

/// How the panels of a [`Figure`] are arranged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layout {
    /// One panel under another, all sharing one x axis (same range, tick labels only at the
    /// bottom). For several measures of the same run.
    #[default]
    Stacked,
    /// Small multiples, filled row by row; each panel has its own x range and tick labels.
    /// For the same measure across several runs.
    Grid {
        /// Panels per row (at least 1; more than the number of panels is clamped).
        columns: usize,
    },
}

/// One plotting area with its own y axis.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    /// Drawn in bold above the plot, in `title_color`.
    pub title: String,
    /// Colour of the title, e.g. [`Color::RED`] to flag a panel.
    pub title_color: Color,
    /// How the y tick labels are written (KiB/MiB, counts, ms/s, plain).
    pub y_unit: Unit,
    /// Linear (the default) or logarithmic y axis.
    pub y_scale: Scale,
    /// What the y values are, written once above the tick labels: for [`Unit::Count`] the
    /// thing counted ("blocks", "fds", "threads"). Empty: "count" on a count axis, nothing on
    /// the others (their tick labels carry the unit).
    pub y_label: String,
    /// Lines, drawn in order Thin, Solid, Dashed so trends and baselines stay visible.
    pub series: Vec<Series>,
    /// Filled areas between two curves, drawn under the series.
    pub bands: Vec<Band>,
    /// Shaded x ranges (e.g. a warm-up), drawn first; their labels go in the legend.
    pub x_spans: Vec<XSpan>,
    /// Light vertical lines at these x values (e.g. iteration boundaries). More than 60 are
    /// thinned to every k-th so the panel stays readable.
    pub x_markers: Vec<f64>,
    /// Lines of free text drawn inside the plot, in the corner with the least data.
    pub notes: Vec<String>,
}

impl Default for Panel {
    fn default() -> Self {
        Panel {
            title: String::new(),
            title_color: Color::BLACK,
            y_unit: Unit::Plain,
            y_scale: Scale::Linear,
            y_label: String::new(),
            series: Vec::new(),
            bands: Vec::new(),
            x_spans: Vec::new(),
            x_markers: Vec::new(),
            notes: Vec::new(),
        }
    }
}

impl Panel {
    /// An empty panel with a black title.
    pub fn new(title: impl Into<String>, y_unit: Unit) -> Self {
        Panel {
            title: title.into(),
            y_unit,
            ..Panel::default()
        }
    }

    /// Sets the title colour.
    pub fn title_color(mut self, color: Color) -> Self {
        self.title_color = color;
        self
    }

    /// Makes the y axis logarithmic (see [`Scale::Log`]).
    pub fn y_log(mut self) -> Self {
        self.y_scale = Scale::Log;
        self
    }

    /// Sets what the y values are, e.g. "blocks" on a [`Unit::Count`] axis.
    pub fn y_label(mut self, label: impl Into<String>) -> Self {
        self.y_label = label.into();
        self
    }

    /// Appends a series.
    pub fn series(mut self, series: Series) -> Self {
        self.series.push(series);
        self
    }

    /// Appends a band.
    pub fn band(mut self, band: Band) -> Self {
        self.bands.push(band);
        self
    }

    /// Appends a shaded x span.
    pub fn x_span(mut self, span: XSpan) -> Self {
        self.x_spans.push(span);
        self
    }

    /// Sets the vertical markers.
    pub fn x_markers(mut self, xs: impl IntoIterator<Item = f64>) -> Self {
        self.x_markers = xs.into_iter().collect();
        self
    }

    /// Appends a line of text drawn inside the plot.
    pub fn note(mut self, text: impl Into<String>) -> Self {
        self.notes.push(text.into());
        self
    }
}

/// A line through `(xs[i], ys[i])`. Non-finite points are skipped and break the line.
///
/// Extra values in the longer of `xs`/`ys` are ignored. Long series are decimated to a few
/// points per pixel column before drawing (see [`decimate`](crate::decimate)).
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend text. An empty label keeps the series out of the legend.
    pub label: String,
    /// x of each point.
    pub xs: Vec<f64>,
    /// y of each point, in the panel's [`Unit`].
    pub ys: Vec<f64>,
    /// Line colour (see [`Color::PALETTE`]).
    pub color: Color,
    /// Solid, dashed or thin.
    pub style: LineStyle,
    /// Also draw a dot at each point (skipped when points would be closer than a few pixels).
    pub points: bool,
}

impl Series {
    /// A solid line without dots.
    pub fn new(label: impl Into<String>, xs: Vec<f64>, ys: Vec<f64>, color: Color) -> Self {
        Series {
            label: label.into(),
            xs,
            ys,
            color,
            style: LineStyle::Solid,
            points: false,
        }
    }

    /// Sets the line style.
    pub fn style(mut self, style: LineStyle) -> Self {
        self.style = style;
        self
    }

    /// Draws a dot at each point.
    pub fn with_points(mut self) -> Self {
        self.points = true;
        self
    }
}

/// How a [`Series`] is stroked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LineStyle {
    /// 2 px solid: the data.
    #[default]
    Solid,
    /// 2 px dashed, drawn on top: a fitted trend or a limit.
    Dashed,
    /// 1 px solid, slightly transparent, drawn under the others: a baseline or a reference run.
    Thin,
}

/// A filled area between `lo[i]` and `hi[i]` at `xs[i]`, e.g. the min..max range per x.
///
/// Points where any of the three values is non-finite are skipped and split the band.
#[derive(Debug, Clone, PartialEq)]
pub struct Band {
    /// Legend text. An empty label keeps the band out of the legend.
    pub label: String,
    /// x of each point, ascending.
    pub xs: Vec<f64>,
    /// Lower edge at each x.
    pub lo: Vec<f64>,
    /// Upper edge at each x.
    pub hi: Vec<f64>,
    /// Drawn translucent; pass the full-strength colour.
    pub color: Color,
}

/// A shaded x range, e.g. a warm-up, drawn under everything else.
#[derive(Debug, Clone, PartialEq)]
pub struct XSpan {
    /// Start of the range (the order of `from` and `to` does not matter; infinities reach the
    /// edge of the plot).
    pub from: f64,
    /// End of the range.
    pub to: f64,
    /// Drawn translucent; pass the full-strength colour.
    pub color: Color,
    /// Legend text. An empty label keeps the span out of the legend.
    pub label: String,
}

/// An opaque RGB colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Color(pub u8, pub u8, pub u8);

/// The Okabe-Ito palette: colours that stay distinct with the common forms of colour
/// blindness. Then four status colours, dark enough to read as title text on white.
impl Color {
    /// Okabe-Ito black.
    pub const BLACK: Color = Color(0, 0, 0);
    /// Okabe-Ito orange.
    pub const ORANGE: Color = Color(230, 159, 0);
    /// Okabe-Ito sky blue.
    pub const SKY_BLUE: Color = Color(86, 180, 233);
    /// Okabe-Ito bluish green.
    pub const BLUISH_GREEN: Color = Color(0, 158, 115);
    /// Okabe-Ito yellow (pale on white: for fills, not lines).
    pub const YELLOW: Color = Color(240, 228, 66);
    /// Okabe-Ito blue.
    pub const BLUE: Color = Color(0, 114, 178);
    /// Okabe-Ito vermillion.
    pub const VERMILLION: Color = Color(213, 94, 0);
    /// Okabe-Ito reddish purple.
    pub const REDDISH_PURPLE: Color = Color(204, 121, 167);

    /// Status: something is wrong.
    pub const RED: Color = Color(192, 40, 40);
    /// Status: all is well.
    pub const GREEN: Color = Color(30, 130, 60);
    /// Status: cannot tell.
    pub const AMBER: Color = Color(190, 120, 0);
    /// Status: not measured, or secondary.
    pub const GREY: Color = Color(110, 110, 110);

    /// Series colours in the order to use them: the Okabe-Ito palette without black and
    /// yellow (too close to the text colour and too pale on white).
    pub const PALETTE: [Color; 6] = [
        Color::BLUE,
        Color::VERMILLION,
        Color::BLUISH_GREEN,
        Color::REDDISH_PURPLE,
        Color::ORANGE,
        Color::SKY_BLUE,
    ];

    /// The `i`-th palette colour, cycling.
    ///
    /// ```
    /// assert_eq!(plots::Color::palette(0), plots::Color::BLUE);
    /// assert_eq!(plots::Color::palette(6), plots::Color::BLUE);
    /// ```
    pub fn palette(i: usize) -> Color {
        Color::PALETTE[i % Color::PALETTE.len()]
    }
}
