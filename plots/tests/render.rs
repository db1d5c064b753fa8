// End to end through `render`: real files, their headers and sizes, errors, odd input.

use plots::{Band, Color, Figure, Layout, LineStyle, Panel, PlotError, Series, Unit, XSpan};
use std::fs;
use std::path::Path;

const MIB: f64 = 1024.0 * 1024.0;

fn xs(n: usize) -> Vec<f64> {
    (0..n).map(|i| i as f64).collect()
}

fn two_panels(width: u32, height: u32) -> Figure {
    let x = xs(40);
    let heap: Vec<f64> = x.iter().map(|v| 2.0 * MIB + 1024.0 * v).collect();
    let peak: Vec<f64> = heap.iter().map(|v| v + 0.25 * MIB).collect();
    let fit: Vec<f64> = x.iter().map(|v| 2.0 * MIB + 1000.0 * v).collect();
    Figure::new("two panels")
        .subtitle("stacked")
        .size(width, height)
        .x_axis("iteration", Unit::Count)
        .panel(
            Panel::new("bytes", Unit::Bytes)
                .title_color(Color::RED)
                .series(Series::new("used", x.clone(), heap.clone(), Color::BLUE))
                .series(
                    Series::new("fit", x.clone(), fit, Color::VERMILLION).style(LineStyle::Dashed),
                )
                .band(Band {
                    label: "peak".into(),
                    xs: x.clone(),
                    lo: heap,
                    hi: peak,
                    color: Color::SKY_BLUE,
                })
                .x_span(XSpan {
                    from: 0.0,
                    to: 3.0,
                    color: Color::GREY,
                    label: "warm-up".into(),
                })
                .x_markers(x.iter().copied())
                .note("slope +1 KiB/iteration"),
        )
        .panel(Panel::new("count", Unit::Count).series(Series::new(
            "blocks",
            x.clone(),
            vec![7.0; 40],
            Color::GREEN,
        )))
}

fn grid(columns: usize) -> Figure {
    let panels = (0..5)
        .map(|k| {
            let x = xs(10 + k * 5);
            let y = x.iter().map(|v| v * (k + 1) as f64).collect();
            Panel::new(format!("run {k}"), Unit::Millis).series(Series::new("t", x, y, Color::BLUE))
        })
        .collect();
    Figure {
        title: "grid".into(),
        layout: Layout::Grid { columns },
        panels,
        width: 900,
        height: 600,
        ..Figure::default()
    }
}

/// Width and height from a PNG's IHDR chunk, after checking the signature.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG signature");
    assert_eq!(&bytes[12..16], b"IHDR", "first chunk is not IHDR");
    let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    (be(16), be(20))
}

/// Width and height attributes of the root element of an SVG document.
fn svg_size(svg: &str) -> (u32, u32) {
    assert!(
        svg.starts_with("<svg"),
        "does not start with <svg: {:?}",
        &svg[..40]
    );
    let root = &svg[..svg.find('>').unwrap()];
    let attr = |name: &str| -> u32 {
        let start = root.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
        let len = root[start..].find('"').unwrap();
        root[start..start + len].parse().unwrap()
    };
    (attr("width"), attr("height"))
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn stacked_png_and_svg_have_the_figure_size() {
    let dir = tempfile::tempdir().unwrap();
    let figure = two_panels(900, 640);

    let png = dir.path().join("two.png");
    plots::render(&figure, &png).unwrap();
    assert_eq!(png_size(&fs::read(&png).unwrap()), (900, 640));

    let svg = dir.path().join("two.svg");
    plots::render(&figure, &svg).unwrap();
    let text = fs::read_to_string(&svg).unwrap();
    assert_eq!(svg_size(&text), (900, 640));

    // Only the two pictures: no temporary file left behind.
    assert_eq!(entries(dir.path()), ["two.png", "two.svg"]);
}

#[test]
fn grid_png_and_svg_render() {
    let dir = tempfile::tempdir().unwrap();
    for columns in [0, 1, 2, 3, 99] {
        let figure = grid(columns);
        let png = dir.path().join(format!("grid{columns}.png"));
        plots::render(&figure, &png).unwrap();
        assert_eq!(png_size(&fs::read(&png).unwrap()), (900, 600));
        let svg = plots::render_svg_string(&figure).unwrap();
        assert_eq!(svg_size(&svg), (900, 600));
        for k in 0..5 {
            assert!(svg.contains(&format!("run {k}")), "panel {k} title missing");
        }
    }
}

#[test]
fn extension_is_case_insensitive() {
    let dir = tempfile::tempdir().unwrap();
    let figure = two_panels(400, 300);
    plots::render(&figure, dir.path().join("a.PNG")).unwrap();
    plots::render(&figure, dir.path().join("b.Svg")).unwrap();
    assert_eq!(entries(dir.path()), ["a.PNG", "b.Svg"]);
}

#[test]
fn unsupported_extension_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.jpg");
    let err = plots::render(&two_panels(400, 300), &path).unwrap_err();
    match &err {
        PlotError::UnsupportedFormat { path: p } => assert_eq!(p, &path),
        other => panic!("expected UnsupportedFormat, got {other:?}"),
    }
    assert!(err.to_string().contains("out.jpg"), "{err}");
    assert!(!path.exists());
    assert!(entries(dir.path()).is_empty());
    let no_ext = plots::render(&two_panels(400, 300), dir.path().join("out"));
    assert!(matches!(no_ext, Err(PlotError::UnsupportedFormat { .. })));
}

