// Owns the terminal table of a Report: one block per run, one row per metric, verdicts coloured.
// Must never decide anything: it prints what the Report holds.

use std::fmt::Write;

use super::{Report, Run, XAxis, format_delta, format_value};
use crate::format::{format_bytes, format_count, format_ms};
use crate::model::{Outcome, Verdict};
use crate::sample::Metric;

/// How to print the table.
#[derive(Debug, Clone, Copy, Default)]
pub struct TextOptions {
    /// ANSI colours (for a terminal).
    pub color: bool,
    /// The session's exit status, when it ended worse than the report's own
    /// ([`Report::outcome`]): an output that could not be written makes exit 2, and the
    /// overall line then says so instead of "passed".
    pub exit: Option<Outcome>,
}

pub(super) fn render(report: &Report, options: &TextOptions) -> String {
    let mut out = String::new();
    for run in &report.runs {
        render_run(&mut out, run, options);
        out.push('\n');
    }
    for note in &report.notes {
        let _ = writeln!(out, "note: {note}");
    }
    if let Some(b) = &report.baseline {
        let _ = writeln!(out, "compared with baseline {}", b.path);
        if !b.missing.is_empty() {
            let _ = writeln!(
                out,
                "  not run this time (in the baseline): {}",
                b.missing.join(", ")
            );
        }
        if !b.new.is_empty() {
            let _ = writeln!(out, "  new (not in the baseline): {}", b.new.join(", "));
        }
        for unlike in &b.unlike {
            let _ = writeln!(out, "  not compared, another kind: {unlike}");
        }
    }
    let (outcome, headline) = overall(report, options.exit);
    let tone = match outcome {
        Outcome::Clean => report.verdict,
        Outcome::Interrupted => Verdict::Inconclusive,
        Outcome::Leak | Outcome::Usage | Outcome::WorkloadFailed => Verdict::Leak,
    };
    let _ = writeln!(
        out,
        "overall: {} (exit {})",
        paint(tone, options, &headline),
        outcome.code()
    );
    out
}

/// The status of the overall line: the report's own ([`Report::decision`]), unless the
/// session ended worse because an output could not be written (exit 2).
fn overall(report: &Report, exit: Option<Outcome>) -> (Outcome, String) {
    let decision = report.decision();
    match exit {
        Some(Outcome::Usage) if decision.outcome != Outcome::Usage => {
            let headline = if decision.outcome == Outcome::Clean {
                "failed: an output could not be written".to_string()
            } else {
                format!("{}; an output could not be written", decision.headline)
            };
            (Outcome::Usage, headline)
        }
        _ => (decision.outcome, decision.headline),
    }
}

