// Owns the started program: spawning it, passing its output through while spotting marker
// lines, and stopping it. Must never alter a byte of its output nor hold it back for a line.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::{Duration, Instant};

use regex::bytes::Regex;

use super::ExternalError;
use super::heap::{HASH_START, Heap, LineSnapshot, Pairing, hash_bytes};
use crate::model::Exit;

/// Longest part of a line matched against the marker; the rest of a longer line still passes
/// through, unmatched, so a program writing megabytes without a newline costs no memory.
const MAX_LINE: usize = 64 * 1024;

/// What the output readers report to the sampling loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    /// A line matching the marker was read, at this moment; with the heap library, the
    /// program's counters when it wrote the line, if the library recorded it.
    Marker(Instant, Option<LineSnapshot>),
    /// One of the output streams reached its end.
    Closed,
}

/// A program started for profiling.
pub(crate) struct Started {
    pub(crate) child: Child,
    /// When it started (clock ticks after boot), if /proc says: the processes this one adopts
    /// from its tree started after it.
    pub(crate) start_time: Option<u64>,
    /// Marker lines and stream ends, when the output is read (with a marker).
    pub(crate) events: Option<Receiver<Event>>,
    /// Output streams still being read.
    pub(crate) open_streams: usize,
    /// The threads reading them: joined once done, so that what they hold is freed before
    /// the run returns, not while the caller goes on.
    pub(crate) pumps: Vec<std::thread::JoinHandle<()>>,
    /// Run beside other programs (`--concurrency`): what its tree leaves running is not
    /// named as its own.
    pub(crate) beside_others: bool,
}

/// Start `command` with stdin, stdout and stderr passed through, and `env` added to its
/// environment. With a marker, stdout and stderr are read by two threads that forward every
/// byte to ours as it arrives and report each line matching `marker`, paired with its
/// snapshot in `heap` when there is one.
pub(crate) fn start(
    command: &[OsString],
    marker: Option<&Regex>,
    env: &[(OsString, OsString)],
    heap: Option<&Arc<Heap>>,
) -> Result<Started, ExternalError> {
    let (program, args) = command.split_first().ok_or(ExternalError::EmptyCommand)?;
    let mut cmd = Command::new(program);
    cmd.args(args).stdin(Stdio::inherit());
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    if marker.is_some() {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    } else {
        cmd.stdout(Stdio::inherit()).stderr(Stdio::inherit());
    }
    end_with_the_caller(&mut cmd);
    adopt_orphans();
    // Registered before any other thread can look for orphans to reap: a copy run beside it
    // must never take this program, ended early, for one (its own wait would then fail).
    let mut programs = running();
    let mut child = cmd.spawn().map_err(|source| ExternalError::Start {
        program: program.to_string_lossy().into_owned(),
        source,
    })?;
    programs.push(child.id());
    drop(programs);
    let start_time = super::tree::start_time(child.id());
    let Some(marker) = marker else {
        return Ok(Started {
            child,
            start_time,
            events: None,
            open_streams: 0,
            pumps: Vec::new(),
            beside_others: false,
        });
    };
    let (tx, rx) = channel();
    let mut pumps = Vec::new();
    let pairing = |stream| heap.map(|h| Pairing::new(Arc::clone(h), stream));
    if let Some(out) = child.stdout.take() {
        let pump = Pump {
            marker: marker.clone(),
            events: tx.clone(),
            pairing: pairing(0),
        };
        pumps.extend(spawn_pump("stdout", out, std::io::stdout(), pump));
    }
    if let Some(err) = child.stderr.take() {
        let pump = Pump {
            marker: marker.clone(),
            events: tx,
            pairing: pairing(1),
        };
        pumps.extend(spawn_pump("stderr", err, std::io::stderr(), pump));
    }
    Ok(Started {
        child,
        start_time,
        events: Some(rx),
        // A stream whose reader could not start never says it closed.
        open_streams: pumps.len(),
        pumps,
        beside_others: false,
    })
}

impl Drop for Started {
    fn drop(&mut self) {
        let pid = self.child.id();
        running().retain(|&p| p != pid);
    }
}

/// The pids of the programs started and not yet dropped: what this process adopts is told
/// from what it started.
fn running() -> std::sync::MutexGuard<'static, Vec<u32>> {
    static RUNNING: std::sync::Mutex<Vec<u32>> = std::sync::Mutex::new(Vec::new());
    RUNNING.lock().unwrap_or_else(|e| e.into_inner())
}

