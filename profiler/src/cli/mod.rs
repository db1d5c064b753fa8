// Owns the `profile` command line: clap declarations, turning them into Settings, dispatch.
// Must never hold logic a library user would miss: running and judging live in session/.

//! The `profile` command line, for any crate's own binary:
//!
//! ```no_run
//! #[global_allocator]
//! static ALLOC: profiler::Alloc = profiler::Alloc::new();
//!
//! fn main() -> std::process::ExitCode {
//!     let catalog = vec![/* profiler::Workload::new(...) */];
//!     profiler::cli::main(catalog)
//! }
//! ```

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

mod settings;

use settings::{
    parse_complexity, parse_duration_ms, parse_percent, parse_rate, parse_secs, parse_size,
    parse_timeout,
};

use crate::alloc::Untracked;
use crate::engine::{MAX_ITERATIONS, Progress};
use crate::model::Complexity;
use crate::report::{Report, TextOptions};
use crate::session::{self, Outcome, Session};
use crate::verdict::Verdict;
use crate::workload::{Expected, Workload};

const AFTER_HELP: &str = "\
Profiling a program:
  profile [OPTIONS] -- COMMAND ARGS...   start COMMAND and sample it until it exits: heap
                                         (a preload library counts its malloc calls; not for
                                         static or setuid binaries, see --no-heap), RSS,
                                         virtual size, fds, threads, CPU
  profile --pid PID --duration SECS      sample a running process, read-only (no heap counters)
  profile --sweep SIZES -- COMMAND {N}   run COMMAND once per size, {N} (or n in braces)
                                         replaced by the size: memory against input size
  With --marker REGEX each output line of COMMAND that matches ends an iteration, judged as
  for workloads, its heap being the program's state when it wrote the line; without, growth
  per second is judged. A program's heap, RSS, fd or thread leak fails the run. A program
  on jemalloc (linked in, needed as a shared library, or in LD_PRELOAD) runs with
  jemalloc's retention of freed pages off (its MALLOC_CONF, or _RJEM_MALLOC_CONF, set to
  dirty_decay_ms:0,muzzy_decay_ms:0 unless set already), so that its RSS follows what it
  holds.

Exit codes:
  0    nothing found (clean, or inconclusive without --fail-on-inconclusive)
  1    a leak in heap bytes, heap blocks, fds or threads (in process RSS only warns unless it
       grows past the whole counted heap; for a program RSS counts too), a budget exceeded, a --concurrency threshold exceeded, a
       growth class above --max-complexity, or a regression against --baseline
  2    bad usage or bad input (a program that cannot be started, a pid that does not exist,
       a --marker that matched no output line of the program: nothing was measured)
  3    a workload failed (panicked, its setup failed, it passed --timeout or hung), or the
       program crashed or exited non-zero; the report is still written
  130  interrupted (Ctrl-C, SIGTERM, SIGHUP): the run or program is stopped, the report
       still written

Environment:
  RUST_LOG          log filter for stderr (e.g. RUST_LOG=profiler=debug); -v and -q set it too
  NO_COLOR          no colours in the table
  MEMCREEP_PRELOAD  another copy of the heap library to preload into a program";

/// Find memory, fd and thread leaks: run workloads for N iterations, sample heap, RSS, open
/// files and threads at every iteration boundary, and judge each metric. Or do the same for
/// any program: `profile [OPTIONS] -- COMMAND ARGS...`, `profile --pid PID`.
#[derive(Debug, Parser)]
#[command(
    name = "profile",
    version,
    args_conflicts_with_subcommands = true,
    after_help = AFTER_HELP
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List the workloads of the catalog with their expected verdicts.
    List,
    /// Draw a saved JSON report again (PNG or SVG, by the extension).
    Plot(PlotArgs),
}