fn render_run(out: &mut String, run: &Run, options: &TextOptions) {
    // A run a budget stopped failed on that budget, whatever its too-short verdicts say.
    let over = if run.over_budget() {
        paint(Verdict::Leak, options, ", over budget")
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "{}  {}{over}",
        bold(&run.workload, options),
        paint(run.verdict, options, run.verdict.word())
    );
    if let Some(d) = &run.description {
        let _ = writeln!(out, "  {d}");
    }
    if let Some(sampling) = run.source.sampling() {
        let _ = writeln!(out, "  {sampling}");
    }
    let mut facts = match (run.x_axis, run.warmup_secs()) {
        _ if run.sweep.is_some() => {
            let sizes = run.sweep.as_ref().map_or(0, |s| s.points.len());
            vec![format!(
                "{sizes} size{}, {} repetitions in all",
                if sizes == 1 { "" } else { "s" },
                run.iterations
            )]
        }
        (XAxis::Second, _) if run.samples.is_empty() => vec!["no sample taken".to_string()],
        (XAxis::Second, Some(w)) => vec![format!(
            "{} samples over {}, warm-up {w:.1} s",
            run.samples.len(),
            format_ms(run.samples.last().map_or(0.0, |s| s.elapsed_ms))
        )],
        _ if run.is_program() => vec![format!(
            "{}, warm-up {}",
            crate::format::iterations_of(u64::from(run.iterations), "marked "),
            run.warmup
        )],
        _ => vec![format!(
            "{}, warm-up {}",
            crate::format::iterations_of(u64::from(run.iterations), ""),
            run.warmup
        )],
    };
    if let (Some(d), XAxis::Iteration) = (run.median_duration_ms(), run.x_axis) {
        facts.push(format!("{} per iteration", format_ms(d)));
    }
    if let (Some(bytes), Some(n)) = (
        run.allocated_per_iteration(),
        run.allocations_per_iteration(),
    ) {
        // A time series samples every interval: its rate is per second, like its slopes.
        let (per, scale) = match (run.x_axis, run.source.interval_ms) {
            (XAxis::Second, Some(ms)) if ms > 0.0 => ("second", 1e3 / ms),
            _ => ("iteration", 1.0),
        };
        let n = n * scale;
        // A program's counters are malloc's (the preload library's): a JVM allocating MiB of
        // objects per iteration read "0 B allocated per iteration".
        let how = if run.heap_scope == crate::model::HeapScope::Program {
            "malloc'd"
        } else {
            "allocated"
        };
        facts.push(format!(
            "{} {how} per {per} ({} {})",
            format_bytes(bytes * scale),
            format_count(n.round()),
            if n == 1.0 {
                "allocation"
            } else {
                "allocations"
            }
        ));
    }
    if let Some(peak) = run.peak_above_start() {
        facts.push(format!("heap peak {} above the start", format_bytes(peak)));
    }
    let _ = writeln!(out, "  {}", facts.join(" · "));
    for e in &run.extensions {
        let _ = writeln!(out, "  extended {} -> {}: {}", e.from, e.to, e.reason);
    }
    match (
        &run.failure,
        run.source.ending(run.iterations, run.over_budget()),
    ) {
        (Some(f), Some(ending)) => {
            let when = match run.x_axis {
                XAxis::Iteration => format!("during marked iteration {}", f.iteration),
                XAxis::Second => match run.samples.last() {
                    Some(s) => format!("after {}", format_ms(s.elapsed_ms)),
                    None => "before its first sample".to_string(),
                },
            };
            let _ = writeln!(
                out,
                "  {} {ending}, {when}",
                paint(Verdict::Leak, options, "FAILED:")
            );
        }
        (Some(f), None) => {
            let _ = writeln!(
                out,
                "  {} {}",
                paint(Verdict::Leak, options, "FAILED:"),
                f.sentence()
            );
        }
        (None, Some(ending)) => {
            let _ = writeln!(out, "  ended: {ending}");
        }
        (None, None) => {}
    }
    for note in &run.source.notes {
        let _ = writeln!(out, "  note: {note}");
    }
    if run.sweep.is_some() {
        render_sweep(out, run, options);
        render_comparison(out, run, options);
        return;
    }
    let per = match run.x_axis {
        XAxis::Iteration => "per iteration",
        XAxis::Second => "per second",
    };
    let header = ["metric", "after warm-up", "end", "growth", per, "verdict"];
    let mut rows: Vec<([String; 6], Verdict, String)> = Vec::new();
    for metric in Metric::ALL {
        let Some(m) = run.metrics.get(&metric) else {
            continue;
        };
        let slope = match (m.slope(), m.ci) {
            (Some(s), Some([lo, hi])) => format!(
                "{} [{}, {}]",
                format_delta(metric, s),
                format_value(metric, lo),
                format_value(metric, hi)
            ),
            (Some(s), None) => format_delta(metric, s),
            _ => "-".to_string(),
        };
        let word = if !m.gating && m.verdict == Verdict::Leak {
            "warning".to_string()
        } else {
            m.verdict.word().to_string()
        };
        rows.push((
            [
                metric.name().to_string(),
                format_value(metric, m.after_warmup),
                format_value(metric, m.end),
                format_delta(metric, m.growth),
                slope,
                word,
            ],
            m.verdict,
            m.reason.clone(),
        ));
    }
    if rows.is_empty() {
        let _ = writeln!(out, "  no metric could be judged");
        return;
    }
    let mut widths = header.map(str::len);
    for (cells, _, _) in &rows {
        for (w, c) in widths.iter_mut().zip(cells) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String; 6], verdict: Option<Verdict>, reason: &str| {
        let mut s = String::from("  ");
        for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
            let pad = w - c.chars().count();
            let cell = match (i, verdict) {
                (5, Some(v)) => paint(v, options, c),
                _ => c.clone(),
            };
            if i == 0 || i == 5 {
                let _ = write!(s, "{cell}{}  ", " ".repeat(pad));
            } else {
                let _ = write!(s, "{}{cell}  ", " ".repeat(pad));
            }
        }
        s.push_str(reason);
        s.trim_end().to_string()
    };
    let _ = writeln!(out, "{}", line(&header.map(String::from), None, "reason"));
    for (cells, verdict, reason) in &rows {
        let _ = writeln!(out, "{}", line(cells, Some(*verdict), reason));
    }
    render_sites(out, run);
    for b in &run.budgets {
        let status = if b.exceeded {
            paint(Verdict::Leak, options, "over budget:")
        } else {
            "budget:".to_string()
        };
        let _ = writeln!(out, "  {status} {}", b.message);
    }
    render_comparison(out, run, options);
    render_levels(out, run, options);
    render_spans(out, run);
}

