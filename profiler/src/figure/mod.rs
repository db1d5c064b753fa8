// Owns turning a Report into pictures: one figure per run (stacked panels), and the pieces the
// overview shares. Must never measure or judge: every number on a picture is read from the Report.

//! Memory-over-time pictures of a [`Report`](crate::report::Report).
//!
//! A run's figure stacks one panel per metric (heap bytes with the per-iteration peak as a
//! band, heap blocks, RSS, fds, threads) on a shared iteration axis: iteration boundaries are
//! marked, the warm-up is shaded, the fitted trend over the analysed samples is dashed with its
//! slope written on the panel, and each title is coloured by its verdict. The overview shows
//! one small panel per run: heap growth since the run's start, titled with the verdict.

use plots::{Band, Color, Figure, LineStyle, Panel, Series, Unit, XSpan};

use crate::report::{
    End, IntervalSample, MetricReport, Run, Source, SourceKind, XAxis, format_delta, format_ms,
    format_value,
};
use crate::sample::Metric;
use crate::verdict::Verdict;

mod concurrency;
mod files;
mod overview;
mod sweep;

pub use files::{check_plot_path, plot_paths, write_plots, write_plots_each};
pub use overview::overview;

/// Colour of a verdict, as used in titles (RSS leaks are warnings: amber, not red).
fn verdict_color(verdict: Verdict, gating: bool) -> Color {
    match verdict {
        Verdict::Leak if gating => Color::RED,
        Verdict::Leak | Verdict::Inconclusive => Color::AMBER,
        Verdict::Clean => Color::GREEN,
    }
}

/// A verdict's word ([`Verdict::word`]) on a picture: a leak that fails the run in capitals,
/// one that only warns (RSS in process) as a warning.
fn verdict_word(verdict: Verdict, gating: bool) -> String {
    match verdict {
        Verdict::Leak if gating => verdict.word().to_uppercase(),
        Verdict::Leak => "warning: grows".to_string(),
        Verdict::Inconclusive | Verdict::Clean => verdict.word().to_string(),
    }
}

/// The panel's title. RSS is drawn, as judged, without the pages of mapped files where the
/// run knows them.
fn title_of(metric: Metric, run: &Run) -> &'static str {
    match metric {
        Metric::HeapBytes => "heap live bytes",
        Metric::HeapBlocks => "heap live blocks",
        Metric::RssBytes if run.samples.iter().any(|s| s.rss_file_bytes.is_some()) => {
            "RSS less mapped files"
        }
        Metric::RssBytes => "RSS",
        Metric::Fds => "open file descriptors",
        Metric::Threads => "threads",
    }
}

fn unit_of(metric: Metric) -> Unit {
    if metric.is_bytes() {
        Unit::Bytes
    } else {
        Unit::Count
    }
}

/// A metric's panel: its title and unit, with counts labelled by what they count.
fn panel_of(title: impl Into<String>, metric: Metric) -> Panel {
    let panel = Panel::new(title, unit_of(metric));
    match metric {
        Metric::HeapBlocks => panel.y_label("blocks"),
        Metric::Fds => panel.y_label("fds"),
        Metric::Threads => panel.y_label("threads"),
        Metric::HeapBytes | Metric::RssBytes => panel,
    }
}

