//! Renders two realistic figures (a stacked one and a grid of small multiples) as PNG and SVG.
//!
//! ```sh
//! cargo run -p plots --example demo            # writes to $TMPDIR/plots-demo/
//! cargo run -p plots --example demo -- out/    # or to a directory of your choice
//! ```

use plots::{Band, Color, Figure, Layout, LineStyle, Panel, Series, Unit, XSpan};
use std::error::Error;
use std::path::PathBuf;

const KIB: f64 = 1024.0;
const MIB: f64 = 1024.0 * 1024.0;

/// Deterministic noise in -1..1, so the pictures are the same on every run.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % 20_001) as f64 / 10_000.0 - 1.0
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("plots-demo"));
    std::fs::create_dir_all(&dir)?;

    let stacked = stacked_figure();
    let grid = grid_figure();
    for (name, figure) in [("stacked", &stacked), ("grid", &grid)] {
        for ext in ["png", "svg"] {
            let path = dir.join(format!("{name}.{ext}"));
            plots::render(figure, &path)?;
            println!("wrote {}", path.display());
        }
    }
    Ok(())
}

/// One run of 40 iterations: heap growing by ~12 KiB per iteration after a 3-iteration warm-up.
fn stacked_figure() -> Figure {
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
    let iterations = 40;
    let xs: Vec<f64> = (0..=iterations).map(f64::from).collect();
    let heap: Vec<f64> = xs
        .iter()
        .map(|&x| {
            let warmup = if x < 3.0 {
                (3.0 - x) * 150.0 * KIB
            } else {
                0.0
            };
            2.0 * MIB + 12.0 * KIB * x + warmup + 6.0 * KIB * noise.next()
        })
        .collect();
    let peak: Vec<f64> = heap
        .iter()
        .map(|h| h + 260.0 * KIB + 40.0 * KIB * noise.next())
        .collect();
    let trend: Vec<f64> = xs.iter().map(|&x| 2.0 * MIB + 12.0 * KIB * x).collect();
    let baseline: Vec<f64> = xs
        .iter()
        .map(|_| 2.1 * MIB + 4.0 * KIB * noise.next())
        .collect();

    let heap_panel = Panel::new("heap in use: leak", Unit::Bytes)
        .title_color(Color::RED)
        .x_span(XSpan {
            from: 0.0,
            to: 3.0,
            color: Color::GREY,
            label: "warm-up".into(),
        })
        .band(Band {
            label: "peak within iteration".into(),
            xs: xs.clone(),
            lo: heap.clone(),
            hi: peak,
            color: Color::SKY_BLUE,
        })
        .series(
            Series::new("baseline run", xs.clone(), baseline, Color::GREY).style(LineStyle::Thin),
        )
        .series(Series::new("at iteration end", xs.clone(), heap, Color::BLUE).with_points())
        .series(
            Series::new(
                "fit",
                xs[3..].to_vec(),
                trend[3..].to_vec(),
                Color::VERMILLION,
            )
            .style(LineStyle::Dashed),
        )
        .x_markers(xs.iter().copied())
        .note(format!(
            "slope +{}/iteration (95% CI {} .. {})",
            Unit::Bytes.format(12.0 * KIB),
            Unit::Bytes.format(11.4 * KIB),
            Unit::Bytes.format(12.6 * KIB)
        ))
        .note("growth continues after warm-up");

    // RSS sampled every few milliseconds: many points per iteration, a sawtooth from the allocator.
    let samples = 8_000;
    let rss_x: Vec<f64> = (0..samples)
        .map(|i| i as f64 * iterations as f64 / samples as f64)
        .collect();
    let rss: Vec<f64> = rss_x
        .iter()
        .map(|&x| {
            38.0 * MIB + 14.0 * KIB * x + (x.fract() * 900.0 * KIB) + 20.0 * KIB * noise.next()
        })
        .collect();
    let rss_panel = Panel::new("resident set size", Unit::Bytes)
        .title_color(Color::AMBER)
        .series(Series::new("rss", rss_x, rss, Color::BLUISH_GREEN))
        .x_markers(xs.iter().copied())
        .note("inconclusive: noise larger than the slope");

    let blocks: Vec<f64> = xs
        .iter()
        .map(|&x| (140.0 + 3.0 * x + 4.0 * noise.next()).round())
        .collect();
    let blocks_panel = Panel::new("live heap blocks", Unit::Count)
        .y_label("blocks")
        .title_color(Color::RED)
        .series(Series::new(
            "blocks",
            xs.clone(),
            blocks,
            Color::REDDISH_PURPLE,
        ))
        .x_markers(xs.iter().copied());

    let fds_panel = Panel::new("open file descriptors: clean", Unit::Count)
        .y_label("fds")
        .title_color(Color::GREEN)
        .series(Series::new(
            "fds",
            xs.clone(),
            vec![12.0; xs.len()],
            Color::ORANGE,
        ))
        .x_markers(xs.iter().copied());
    let threads_panel = Panel::new("threads: clean", Unit::Count)
        .y_label("threads")
        .title_color(Color::GREEN)
        .series(Series::new(
            "threads",
            xs.clone(),
            vec![3.0; xs.len()],
            Color::BLUE,
        ))
        .x_markers(xs.iter().copied());

    Figure::new("parse_json: memory over 40 iterations")
        .subtitle("profile --workload parse_json --iterations 40 (host: ci-runner-2, 2 cores)")
        .size(1200, 1250)
        .x_axis("iteration", Unit::Count)
        .panel(heap_panel)
        .panel(rss_panel)
        .panel(blocks_panel)
        .panel(fds_panel)
        .panel(threads_panel)
}

