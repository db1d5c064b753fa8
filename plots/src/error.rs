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
    UnsupportedFormat {
        /// The path as given.
        path: PathBuf,
    },

    /// The figure cannot be drawn at this size (zero or too large). Nothing was written.
    #[error("cannot draw plot {}: {reason}", target(path))]
    InvalidFigure {
        /// The target file (empty for [`render_svg_string`](crate::render_svg_string)).
        path: PathBuf,
        /// What is wrong with the figure, e.g. "width and height must be at least 1 pixel".
        reason: String,
    },

    /// Drawing or encoding failed. Nothing was written.
    #[error("cannot draw plot {}: {message}", target(path))]
    Draw {
        /// The target file (empty for [`render_svg_string`](crate::render_svg_string)).
        path: PathBuf,
        /// The drawing library's or the encoder's message.
        message: String,
    },

    /// The file (or the temporary file beside it) could not be created, written or renamed.
    #[error("cannot write plot '{}': {error}", path.display())]
    Io {
        /// The target file.
        path: PathBuf,
        /// The underlying error; its text is part of this error's message.
        error: io::Error,
    },
}

/// How an error names its target; the empty path stands for an in-memory SVG.
fn target(path: &Path) -> String {
    if path.as_os_str().is_empty() {
        "(SVG string)".to_string()
    } else {
        format!("'{}'", path.display())
    }
}