/// Heap per span (`SpanMemory`), most retained first.
fn render_spans(out: &mut String, run: &Run) {
    let Some(rows) = super::spans::rows(run) else {
        return;
    };
    let _ = writeln!(out, "  heap per span:");
    table(out, &super::spans::HEADER, &rows, true);
    if let Some(note) = super::spans::note(run) {
        let _ = writeln!(out, "  ({note})");
    }
}

/// A table under a section's title: a header and rows of cells, columns right-aligned (the
/// first one left-aligned when `names_first`), indented by two spaces.
fn table<const N: usize>(
    out: &mut String,
    header: &[&str; N],
    rows: &[[String; N]],
    names_first: bool,
) {
    let mut widths = header.map(str::len);
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let padded: Vec<String> = cells
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, w))| {
                if i == 0 && names_first {
                    format!("{c:<w$}")
                } else {
                    format!("{c:>w$}")
                }
            })
            .collect();
        format!("  {}", padded.join("  ")).trim_end().to_string()
    };
    let _ = writeln!(out, "{}", line(&mut header.iter().copied()));
    for row in rows {
        let _ = writeln!(out, "{}", line(&mut row.iter().map(String::as_str)));
    }
}

/// The run against its baseline: regressions, improvements, or no change.
fn render_comparison(out: &mut String, run: &Run, options: &TextOptions) {
    if let Some(c) = &run.baseline {
        let kinds: [(Verdict, &str, Vec<&crate::model::Change>, &str); 3] = [
            (Verdict::Leak, "regression:", c.regressions().collect(), ""),
            (
                Verdict::Inconclusive,
                "regression, warning only:",
                c.warnings().collect(),
                " (in process RSS only warns: it is the whole process's)",
            ),
            (
                Verdict::Clean,
                "improvement:",
                c.improvements().collect(),
                "",
            ),
        ];
        for (verdict, label, changes, why) in &kinds {
            for ch in changes {
                let label = paint(*verdict, options, label);
                let _ = writeln!(out, "  {label} {}{why}", ch.sentence());
            }
        }
        if kinds.iter().all(|(_, _, changes, _)| changes.is_empty()) {
            let _ = writeln!(
                out,
                "  baseline: no change beyond tolerance ({} quantities compared)",
                c.changes.len()
            );
        }
    }
}

/// The `--sweep` points as a table, a line per fit, the leak of the input and any class
/// above `--max-complexity`.
fn render_sweep(out: &mut String, run: &Run, options: &TextOptions) {
    let Some((s, rows)) = super::points::rows(run) else {
        return;
    };
    let _ = writeln!(out, "  memory against input size:");
    table(out, &super::points::HEADER, &rows, false);
    for fit in super::points::fit_lines(s) {
        let _ = writeln!(out, "  {fit}");
    }
    if let Some(leak) = s.retains_input() {
        let _ = writeln!(out, "  {} {leak}", paint(Verdict::Leak, options, "leak:"));
    }
    for v in s.violations() {
        let _ = writeln!(
            out,
            "  {} {v}",
            paint(Verdict::Leak, options, "over limit:")
        );
    }
    for u in s.undecided() {
        let _ = writeln!(
            out,
            "  {} {u}",
            paint(Verdict::Inconclusive, options, "undecided:")
        );
    }
}

