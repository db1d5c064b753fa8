// Owns the Markdown summary of a Report, written for a pull-request comment or a CI summary.
// Must never decide anything: verdicts, budgets and regressions are read from the Report.

use std::fmt::Write;

use super::{Report, Run, XAxis, format_delta};
use crate::baseline::Status;
use crate::format::format_bytes;
use crate::model::{Outcome, Verdict};
use crate::sample::Metric;

pub(super) fn render(report: &Report) -> String {
    let mut out = String::new();
    let decision = report.decision();
    let mark = match decision.outcome {
        Outcome::Clean if report.verdict == Verdict::Inconclusive => "⚠️",
        Outcome::Clean => "✅",
        Outcome::Interrupted => "⏹️",
        Outcome::Leak | Outcome::Usage | Outcome::WorkloadFailed => "❌",
    };
    let _ = writeln!(
        out,
        "## Leak check: {mark} {} (exit {})\n",
        decision.headline,
        decision.outcome.code()
    );
    let _ = writeln!(
        out,
        "| workload | verdict | memory growth | heap peak | allocated / iteration | vs baseline | budget |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|");
    for run in &report.runs {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            code(&run.workload),
            verdict_cell(run),
            slope_cell(run),
            peak_cell(run),
            allocated_cell(run),
            baseline_cell(run),
            budget_cell(run),
        );
    }
    for run in &report.runs {
        if let Some((c, rows)) = super::levels::rows(run) {
            let _ = writeln!(out, "\n### {}: K copies at once\n", code(&run.workload));
            let _ = writeln!(out, "| {} |", super::levels::HEADER.join(" | "));
            let _ = writeln!(out, "|{}", "---|".repeat(super::levels::HEADER.len()));
            for row in rows {
                let _ = writeln!(out, "| {} |", row.join(" | "));
            }
            let _ = writeln!(out, "\n{}", c.scaling.sentence);
            for v in c.violations() {
                let _ = writeln!(out, "\n- ❌ {v}");
            }
        }
    }
    for run in &report.runs {
        if let Some((s, rows)) = super::points::rows(run) {
            let _ = writeln!(
                out,
                "\n### {}: memory against input size\n",
                code(&run.workload)
            );
            let _ = writeln!(out, "| {} |", super::points::HEADER.join(" | "));
            let _ = writeln!(out, "|{}", "---:|".repeat(super::points::HEADER.len()));
            for row in rows {
                let _ = writeln!(out, "| {} |", row.join(" | "));
            }
            let _ = writeln!(out);
            for fit in super::points::fit_lines(s) {
                let _ = writeln!(out, "- {fit}");
            }
            if let Some(leak) = s.retains_input() {
                let _ = writeln!(out, "- ❌ {leak}");
            }
            for v in s.violations() {
                let _ = writeln!(out, "- ❌ {v}");
            }
            for u in s.undecided() {
                let _ = writeln!(out, "- ❔ {u}");
            }
        }
    }
    for run in &report.runs {
        if let Some(rows) = super::spans::rows(run) {
            let _ = writeln!(out, "\n### {}: heap per span\n", code(&run.workload));
            let _ = writeln!(out, "| {} |", super::spans::HEADER.join(" | "));
            let _ = writeln!(
                out,
                "|---|{}",
                "---:|".repeat(super::spans::HEADER.len() - 1)
            );
            for row in rows {
                let _ = writeln!(out, "| {} |", row.join(" | "));
            }
            if let Some(note) = super::spans::note(run) {
                let _ = writeln!(out, "\n{note}.");
            }
        }
    }
    let details: Vec<String> = report.runs.iter().filter_map(details).collect();
    if !details.is_empty() {
        let _ = writeln!(out, "\n### Why\n");
        for d in details {
            out.push_str(&d);
        }
    }
    if let Some(b) = &report.baseline {
        let _ = writeln!(out, "\nCompared with baseline {}.", code(&b.path));
        if !b.missing.is_empty() {
            let _ = writeln!(
                out,
                "Not run this time (in the baseline): {}.",
                ticked(&b.missing)
            );
        }
        if !b.new.is_empty() {
            let _ = writeln!(out, "New (not in the baseline): {}.", ticked(&b.new));
        }
        for unlike in &b.unlike {
            let _ = writeln!(out, "Not compared, another kind: {unlike}.");
        }
    }
    for note in &report.notes {
        let _ = writeln!(out, "\n> {note}");
    }
    out
}

/// `text` as a code span that survives any text in a table: fenced with more backticks than
/// it holds in a row (padded where it starts or ends with one), `|` escaped (GitHub splits
/// table cells on it even inside a code span). A program's run is named by its command line,
/// which may hold both: `sh -c 'echo "a|b"'` broke the summary's table.
fn code(text: &str) -> String {
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    let pad = if text.starts_with('`') || text.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{}{pad}{fence}", text.replace('|', "\\|"))
}

fn ticked(names: &[String]) -> String {
    names.iter().map(|n| code(n)).collect::<Vec<_>>().join(", ")
}

fn verdict_cell(run: &Run) -> String {
    if let Some(f) = &run.failure {
        return match run.source.exit {
            Some(exit) => format!("💥 {exit}"),
            None if f.kind == crate::report::FailureKind::Setup => "💥 setup failed".into(),
            None => format!("💥 failed in iteration {}", f.iteration),
        };
    }
    // A sweep's verdict is its growth class against the limit: a failed --max-complexity
    // once read "✅ clean" beside the run's failure.
    if run
        .sweep
        .as_ref()
        .is_some_and(|s| !s.violations().is_empty())
    {
        return "❌ above --max-complexity".into();
    }
    let leaking = run.leaking_metrics();
    let word = run.verdict.word();
    match run.verdict {
        Verdict::Leak => format!("❌ {word} ({})", leaking.join(", ")),
        Verdict::Inconclusive => format!("⚠️ {word}"),
        Verdict::Clean => format!("✅ {word}"),
    }
}