#[test]
fn missing_directory_is_an_io_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-such-dir").join("x.png");
    let err = plots::render(&two_panels(400, 300), &path).unwrap_err();
    assert!(matches!(err, PlotError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("no-such-dir"), "{err}");
}

#[test]
fn failed_rename_keeps_the_target_and_cleans_up() {
    // The target is a directory: drawing succeeds, the final rename fails.
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("taken.svg");
    fs::create_dir(&target).unwrap();
    fs::write(target.join("keep"), "x").unwrap();
    let err = plots::render(&two_panels(400, 300), &target).unwrap_err();
    assert!(matches!(err, PlotError::Io { .. }), "{err:?}");
    assert_eq!(entries(dir.path()), ["taken.svg"]);
    assert_eq!(entries(&target), ["keep"]);
}

#[test]
fn replacing_an_existing_picture_works() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.png");
    fs::write(&path, "old").unwrap();
    plots::render(&two_panels(300, 200), &path).unwrap();
    assert_eq!(png_size(&fs::read(&path).unwrap()), (300, 200));
}

#[test]
fn bad_sizes_are_rejected_with_the_path() {
    let dir = tempfile::tempdir().unwrap();
    for (w, h) in [(0, 100), (100, 0), (20_000, 100), (10_000, 10_000)] {
        let path = dir.path().join("x.png");
        let err = plots::render(&two_panels(w, h), &path).unwrap_err();
        assert!(
            matches!(err, PlotError::InvalidFigure { .. }),
            "{w}x{h}: {err:?}"
        );
        assert!(err.to_string().contains("x.png"), "{err}");
        assert!(!path.exists());
    }
    assert!(entries(dir.path()).is_empty());
}