/// The stacked figure of one run; `baseline` (the same workload in another report) is drawn
/// thin and grey under the current series.
pub fn run_figure(run: &Run, baseline: Option<&Run>) -> Figure {
    if let Some(c) = &run.concurrency {
        return concurrency::concurrency_figure(run, c);
    }
    if let Some(s) = &run.sweep {
        return sweep::sweep_figure(run, s);
    }
    let xs = run.xs();
    let (x_label, x_unit) = match run.x_axis {
        XAxis::Iteration => ("iteration", Unit::Count),
        XAxis::Second => ("seconds", Unit::Plain),
    };
    // A failed run says so first: "inconclusive" over clean panels hid a crashed program.
    let failed = if run.failure.is_some() {
        "FAILED; "
    } else {
        ""
    };
    let mut figure = Figure::new(format!(
        "{} — {failed}{}{}",
        run.workload,
        verdict_word(run.verdict, true),
        beyond_verdict(run)
    ))
    .keep_title_end()
    .subtitle(subtitle(run))
    .x_axis(x_label, x_unit)
    .size(1200, 260 + 190 * run.metrics.len().max(1) as u32);
    for metric in Metric::ALL {
        let Some(ys) = run.series(metric) else {
            continue;
        };
        let mut panel = panel_of(title_of(metric, run), metric);
        if let Some(m) = run.metrics.get(&metric) {
            panel = annotate(panel, metric, m, run, &xs, &ys);
        }
        if let Some(base) = baseline.and_then(|b| b.series(metric).map(|ys| (b, ys)))
            && base.0.x_axis == run.x_axis
        {
            let (b, bys) = base;
            let bxs = b.xs();
            panel =
                panel.series(Series::new("baseline", bxs, bys, Color::GREY).style(LineStyle::Thin));
        }
        if metric == Metric::HeapBytes {
            panel = heap_extras(panel, run, &xs, &ys);
        }
        if metric == Metric::RssBytes {
            panel = all_of_rss(panel, run, &xs);
        }
        panel = budget_lines(panel, run, metric, &xs);
        // Only when they are denser than the marker lines: sparser, they would draw lines
        // across several iterations that no sample saw.
        if metric == Metric::RssBytes
            && run.is_program()
            && run.interval_samples.len() > run.samples.len()
        {
            panel = between_boundaries(panel, run, IntervalSample::judged_rss);
        }
        let label = match run.x_axis {
            XAxis::Iteration => "at boundary",
            XAxis::Second => "sampled",
        };
        let mut series = Series::new(label, xs.clone(), ys, Color::BLUE);
        if xs.len() <= 400 {
            series = series.with_points();
        }
        panel = panel.series(series);
        if xs.len() <= 200 && run.x_axis == XAxis::Iteration {
            panel = panel.x_markers(xs.iter().copied());
        }
        figure = figure.panel(panel);
    }
    figure
}

/// What failed the run besides its verdict, for the title: "; over --max-peak", "; a
/// regression against the baseline (peak)". (A run stopped by its budget was titled
/// "inconclusive" alone.)
fn beyond_verdict(run: &Run) -> String {
    let mut out = String::new();
    let over: Vec<&str> = run
        .budgets
        .iter()
        .filter(|b| b.exceeded)
        .map(|b| b.kind.flag())
        .collect();
    if !over.is_empty() {
        out.push_str(&format!("; over {}", over.join(", ")));
    }
    if let Some(c) = &run.baseline {
        let names: Vec<&str> = c.regressions().map(|ch| ch.metric.name()).collect();
        if !names.is_empty() {
            out.push_str(&format!(
                "; a regression against the baseline ({})",
                names.join(", ")
            ));
        }
    }
    out
}

/// All of RSS, file pages included, as a thin line beside the judged one, where the pages of
/// mapped files moved by a MiB or more: the line then says why the verdict differs from what
/// `top` shows. Not beside a leak whose line it would flatten (the axis is shared): a judged
/// leak from 7 to 19 MiB drawn under 230 MiB of file pages looked flat.
fn all_of_rss(panel: Panel, run: &Run, xs: &[f64]) -> Panel {
    let file: Vec<u64> = run
        .samples
        .iter()
        .filter_map(|s| s.rss_file_bytes)
        .collect();
    let moved = match (file.iter().min(), file.iter().max()) {
        (Some(lo), Some(hi)) => hi - lo >= 1 << 20,
        _ => false,
    };
    let leak = run
        .metrics
        .get(&Metric::RssBytes)
        .is_some_and(|m| m.verdict == crate::verdict::Verdict::Leak);
    let judged_top = run
        .samples
        .iter()
        .filter_map(|s| s.judged_rss())
        .fold(0.0, f64::max);
    let all: Option<Vec<f64>> = run
        .samples
        .iter()
        .map(|s| s.rss_bytes.map(|v| v as f64))
        .collect();
    let dwarfs = |ys: &[f64]| ys.iter().fold(0.0, |a: f64, &b| a.max(b)) > 2.0 * judged_top;
    match all {
        Some(ys) if moved && !(leak && dwarfs(&ys)) => panel.series(
            Series::new("with file pages", xs.to_vec(), ys, Color::GREY).style(LineStyle::Thin),
        ),
        _ => panel,
    }
}

