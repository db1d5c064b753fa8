// Owns turning a Report into bytes (JSON, CSV, Markdown, the terminal text) and files.
// Must never measure or judge: every exporter is a function of the Report alone.

//! Exporters of a [`Report`]: one small file per format, each a function from the report to
//! bytes, plus reading a saved report back and writing files atomically.

mod csv;
mod json;
mod levels;
mod markdown;
mod points;
mod spans;
mod text;

use std::path::{Path, PathBuf};

use crate::error::Error;

pub use crate::format::{file_safe, format_delta, format_ms, format_value};
pub use crate::model::{
    End, Exit, Extension, Failure, FailureKind, HeapScope, Host, IntervalSample, MetricReport,
    Report, Run, SCHEMA_VERSION, Source, SourceKind, TOOL_NAME, Tool, XAxis,
};
pub use text::TextOptions;

impl Report {
    /// The report as pretty JSON; an error if it holds a number JSON cannot (NaN, infinity).
    pub fn to_json(&self) -> Result<Vec<u8>, String> {
        json::render(self)
    }

    /// One CSV row per sample.
    pub fn to_csv(&self) -> Vec<u8> {
        csv::render(self)
    }

    /// The Markdown summary (for a pull-request comment or `GITHUB_STEP_SUMMARY`).
    pub fn to_markdown(&self) -> String {
        markdown::render(self)
    }

    /// Write the Markdown summary, atomically.
    pub fn write_markdown(&self, path: impl AsRef<Path>) -> Result<(), Error> {
        write_atomic(path.as_ref(), self.to_markdown().as_bytes())
    }

    /// The terminal table.
    pub fn to_text(&self, options: &TextOptions) -> String {
        text::render(self, options)
    }

    /// Write the report as JSON, atomically (a temp file renamed over `path`).
    pub fn write_json(&self, path: impl AsRef<Path>) -> Result<(), Error> {
        write_atomic_with(path.as_ref(), |to| json::write(self, to))
    }

    /// Write one CSV row per sample, atomically.
    pub fn write_csv(&self, path: impl AsRef<Path>) -> Result<(), Error> {
        write_atomic(path.as_ref(), &self.to_csv())
    }

    /// Read a report written by [`Report::write_json`], checking tool, schema and numbers.
    pub fn read_json(path: impl AsRef<Path>) -> Result<Report, Error> {
        json::read(path.as_ref())
    }

    /// Parse and check a report from bytes (what [`Report::read_json`] does after reading);
    /// the error says what is wrong.
    pub fn from_json(bytes: &[u8]) -> Result<Report, String> {
        json::parse(bytes)
    }
}

/// Write `bytes` to `path` so that `path` only ever holds a complete file: a uniquely named
/// temp file in the same directory (two writers of one path never share it), flushed to
/// disk, then renamed over `path` (tempfile's `persist`). A symbolic link is followed (the
/// file it points to is replaced, the link stays), and what is not a regular file (`/dev/null`,
/// a FIFO, `/dev/stdout`) is written to as it is: a rename would replace the device itself.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    write_atomic_with(path, |to| std::io::Write::write_all(to, bytes))
}

/// [`write_atomic`] of what `write` writes, buffered, without holding it all in memory.
pub fn write_atomic_with(
    path: &Path,
    write: impl FnOnce(&mut std::io::BufWriter<&std::fs::File>) -> std::io::Result<()>,
) -> Result<(), Error> {
    use std::io::Write;
    if writes_through(path) {
        let io = |source| Error::Write {
            path: path.to_path_buf(),
            source,
        };
        // Appending: `/dev/stdout` redirected with `>>` to a file must keep what it holds.
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(io)?;
        let mut buffered = std::io::BufWriter::new(&file);
        write(&mut buffered).map_err(io)?;
        return buffered.flush().map_err(io);
    }
    let path = &write_target(path);
    let io = |source| Error::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if path.file_name().is_none() {
        return Err(io(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a file name",
        )));
    }
    let mut builder = tempfile::Builder::new();
    builder.prefix(".profile-").suffix(".tmp");
    // A temp file is private (0600); the output is an ordinary file (0666 less the umask),
    // readable where a baseline or a report is shared.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let file = builder.tempfile_in(dir).map_err(io)?;
    {
        let mut buffered = std::io::BufWriter::new(file.as_file());
        write(&mut buffered).map_err(io)?;
        buffered.flush().map_err(io)?;
    }
    file.as_file().sync_all().map_err(io)?;
    file.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

/// Whether `path` is written to as it is rather than replaced: what it names (links
/// followed) exists and is not a regular file (`/dev/null`, a FIFO, a pipe behind
/// `/dev/stdout`), or it leads through `/proc` (`/dev/stdout` is `/proc/self/fd/1`, whose
/// file, even a regular one, belongs to the shell's redirection).
pub fn writes_through(path: &Path) -> bool {
    let special = std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir());
    special || through_proc(path)
}