#[derive(Debug, Args)]
struct PlotArgs {
    /// A report written with --json.
    #[arg(value_name = "REPORT.json")]
    report: PathBuf,
    /// The picture to write: FILE.png or FILE.svg (with several runs, one file per run beside it).
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
    /// Another report whose series are drawn thin and grey under the current ones.
    #[arg(long, value_name = "OTHER.json")]
    baseline: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Run only this workload (repeat for several; default: the whole catalog).
    #[arg(short, long = "workload", value_name = "NAME")]
    workloads: Vec<String>,

    /// Iterations before the first verdict (default 20); the run may extend (see
    /// --no-extend). With --marker: marked iterations after the first marker line, then the
    /// program is stopped (default: run it until it exits).
    #[arg(short = 'n', long, value_name = "N", allow_negative_numbers = true,
          value_parser = clap::value_parser!(u32).range(1..=MAX_ITERATIONS as i64))]
    iterations: Option<u32>,

    /// Leave at least N leading iterations out of the analysis (default: automatic, 20% of
    /// the iterations or more while growth is still slowing down).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    warmup: Option<u32>,

    /// Also sample heap and RSS every MS milliseconds between iteration boundaries. For a
    /// program: its sampling period (default 100).
    #[arg(long, value_name = "MS", allow_negative_numbers = true,
          value_parser = clap::value_parser!(u32).range(1..=3_600_000))]
    interval: Option<u32>,

    /// Upper bound when a run extends to confirm a leak or resolve an inconclusive metric
    /// (default: 8 x --iterations, at least 40; 64 x while the only undecided metrics are too
    /// noisy to bound yet, and 128 x to confirm a leak first seen there; a leak seen before and
    /// inconclusive since runs on to the same bounds as a new one).
    #[arg(long, value_name = "N", allow_negative_numbers = true,
          value_parser = clap::value_parser!(u32).range(1..=MAX_ITERATIONS as i64))]
    max_iterations: Option<u32>,

    /// Run exactly --iterations: no extension, no confirmation of a leak at twice the count.
    #[arg(long)]
    no_extend: bool,

    /// End a workload's run after SECS seconds (its samples so far are judged); an iteration
    /// that is still running a second later is abandoned and reported as hung (exit 3). With
    /// --sweep of a program: stop any one run of it that takes longer (exit 3)
    #[arg(long, value_name = "SECS", allow_negative_numbers = true, value_parser = parse_timeout)]
    timeout: Option<f64>,

    /// Exit 1 when a verdict is inconclusive, not only on a leak.
    #[arg(long)]
    fail_on_inconclusive: bool,

    /// Write the report as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,

    /// Write one CSV row per sample to FILE (for --sweep, one row per size).
    #[arg(long, value_name = "FILE")]
    csv: Option<PathBuf>,

    /// Draw memory over iterations (or seconds, for a program without --marker) to FILE.png
    /// or FILE.svg; with several workloads also FILE-<workload>.png per workload, FILE.png
    /// being the overview.
    #[arg(long, value_name = "FILE")]
    plot: Option<PathBuf>,

    /// Write a Markdown summary for a pull request to FILE (appended to $GITHUB_STEP_SUMMARY
    /// too when that is set).
    #[arg(long, value_name = "FILE")]
    markdown: Option<PathBuf>,

    /// Fail (exit 1) if the heap peak of an iteration, above the run's starting heap, exceeds
    /// SIZE (e.g. 64MiB, 512KB).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    max_peak: Option<u64>,

    /// Fail if one iteration allocates more than SIZE (freed or not).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    max_allocated: Option<u64>,

    /// Fail if the process's RSS exceeds SIZE in any sample.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    max_rss: Option<u64>,

    /// Name the call sites that leak. growth (the default) and always sample allocations
    /// during the run itself (a backtrace per sampled block, a few percent of the run's time;
    /// more while a leak is confirmed) and name sites with 95% bounds when the heap grows, or
    /// always. exact runs three short passes under dhat after the run when the heap grows
    /// (about 20-30x slower per iteration; dhat's file of the longest is kept as
    /// <workload>.dhat-heap.json beside --json, or in the current directory).
    #[arg(long, value_name = "WHEN", num_args = 0..=1, default_missing_value = "growth")]
    attribute: Option<AttributeWhen>,

    /// Compare with a report saved by --save-baseline: a regression beyond tolerance exits 1.
    #[arg(long, value_name = "FILE")]
    baseline: Option<PathBuf>,

    /// Save this report as a baseline to FILE, only if the run passes (exit 0).
    #[arg(long, value_name = "FILE")]
    save_baseline: Option<PathBuf>,

    /// Tolerance of a baseline comparison, NAME=PCT% or NAME=AMOUNT (repeatable). NAME is one
    /// of peak, allocated, allocations, retained, rss, fds, threads. Default: 10% with a floor
    /// (4 KiB, 8 allocations, 2 MiB of RSS).
    #[arg(long, value_name = "NAME=VALUE")]
    tolerance: Vec<String>,

    /// Print nothing but errors.
    #[arg(short, long, conflicts_with = "verbose")]
    quiet: bool,

    /// Log more to stderr (-v: progress of each run, -vv: debug).
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,

    /// Run K copies at once for each K of the list (e.g. 1,3,5; 1 to 64 copies): threads,
    /// each with its own setup, for a workload; processes for a program (`{copy}` in the
    /// command becomes the copy's index; with --marker each copy stops after --iterations,
    /// default 20). Reports iterations, failures, throughput, p50/p95/max iteration time,
    /// heap and RSS peaks of the whole and per copy, CPU time and a leak verdict per level,
    /// and whether memory per copy stays flat as K grows. A panicking iteration (a copy that
    /// exits non-zero on its own) is a failed iteration instead of the end of the run.
    #[arg(
        long,
        value_name = "K,K,...",
        help_heading = "Concurrency",
        allow_hyphen_values = true
    )]
    concurrency: Option<String>,

    /// With --concurrency: fail (exit 1) when more than PCT percent of a level's iterations
    /// failed (default 0: any failed iteration fails the run).
    #[arg(long, value_name = "PCT", help_heading = "Concurrency", requires = "concurrency",
          allow_negative_numbers = true, value_parser = parse_percent)]
    max_failure_rate: Option<f64>,

    /// With --concurrency: fail when a level's 95th percentile of iteration time exceeds
    /// DURATION (e.g. 20ms, 1.5s).
    #[arg(long, value_name = "DURATION", help_heading = "Concurrency", requires = "concurrency",
          value_parser = parse_duration_ms)]
    max_p95: Option<f64>,

    /// With --concurrency: fail when a level completes fewer than N iterations per second (all
    /// copies together; e.g. 200 or 200/s).
    #[arg(long, value_name = "N/s", help_heading = "Concurrency", requires = "concurrency",
          allow_negative_numbers = true, value_parser = parse_rate)]
    min_throughput: Option<f64>,

    /// With --concurrency: fail when one copy's peak exceeds SIZE: a program copy's RSS; in
    /// process a copy's heap (its thread's counters; threads share one RSS).
    #[arg(long, value_name = "SIZE", help_heading = "Concurrency", requires = "concurrency",
          value_parser = parse_size)]
    max_rss_per_copy: Option<u64>,

    /// Measure memory against input size: each size of SIZES, a list (1000,10000,100000) or a
    /// range (1k..1M: the 1-2-5 values between, k = 10^3, M = 10^6), runs the sized workloads
    /// (marked "sized" by the `list` command) or the program after `--` with {N} (or n in braces)
    /// replaced by the size, repeated until its memory agrees. Reports per size the heap peak, bytes retained
    /// after the result is dropped, bytes and allocations allocated, RSS peak and time, and
    /// fits each to O(1), O(log n), O(n), O(n log n), O(n^2) or O(n^3), or says it cannot tell.
    #[arg(long, value_name = "SIZES", help_heading = "Sweep")]
    sweep: Option<String>,

    /// With --sweep: fail (exit 1) when the heap's peak or retained bytes (for a program
    /// without heap counters, its RSS peak) grow faster than CLASS, e.g. 'O(n)'.
    #[arg(long, value_name = "CLASS", help_heading = "Sweep", requires = "sweep",
          value_parser = parse_complexity)]
    max_complexity: Option<Complexity>,

    /// Each line of the program's stdout or stderr matching REGEX ends an iteration, the
    /// first one its start-up; the output still passes through. The program must flush after
    /// each such line.
    #[arg(
        long,
        value_name = "REGEX",
        help_heading = "Any program",
        requires = "command"
    )]
    marker: Option<String>,

    /// Sample the running process PID instead of starting one (read-only: never signalled).
    #[arg(long, value_name = "PID", help_heading = "Any program",
          conflicts_with_all = ["command", "workloads"])]
    pid: Option<u32>,

    /// Stop sampling after SECS seconds (a started program is then stopped with SIGTERM,
    /// then SIGKILL after 2 s). Default: until the program exits.
    #[arg(long, value_name = "SECS", help_heading = "Any program", allow_negative_numbers = true,
          value_parser = parse_secs)]
    duration: Option<f64>,

    /// Without --marker: leave the first SECS seconds out of the analysis (default: 20% of
    /// the run, at least 1 s).
    #[arg(long, value_name = "SECS", help_heading = "Any program", allow_negative_numbers = true,
          value_parser = parse_secs)]
    warmup_secs: Option<f64>,

    /// Sum the program's descendants (children, grandchildren, ...) into every sample, their
    /// heap counters too.
    #[arg(long, help_heading = "Any program")]
    include_children: bool,

    /// Do not preload the heap library into the program: no heap counters, RSS is the memory
    /// signal (as for a static binary). Python programs then keep their own PYTHONMALLOC.
    #[arg(long, help_heading = "Any program")]
    no_heap: bool,

    /// The program to start and sample, with its arguments.
    #[arg(last = true, value_name = "COMMAND", help_heading = "Any program")]
    command: Vec<std::ffi::OsString>,
}