/// An exceeded budget's limit as a dashed red line on its metric's panel: `--max-peak` on the
/// heap (above the run's starting heap), `--max-rss` on RSS. Only when exceeded: a limit far
/// above the data would flatten it.
fn budget_lines(mut panel: plots::Panel, run: &Run, metric: Metric, xs: &[f64]) -> plots::Panel {
    let (Some(&first), Some(&last)) = (xs.first(), xs.last()) else {
        return panel;
    };
    for b in run.budgets.iter().filter(|b| b.exceeded) {
        let level = match (b.kind, metric) {
            (crate::model::BudgetKind::Peak, Metric::HeapBytes) => {
                let start = run.samples.first().and_then(|s| s.heap_bytes).unwrap_or(0);
                start as f64 + b.limit_bytes as f64
            }
            (crate::model::BudgetKind::Rss, Metric::RssBytes) => b.limit_bytes as f64,
            _ => continue,
        };
        panel = panel.series(
            Series::new(
                format!(
                    "{} {}",
                    b.kind.flag(),
                    crate::format::format_bytes(b.limit_bytes as f64)
                ),
                vec![first, last],
                vec![level, level],
                Color::RED,
            )
            .style(LineStyle::Dashed),
        );
    }
    panel
}

fn subtitle(run: &Run) -> String {
    let mut parts = Vec::new();
    if let Some(d) = &run.description {
        parts.push(d.clone());
    }
    if let Some(sampling) = program_sampling(&run.source) {
        parts.push(sampling);
    }
    match run.x_axis {
        XAxis::Iteration if run.is_program() => {
            parts.push(format!("{} marked iterations", run.iterations))
        }
        XAxis::Iteration => parts.push(match run.iterations {
            1 => "1 iteration".to_string(),
            n => format!("{n} iterations"),
        }),
        XAxis::Second => parts.push(format!(
            "{} samples over {}",
            run.samples.len(),
            format_ms(run.samples.last().map_or(0.0, |s| s.elapsed_ms))
        )),
    }
    if let Some(e) = run.extensions.last() {
        parts.push(format!("extended: {}", e.reason));
    }
    match (&run.failure, program_ending(&run.source)) {
        (Some(_), Some(ending)) => parts.push(format!("FAILED: {ending}")),
        (Some(f), None) => parts.push(format!(
            "FAILED in iteration {}: {}",
            f.iteration, f.message
        )),
        (None, Some(ending)) => parts.push(ending),
        (None, None) => {}
    }
    parts.join(" · ")
}

/// "pid 4242, at lines matching /done/" (short: the subtitle is one line).
fn program_sampling(source: &Source) -> Option<String> {
    let pid = source.pid.map(|p| format!("pid {p}"));
    let how = match (&source.marker, source.interval_ms) {
        (Some(m), _) => Some(format!("at lines matching /{m}/")),
        (None, Some(ms)) => Some(format!("every {ms:.0} ms")),
        (None, None) => None,
    };
    let children = source
        .include_children
        .then(|| "with descendants".to_string());
    let parts: Vec<String> = [pid, how, children].into_iter().flatten().collect();
    (source.kind != SourceKind::InProcess && !parts.is_empty()).then(|| parts.join(", "))
}

/// "stopped by profile", "was killed by signal 6 (SIGABRT)", ... (short).
fn program_ending(source: &Source) -> Option<String> {
    Some(match (source.end?, source.exit) {
        (End::Exited, Some(exit)) => exit.to_string(),
        (End::Exited, None) => "ended".to_string(),
        (End::Iterations, _) => "stopped by profile".to_string(),
        (End::Duration, _) => "--duration ran out".to_string(),
        (End::Interrupted, _) => "interrupted".to_string(),
        (End::Vanished, _) => "the process ended".to_string(),
    })
}