/// Nine workloads side by side, each on its own x axis, sized like an overview of nine runs.
fn grid_figure() -> Figure {
    const GIB: f64 = 1024.0 * MIB;
    let mut noise = Noise(0x2545_f491_4f6c_dd1d);
    let mut panels = Vec::new();
    let shapes: [(&str, Color, Unit, &str); 9] = [
        ("vec_push: clean", Color::GREEN, Unit::Bytes, ""),
        (
            "cache_fill: LEAK (heap_bytes, heap_blocks)",
            Color::RED,
            Unit::Bytes,
            "",
        ),
        ("arena_reset: clean", Color::GREEN, Unit::Bytes, ""),
        ("mmap_big: inconclusive", Color::AMBER, Unit::Bytes, ""),
        ("iteration time", Color::BLACK, Unit::Millis, ""),
        ("child_process", Color::GREY, Unit::Bytes, ""),
        ("hashmap-churn: clean", Color::GREEN, Unit::Bytes, ""),
        ("fd_pool: clean", Color::GREEN, Unit::Count, "fds"),
        (
            "slab_allocator: LEAK (heap_blocks)",
            Color::RED,
            Unit::Count,
            "blocks",
        ),
    ];
    for (k, (title, color, unit, y_label)) in shapes.into_iter().enumerate() {
        let n = 20 + 10 * (k % 6);
        let xs: Vec<f64> = (0..n).map(|i| i as f64).collect();
        let ys: Vec<f64> = xs
            .iter()
            .map(|&x| match k {
                0 => 512.0 * KIB + 2.0 * KIB * noise.next(),
                1 => 1.0 * MIB + 40.0 * KIB * x + 10.0 * KIB * noise.next(),
                2 => 300.0 * KIB + ((x as usize % 5) as f64) * 60.0 * KIB,
                3 if (12.0..16.0).contains(&x) => f64::NAN,
                3 => 1.5 * GIB + 30.0 * MIB * noise.next(),
                4 => 180.0 + 25.0 * noise.next() + if x > 40.0 { 900.0 } else { 0.0 },
                // A large heap that wobbles by a few KiB: labels relative to an offset.
                6 => 2.503226 * GIB + 1.5 * KIB * noise.next(),
                7 => (12.0 + noise.next()).round(),
                8 => 1_203_456.0 + x.floor() + noise.next().round(),
                _ => f64::NAN,
            })
            .collect();
        // Small multiples read best with one colour for the same measure everywhere.
        let line = if unit == Unit::Millis {
            Color::ORANGE
        } else {
            Color::BLUE
        };
        let mut panel = Panel::new(title, unit)
            .y_label(y_label)
            .title_color(color)
            .series(Series::new("heap", xs.clone(), ys, line));
        if k == 1 {
            let trend = xs.iter().map(|&x| 1.0 * MIB + 40.0 * KIB * x).collect();
            panel = panel
                .series(
                    Series::new("fit", xs.clone(), trend, Color::VERMILLION)
                        .style(LineStyle::Dashed),
                )
                .note("+40 KiB/iteration");
        }
        if k == 3 {
            panel = panel.note("samples 12..15 missing");
        }
        panels.push(panel);
    }
    Figure {
        title: "heap by workload".into(),
        subtitle: Some("bench-suite, 9 workloads".into()),
        width: 1280,
        height: 810,
        layout: Layout::Grid { columns: 3 },
        panels,
        x_label: "iteration".into(),
        x_unit: Unit::Count,
        ..Figure::default()
    }
}