/// The heap's slope, or for a program without heap counters the RSS's, with its unit.
fn slope_cell(run: &Run) -> String {
    if let Some(s) = &run.sweep {
        // A sweep's growth is against the input size: the gated fields' classes.
        let classes: Vec<String> = s
            .gated
            .iter()
            .filter_map(|f| {
                let fit = s.fits.get(f)?;
                let class = fit
                    .model
                    .map_or("cannot tell".to_string(), |m| m.to_string());
                Some(format!("{} {class}", f.trim_end_matches("_bytes")))
            })
            .collect();
        return if classes.is_empty() {
            "–".into()
        } else {
            classes.join(", ")
        };
    }
    let (metric, label) = if run.is_program() && !run.metrics.contains_key(&Metric::HeapBytes) {
        (Metric::RssBytes, "RSS ")
    } else {
        (Metric::HeapBytes, "heap ")
    };
    match run.metrics.get(&metric).and_then(|m| m.slope()) {
        Some(s) => format!("{label}{}{}", format_delta(metric, s), run.x_axis.per()),
        None => "–".into(),
    }
}

fn peak_cell(run: &Run) -> String {
    crate::baseline::measure(run, crate::baseline::Compared::Peak).map_or("–".into(), format_bytes)
}

fn allocated_cell(run: &Run) -> String {
    crate::baseline::measure(run, crate::baseline::Compared::Allocated)
        .map_or("–".into(), format_bytes)
}

fn baseline_cell(run: &Run) -> String {
    let Some(c) = &run.baseline else {
        return "–".into();
    };
    let changed: Vec<String> = c
        .changes
        .iter()
        .filter(|ch| ch.status != Status::Same)
        .map(|ch| {
            let mark = match ch.status {
                Status::Regression if ch.gating => "🔺",
                Status::Regression => "⚠️",
                _ => "🔻",
            };
            let value = |v: f64, class: Option<crate::model::Complexity>| {
                let term = class.map_or("", |c| c.term());
                if term.is_empty() {
                    ch.metric.format(v)
                } else {
                    format!("{} × {term}", ch.metric.format(v))
                }
            };
            match ch.classes {
                // A sweep's class changed: the classes, not coefficients of different terms.
                Some([was, now]) if was != now => {
                    format!("{mark} {} {was} → {now}", ch.metric.name())
                }
                classes => format!(
                    "{mark} {} {} → {}",
                    ch.metric.name(),
                    value(ch.old, classes.map(|c| c[0])),
                    value(ch.new, classes.map(|c| c[1]))
                ),
            }
        })
        .collect();
    if changed.is_empty() {
        "no change".into()
    } else {
        changed.join("<br>")
    }
}

fn budget_cell(run: &Run) -> String {
    if run.budgets.is_empty() {
        return "–".into();
    }
    let over: Vec<String> = run
        .budgets
        .iter()
        .filter(|b| b.exceeded)
        .map(|b| format!("❌ {}", b.kind.flag()))
        .chain(
            run.budgets
                .iter()
                .filter(|b| b.worst_bytes.is_none())
                .map(|b| format!("⚠️ {} not checked", b.kind.flag())),
        )
        .collect();
    if over.is_empty() {
        "within".into()
    } else {
        over.join("<br>")
    }
}

/// The sentences behind a run that did not pass cleanly.
fn details(run: &Run) -> Option<String> {
    let mut lines = Vec::new();
    match (
        &run.failure,
        run.source.ending(run.iterations, run.over_budget()),
    ) {
        (Some(f), Some(ending)) if run.x_axis == XAxis::Iteration => {
            lines.push(format!("{ending}, during marked iteration {}", f.iteration));
        }
        (Some(_), Some(ending)) => lines.push(ending),
        (Some(f), None) => lines.push(f.sentence()),
        (None, _) => {}
    }
    lines.extend(run.source.notes.iter().cloned());
    for (metric, m) in &run.metrics {
        if m.verdict != Verdict::Clean && (m.gating || m.verdict == Verdict::Leak) {
            lines.push(format!("{metric}: {}", m.reason));
        }
    }
    lines.extend(
        run.budgets
            .iter()
            .filter(|b| b.exceeded)
            .map(|b| b.message.clone()),
    );
    if let Some(c) = &run.baseline {
        lines.extend(
            c.regressions()
                .map(|ch| format!("regression: {}", ch.sentence())),
        );
        lines.extend(c.warnings().map(|ch| {
            format!(
                "regression, warning only: {} (in process RSS only warns: it is the whole \
                 process's)",
                ch.sentence()
            )
        }));
        lines.extend(
            c.improvements()
                .map(|ch| format!("improvement: {}", ch.sentence())),
        );
    }
    if lines.is_empty() {
        return None;
    }
    if let Some(sampling) = run.source.sampling() {
        lines.insert(0, sampling);
    }
    let mut out = format!("**{}**\n", code(&run.workload));
    for l in lines {
        let _ = writeln!(out, "- {l}");
    }
    out.push('\n');
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::code;

    #[test]
    fn names_with_backticks_and_pipes_stay_one_code_span_in_one_cell() {
        assert_eq!(code("box-leak"), "`box-leak`");
        assert_eq!(code("sh -c 'a|b'"), "`sh -c 'a\\|b'`");
        assert_eq!(code("echo `x`"), "`` echo `x` ``");
        assert_eq!(code("a``b"), "```a``b```");
    }
}
