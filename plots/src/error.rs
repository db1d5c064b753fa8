// The one error type of the crate: what went wrong and which file it concerns.
// It must never lose the path: every variant names the picture being written.

use std::io;
use std::path::{Path, PathBuf};

/// Why a figure could not be rendered. Every variant names the target file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlotError {
    /// The extension is neither `.png` nor `.svg` (case-insensitive). Nothing was written.
    #[error("cannot write plot '{}': unsupported format (use a .png or .svg file name)", path.display())]
    UnsupportedFormat { path: PathBuf },

    /// The figure cannot be drawn at this size (zero or too large). Nothing was written.
    #[error("cannot draw plot {}: {reason}", target(path))]
    InvalidFigure { path: PathBuf, reason: String },

    /// Drawing or encoding failed. Nothing was written.
    #[error("cannot draw plot {}: {message}", target(path))]
    Draw { path: PathBuf, message: String },

    /// The file (or the temporary file beside it) could not be created, written or renamed.
    #[error("cannot write plot '{}': {error}", path.display())]
    Io { path: PathBuf, error: io::Error },
}

/// How an error names its target; the empty path stands for an in-memory SVG.
fn target(path: &Path) -> String {
    if path.as_os_str().is_empty() {
        "(SVG string)".to_string()
    } else {
        format!("'{}'", path.display())
    }
}