/// Make this process the subreaper of the programs it starts (Linux, once): a process whose
/// parent in the program's tree exits (a daemon's double fork, a script's background job,
/// what the program leaves running when it exits) becomes this process's child instead of
/// init's, so that it can be named and stopped.
fn adopt_orphans() {
    #[cfg(target_os = "linux")]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        // SAFETY: a plain prctl on this process.
        ONCE.call_once(|| unsafe {
            libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1);
        });
    }
}

/// The processes this one adopted from the tree of `started` (see [`adopt_orphans`]) that are
/// still running: its children that started after the program, not a program it started.
/// Ended ones (zombies, which only this process can reap) are reaped here, whoever left them.
/// Empty for a program run beside others: what each left behind cannot be told apart (see
/// [`orphans_since`] once they have all ended).
pub(crate) fn adopted(started: &Started) -> Vec<u32> {
    let Some(since) = started.start_time else {
        return Vec::new();
    };
    let live = orphans_since(since);
    if started.beside_others {
        Vec::new()
    } else {
        live
    }
}

/// The children of this process that started at `since` (clock ticks after boot) or later
/// and are not programs it started, still running: what the programs' trees left to it.
/// Ended ones are reaped.
pub(crate) fn orphans_since(since: u64) -> Vec<u32> {
    #[cfg(target_os = "linux")]
    {
        use super::tree::{State, children, start_time, state};
        let programs = running().clone();
        // A child running this very executable is this process's own: a test binary running
        // one of its tests again alone (`.isolated()`, a check made again in a child). Taken
        // for an orphan, it was stopped (and its exit reaped) under the test that spawned it,
        // which read no output.
        let own = std::env::current_exe().ok();
        let mut live = Vec::new();
        for pid in children(std::process::id()) {
            if programs.contains(&pid) || start_time(pid).is_none_or(|t| t < since) {
                continue;
            }
            if own.is_some() && std::fs::read_link(format!("/proc/{pid}/exe")).ok() == own {
                continue;
            }
            match state(pid) {
                State::Alive => live.push(pid),
                State::Ending => {
                    let mut status = 0;
                    // SAFETY: waits for this one pid only, without blocking.
                    unsafe { libc::waitpid(pid as libc::pid_t, &mut status, libc::WNOHANG) };
                }
                State::Gone => {}
            }
        }
        live
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = since;
        Vec::new()
    }
}

/// The program gets SIGTERM should the thread that starts it end first: the profiler killed
/// (SIGKILL, a crash) before it could stop the program leaves no program running, holding its
/// port or files, behind it. The thread that starts a program is the one that stops and reaps
/// it, so an ordinary run never sends it. Linux only (`PR_SET_PDEATHSIG`).
fn end_with_the_caller(cmd: &mut Command) {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        let caller = std::process::id() as libc::pid_t;
        // SAFETY: the closure runs in the child between fork and exec and calls only
        // async-signal-safe functions (prctl, getppid); it allocates nothing.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The profiler died between the fork and the prctl: do not start at all.
                if libc::getppid() != caller {
                    return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
                }
                Ok(())
            });
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = cmd;
}

/// What a reader does with the lines of one stream.
pub(crate) struct Pump {
    pub(crate) marker: Regex,
    pub(crate) events: Sender<Event>,
    /// Pairs each line with the heap library's snapshot of it.
    pub(crate) pairing: Option<Pairing>,
}

fn spawn_pump(
    name: &str,
    from: impl Read + Send + 'static,
    to: impl Write + Send + 'static,
    mut pump: Pump,
) -> Option<std::thread::JoinHandle<()>> {
    let spawned = std::thread::Builder::new()
        .name(format!("profile-{name}"))
        .spawn(move || {
            pump.run(from, to);
            let _ = pump.events.send(Event::Closed);
        });
    match spawned {
        Ok(h) => Some(h),
        Err(e) => {
            tracing::warn!("could not read the program's {name}: {e}");
            None
        }
    }
}

