// Owns the overview picture of a Report: one small panel per run, titled with its verdict.
// Must never measure or judge: every number and word on it is read from the Report.

use plots::{Color, Figure, Layout, Series, Unit, XSpan};

use crate::report::Report;
use crate::sample::Metric;
use crate::verdict::Verdict;

use super::{panel_of, verdict_color, verdict_word};

/// One small panel per run: heap growth since the run's start (or fds when there is no heap),
/// titled with the workload and its verdict.
pub fn overview(report: &Report) -> Figure {
    let columns = match report.runs.len() {
        0..=2 => report.runs.len().max(1),
        3..=4 => 2,
        5..=9 => 3,
        _ => 4,
    };
    if !report.runs.is_empty() && report.runs.iter().all(|r| r.sweep.is_some()) {
        return super::sweep::sweep_overview(report, columns);
    }
    let rows = report.runs.len().div_ceil(columns).max(1) as u32;
    // The report's status as every output words it (a saved report keeps its own), first:
    // a title too long for the picture loses the rest, never the status.
    let decision = report.decision();
    let mut figure = Figure::new(format!(
        "leak check: {} (exit {}) — memory over iterations of {} workloads",
        decision.headline,
        decision.outcome.code(),
        report.runs.len()
    ))
    .subtitle(
        "growth since each run's start of the leaking metric (else heap bytes); \
         title colour = verdict: red leak, amber inconclusive, green clean",
    )
    .layout(Layout::Grid { columns })
    .x_axis("iteration", Unit::Count)
    .size(400 * columns as u32 + 80, 230 * rows + 120);
    for run in &report.runs {
        let xs = run.xs();
        // Show what leaks; else the heap; else RSS for a program; else fds (no profiler::Alloc).
        let metric = run
            .metrics
            .iter()
            .find(|(_, m)| m.gating && m.verdict == Verdict::Leak)
            .map(|(k, _)| *k)
            .or_else(|| run.series(Metric::HeapBytes).map(|_| Metric::HeapBytes))
            .or_else(|| run.is_program().then_some(Metric::RssBytes))
            .unwrap_or(Metric::Fds);
        let ys: Vec<f64> = run
            .series(metric)
            .map(|ys| {
                let first = ys.first().copied().unwrap_or(0.0);
                ys.into_iter().map(|y| y - first).collect()
            })
            .unwrap_or_default();
        let leaking = run.leaking_metrics();
        let label = if leaking.is_empty() {
            verdict_word(run.verdict, true)
        } else {
            format!(
                "{} ({})",
                verdict_word(Verdict::Leak, true),
                leaking.join(", ")
            )
        };
        let mut panel = panel_of(format!("{}: {label}", run.workload), metric)
            .title_color(verdict_color(run.verdict, true))
            .series(Series::new(
                format!("{} growth", metric.name()),
                xs.clone(),
                ys,
                Color::BLUE,
            ));
        if run.warmup > 0
            && let (Some(&from), Some(&to)) = (xs.first(), xs.get(run.warmup_index(run.warmup)))
        {
            panel = panel.x_span(XSpan {
                from,
                to,
                color: Color::GREY,
                label: String::new(),
            });
        }
        figure = figure.panel(panel);
    }
    figure
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::figure::tests::leaking_run;
    use crate::judge;

    #[test]
    fn the_overview_has_one_panel_per_run_showing_what_leaks() {
        let mut fd_run = leaking_run("fd-leak", 20);
        for (i, s) in fd_run.samples.iter_mut().enumerate() {
            s.heap_bytes = Some(10_000);
            s.heap_blocks = Some(50);
            s.fds = Some(5 + i as u64);
        }
        judge::rejudge(&mut fd_run, None);
        let report = Report::new(vec![leaking_run("box-leak", 20), fd_run]);
        let fig = overview(&report);
        assert_eq!(fig.layout, Layout::Grid { columns: 2 });
        assert_eq!(fig.panels.len(), 2);
        assert_eq!(fig.panels[1].title, "fd-leak: LEAK (fds)");
        assert_eq!(fig.panels[1].series[0].label, "fds growth");
        assert_eq!(fig.panels[1].series[0].ys.last(), Some(&20.0));
    }
}
