// Owns where the pictures of a Report go (`--plot path`) and writing them, each on its own.
// Must never draw a figure itself: run_figure and overview do; this only names and renders.

use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::report::Report;

use super::{overview, run_figure};

/// Where each picture of `report` goes for `--plot path`: with one run, `path` itself; with
/// several, `path` holds the overview and `<stem>-<workload>.<ext>` each run. A workload's
/// piece of the name is cut at 80 bytes (with a hash of the whole name: a 300-character
/// command line made a name too long to create), and a name already taken (two commands that
/// differ only in characters a file name cannot hold, another output in `avoid`, a
/// directory) gets `-2`, `-3`...: one figure silently replaced another, or the JSON report.
pub fn plot_paths(report: &Report, path: &Path, avoid: &[&Path]) -> Vec<(Option<usize>, PathBuf)> {
    if report.runs.len() == 1 {
        return vec![(Some(0), path.to_path_buf())];
    }
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "plot".into());
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut out = vec![(None, path.to_path_buf())];
    for (i, run) in report.runs.iter().enumerate() {
        let piece = name_piece(&run.workload);
        let taken = |candidate: &Path| {
            candidate.is_dir()
                || out
                    .iter()
                    .any(|(_, p)| crate::paths::same_file(p, candidate))
                || avoid.iter().any(|p| crate::paths::same_file(p, candidate))
        };
        let mut candidate = path.with_file_name(format!("{stem}-{piece}.{ext}"));
        let mut n = 2;
        while taken(&candidate) {
            candidate = path.with_file_name(format!("{stem}-{piece}-{n}.{ext}"));
            n += 1;
        }
        out.push((Some(i), candidate));
    }
    out
}

/// A workload's name as a piece of a file name, at most 80 bytes (+ a hash when cut).
fn name_piece(workload: &str) -> String {
    const MAX: usize = 80;
    let safe = crate::format::file_safe(workload);
    if safe.len() <= MAX {
        return safe;
    }
    // FNV-1a of the whole name: the same name gives the same file from run to run.
    let hash = workload.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{}-{:08x}", &safe[..MAX], hash as u32)
}

/// Check that `path` names a picture format the plots crate writes.
pub fn check_plot_path(flag: &'static str, path: &Path) -> Result<(), Error> {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    match ext.as_deref() {
        Some("png") | Some("svg") => Ok(()),
        _ => Err(Error::InvalidArgument {
            argument: flag,
            reason: format!(
                "'{}' must end in .png or .svg (the format is chosen by the extension)",
                path.display()
            ),
        }),
    }
}

/// Write the pictures of `report` (see [`plot_paths`]); `baseline` runs are matched by workload.
/// Returns the files written, or the first error after trying every picture (one picture
/// that cannot be written does not cost the others).
pub fn write_plots(
    report: &Report,
    path: &Path,
    baseline: Option<&Report>,
    avoid: &[&Path],
) -> Result<Vec<PathBuf>, Error> {
    let (written, mut errors) = write_plots_each(report, path, baseline, avoid);
    match errors.is_empty() {
        true => Ok(written),
        false => Err(errors.remove(0)),
    }
}

/// Every picture of `report`, each written or failed on its own, none over a file of `avoid`.
pub fn write_plots_each(
    report: &Report,
    path: &Path,
    baseline: Option<&Report>,
    avoid: &[&Path],
) -> (Vec<PathBuf>, Vec<Error>) {
    let mut written = Vec::new();
    let mut errors = Vec::new();
    for (run, target) in plot_paths(report, path, avoid) {
        let figure = match run {
            Some(i) => {
                let r = &report.runs[i];
                let base = baseline.and_then(|b| b.runs.iter().find(|b| b.workload == r.workload));
                run_figure(r, base)
            }
            None => overview(report),
        };
        // Through a symbolic link to its file: the link stays a link.
        match plots::render(&figure, crate::report::write_target(&target)) {
            Ok(()) => written.push(target),
            Err(e) => errors.push(Error::Plot {
                path: target,
                reason: e.to_string(),
            }),
        }
    }
    (written, errors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::figure::tests::leaking_run;

    #[test]
    fn pictures_are_written_per_run_plus_an_overview_as_png_and_svg() {
        let dir = tempfile::tempdir().unwrap();
        let report = Report::new(vec![leaking_run("a", 20), leaking_run("b/c", 20)]);
        let written = write_plots(&report, &dir.path().join("out.png"), None, &[]).unwrap();
        let names: Vec<String> = written
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["out.png", "out-a.png", "out-b_c.png"]);
        let png = std::fs::read(&written[1]).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
        assert_eq!(width, run_figure(&report.runs[0], None).width);
        let single = Report::new(vec![leaking_run("a", 20)]);
        let svg = dir.path().join("one.svg");
        assert_eq!(
            write_plots(&single, &svg, None, &[]).unwrap(),
            vec![svg.clone()]
        );
        assert!(std::fs::read_to_string(&svg).unwrap().starts_with("<svg"));
        assert!(check_plot_path("--plot", Path::new("x.jpg")).is_err());
    }

    #[test]
    fn figure_names_are_never_shared_nor_too_long() {
        let dir = tempfile::tempdir().unwrap();
        let long = format!("./leak 40 {}", "x".repeat(300));
        let report = Report::new(vec![
            leaking_run("./leak 40 0", 20),
            leaking_run("./leak 40.0", 20),
            leaking_run(&long, 20),
        ]);
        let plot = dir.path().join("p.png");
        let json = dir.path().join("p-__leak_40_0-2.png");
        let names: Vec<String> = plot_paths(&report, &plot, &[&json])
            .iter()
            .map(|(_, p)| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names[..3],
            ["p.png", "p-__leak_40_0.png", "p-__leak_40_0-3.png"]
        );
        assert!(names[3].len() < 100, "{}", names[3]);
        let written = write_plots(&report, &plot, None, &[&json]).unwrap();
        assert_eq!(written.len(), 4);
        assert!(!json.exists());
    }
}