#[test]
fn odd_input_does_not_panic() {
    let nan = f64::NAN;
    let inf = f64::INFINITY;
    let odd_panels = vec![
        Panel::new("empty", Unit::Bytes),
        Panel::new("empty series", Unit::Count).series(Series::new(
            "a",
            vec![],
            vec![],
            Color::BLUE,
        )),
        Panel::new("all NaN", Unit::Millis).series(Series::new(
            "a",
            vec![nan; 5],
            vec![nan; 5],
            Color::BLUE,
        )),
        Panel::new("one point", Unit::Plain).series(Series::new(
            "a",
            vec![3.0],
            vec![4.0],
            Color::BLUE,
        )),
        Panel::new("lengths differ", Unit::Bytes)
            .series(Series::new("a", xs(10), vec![1.0, 2.0, 3.0], Color::BLUE))
            .band(Band {
                label: "b".into(),
                xs: xs(5),
                lo: vec![0.0],
                hi: vec![1.0, 2.0],
                color: Color::GREY,
            }),
        Panel::new("infinities and gaps", Unit::Count).series(
            Series::new(
                "a",
                vec![0.0, 1.0, 2.0, 3.0, inf],
                vec![1.0, inf, -inf, nan, 5.0],
                Color::BLUE,
            )
            .with_points(),
        ),
        Panel::new("huge and negative", Unit::Plain).series(Series::new(
            "a",
            vec![-1e300, 1e300],
            vec![-1e300, 1e300],
            Color::BLUE,
        )),
        Panel::new("tiny range", Unit::Plain).series(Series::new(
            "a",
            vec![0.0, 1.0],
            vec![1.0, 1.0 + 1e-15],
            Color::BLUE,
        )),
        Panel::new("spans and markers only", Unit::Bytes)
            .x_span(XSpan {
                from: 5.0,
                to: -inf,
                color: Color::AMBER,
                label: "open".into(),
            })
            .x_span(XSpan {
                from: nan,
                to: 1.0,
                color: Color::AMBER,
                label: String::new(),
            })
            .x_markers([nan, inf, 1.0, 2.0, 2.0])
            .note("")
            .note("a note\nwith two lines"),
        Panel::new("unsorted xs", Unit::Count)
            .series(Series::new(
                "a",
                vec![5.0, 1.0, 3.0, 2.0],
                vec![1.0, 2.0, 3.0, 4.0],
                Color::BLUE,
            ))
            .band(Band {
                label: "b".into(),
                xs: vec![3.0, 1.0, 2.0],
                lo: vec![0.0; 3],
                hi: vec![1.0; 3],
                color: Color::GREY,
            }),
    ];
    let many_markers = Panel::new("markers", Unit::Count).x_markers(xs(100_000));
    let long_title = "a very long title that will never fit in a small panel ".repeat(10);
    let mut figures = vec![
        Figure::default(),
        Figure::new(long_title.clone()).subtitle(long_title.clone()),
        Figure::new("one huge legend").panel((0..30).fold(
            Panel::new(long_title.clone(), Unit::Bytes),
            |p, k| {
                p.series(Series::new(
                    format!("series number {k}"),
                    xs(3),
                    vec![k as f64; 3],
                    Color::palette(k),
                ))
            },
        )),
        Figure::new("markers").panel(many_markers),
    ];
    for layout in [Layout::Stacked, Layout::Grid { columns: 3 }] {
        for (w, h) in [(1, 1), (30, 20), (120, 80), (300, 200), (1000, 700)] {
            figures.push(Figure {
                title: "odd input".into(),
                width: w,
                height: h,
                layout,
                panels: odd_panels.clone(),
                x_label: "x".into(),
                ..Figure::default()
            });
        }
    }
    let dir = tempfile::tempdir().unwrap();
    for (i, figure) in figures.iter().enumerate() {
        let svg = plots::render_svg_string(figure)
            .unwrap_or_else(|e| panic!("figure {i} ({}x{}): {e}", figure.width, figure.height));
        assert!(svg.starts_with("<svg"));
        plots::render(figure, dir.path().join(format!("{i}.png")))
            .unwrap_or_else(|e| panic!("figure {i} ({}x{}): {e}", figure.width, figure.height));
    }
}

#[test]
fn a_panel_without_data_says_so() {
    let figure = Figure::new("t").panel(Panel::new("nothing", Unit::Bytes).series(Series::new(
        "a",
        vec![1.0],
        vec![f64::NAN],
        Color::BLUE,
    )));
    assert!(
        plots::render_svg_string(&figure)
            .unwrap()
            .contains("no data")
    );
    let with_data = two_panels(800, 600);
    assert!(
        !plots::render_svg_string(&with_data)
            .unwrap()
            .contains("no data")
    );
}

#[test]
fn labels_titles_and_notes_reach_the_picture() {
    let svg = plots::render_svg_string(&two_panels(1000, 700)).unwrap();
    // Human units on the axis, never raw byte counts.
    assert!(svg.contains("MiB"), "no MiB tick label");
    assert!(!svg.contains(">\n2097152\n<"), "raw byte count as a label");
    // Legend for the panel with several things; the note; the title in its colour.
    for text in [
        "used",
        "fit",
        "peak",
        "warm-up",
        "slope +1 KiB/iteration",
        "iteration",
    ] {
        assert!(svg.contains(&format!("\n{text}\n")), "{text:?} not drawn");
    }
    let red = format!(
        "#{:02X}{:02X}{:02X}",
        Color::RED.0,
        Color::RED.1,
        Color::RED.2
    );
    let title = svg.find("\nbytes\n").unwrap();
    let tag = &svg[svg[..title].rfind("<text").unwrap()..title];
    assert!(tag.contains(&red), "panel title not in its colour: {tag}");
    // A single series needs no legend: "blocks" is not written anywhere.
    assert!(
        !svg.contains("\nblocks\n"),
        "legend drawn for a lone series"
    );
}