/// The call sites found by attribution, top 5.
fn render_sites(out: &mut String, run: &Run) {
    let Some(info) = &run.attribution else {
        if let Some(note) = &run.attribution_note {
            let _ = writeln!(out, "  {note}");
        }
        return;
    };
    if info.method == "sampled" {
        let interval = info
            .interval_bytes
            .map(|[lo, hi]| {
                if lo == hi {
                    format!("one per {} allocated", format_bytes(lo as f64))
                } else {
                    format!(
                        "one per {} to {} allocated",
                        format_bytes(lo as f64),
                        format_bytes(hi as f64)
                    )
                }
            })
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  call sites (sampled during the run: {} samples, {interval}, {:.1} ms):",
            format_count(info.samples.unwrap_or(0) as f64),
            info.sampling_ms.unwrap_or(0.0)
        );
    } else {
        let passes: Vec<String> = info.passes.iter().map(u32::to_string).collect();
        let slowdown = info
            .slowdown
            .map(|s| format!(", {s:.0}x slower than counting"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  call sites (dhat passes of {} iterations{slowdown}; dhat file: {}):",
            passes.join("/"),
            info.dhat_file.as_deref().unwrap_or("-")
        );
    }
    match (&run.attribution_note, run.leak_sites.is_empty()) {
        (Some(note), _) => {
            let _ = writeln!(out, "    {note}");
        }
        (None, true) => {
            let _ = writeln!(
                out,
                "    none retains memory in proportion to the iterations"
            );
        }
        (None, false) => {}
    }
    for site in run.leak_sites.iter().take(5) {
        let bounds = |ci: Option<[f64; 2]>, f: fn(f64) -> String| {
            ci.map(|[lo, hi]| format!(" ({} to {})", f(lo), f(hi)))
                .unwrap_or_default()
        };
        let _ = writeln!(
            out,
            "    {}{} and {}{} blocks per iteration at {} in {}{}",
            format_bytes(site.bytes_per_iteration),
            bounds(site.bytes_per_iteration_ci, format_bytes),
            format_count(site.blocks_per_iteration),
            bounds(site.blocks_per_iteration_ci, format_count),
            site.location,
            site.function,
            match (site.samples, site.growth.as_deref()) {
                (Some(n), Some("regrown")) => format!(" [regrown: {n} large blocks held]"),
                (Some(n), _) => format!(" [{n} samples]"),
                (None, _) => String::new(),
            }
        );
        for frame in site.backtrace.iter().skip(1).take(3) {
            let _ = writeln!(out, "        called from {frame}");
        }
    }
    if let Some(c) = &info.cross_check {
        let _ = writeln!(out, "    warning: dhat and the counters disagree: {c}");
    }
}

fn paint(v: Verdict, options: &TextOptions, text: &str) -> String {
    if !options.color {
        return text.to_string();
    }
    let code = match v {
        Verdict::Leak => "1;31",
        Verdict::Clean => "32",
        Verdict::Inconclusive => "33",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

fn bold(text: &str, options: &TextOptions) -> String {
    if options.color {
        format!("\x1b[1m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

/// The `--concurrency` levels as a table, the scaling sentence and any threshold exceeded.
fn render_levels(out: &mut String, run: &Run, options: &TextOptions) {
    let Some((c, rows)) = super::levels::rows(run) else {
        return;
    };
    let _ = writeln!(out, "  concurrency (K copies at once):");
    table(out, &super::levels::HEADER, &rows, false);
    for l in &c.levels {
        if l.verdict != Verdict::Clean {
            let _ = writeln!(out, "  K = {}: {}", l.copies, l.reason);
        }
    }
    let _ = writeln!(out, "  scaling: {}", c.scaling.sentence);
    for v in c.violations() {
        let _ = writeln!(
            out,
            "  {} {v}",
            paint(Verdict::Leak, options, "over limit:")
        );
    }
}
