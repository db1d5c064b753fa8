// Owns the library's error type: every failure names the file or argument and what is wrong.
// Must never hold a bare I/O error without the path it concerns.

use std::path::PathBuf;

/// Errors of the profiler library. Each message is one sentence naming the file or argument.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("could not write '{path}': {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("could not read '{path}': {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("'{path}' is not a valid report: {reason}")]
    InvalidReport { path: PathBuf, reason: String },
    #[error("could not draw '{path}': {reason}")]
    Plot { path: PathBuf, reason: String },
    #[error(transparent)]
    Program(#[from] ExternalError),
    #[error("interrupted (SIGINT, SIGTERM or SIGHUP)")]
    Interrupted,
    #[error("invalid {argument}: {reason}")]
    InvalidArgument {
        argument: &'static str,
        reason: String,
    },
}

/// Errors of profiling a program. Each names the program, pid or argument concerned.
#[derive(Debug, thiserror::Error)]
pub enum ExternalError {
    #[error("could not start '{program}': {source}")]
    Start {
        program: String,
        source: std::io::Error,
    },
    #[error("no command to run: give one after `--`")]
    EmptyCommand,
    #[error("invalid --pid: no process {pid} is running")]
    NoSuchProcess { pid: u32 },
    #[error("invalid --marker '{pattern}': {reason}")]
    InvalidMarker { pattern: String, reason: String },
    #[error("could not wait for '{program}': {source}")]
    Wait {
        program: String,
        source: std::io::Error,
    },
}