/// Verdict colour, warm-up span, dashed trend and the slope note.
fn annotate(
    mut panel: Panel,
    metric: Metric,
    m: &MetricReport,
    run: &Run,
    xs: &[f64],
    ys: &[f64],
) -> Panel {
    let axis = run.x_axis;
    panel.title = format!(
        "{} — {}",
        title_of(metric, run),
        verdict_word(m.verdict, m.gating)
    );
    panel = panel.title_color(verdict_color(m.verdict, m.gating));
    let w = run.warmup_index(m.warmup);
    if w > 0
        && let (Some(&from), Some(&to)) = (xs.first(), xs.get(w))
    {
        panel = panel.x_span(XSpan {
            from,
            to,
            color: Color::GREY,
            label: match axis {
                XAxis::Iteration => format!("warm-up ({})", m.warmup),
                // Counted from the run's start, as the table and the reasons count it.
                XAxis::Second => format!("warm-up ({to:.1} s)"),
            },
        });
    }
    if let (Some(slope), true) = (m.slope(), ys.len() > w + 1) {
        let tail_x = &xs[w..];
        let tail_y = &ys[w..];
        // The line through the analysed samples with the report's slope (Theil-Sen's
        // intercept: the median offset), drawn only: no number on the panel comes from it.
        let offsets: Vec<f64> = tail_x
            .iter()
            .zip(tail_y)
            .map(|(x, y)| y - slope * x)
            .collect();
        let intercept = crate::verdict::median(&offsets);
        let trend: Vec<f64> = tail_x.iter().map(|x| intercept + slope * x).collect();
        let color = verdict_color(m.verdict, m.gating);
        panel = panel
            .series(Series::new("trend", tail_x.to_vec(), trend, color).style(LineStyle::Dashed));
        let bounds =
            m.ci.map(|[lo, hi]| {
                format!(
                    " [{}, {}]",
                    format_value(metric, lo),
                    format_value(metric, hi)
                )
            })
            .unwrap_or_default();
        panel = panel.note(format!(
            "slope {}{}{bounds}",
            format_delta(metric, slope),
            axis.per()
        ));
    }
    panel.note(format!(
        "growth after warm-up {}",
        format_delta(metric, m.growth)
    ))
}

/// The per-iteration peak as a band over the boundary values, and interval samples if any.
fn heap_extras(mut panel: Panel, run: &Run, xs: &[f64], ys: &[f64]) -> Panel {
    let peaks: Vec<f64> = run
        .samples
        .iter()
        .map(|s| s.heap_peak_bytes.map_or(f64::NAN, |p| p as f64))
        .collect();
    if band_visible(&peaks, ys) {
        panel = panel.band(Band {
            label: match run.x_axis {
                XAxis::Iteration => "peak within the iteration",
                XAxis::Second => "peak since the previous sample",
            }
            .into(),
            xs: xs.to_vec(),
            lo: ys.to_vec(),
            hi: peaks,
            color: Color::SKY_BLUE,
        });
    }
    between_boundaries(panel, run, |s| s.heap_bytes.map(|v| v as f64))
}

/// Whether the peaks rise visibly above the boundary values somewhere: by more than 2% of
/// the range the panel shows (a few pixels). An invisible band would still take a place in
/// the legend, announcing what the reader cannot find.
fn band_visible(peaks: &[f64], ys: &[f64]) -> bool {
    let shown = ys.iter().chain(peaks).filter(|v| v.is_finite());
    let (lo, hi) = shown.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
        (lo.min(v), hi.max(v))
    });
    let range = hi - lo;
    peaks
        .iter()
        .zip(ys)
        .any(|(p, y)| p.is_finite() && p - y > 0.02 * range)
}

/// The interval samples of one quantity, placed between the iteration boundaries.
fn between_boundaries(
    mut panel: Panel,
    run: &Run,
    value: impl Fn(&IntervalSample) -> Option<f64>,
) -> Panel {
    let between: Vec<(f64, f64)> = run
        .interval_samples
        .iter()
        .filter_map(|s| Some((interval_x(run, s.elapsed_ms, s.iteration)?, value(s)?)))
        .collect();
    if !between.is_empty() {
        let (ixs, iys) = between.into_iter().unzip();
        panel = panel.series(
            Series::new("between boundaries", ixs, iys, Color::SKY_BLUE).style(LineStyle::Thin),
        );
    }
    panel
}