impl Pump {
    /// Copy `from` to `to` chunk by chunk as it arrives, and send a marker event for each
    /// line matching the marker (without its line ending). Write errors (our stdout closed)
    /// do not stop the reading: the program must never block on a full pipe because of us.
    pub(crate) fn run(&mut self, mut from: impl Read, mut to: impl Write) {
        let mut buf = [0u8; 8192];
        let mut line: Vec<u8> = Vec::new();
        // The hash of the whole line so far (the matched part is capped, the hash is not).
        let mut hash = HASH_START;
        let mut forwarding = true;
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            let chunk = &buf[..n];
            if forwarding && to.write_all(chunk).and_then(|()| to.flush()).is_err() {
                forwarding = false;
            }
            let mut rest = chunk;
            while let Some(i) = rest.iter().position(|&b| b == b'\n') {
                push_capped(&mut line, &rest[..i]);
                hash = hash_bytes(hash, &rest[..i]);
                self.line(&line, Some(hash));
                line.clear();
                hash = HASH_START;
                rest = &rest[i + 1..];
            }
            push_capped(&mut line, rest);
            hash = hash_bytes(hash, rest);
        }
        if !line.is_empty() {
            // A last line without a newline: the library snapshots lines at their newline.
            self.line(&line, None);
        }
    }

    /// One whole line: paired with its snapshot (every line, so that the pairing stays in
    /// step), reported if it is a marker.
    fn line(&mut self, line: &[u8], hash: Option<u64>) {
        let snapshot = match (self.pairing.as_mut(), hash) {
            (Some(p), Some(h)) => p.pair(h),
            _ => None,
        };
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if self.marker.is_match(line) {
            let _ = self.events.send(Event::Marker(Instant::now(), snapshot));
        }
    }
}

fn push_capped(line: &mut Vec<u8>, bytes: &[u8]) {
    let room = MAX_LINE.saturating_sub(line.len());
    line.extend_from_slice(&bytes[..bytes.len().min(room)]);
}

/// Ask the program to stop: SIGTERM to it (and to `also`, its descendants), then SIGKILL to
/// whatever is left after `grace`. Returns how it ended.
pub(crate) fn stop(
    child: &mut Child,
    also: &[u32],
    grace: Duration,
) -> std::io::Result<ExitStatus> {
    let mut status = child.try_wait()?;
    if let Some(status) = status
        && also.is_empty()
    {
        return Ok(status);
    }
    // A reaped child's pid may already belong to another process: signal only a live one.
    if status.is_none() {
        signal(child.id(), Signal::Term);
    }
    // Who each descendant is, so that a pid reused during the grace is not killed.
    let starts: Vec<Option<u64>> = also
        .iter()
        .map(|&pid| super::tree::start_time(pid))
        .collect();
    for &pid in also {
        signal(pid, Signal::Term);
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if status.is_none() {
            status = child.try_wait()?;
        }
        if status.is_some() && !also.iter().any(|&pid| alive(pid)) {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    for (&pid, &start) in also.iter().zip(&starts) {
        if alive(pid) && start.is_some() && super::tree::start_time(pid) == start {
            signal(pid, Signal::Kill);
        }
    }
    match status {
        Some(status) => Ok(status),
        None => {
            child.kill()?;
            child.wait()
        }
    }
}

fn alive(pid: u32) -> bool {
    super::tree::state(pid) == super::tree::State::Alive
}

enum Signal {
    Term,
    Kill,
}

fn signal(pid: u32, which: Signal) {
    #[cfg(unix)]
    {
        let sig = match which {
            Signal::Term => libc::SIGTERM,
            Signal::Kill => libc::SIGKILL,
        };
        // SAFETY: plain FFI call; a pid that no longer exists gives ESRCH, ignored.
        unsafe { libc::kill(pid as libc::pid_t, sig) };
    }
    #[cfg(not(unix))]
    {
        let _ = (pid, which);
    }
}

/// The exit status as the report records it.
pub(crate) fn exit_of(status: ExitStatus) -> Exit {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        Exit {
            code: status.code(),
            signal: status.signal(),
        }
    }
    #[cfg(not(unix))]
    {
        Exit {
            code: status.code(),
            signal: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn markers(input: &[u8], pattern: &str) -> (Vec<u8>, usize) {
        let (tx, rx) = channel();
        let mut out = Vec::new();
        let mut pump = Pump {
            marker: Regex::new(pattern).unwrap(),
            events: tx,
            pairing: None,
        };
        pump.run(input, &mut out);
        drop(pump);
        (out, rx.iter().count())
    }

    #[test]
    fn every_byte_passes_and_each_matching_line_is_a_marker() {
        let input = b"start\ndone 1\r\nnoise\xff\ndone 2\npartial done";
        let (out, n) = markers(input, "^done");
        assert_eq!(out, input);
        assert_eq!(n, 2);
        // A last line without a newline still counts; `$` matches before "\r\n".
        assert_eq!(markers(input, "done$").1, 1);
        assert_eq!(markers(input, "partial done$").1, 1);
    }

    #[test]
    fn a_huge_line_is_matched_on_its_start_and_forwarded_whole() {
        let mut input = b"done".to_vec();
        input.extend(std::iter::repeat_n(b'x', 3 * MAX_LINE));
        input.extend(b"\ndone\n");
        let (out, n) = markers(&input, "^done");
        assert_eq!(out.len(), input.len());
        assert_eq!(n, 2);
    }
}
