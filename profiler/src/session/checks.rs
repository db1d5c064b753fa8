// Owns the up-front checks of a session: settings that go together, the workloads named, every
// output's path and the baseline file. Must never run anything nor write an output file.

use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::external::Target;
use crate::options::{Outputs, Settings};
use crate::report::Report;
use crate::workload::Workload;

/// The workloads named in `names` (all of them if empty), as indices into `catalog`: in
/// catalog order for "all", in the order given otherwise, each once. An unknown name is an
/// error naming it and the known ones.
pub fn select_indices(catalog: &[Workload], names: &[String]) -> Result<Vec<usize>, Error> {
    if names.is_empty() {
        return Ok((0..catalog.len()).collect());
    }
    let mut chosen = Vec::new();
    for name in names {
        let index = catalog
            .iter()
            .position(|w| w.name() == name)
            .ok_or_else(|| {
                let known: Vec<&str> = catalog.iter().map(|w| w.name()).collect();
                Error::InvalidArgument {
                    argument: "--workload",
                    reason: format!(
                        "no workload is called '{name}' (known: {}; the `list` command describes them)",
                        known.join(", ")
                    ),
                }
            })?;
        if !chosen.contains(&index) {
            chosen.push(index);
        }
    }
    Ok(chosen)
}

/// Check that the settings of a program run make sense together, before anything starts:
/// each error names the argument that does not apply and says what to use instead.
pub fn check_program(settings: &Settings) -> Result<(), Error> {
    let Some(p) = &settings.program else {
        return Ok(());
    };
    let bad = |argument: &'static str, reason: &str| {
        Err(Error::InvalidArgument {
            argument,
            reason: reason.to_string(),
        })
    };
    let is_pid = matches!(p.target, Target::Pid(_));
    if !settings.workloads.is_empty() {
        return bad(
            "--workload",
            "a catalog workload cannot be combined with a program (-- COMMAND or --pid)",
        );
    }
    if is_pid && p.marker.is_some() {
        return bad(
            "--marker",
            "the output of a process attached with --pid cannot be read; start it with \
             `profile --marker REGEX -- COMMAND` instead",
        );
    }
    if is_pid && !p.heap {
        return bad(
            "--no-heap",
            "a process attached with --pid has no heap counters to turn off: its RSS is \
             the memory signal already",
        );
    }
    // Only a marked program stopped after --iterations (by default, under --concurrency)
    // extends; elsewhere these did nothing.
    let stopped = p.iterations.is_some() || settings.concurrency.is_some();
    if p.marker.is_none() || !stopped {
        let when = if p.marker.is_none() {
            "a program sampled in time runs for --duration SECS (or until it exits) and is \
             never extended"
        } else {
            "a marked program runs until it exits and is never extended; add --iterations N \
             to stop it after N marked iterations, which the run may then extend"
        };
        if !settings.extend {
            return bad("--no-extend", when);
        }
        if settings.max_iterations.is_some() {
            return bad("--max-iterations", when);
        }
    }
    if p.marker.is_none() {
        if p.iterations.is_some() {
            return bad(
                "--iterations",
                "a program's iterations are the output lines matching --marker REGEX; \
                 without one it is sampled in time (bound it with --duration SECS)",
            );
        }
        if settings.warmup.is_some() {
            return bad(
                "--warmup",
                "counts marked iterations (with --marker); in time use --warmup-secs SECS",
            );
        }
    } else if p.warmup_secs.is_some() {
        return bad(
            "--warmup-secs",
            "applies to a time series; with --marker use --warmup N (iterations)",
        );
    }
    // A started program has heap counters through the preload library, unless --no-heap.
    if (settings.budgets.peak.is_some() || settings.budgets.allocated.is_some())
        && (is_pid || !p.heap)
    {
        return bad(
            if settings.budgets.peak.is_some() {
                "--max-peak"
            } else {
                "--max-allocated"
            },
            if is_pid {
                "needs heap counters, which a process attached with --pid does not have; \
                 --max-rss applies"
            } else {
                "needs heap counters, which --no-heap turns off; --max-rss applies"
            },
        );
    }
    if settings.timeout.is_some() && settings.sweep.is_none() {
        return bad(
            "--timeout",
            "bounds a workload's run (and with --sweep each run of a program); a program's \
             is bounded with --duration SECS",
        );
    }
    if settings.attribute != crate::attribution::Attribute::Off {
        return bad(
            "--attribute",
            "finds Rust call sites of a workload in this process; it cannot see into another \
             program",
        );
    }
    if let Some(d) = p.duration
        && d.is_zero()
    {
        return bad("--duration", "must be more than 0 seconds");
    }
    if let (Some(w), Some(d)) = (p.warmup_secs, p.duration)
        && w >= d.as_secs_f64()
    {
        return bad(
            "--warmup-secs",
            "leaves nothing of --duration to judge: make it shorter",
        );
    }
    Ok(())
}