/// Place a background sample on the iteration axis by its time within the iteration.
fn interval_x(run: &Run, elapsed_ms: f64, iteration: u32) -> Option<f64> {
    let i = iteration as usize;
    let start = run.samples.get(i.checked_sub(1)?)?.elapsed_ms;
    let end = run.samples.get(i).map_or(start, |s| s.elapsed_ms);
    let frac = if end > start {
        ((elapsed_ms - start) / (end - start)).clamp(0.0, 1.0)
    } else {
        0.0
    };
    Some((i - 1) as f64 + frac)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge;
    use crate::report::{HeapScope, Run};
    use crate::sample::Sample;

    /// A run of `n` iterations leaking 1 KiB and one block per iteration, fds flat.
    pub(super) fn leaking_run(name: &str, n: u32) -> Run {
        let samples: Vec<Sample> = (0..=n)
            .map(|i| Sample {
                iteration: i,
                elapsed_ms: f64::from(i),
                heap_bytes: Some(10_000 + 1024 * i64::from(i)),
                heap_blocks: Some(50 + i64::from(i)),
                heap_peak_bytes: (i > 0).then_some(12_000 + 1024 * i64::from(i)),
                allocated_bytes: (i > 0).then_some(1024),
                rss_bytes: Some(8 << 20),
                fds: Some(5),
                threads: Some(1),
                ..Sample::default()
            })
            .collect();
        let mut run = Run {
            iterations: n,
            samples,
            ..Run::new(name, HeapScope::Process)
        };
        judge::rejudge(&mut run, None);
        run
    }

    #[test]
    fn the_peak_band_is_drawn_only_where_it_shows() {
        // 2 KiB above the boundary on a 50 KiB rise: drawn.
        let ys: Vec<f64> = (0..20).map(|i| 10_000.0 + 2_560.0 * f64::from(i)).collect();
        let peaks: Vec<f64> = ys.iter().map(|y| y + 2_048.0).collect();
        assert!(band_visible(&peaks, &ys));
        // 40 B above a cache of 1 MiB that filled up: a band nobody could see.
        let ys: Vec<f64> = (0..20).map(|i| f64::from(i.min(4)) * 262_144.0).collect();
        let peaks: Vec<f64> = ys.iter().map(|y| y + 40.0).collect();
        assert!(!band_visible(&peaks, &ys));
        // Flat boundaries and one peak above them: the peak is the whole range.
        let mut peaks = vec![f64::NAN; 20];
        peaks[7] = 1_000.0;
        assert!(band_visible(&peaks, &[500.0; 20]));
        assert!(!band_visible(&[f64::NAN; 20], &[500.0; 20]));
    }

    #[test]
    fn a_run_figure_has_a_panel_per_metric_with_verdicts_trend_and_warm_up() {
        let run = leaking_run("box-leak", 40);
        let fig = run_figure(&run, None);
        let titles: Vec<&str> = fig.panels.iter().map(|p| p.title.as_str()).collect();
        assert_eq!(
            titles,
            [
                "heap live bytes — LEAK",
                "heap live blocks — LEAK",
                "RSS — clean",
                "open file descriptors — clean",
                "threads — clean"
            ]
        );
        let heap = &fig.panels[0];
        assert_eq!(heap.title_color, Color::RED);
        assert_eq!(fig.panels[3].title_color, Color::GREEN);
        let warmup = run.metrics[&Metric::HeapBytes].warmup;
        assert_eq!(heap.x_spans[0].to, f64::from(warmup), "warm-up shaded");
        let trend = heap
            .series
            .iter()
            .find(|s| s.label == "trend")
            .expect("trend");
        assert_eq!(trend.style, LineStyle::Dashed);
        assert_eq!(
            trend.xs.len(),
            41 - warmup as usize,
            "over the analysed tail"
        );
        assert!(
            heap.notes
                .iter()
                .any(|n| n == "slope +1.0 KiB/iteration [1.0 KiB, 1.0 KiB]")
        );
        assert_eq!(heap.bands.len(), 1, "per-iteration peak band");
        assert_eq!(heap.x_markers.len(), 41, "iteration boundaries marked");
        let data = heap
            .series
            .iter()
            .find(|s| s.label == "at boundary")
            .unwrap();
        assert_eq!(data.ys.len(), 41);
        assert!(fig.title.contains("LEAK"));
    }

    #[test]
    fn the_peak_band_is_named_for_the_axis_it_is_drawn_on() {
        let band_label = |run: &Run| run_figure(run, None).panels[0].bands[0].label.clone();
        let mut run = leaking_run("box-leak", 20);
        assert_eq!(band_label(&run), "peak within the iteration");
        // A program sampled on a clock has no iterations: each peak is since the sample before.
        run.x_axis = XAxis::Second;
        assert_eq!(band_label(&run), "peak since the previous sample");
    }

    #[test]
    fn a_merged_run_shades_its_warm_up_and_fits_its_trend_over_the_right_iterations() {
        // 70,000 iterations leaking 1 KiB each: more than the store keeps, so every stored
        // sample stands for two iterations (`span` 2) and sample k is iteration 2k.
        let n = 70_000u32;
        let mut store = crate::store::SampleStore::new(crate::store::MAX_STORED_SAMPLES, 0);
        for i in 0..=n {
            store.push(Sample {
                iteration: i,
                elapsed_ms: f64::from(i),
                heap_bytes: Some(10_000 + 1024 * i64::from(i)),
                heap_blocks: Some(50),
                allocated_bytes: (i > 0).then_some(1024),
                fds: Some(5),
                threads: Some(1),
                ..Sample::default()
            });
        }
        let mut run = Run {
            iterations: n,
            samples: store.finish(),
            ..Run::new("merged", HeapScope::Process)
        };
        assert_eq!(run.samples[1].span, 2, "the run was merged");
        judge::rejudge(&mut run, None);
        let m = &run.metrics[&Metric::HeapBytes];
        assert_eq!(m.verdict, Verdict::Leak, "{}", m.reason);
        assert_eq!(
            m.slope_per_iteration,
            Some(1024.0),
            "per iteration, not per sample"
        );
        // The automatic warm-up is 20% of the iterations, however they are stored.
        assert!(
            (14_000..=14_100).contains(&m.warmup),
            "warm-up {} iterations",
            m.warmup
        );
        let fig = run_figure(&run, None);
        let heap = &fig.panels[0];
        assert_eq!(heap.x_spans[0].from, 0.0);
        assert_eq!(
            heap.x_spans[0].to,
            f64::from(m.warmup),
            "shaded up to the warm-up"
        );
        assert_eq!(heap.x_spans[0].label, format!("warm-up ({})", m.warmup));
        let trend = heap.series.iter().find(|s| s.label == "trend").unwrap();
        assert_eq!(
            trend.xs.first(),
            Some(&f64::from(m.warmup)),
            "from the warm-up on"
        );
        assert_eq!(
            trend.xs.last(),
            Some(&f64::from(n)),
            "to the last iteration"
        );
        // The dashed line lies on the data: 1 KiB per iteration from 10,000 B.
        let at_end = trend.ys.last().unwrap();
        assert!(
            (at_end - (10_000.0 + 1024.0 * f64::from(n))).abs() < 1.0,
            "{at_end}"
        );
    }

    #[test]
    fn an_exceeded_budget_is_in_the_title_and_drawn_as_its_limit() {
        let mut run = leaking_run("cache", 20);
        run.budgets.push(crate::model::BudgetCheck {
            kind: crate::model::BudgetKind::Peak,
            limit_bytes: 4096,
            worst_bytes: Some(32_000),
            iteration: Some(20),
            exceeded: true,
            message: String::new(),
        });
        let fig = run_figure(&run, None);
        assert!(fig.title.ends_with("; over --max-peak"), "{}", fig.title);
        let heap = &fig.panels[0];
        let limit = heap
            .series
            .iter()
            .find(|s| s.label == "--max-peak 4.0 KiB")
            .expect("the limit drawn");
        // Above the run's starting heap, across the run.
        assert_eq!(limit.ys, [10_000.0 + 4096.0; 2]);
        assert_eq!(limit.xs, [0.0, 20.0]);
    }
}
