// Owns the figure of a `--sweep` run: memory and time against the input size on log-log axes,
// each measured metric with its fitted curve. Must never fit nor judge: it draws the sweep's fits.

use plots::{Color, Figure, LineStyle, Panel, Series, Unit};

use crate::model::{Fit, Point, Run, Sweep, formula};

/// The memory metrics drawn, with their names on the picture and their colours.
const MEMORY: [(&str, &str, Color); 4] = [
    ("peak_bytes", "peak", Color::BLUE),
    ("retained_bytes", "retained", Color::VERMILLION),
    ("allocated_bytes", "allocated", Color::BLUISH_GREEN),
    ("rss_peak_bytes", "RSS peak", Color::REDDISH_PURPLE),
];

/// Points along each fitted curve, evenly spaced in log n.
const CURVE_POINTS: usize = 50;

/// Memory (heap peak, retained, allocated, RSS peak) and time per repetition against the input
/// size, both axes logarithmic: the measured points, and the fitted curve of each metric whose
/// class the points decide, dashed in the same colour. The legend writes each fit; the memory
/// panel's title is red when a gated metric is above `--max-complexity`, amber when the points
/// cannot tell, green otherwise.
pub fn sweep_figure(run: &Run, s: &Sweep) -> Figure {
    let (points, sizes) = sorted_points(s);
    let memory = memory_panel(s, "memory against input size".to_string());

    let mut time = Panel::new("time per repetition", Unit::Millis).y_log();
    for series in metric_series(s, &points, &sizes, "duration_ms", "time", Color::BLUE) {
        time = time.series(series);
    }
    let (memory, time) = (legend_as_note(memory), legend_as_note(time));

    Figure::new(format!("{} — memory against input size", run.workload))
        .subtitle(subtitle(run, s, &sizes))
        .x_axis("input size n", Unit::Count)
        .x_log()
        .size(1200, 900)
        .panel(memory)
        .panel(time)
}

/// The points of a sweep by size, and the sizes.
fn sorted_points(s: &Sweep) -> (Vec<&Point>, Vec<f64>) {
    let mut points: Vec<&Point> = s.points.iter().collect();
    points.sort_by_key(|p| p.size);
    let sizes = points.iter().map(|p| p.size as f64).collect();
    (points, sizes)
}

/// The colour of a sweep's status: red when a gated metric is above `--max-complexity`, amber
/// when the points cannot tell, green otherwise.
fn status_color(s: &Sweep) -> Color {
    if !s.violations().is_empty() {
        Color::RED
    } else if !s.undecided().is_empty() {
        Color::AMBER
    } else {
        Color::GREEN
    }
}

/// The memory panel of a sweep: every memory metric's points and fitted curve, log-log.
fn memory_panel(s: &Sweep, title: String) -> Panel {
    let (points, sizes) = sorted_points(s);
    let mut memory = Panel::new(title, Unit::Bytes)
        .y_log()
        .title_color(status_color(s));
    for (field, name, color) in MEMORY {
        for series in metric_series(s, &points, &sizes, field, name, color) {
            memory = memory.series(series);
        }
    }
    for line in limit_notes(s) {
        memory = memory.note(line);
    }
    memory.note("dots: measured · dashed: fitted")
}

/// The overview of a report of sweeps: each run's memory panel, titled with its workload and
/// status. (The overview of iterations had nothing to draw for them: "no data" panels titled
/// "clean", the one over --max-complexity included.)
pub fn sweep_overview(report: &crate::model::Report, columns: usize) -> Figure {
    let rows = report.runs.len().div_ceil(columns).max(1) as u32;
    let decision = report.decision();
    let mut figure = Figure::new(format!(
        "{} (exit {}) — memory against input size",
        decision.headline,
        decision.outcome.code()
    ))
    .subtitle("dots: measured · dashed: fitted · title colour: red above --max-complexity, amber cannot tell, green within")
    .layout(plots::Layout::Grid { columns })
    .x_axis("input size n", Unit::Count)
    .x_log()
    .size(520 * columns as u32 + 80, 380 * rows + 120);
    for run in &report.runs {
        let Some(s) = &run.sweep else { continue };
        let status = if !s.violations().is_empty() {
            "above --max-complexity"
        } else if !s.undecided().is_empty() {
            "cannot tell"
        } else {
            "within"
        };
        let title = match s.max_complexity {
            Some(max) => format!("{}: {status} {max}", run.workload),
            None => run.workload.clone(),
        };
        figure = figure.panel(memory_panel(s, title));
    }
    figure
}

