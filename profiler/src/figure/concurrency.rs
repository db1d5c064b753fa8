// Owns the figure of a `--concurrency` run: memory per copy and throughput against K, titled
// with the scaling verdict. Must never judge: every number is read from the run's levels.

use plots::{Color, Figure, Panel, Series, Unit};

use crate::model::{Concurrency, MemoryScaling, Run};

/// Memory per copy (and the whole's peak over K) and throughput against the copies at once.
pub fn concurrency_figure(run: &Run, c: &Concurrency) -> Figure {
    let mut levels: Vec<_> = c.levels.iter().collect();
    levels.sort_by_key(|l| l.copies);
    let ks: Vec<f64> = levels.iter().map(|l| f64::from(l.copies)).collect();
    let per_copy: Vec<f64> = levels
        .iter()
        .map(|l| l.peak_per_copy_bytes.map_or(f64::NAN, |b| b as f64))
        .collect();
    let whole_per_copy: Vec<f64> = levels
        .iter()
        .map(|l| {
            l.heap_peak_bytes
                .filter(|_| l.per_copy == crate::model::PerCopy::Heap)
                .map_or(f64::NAN, |b| b as f64 / f64::from(l.copies))
        })
        .collect();
    let what = levels.first().map_or("heap", |l| l.per_copy.word());
    // Red is for what fails a run (a leak, as in the overview); memory per copy that grows
    // with the copies is a warning (exit 0) unless a limit says otherwise.
    let memory_color = match c.scaling.memory {
        MemoryScaling::Flat => Color::GREEN,
        MemoryScaling::Grows | MemoryScaling::Inconclusive => Color::AMBER,
    };
    let mut memory = Panel::new(format!("peak {what} per copy"), Unit::Bytes)
        .title_color(memory_color)
        .series(Series::new("largest copy", ks.clone(), per_copy, Color::BLUE).with_points());
    if whole_per_copy.iter().any(|v| v.is_finite()) {
        memory = memory.series(
            Series::new(
                "whole heap peak / K",
                ks.clone(),
                whole_per_copy,
                Color::GREY,
            )
            .with_points(),
        );
    }
    let throughput: Vec<f64> = levels
        .iter()
        .map(|l| l.throughput_per_s.unwrap_or(f64::NAN))
        .collect();
    let linear: Vec<f64> = match (levels.first(), throughput.first()) {
        (Some(l0), Some(t0)) if t0.is_finite() => levels
            .iter()
            .map(|l| t0 * f64::from(l.copies) / f64::from(l0.copies))
            .collect(),
        _ => Vec::new(),
    };
    let mut speed = Panel::new("throughput (iterations/s, all copies)", Unit::Plain)
        .series(Series::new("measured", ks.clone(), throughput, Color::BLUE).with_points());
    if !linear.is_empty() {
        speed = speed.series(
            Series::new("linear in K", ks.clone(), linear, Color::GREY)
                .style(plots::LineStyle::Dashed),
        );
    }
    // The scaling sentence is the memory part, then "; throughput ...".
    let sentence = c.scaling.sentence.as_str();
    let (memory_words, speed_words) = match sentence.rfind("; throughput") {
        Some(at) => (&sentence[..at], &sentence[at + 2..]),
        None => (sentence, ""),
    };
    // The run's verdict and what else failed it, as every figure's title says them: a leak
    // in a copy, or a load threshold exceeded, read as a green "flat" figure.
    let exceeded = c.violations();
    let limits = if exceeded.is_empty() {
        String::new()
    } else {
        format!(
            "; {} load threshold{} exceeded",
            exceeded.len(),
            if exceeded.len() == 1 { "" } else { "s" }
        )
    };
    let subtitle = match exceeded.first() {
        Some(first) => format!("{first} · {speed_words}"),
        None => speed_words.to_string(),
    };
    Figure::new(format!(
        "{} — K copies at once — {}{}{limits}",
        run.workload,
        super::verdict_word(run.verdict, true),
        super::beyond_verdict(run)
    ))
    .keep_title_end()
    .subtitle(subtitle)
    .x_axis("copies at once (K)", Unit::Count)
    .size(1200, 700)
    .panel(memory.note(memory_words))
    .panel(speed)
}