/// Check up front that every output can be written, so a long run never ends in a lost
/// result: the directory exists and accepts a new file, and the path is not a directory.
pub fn check_outputs(outputs: &Outputs) -> Result<(), Error> {
    for (flag, path) in outputs.all() {
        check_writable(flag, path)?;
    }
    // The summary is appended to it too: a run found it unwritable only at its end, and a
    // leak became exit 2.
    if outputs.markdown.is_some()
        && let Some(summary) = &outputs.step_summary
    {
        let exists = summary.exists();
        let appendable = std::fs::OpenOptions::new().append(true).open(summary);
        match (exists, appendable) {
            (true, Err(e)) => {
                return Err(Error::InvalidArgument {
                    argument: "GITHUB_STEP_SUMMARY",
                    reason: format!("cannot append to '{}': {e}", summary.display()),
                });
            }
            (true, Ok(_)) => {}
            (false, _) => check_writable("GITHUB_STEP_SUMMARY", summary)?,
        }
    }
    if let Some(plot) = &outputs.plot {
        #[cfg(feature = "plot")]
        crate::figure::check_plot_path("--plot", plot)?;
        #[cfg(not(feature = "plot"))]
        return Err(Error::InvalidArgument {
            argument: "--plot",
            reason: format!(
                "cannot draw '{}': profiler was built without its `plot` feature",
                plot.display()
            ),
        });
    }
    Ok(())
}

/// Check that no two outputs, nor an output and the baseline, name the same file: one would
/// silently replace the other (`--json report.json --csv report.json`), and a report written
/// over `--baseline` replaced the good baseline with a failing run's. `--save-baseline` may
/// name the `--baseline` it replaces once the run passes.
pub fn check_distinct(settings: &Settings) -> Result<(), Error> {
    let mut named: Vec<(&'static str, &PathBuf)> = settings.outputs.all();
    named.extend(
        settings
            .save_baseline
            .as_ref()
            .map(|p| ("--save-baseline", p)),
    );
    named.extend(settings.baseline.as_ref().map(|p| ("--baseline", p)));
    // Devices and pipes (`/dev/null` twice) are written as they are: no file to lose.
    named.retain(|(_, p)| !crate::report::writes_through(p));
    for (i, &(first, a)) in named.iter().enumerate() {
        for &(second, b) in &named[i + 1..] {
            let pair = [first, second];
            let allowed = pair.contains(&"--save-baseline") && pair.contains(&"--baseline");
            if !allowed && crate::paths::same_file(a, b) {
                return Err(Error::InvalidArgument {
                    argument: second,
                    reason: format!(
                        "names the same file as {first} ('{}'): give each its own file",
                        b.display()
                    ),
                });
            }
        }
    }
    Ok(())
}

/// Check that `path` (given with `flag`) can be written.
pub fn check_writable(flag: &'static str, path: &Path) -> Result<(), Error> {
    let bad = |reason: String| Error::InvalidArgument {
        argument: flag,
        reason,
    };
    if path.is_dir() {
        return Err(bad(format!("'{}' is a directory", path.display())));
    }
    // A device, a FIFO, /dev/stdout: written as it is, so it need only be writable (its
    // directory, /dev, is not).
    if crate::report::writes_through(path) {
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| bad(format!("'{}' holds a NUL byte", path.display())))?;
        // SAFETY: a valid NUL-terminated path.
        if unsafe { libc::access(c.as_ptr(), libc::W_OK) } != 0 {
            let e = std::io::Error::last_os_error();
            return Err(bad(format!("cannot write '{}': {e}", path.display())));
        }
        return Ok(());
    }
    // Where a link leads: its file is replaced in that directory.
    let target = crate::report::write_target(path);
    let path = target.as_path();
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(bad(format!(
            "cannot write '{}': directory '{}' does not exist",
            path.display(),
            dir.display()
        )));
    }
    let probe = dir.join(format!(".profile-write-check.{}", std::process::id()));
    match std::fs::File::create(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(bad(format!("cannot write '{}': {e}", path.display()))),
    }
}

/// Read and check the baseline named in the settings, before anything runs: a baseline that
/// is missing, corrupt, truncated, of another tool or schema version is a usage error.
pub fn load_baseline(settings: &Settings) -> Result<Option<Report>, Error> {
    settings
        .baseline
        .as_ref()
        .map(Report::read_json)
        .transpose()
}