/// Whether a link of `path`'s chain points into `/proc`.
fn through_proc(path: &Path) -> bool {
    link_chain(path).iter().any(|p| p.starts_with("/proc"))
}

/// Where writing `path` must land: the file its symbolic links lead to (relative ones against
/// their own directory), so that a link stays a link; `path` itself otherwise.
pub fn write_target(path: &Path) -> PathBuf {
    link_chain(path).pop().unwrap_or_else(|| path.to_path_buf())
}

/// `path`, then each path its symbolic links lead to in turn (relative ones against their own
/// directory). As the kernel, it gives up after 40 links (a loop).
fn link_chain(path: &Path) -> Vec<PathBuf> {
    let mut chain = vec![path.to_path_buf()];
    while chain.len() <= 40 {
        let at = &chain[chain.len() - 1];
        let Ok(next) = std::fs::read_link(at) else {
            break;
        };
        let next = match at.parent() {
            Some(dir) if next.is_relative() => dir.join(next),
            _ => next,
        };
        chain.push(next);
    }
    chain
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn a_link_to_a_pipe_through_proc_is_written_to() {
        // `/dev/stdout` piped to another program is /proc/self/fd/1 -> pipe:[N]: resolved by
        // hand it named no file, and the report was lost after the run.
        use std::io::Read;
        use std::os::fd::AsRawFd;
        let (mut reader, writer) = std::io::pipe().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("stdout");
        let fd = format!("/proc/self/fd/{}", writer.as_raw_fd());
        std::os::unix::fs::symlink(&fd, &link).unwrap();
        write_atomic(&link, b"through the pipe").unwrap();
        drop(writer);
        let mut got = String::new();
        reader.read_to_string(&mut got).unwrap();
        assert_eq!(got, "through the pipe");
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }

    #[cfg(unix)]
    #[test]
    fn links_are_followed_and_a_fifo_is_written_not_replaced() {
        use std::os::unix::fs::FileTypeExt;
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.json");
        std::fs::write(&real, b"old").unwrap();
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink("real.json", &link).unwrap();
        write_atomic(&link, b"new").unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read(&real).unwrap(), b"new");

        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::read(fifo).unwrap())
        };
        write_atomic(&fifo, b"through").unwrap();
        assert_eq!(reader.join().unwrap(), b"through");
        assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
    }

    #[test]
    fn a_thread_that_peaked_below_its_start_reads_back_and_a_process_cannot() {
        // In thread scope the heap counts from the thread's start: an iteration that frees
        // what existed before the run peaks below it. Such reports were refused as holding a
        // negative size, and with them `profile plot` and `--baseline`.
        let report = |scope: HeapScope| {
            let mut run = Run::new("frees-what-was-there", scope);
            run.iterations = 1;
            run.samples = vec![
                crate::sample::Sample::default(),
                crate::sample::Sample {
                    iteration: 1,
                    heap_bytes: Some(-65536),
                    heap_peak_bytes: Some(-65536),
                    allocated_bytes: Some(0),
                    allocations: Some(0),
                    ..Default::default()
                },
            ];
            Report::new(vec![run]).to_json().unwrap()
        };
        let read = json::parse(&report(HeapScope::Thread)).unwrap();
        assert_eq!(read.runs[0].samples[1].heap_peak_bytes, Some(-65536));
        let err = json::parse(&report(HeapScope::Process)).unwrap_err();
        assert!(err.contains("negative"), "{err}");
    }

    #[test]
    fn atomic_write_replaces_only_with_a_complete_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        write_atomic(&path, b"first").unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        // A directory that does not exist: error names the file, nothing is left behind.
        let bad = dir.path().join("missing/r.json");
        let err = write_atomic(&bad, b"x").unwrap_err().to_string();
        assert!(err.contains("missing/r.json"), "{err}");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn outputs_are_ordinary_files_not_private_temp_files() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        write_atomic(&path, b"{}").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o044, 0o044 & !umask(), "mode {mode:o}");
    }

    #[cfg(unix)]
    fn umask() -> u32 {
        // SAFETY: umask cannot fail; set it back at once.
        let old = unsafe { libc::umask(0o022) };
        unsafe { libc::umask(old) };
        old as u32
    }

    #[test]
    fn two_threads_writing_one_path_never_collide() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        std::thread::scope(|s| {
            for t in 0..4u8 {
                let path = &path;
                s.spawn(move || {
                    for _ in 0..50 {
                        write_atomic(path, &[t; 4096]).unwrap();
                    }
                });
            }
        });
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 4096);
        assert!(bytes.iter().all(|&b| b == bytes[0]), "a torn file");
    }
}