/// Parse the command line, run, print, write the outputs and return the documented exit code.
pub fn main(catalog: Vec<Workload>) -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            if let Some((flag, value)) = negative_value(&e, std::env::args().skip(1)) {
                eprintln!(
                    "error: invalid value '{value}' for '{flag}': it cannot be negative\n\n\
                     For more information, try '--help'."
                );
                return ExitCode::from(Outcome::Usage as u8);
            }
            let _ = e.print();
            if let Some(program) = program_without_separator(&e) {
                eprintln!(
                    "\ntip: to profile a program, put it after `--`: profile [OPTIONS] -- \
                     {program} ..."
                );
            }
            return ExitCode::from(if e.use_stderr() {
                Outcome::Usage as u8
            } else {
                0
            });
        }
    };
    init_logging(cli.run.quiet, cli.run.verbose);
    let catalog = std::sync::Arc::new(catalog);
    let code = match cli.command {
        Some(Command::List) => list(&catalog),
        Some(Command::Plot(args)) => plot(&args),
        None => run(&catalog, &cli.run),
    };
    ExitCode::from(code as u8)
}

/// A negative value given to a flag that takes a size or a duration (`--max-rss -5MiB`):
/// clap reads `-5MiB` as short flags and tips "use '-- -5'", which would make it the program
/// to profile. The flag and the value, when that is what clap refused.
fn negative_value(e: &clap::Error, args: impl Iterator<Item = String>) -> Option<(String, String)> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let negative = |a: &str| {
        a.strip_prefix('-')
            .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit() || c == '.'))
    };
    if e.kind() != ErrorKind::UnknownArgument
        || !matches!(e.get(ContextKind::InvalidArg), Some(ContextValue::String(a)) if negative(a))
    {
        return None;
    }
    let args: Vec<String> = args.take_while(|a| a != "--").collect();
    args.windows(2)
        .find(|w| w[0].starts_with("--") && !w[0].contains('=') && negative(&w[1]))
        .map(|w| (w[0].clone(), w[1].clone()))
}