/// A panel with a single labelled series has no legend (nothing to tell apart): its label,
/// the fit, is written in a note instead.
fn legend_as_note(panel: Panel) -> Panel {
    let mut labels = panel.series.iter().filter(|s| !s.label.is_empty());
    match (labels.next(), labels.next()) {
        (Some(only), None) => {
            let label = only.label.clone();
            panel.note(label)
        }
        _ => panel,
    }
}

/// One short line per gated metric above `--max-complexity` or that cannot be told against
/// it (the legend writes the fits themselves).
fn limit_notes(s: &Sweep) -> Vec<String> {
    let Some(max) = s.max_complexity else {
        return Vec::new();
    };
    s.gated
        .iter()
        .filter_map(|field| {
            let fit = s.fit(field)?;
            let name = name_of(field);
            if fit.above(max) {
                let class = fit
                    .model
                    .map_or("every class that fits".into(), |m| m.to_string());
                Some(format!("{name} {class} is above --max-complexity {max}"))
            } else if fit.undecided_against(max) {
                Some(format!("{name}: {}", fit.sentence))
            } else {
                None
            }
        })
        .collect()
}

/// A metric's name on the picture ("peak" for `peak_bytes`).
fn name_of(field: &str) -> &str {
    MEMORY.iter().find(|m| m.0 == field).map_or(field, |m| m.1)
}

/// The measured points of `field` (positive ones: the axis is logarithmic) and, when its fit
/// decided a class, the fitted curve; none when the field was not measured.
fn metric_series(
    s: &Sweep,
    points: &[&Point],
    sizes: &[f64],
    field: &str,
    name: &str,
    color: Color,
) -> Vec<Series> {
    let ys: Vec<f64> = points
        .iter()
        .map(|p| p.value(field).filter(|v| *v > 0.0).unwrap_or(f64::NAN))
        .collect();
    if !ys.iter().any(|y| y.is_finite()) {
        return Vec::new();
    }
    let fit = s.fit(field);
    let label = match fit {
        Some(fit) => label(name, field, fit),
        None => name.to_string(),
    };
    let mut out = vec![
        Series::new(label, sizes.to_vec(), ys, color)
            .style(LineStyle::Thin)
            .with_points(),
    ];
    if let Some((xs, ys)) = fit.and_then(|fit| curve(fit, sizes)) {
        out.push(Series::new("", xs, ys, color).style(LineStyle::Dashed));
    }
    out
}

/// "peak ≈ 48 B × n + 2.1 KiB, O(n)"; "retained: cannot tell (O(1), O(log n))";
/// "retained: cannot tell".
fn label(name: &str, field: &str, fit: &Fit) -> String {
    match (fit.model, fit.coefficient, fit.intercept) {
        (Some(model), Some(coefficient), Some(intercept)) => format!(
            "{name} ≈ {}, {model}",
            formula(field, model, coefficient, intercept)
        ),
        // Two or three close classes are worth naming; more say only that it is noise.
        _ if (2..=3).contains(&fit.candidates.len()) => {
            let names: Vec<&str> = fit.candidates.iter().map(|c| c.name()).collect();
            format!("{name}: cannot tell ({})", names.join(", "))
        }
        _ => format!("{name}: cannot tell"),
    }
}

/// intercept + coefficient × g(n), at [`CURVE_POINTS`] sizes evenly spaced in log n across the
/// measured sizes.
fn curve(fit: &Fit, sizes: &[f64]) -> Option<(Vec<f64>, Vec<f64>)> {
    let (model, coefficient, intercept) = (fit.model?, fit.coefficient?, fit.intercept?);
    let first = sizes.iter().copied().find(|n| *n > 0.0)?;
    let last = *sizes.last()?;
    if last <= first {
        return None;
    }
    let (lo, hi) = (first.ln(), last.ln());
    let mut xs: Vec<f64> = (0..CURVE_POINTS)
        .map(|i| (lo + (hi - lo) * i as f64 / (CURVE_POINTS - 1) as f64).exp())
        .collect();
    // Exactly on the first and last sizes, not a rounding error beside them.
    (xs[0], xs[CURVE_POINTS - 1]) = (first, last);
    let ys = xs
        .iter()
        .map(|&n| intercept + coefficient * model.eval(n))
        .collect();
    Some((xs, ys))
}

