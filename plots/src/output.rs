// Choosing the file format and writing files atomically (temp file beside the target, then rename).
// It must never leave a half-written picture at the target path.

use crate::error::PlotError;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The picture formats [`render`](crate::render) writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Png,
    Svg,
}

impl Format {
    /// The format named by the path's extension, compared case-insensitively.
    pub(crate) fn of(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "png" => Some(Format::Png),
            "svg" => Some(Format::Svg),
            _ => None,
        }
    }

    fn extension(self) -> &'static str {
        match self {
            Format::Png => "png",
            Format::Svg => "svg",
        }
    }
}

/// An empty file created beside the target; removed on drop unless [`TempFile::commit`] renamed
/// it over the target.
pub(crate) struct TempFile {
    path: PathBuf,
    committed: bool,
}

impl TempFile {
    /// Creates `.<name>.<pid>-<n>.tmp.<ext>` in the target's directory. The real extension comes
    /// last because the PNG encoder picks its format from it.
    pub(crate) fn beside(target: &Path, format: Format) -> Result<TempFile, PlotError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let io_error = |error| PlotError::Io {
            path: target.to_path_buf(),
            error,
        };
        let dir = match target.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!(
            ".{name}.{}-{n}.tmp.{}",
            std::process::id(),
            format.extension()
        ));
        File::create_new(&path).map_err(io_error)?;
        Ok(TempFile {
            path,
            committed: false,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Moves the finished file over the target in one step.
    pub(crate) fn commit(mut self, target: &Path) -> Result<(), PlotError> {
        fs::rename(&self.path, target).map_err(|error| PlotError::Io {
            path: target.to_path_buf(),
            error,
        })?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.committed {
            // Best effort: the error that brought us here is the one worth reporting.
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_comes_from_the_extension_in_any_case() {
        assert_eq!(Format::of(Path::new("a/b.png")), Some(Format::Png));
        assert_eq!(Format::of(Path::new("B.PNG")), Some(Format::Png));
        assert_eq!(Format::of(Path::new("c.Svg")), Some(Format::Svg));
        assert_eq!(Format::of(Path::new("out.jpg")), None);
        assert_eq!(Format::of(Path::new("png")), None);
        assert_eq!(Format::of(Path::new("dir/")), None);
    }
}