#[test]
fn a_million_points_make_a_small_svg() {
    let n = 1_000_000;
    let x = xs(n);
    let mut y: Vec<f64> = x
        .iter()
        .map(|v| (v / 5000.0).sin() * MIB + 4.0 * MIB)
        .collect();
    y[654_321] = 64.0 * MIB;
    let figure = Figure::new("1M").panel(Panel::new("bytes", Unit::Bytes).series(Series::new(
        "y",
        x,
        y,
        Color::BLUE,
    )));
    let svg = plots::render_svg_string(&figure).unwrap();
    assert!(svg.len() < 1_000_000, "SVG is {} bytes", svg.len());
    // The spike reaches above the 60 MiB tick: it survived decimation.
    let label = svg.find("\n60 MiB\n").expect("no 60 MiB tick");
    let tag = &svg[svg[..label].rfind("<text").unwrap()..label];
    let tick_y = attr(tag, "y");
    let blue = format!(
        "stroke=\"#{:02X}{:02X}{:02X}\"",
        Color::BLUE.0,
        Color::BLUE.1,
        Color::BLUE.2
    );
    let top = svg
        .lines()
        .filter(|l| l.starts_with("<polyline") && l.contains(&blue))
        .flat_map(|l| {
            let start = l.find("points=\"").unwrap() + 8;
            let end = start + l[start..].find('"').unwrap();
            l[start..end]
                .split(' ')
                .filter_map(|p| p.split_once(',').map(|(_, y)| y.parse::<f64>().unwrap()))
                .collect::<Vec<_>>()
        })
        .fold(f64::INFINITY, f64::min);
    assert!(
        top < tick_y,
        "highest drawn point at y={top}, 60 MiB tick at y={tick_y}"
    );
}

fn attr(tag: &str, name: &str) -> f64 {
    let start = tag.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
    let len = tag[start..].find('"').unwrap();
    tag[start..start + len].parse().unwrap()
}

/// The texts of an SVG document, in order.
fn svg_texts(svg: &str) -> Vec<&str> {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| Some(t.split_once(">\n")?.1.split_once("\n</text>")?.0))
        .collect()
}

#[test]
fn grid_titles_keep_their_words() {
    // Twelve runs in four columns at the size an overview of twelve runs gets: the text is
    // scaled up by the height while each cell stays about 400 pixels wide.
    let titles = [
        "hashmap-churn: clean",
        "string-interning: inconclusive",
        "cache_fill: LEAK (heap_bytes, heap_blocks)",
    ];
    let panels = (0..12)
        .map(|k| {
            let x = xs(20);
            let y = x.iter().map(|v| 2.0 * MIB + 1024.0 * v).collect();
            Panel::new(titles[k % 3], Unit::Bytes).series(Series::new("heap", x, y, Color::BLUE))
        })
        .collect();
    let figure = Figure {
        title: "overview".into(),
        layout: Layout::Grid { columns: 4 },
        panels,
        width: 1680,
        height: 810,
        ..Figure::default()
    };
    let svg = plots::render_svg_string(&figure).unwrap();
    let texts = svg_texts(&svg);
    assert!(!texts.iter().any(|t| t.contains('…')), "{texts:?}");
    for title in titles {
        let drawn = texts.iter().filter(|t| title.starts_with(*t)).count();
        let whole = texts
            .concat()
            .matches(title.rsplit(' ').next().unwrap())
            .count();
        assert!(
            drawn >= 4 && whole >= 4,
            "{title:?} not drawn whole: {texts:?}"
        );
    }
}

#[test]
fn ticks_on_a_large_offset_are_short_and_counts_name_their_unit() {
    const GIB: f64 = 1024.0 * MIB;
    let x = xs(30);
    let big: Vec<f64> = x
        .iter()
        .map(|v| 2.503225 * GIB + 150.0 * (v % 7.0))
        .collect();
    let figure = Figure::new("offsets")
        .panel(Panel::new("big heap", Unit::Bytes).series(Series::new(
            "a",
            x.clone(),
            big,
            Color::BLUE,
        )))
        .panel(
            Panel::new("live blocks", Unit::Count)
                .y_label("blocks")
                .series(Series::new("b", x.clone(), vec![7.0; 30], Color::BLUE)),
        )
        .panel(Panel::new("unnamed count", Unit::Count).series(Series::new(
            "c",
            x.clone(),
            vec![3.0; 30],
            Color::BLUE,
        )));
    let svg = plots::render_svg_string(&figure).unwrap();
    let texts = svg_texts(&svg);
    assert!(texts.contains(&"≈2.503 GiB +"), "{texts:?}");
    assert!(
        texts.contains(&"+0") && texts.contains(&"+500 B"),
        "{texts:?}"
    );
    assert!(!texts.iter().any(|t| t.contains("2.5032")), "{texts:?}");
    assert!(
        texts.contains(&"blocks") && texts.contains(&"count"),
        "{texts:?}"
    );
}