/// The word clap refused as an unexpected argument when it looks like a program named
/// without `--` before it (not an option, not a subcommand).
fn program_without_separator(e: &clap::Error) -> Option<String> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    // Not after a subcommand: `profile plot a.json b.json` is no program named without `--`.
    let subcommand = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    if e.kind() != ErrorKind::UnknownArgument
        || matches!(subcommand.as_deref(), Some("list" | "plot" | "help"))
    {
        return None;
    }
    match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(arg)) if !arg.starts_with('-') => Some(arg.clone()),
        _ => None,
    }
}

fn init_logging(quiet: bool, verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, _) => "debug",
    };
    let filter = if verbose > 0 || quiet {
        EnvFilter::new(default)
    } else {
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default))
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .without_time()
        .try_init();
}

fn list(catalog: &[Workload]) -> Outcome {
    let width = catalog.iter().map(|w| w.name().len()).max().unwrap_or(0);
    let mut rows = Vec::new();
    for w in catalog {
        let expected = match w.expected() {
            Expected::Clean => Verdict::Clean.word().to_string(),
            Expected::Leak(metrics) => format!(
                "{} ({})",
                Verdict::Leak.word(),
                metrics
                    .iter()
                    .map(|m| m.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let size = w
            .default_size()
            .map(|n| format!("sized, n = {}", crate::sizes::short(n)))
            .unwrap_or_default();
        rows.push((w.name(), expected, w.description(), size));
    }
    let expected_width = rows.iter().map(|r| r.1.len()).max().unwrap_or(0);
    let any_sized = rows.iter().any(|r| !r.3.is_empty());
    let text_width = rows.iter().map(|r| r.2.chars().count()).max().unwrap_or(0);
    for (name, expected, description, size) in rows {
        if any_sized {
            let line = format!(
                "{name:width$}  {expected:expected_width$}  {description:text_width$}  {size}"
            );
            say(&format!("{}\n", line.trim_end()));
        } else {
            say(&format!(
                "{name:width$}  {expected:expected_width$}  {description}\n"
            ));
        }
    }
    Outcome::Clean
}

/// `--attribute` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum AttributeWhen {
    Growth,
    Always,
    Exact,
}

fn usage_error(message: impl std::fmt::Display) -> Outcome {
    eprintln!("error: {message}");
    Outcome::Usage
}

fn run(catalog: &std::sync::Arc<Vec<Workload>>, args: &RunArgs) -> Outcome {
    let settings = match args.settings() {
        Ok(s) => s,
        Err(e) => return usage_error(e),
    };
    let session = match Session::prepare(catalog, settings) {
        Ok(s) => s,
        Err(e) => return usage_error(e),
    };
    let show_progress = !args.quiet && std::io::stderr().is_terminal();
    let report = match session.run(|name| progress_bar(name, show_progress)) {
        Ok(r) => r,
        Err(e) => return usage_error(e),
    };
    let finished = session.finish(&report);
    // After the outputs: the overall line words the status the session ends with, which an
    // output that could not be written makes worse than the report's own (exit 2).
    if !args.quiet {
        let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        let exit = Some(finished.outcome);
        say(&report.to_text(&TextOptions { color, exit }));
    }
    // Say where everything went: `--plot out.png` over several workloads writes one picture
    // per workload beside the overview.
    if !args.quiet {
        for path in &finished.written {
            say(&format!("wrote {}\n", path.display()));
        }
    }
    for e in &finished.errors {
        eprintln!("error: {e}");
    }
    // Quiet, the overall line is not printed: a report that is bad input (a baseline that
    // compared nothing) must still say why it is exit 2.
    let decision = report.decision();
    if args.quiet && decision.outcome == Outcome::Usage {
        let why = decision.headline.strip_prefix("failed: ");
        eprintln!("error: {}", why.unwrap_or(&decision.headline));
    }
    if finished.baseline_kept
        && !args.quiet
        && let Some(path) = &session.settings().save_baseline
    {
        eprintln!(
            "baseline not saved: the run did not pass, so {} was left as it was",
            path.display()
        );
    }
    finished.outcome
}

fn plot(args: &PlotArgs) -> Outcome {
    let checked = crate::figure::check_plot_path("--output", &args.output)
        .and_then(|()| session::check_writable("--output", &args.output));
    if let Err(e) = checked {
        return usage_error(e);
    }
    // Drawn over its own input, the report (or the baseline) was lost.
    let inputs = std::iter::once(("the report", &args.report))
        .chain(args.baseline.iter().map(|b| ("--baseline", b)));
    for (what, input) in inputs {
        if crate::paths::same_file(&args.output, input) {
            return usage_error(crate::Error::InvalidArgument {
                argument: "--output",
                reason: format!(
                    "names the same file as {what} ('{}'): give the picture its own file",
                    input.display()
                ),
            });
        }
    }
    let report = match Report::read_json(&args.report) {
        Ok(r) => r,
        Err(e) => return usage_error(e),
    };
    let baseline = match args.baseline.as_ref().map(Report::read_json).transpose() {
        Ok(b) => b,
        Err(e) => return usage_error(format!("--baseline: {e}")),
    };
    if let Some(b) = &baseline {
        // A baseline is drawn beside the run of the same name only: say when there is none.
        for run in &report.runs {
            let name = &run.workload;
            match b.runs.iter().find(|r| r.workload == run.workload) {
                None => {
                    let theirs: Vec<&str> = b.runs.iter().map(|r| r.workload.as_str()).collect();
                    eprintln!(
                        "note: --baseline has no run named '{name}' (it has: {}): drawn without one",
                        theirs.join(", ")
                    );
                }
                Some(_) if run.sweep.is_some() || run.concurrency.is_some() => eprintln!(
                    "note: '{name}' is drawn against input size or copies at once, where no \
                     baseline is drawn: drawn without one"
                ),
                Some(theirs) if theirs.x_axis != run.x_axis => eprintln!(
                    "note: --baseline's run '{name}' is per {}, this one per {}: drawn without it",
                    theirs.x_axis.unit(),
                    run.x_axis.unit()
                ),
                Some(_) => {}
            }
        }
    }
    let inputs: Vec<&Path> = std::iter::once(args.report.as_path())
        .chain(args.baseline.as_deref())
        .collect();
    match crate::figure::write_plots(&report, &args.output, baseline.as_ref(), &inputs) {
        Ok(written) => {
            for path in written {
                say(&format!("wrote {}\n", path.display()));
            }
            Outcome::Clean
        }
        Err(e) => usage_error(e),
    }
}

/// A progress callback drawing an indicatif bar on stderr once a run passes one second.
///
/// The run calls it untracked and drops it counted: what it keeps (the name, the bar) is made
/// and freed untracked.
fn progress_bar(name: &str, enabled: bool) -> impl FnMut(Progress) + Send + use<> {
    let mut state = Untracked::make(|| (name.to_string(), Bar(None)));
    move |p: Progress| {
        state.with_mut(|(name, bar)| draw(name, bar, enabled, p));
    }
}

/// Draw `p` on the bar, once the run is a second old.
fn draw(name: &str, bar: &mut Bar, enabled: bool, p: Progress) {
    if !enabled || (bar.0.is_none() && p.elapsed < Duration::from_secs(1)) {
        return;
    }
    let bar = bar.0.get_or_insert_with(|| {
        let bar = indicatif::ProgressBar::with_draw_target(
            Some(u64::from(p.target)),
            indicatif::ProgressDrawTarget::stderr(),
        );
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{prefix} [{bar:30}] {pos}/{len} iterations, {elapsed}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(name.to_string());
        bar
    });
    bar.set_length(u64::from(p.target));
    bar.set_position(u64::from(p.done));
}

/// Clears the bar when the run drops its progress callback.
struct Bar(Option<indicatif::ProgressBar>);

impl Drop for Bar {
    fn drop(&mut self) {
        if let Some(bar) = self.0.take() {
            bar.finish_and_clear();
        }
    }
}

/// Print to stdout. A reader that went away (`profile list | head`) or a stdout that cannot be
/// written does not stop the run: its files and exit code are what count.
fn say(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}