/// "10 sizes from 1k to 1M · held to --max-complexity O(n): peak O(n), retained O(1) ·
/// <description>" (the description last: it is what a narrow figure cuts).
fn subtitle(run: &Run, s: &Sweep, sizes: &[f64]) -> String {
    let mut parts = Vec::new();
    if let (Some(first), Some(last)) = (sizes.first(), sizes.last()) {
        parts.push(format!(
            "{} sizes from {} to {}",
            sizes.len(),
            crate::sizes::short(*first as u64),
            crate::sizes::short(*last as u64)
        ));
    }
    let gated: Vec<String> = s
        .gated
        .iter()
        .filter_map(|field| {
            let fit = s.fit(field)?;
            let name = name_of(field);
            Some(match fit.model {
                Some(model) => format!("{name} {model}"),
                None => format!("{name} cannot tell"),
            })
        })
        .collect();
    if !gated.is_empty() {
        parts.push(match s.max_complexity {
            Some(max) => format!("held to --max-complexity {max}: {}", gated.join(", ")),
            None => format!(
                "{} (no --max-complexity to hold {} to)",
                gated.join(", "),
                if gated.len() == 1 { "it" } else { "them" }
            ),
        });
    }
    if let Some(d) = &run.description {
        parts.push(d.clone());
    }
    parts.join(" · ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Complexity, SWEEP_FIELDS};
    use crate::report::HeapScope;
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    /// A sweep over `sizes` whose metrics are the given functions of n, fitted by the judge.
    fn sweep(
        sizes: &[u64],
        point: impl Fn(f64) -> Point,
        max_complexity: Option<Complexity>,
    ) -> Sweep {
        let points: Vec<Point> = sizes
            .iter()
            .map(|&n| Point {
                size: n,
                ..point(n as f64)
            })
            .collect();
        let fits: BTreeMap<String, Fit> = SWEEP_FIELDS
            .iter()
            .filter_map(|&f| crate::fit::fit(&points, f).map(|fit| (f.to_string(), fit)))
            .collect();
        Sweep {
            points,
            fits,
            gated: vec!["peak_bytes".into(), "retained_bytes".into()],
            max_complexity,
        }
    }

    /// 10 sizes from 1k to 1M, evenly spaced in log n.
    fn decades(from: f64, to: f64, count: usize) -> Vec<u64> {
        (0..count)
            .map(|i| {
                let t = i as f64 / (count - 1) as f64;
                (from * (to / from).powf(t)).round() as u64
            })
            .collect()
    }

    /// Where the test pictures go, to be looked at: `<target>/figures/`.
    fn picture(name: &str) -> PathBuf {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target")));
        let dir = target.join("figures");
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    /// Renders `figure` to a PNG and an SVG under target/figures; returns the SVG text.
    fn render(figure: &Figure, name: &str) -> String {
        let png = picture(&format!("{name}.png"));
        plots::render(figure, &png).unwrap();
        let bytes = std::fs::read(&png).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        // A blank 1200x900 picture compresses to a few KiB; points, curves and text do not.
        assert!(
            bytes.len() > 40_000,
            "{}: {} bytes",
            png.display(),
            bytes.len()
        );
        let svg = plots::render_svg_string(figure).unwrap();
        std::fs::write(picture(&format!("{name}.svg")), &svg).unwrap();
        svg
    }

    fn linear_point(n: f64) -> Point {
        Point {
            size: 0,
            peak_bytes: Some((48.0 * n + 2048.0) as u64),
            // Nothing kept but for a few sizes: only those are drawn.
            retained_bytes: Some(if n < 5000.0 { 64 } else { 0 }),
            allocated_bytes: Some((64.0 * n + 4096.0) as u64),
            allocations: Some((n / 10.0) as u64 + 5),
            rss_peak_bytes: Some((8.0 * 1048576.0 + 50.0 * n) as u64),
            duration_ms: 2e-4 * n + 0.05,
            repetitions: 5,
        }
    }

    #[test]
    fn a_linear_sweep_draws_each_metric_with_its_fit_on_log_log_axes() {
        let s = sweep(
            &decades(1e3, 1e6, 10),
            linear_point,
            Some(Complexity::Linear),
        );
        assert_eq!(s.fits["peak_bytes"].model, Some(Complexity::Linear));
        let mut run = Run::new("parse-records", HeapScope::Process);
        run.sweep = Some(s.clone());
        let fig = super::super::run_figure(&run, None);
        assert_eq!(fig.title, "parse-records — memory against input size");
        assert_eq!(fig.x_scale, plots::Scale::Log);
        let subtitle = fig.subtitle.as_deref().unwrap();
        assert!(
            subtitle.contains("10 sizes from 1k to 1M")
                && subtitle.contains("--max-complexity O(n): peak O(n)"),
            "{subtitle}"
        );

        let memory = &fig.panels[0];
        assert_eq!(memory.title, "memory against input size");
        assert_eq!(memory.title_color, Color::GREEN);
        assert_eq!(memory.y_scale, plots::Scale::Log);
        let peak = memory
            .series
            .iter()
            .find(|x| x.label.starts_with("peak"))
            .unwrap();
        assert_eq!(peak.label, "peak ≈ 48 B × n + 2.0 KiB, O(n)");
        assert!(peak.points);
        assert_eq!(peak.ys[0], 48.0 * 1000.0 + 2048.0);
        // Its curve: same colour, dashed, dense, through the points.
        let curve = memory
            .series
            .iter()
            .find(|x| x.style == LineStyle::Dashed && x.color == peak.color)
            .unwrap();
        assert_eq!(curve.xs.len(), CURVE_POINTS);
        assert_eq!(curve.xs[0], 1000.0);
        assert_eq!(curve.xs[CURVE_POINTS - 1], 1e6);
        assert!((curve.ys[0] / peak.ys[0] - 1.0).abs() < 0.01);
        // Retained bytes only where positive; allocated and RSS peak drawn too.
        let retained = memory
            .series
            .iter()
            .find(|x| x.label.starts_with("retained"))
            .unwrap();
        assert_eq!(retained.ys.iter().filter(|y| y.is_finite()).count(), 3);
        assert!(
            memory
                .series
                .iter()
                .any(|x| x.label.starts_with("allocated"))
        );
        assert!(
            memory
                .series
                .iter()
                .any(|x| x.label.starts_with("RSS peak"))
        );

        let time = &fig.panels[1];
        assert_eq!(time.title, "time per repetition");
        assert!(
            time.series[0].label.starts_with("time ≈"),
            "{}",
            time.series[0].label
        );
        // Alone in its panel, so without a legend: the fit is written in a note.
        assert_eq!(time.notes, [time.series[0].label.clone()]);
        assert_eq!(time.series[1].style, LineStyle::Dashed);

        let svg = render(&fig, "sweep-linear");
        for text in ["1k", "10k", "100k", "1M", "KiB", "MiB", " ms"] {
            assert!(svg.contains(text), "{text} missing");
        }
    }

    #[test]
    fn a_quadratic_sweep_above_the_limit_is_red_and_says_which_fit_cannot_tell() {
        // Retained bytes that jump about: no class fits them.
        let noise = [900.0, 40.0, 5000.0, 300.0, 12000.0, 70.0, 2500.0, 600.0];
        let sizes = decades(100.0, 10_000.0, 8);
        let point = |n: f64| {
            let k = sizes.iter().position(|&s| s as f64 == n).unwrap_or(0);
            Point {
                size: 0,
                peak_bytes: Some((16.0 * n * n + 4096.0) as u64),
                retained_bytes: Some(noise[k] as i64),
                allocated_bytes: Some((24.0 * n * n + 8192.0) as u64),
                allocations: Some((n * n / 100.0) as u64 + 3),
                rss_peak_bytes: None,
                duration_ms: 1e-5 * n * n + 0.01,
                repetitions: 3,
            }
        };
        let s = sweep(&sizes, point, Some(Complexity::Linear));
        assert_eq!(s.fits["peak_bytes"].model, Some(Complexity::Quadratic));
        assert_eq!(s.fits["retained_bytes"].model, None, "{:?}", s.fits);
        let mut run = Run::new("pairs-table", HeapScope::Process);
        run.sweep = Some(s.clone());
        let fig = sweep_figure(&run, &s);

        let memory = &fig.panels[0];
        assert_eq!(memory.title_color, Color::RED);
        let labels: Vec<&str> = memory.series.iter().map(|x| x.label.as_str()).collect();
        assert!(
            labels.contains(&"peak ≈ 16 B × n^2 + 4.0 KiB, O(n^2)"),
            "{labels:?}"
        );
        let retained = labels.iter().find(|l| l.starts_with("retained")).unwrap();
        assert!(retained.contains("cannot tell"), "{retained}");
        // No curve for a fit that cannot tell, none for RSS (not measured).
        let dashed = memory
            .series
            .iter()
            .filter(|x| x.style == LineStyle::Dashed)
            .count();
        assert_eq!(dashed, 2, "peak and allocated");
        assert!(!labels.iter().any(|l| l.starts_with("RSS")));
        assert_eq!(
            &memory.notes[..2],
            [
                "peak O(n^2) is above --max-complexity O(n)",
                &format!("retained: {}", s.fits["retained_bytes"].sentence)
            ]
        );
        render(&fig, "sweep-quadratic");
    }

    #[test]
    fn a_program_sweep_with_only_its_rss_writes_the_fit_in_a_note() {
        let point = |n: f64| Point {
            size: 0,
            peak_bytes: None,
            retained_bytes: None,
            allocated_bytes: None,
            allocations: None,
            rss_peak_bytes: Some((4.0 * 1048576.0 + 100.0 * n) as u64),
            duration_ms: 3.0 + 1e-3 * n,
            repetitions: 1,
        };
        let mut s = sweep(&decades(1e3, 1e5, 5), point, None);
        s.gated = vec!["rss_peak_bytes".into()];
        let fig = sweep_figure(&Run::new("tool", HeapScope::None), &s);
        let memory = &fig.panels[0];
        assert_eq!(memory.series.len(), 2, "RSS peak and its curve");
        assert_eq!(memory.title_color, Color::GREEN);
        let label = &memory.series[0].label;
        assert!(label.starts_with("RSS peak ≈ "), "{label}");
        assert!(memory.notes.contains(label), "{:?}", memory.notes);
        assert!(
            fig.subtitle
                .as_deref()
                .unwrap()
                .ends_with(" · RSS peak O(n) (no --max-complexity to hold it to)"),
            "{:?}",
            fig.subtitle
        );
        render(&fig, "sweep-rss-only");
    }

    #[test]
    fn the_overview_of_sweeps_draws_each_runs_memory_titled_with_its_status() {
        let quadratic = |n: f64| Point {
            peak_bytes: Some((16.0 * n * n + 4096.0) as u64),
            ..linear_point(n)
        };
        let sizes = decades(100.0, 2000.0, 5);
        let mut a = Run::new("pairwise", HeapScope::Process);
        a.sweep = Some(sweep(&sizes, quadratic, Some(Complexity::Linear)));
        let mut b = Run::new("streaming", HeapScope::Process);
        b.sweep = Some(sweep(&sizes, linear_point, Some(Complexity::Linear)));
        let report = crate::model::Report::new(vec![a, b]);
        let fig = super::super::overview(&report);
        assert_eq!(fig.x_scale, plots::Scale::Log);
        let titles: Vec<&str> = fig.panels.iter().map(|p| p.title.as_str()).collect();
        assert_eq!(
            titles,
            [
                "pairwise: above --max-complexity O(n)",
                "streaming: within O(n)"
            ]
        );
        assert_eq!(fig.panels[0].title_color, Color::RED);
        assert!(fig.panels.iter().all(|p| !p.series.is_empty()));
        render(&fig, "sweep-overview");
    }
}
