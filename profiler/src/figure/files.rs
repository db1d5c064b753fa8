// Owns where the pictures of a Report go (`--plot path`) and writing them, each on its own.
// Must never draw a figure itself: run_figure and overview do; this only names and renders.

use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::report::Report;

use super::{overview, run_figure};

/// Where each picture of `report` goes for `--plot path`: with one run, `path` itself; with
/// several, `path` holds the overview and `<stem>-<workload>.<ext>` each run.
pub fn plot_paths(report: &Report, path: &Path) -> Vec<(Option<usize>, PathBuf)> {
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
        let safe = crate::format::file_safe(&run.workload);
        out.push((Some(i), path.with_file_name(format!("{stem}-{safe}.{ext}"))));
    }
    out
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
) -> Result<Vec<PathBuf>, Error> {
    let (written, mut errors) = write_plots_each(report, path, baseline);
    match errors.is_empty() {
        true => Ok(written),
        false => Err(errors.remove(0)),
    }
}

/// Every picture of `report`, each written or failed on its own.
pub fn write_plots_each(
    report: &Report,
    path: &Path,
    baseline: Option<&Report>,
) -> (Vec<PathBuf>, Vec<Error>) {
    let mut written = Vec::new();
    let mut errors = Vec::new();
    for (run, target) in plot_paths(report, path) {
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
        let written = write_plots(&report, &dir.path().join("out.png"), None).unwrap();
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
        assert_eq!(write_plots(&single, &svg, None).unwrap(), vec![svg.clone()]);
        assert!(std::fs::read_to_string(&svg).unwrap().starts_with("<svg"));
        assert!(check_plot_path("--plot", Path::new("x.jpg")).is_err());
    }
}
