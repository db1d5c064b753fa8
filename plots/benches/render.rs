//! Time to render a 1000x800 two-panel stacked figure with N samples per series, to PNG and SVG.
//!
//! `cargo bench -p plots --bench render -- --warm-up-time 1 --measurement-time 3`

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use plots::{Band, Color, Figure, LineStyle, Panel, Series, Unit};
use std::hint::black_box;

const MIB: f64 = 1024.0 * 1024.0;

/// Sampled memory (a sawtooth on a slope, with one spike), its per-x peak band and a trend line;
/// and a count series. Each of the three long series has `n` points.
fn figure(n: usize) -> Figure {
    let xs: Vec<f64> = (0..n).map(|i| i as f64 * 40.0 / n as f64).collect();
    let mut used: Vec<f64> = xs
        .iter()
        .map(|x| 30.0 * MIB + 0.1 * MIB * x + x.fract() * 2.0 * MIB)
        .collect();
    used[n / 2] = 50.0 * MIB;
    let peak: Vec<f64> = used.iter().map(|y| y + 0.5 * MIB).collect();
    let counts: Vec<f64> = xs.iter().map(|x| (100.0 + 3.0 * x).floor()).collect();
    let trend = vec![30.0 * MIB, 34.0 * MIB];
    let memory = Panel::new("memory", Unit::Bytes)
        .band(Band {
            label: "peak".into(),
            xs: xs.clone(),
            lo: used.clone(),
            hi: peak,
            color: Color::SKY_BLUE,
        })
        .series(Series::new("used", xs.clone(), used, Color::BLUE))
        .series(
            Series::new("trend", vec![0.0, 40.0], trend, Color::VERMILLION)
                .style(LineStyle::Dashed),
        )
        .x_markers((0..=40).map(f64::from))
        .note("slope +100 KiB/iteration");
    let blocks = Panel::new("blocks", Unit::Count).series(Series::new(
        "blocks",
        xs,
        counts,
        Color::BLUISH_GREEN,
    ));
    Figure::new(format!("{n} samples"))
        .size(1000, 800)
        .x_axis("iteration", Unit::Count)
        .panel(memory)
        .panel(blocks)
}

fn render(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("plots-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create the bench output directory");
    let mut group = c.benchmark_group("render");
    group.sample_size(20);
    for n in [1_000, 100_000, 1_000_000] {
        let fig = figure(n);
        let path = dir.join(format!("{n}.png"));
        group.bench_with_input(BenchmarkId::new("png", n), &fig, |b, fig| {
            b.iter(|| plots::render(black_box(fig), &path).expect("render PNG"))
        });
    }
    let fig = figure(1_000_000);
    let path = dir.join("1000000.svg");
    group.bench_with_input(BenchmarkId::new("svg", 1_000_000), &fig, |b, fig| {
        b.iter(|| plots::render(black_box(fig), &path).expect("render SVG"))
    });
    group.finish();
    if let Ok(meta) = std::fs::metadata(&path) {
        println!("SVG of 1,000,000 samples: {} bytes", meta.len());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, render);
criterion_main!(benches);
