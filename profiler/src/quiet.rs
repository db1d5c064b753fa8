// Owns finding a quiet point before a boundary sample: waiting, boundedly, until the process's
// other threads are not runnable. Must never allocate tracked memory, nor wait without a bound.

//! On a busy machine, threads that consume work handed to them (a pool fed through a
//! channel, a runtime's workers) are starved during a short run: at the boundary they still
//! hold a backlog, and a backlog that grows for the whole run looks like a leak. Before a
//! boundary sample, [`QuietPoint::wait`] lets them run: while any thread of the process but
//! the caller (and the profiler's own) is runnable (`R` in `/proc/self/task/<tid>/stat`), the
//! caller sleeps a little, up to a bound.
//!
//! A look costs a few microseconds: the task directory stays open (rewound and re-read) and
//! so does each thread's `stat` file (read again at offset 0). Those descriptors are the
//! profiler's own: [`QuietPoint::open_fds`] says how many, and the sampler leaves them out of
//! the `fds` metric as it leaves its own threads out of `threads`.

use std::time::{Duration, Instant};

/// How long one wait may last at most, whatever the iteration takes.
pub const MAX_WAIT: Duration = Duration::from_millis(200);
/// The caller sleeps this long between two looks.
const NAP: Duration = Duration::from_micros(200);
/// After this many waits in a row that reached their bound, stop waiting for the run: some
/// thread of the process is always runnable (it spins, or it is the workload's own).
///
/// A thread still runnable when a wait reached its bound is taken for a spinner (another
/// test's CPU-bound loop) and not waited for again: waiting was given up for the whole run
/// after three such waits, and a worker starved beside one CPU-bound neighbour test then never
/// ran during the run's fast iterations (a leak on it read clean 10 times in 10).
const GIVE_UP_AFTER: u32 = 3;

/// What the waits of a run came to, for the report.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct QuietStats {
    /// Boundaries at which other threads were runnable at first.
    pub busy: u32,
    /// Of those, boundaries where they still were when the wait reached its bound.
    pub timed_out: u32,
    /// The longest wait, in milliseconds.
    pub longest_ms: f64,
    /// Waiting was given up after `GIVE_UP_AFTER` timeouts in a row.
    pub gave_up: bool,
    /// Threads still runnable when a wait reached its bound, not waited for since.
    pub spinners: u32,
}

/// The threads of this process and how to look at them.
pub struct QuietPoint {
    #[cfg(target_os = "linux")]
    tasks: Tasks,
    /// Threads not to wait for: the caller and the profiler's own.
    skip: Vec<u32>,
    in_a_row: u32,
    stats: QuietStats,
}

impl QuietPoint {
    /// Looks at every thread but the caller and `skip` (the profiler's own threads). Call it
    /// inside `alloc::untracked`, like [`QuietPoint::wait`] and the drop.
    pub fn new(skip: &[u32]) -> Self {
        let mut all = skip.to_vec();
        all.push(current_tid());
        QuietPoint {
            #[cfg(target_os = "linux")]
            tasks: Tasks::open(),
            skip: all,
            in_a_row: 0,
            stats: QuietStats::default(),
        }
    }

    /// Wait until no other thread is runnable, at most `bound` (and [`MAX_WAIT`]).
    pub fn wait(&mut self, bound: Duration) {
        if self.stats.gave_up {
            return;
        }
        let bound = bound.min(MAX_WAIT);
        let start = Instant::now();
        if !self.any_runnable() {
            self.in_a_row = 0;
            return;
        }
        self.stats.busy += 1;
        loop {
            std::thread::sleep(NAP);
            let waited = start.elapsed();
            if !self.any_runnable() {
                self.in_a_row = 0;
                self.note(waited);
                return;
            }
            if waited >= bound {
                self.skip_spinners();
                self.stats.timed_out += 1;
                self.in_a_row += 1;
                self.stats.gave_up = self.in_a_row >= GIVE_UP_AFTER;
                self.note(waited);
                return;
            }
        }
    }

    /// Leave out of the looks from now on the threads runnable now (see [`GIVE_UP_AFTER`]).
    fn skip_spinners(&mut self) {
        #[cfg(target_os = "linux")]
        {
            let before = self.skip.len();
            self.tasks.runnable_into(&mut self.skip);
            self.stats.spinners += (self.skip.len() - before) as u32;
        }
    }

    fn note(&mut self, waited: Duration) {
        self.stats.longest_ms = self.stats.longest_ms.max(waited.as_secs_f64() * 1e3);
    }

    pub fn stats(&self) -> QuietStats {
        self.stats
    }

    /// Descriptors this holds open (left out of the `fds` metric).
    pub fn open_fds(&self) -> u64 {
        #[cfg(target_os = "linux")]
        {
            self.tasks.open_fds()
        }
        #[cfg(not(target_os = "linux"))]
        {
            0
        }
    }

    #[cfg(target_os = "linux")]
    fn any_runnable(&mut self) -> bool {
        self.tasks.any_runnable(&self.skip)
    }

    #[cfg(not(target_os = "linux"))]
    fn any_runnable(&mut self) -> bool {
        false
    }
}

/// `/proc/self/task` kept open, and the `stat` file of each thread seen.
#[cfg(target_os = "linux")]
struct Tasks {
    dir: *mut libc::DIR,
    stats: Vec<(u32, std::fs::File)>,
    /// Threads seen at the last look (reused buffer).
    seen: Vec<u32>,
}

#[cfg(target_os = "linux")]
impl Tasks {
    fn open() -> Self {
        // SAFETY: a valid NUL-terminated path; a null DIR is handled everywhere.
        let dir = unsafe { libc::opendir(c"/proc/self/task".as_ptr()) };
        Tasks {
            dir,
            stats: Vec::new(),
            seen: Vec::new(),
        }
    }

    fn open_fds(&self) -> u64 {
        self.stats.len() as u64 + u64::from(!self.dir.is_null())
    }

    /// Add to `skip` the threads runnable at this look (of those it does not hold yet).
    fn runnable_into(&mut self, skip: &mut Vec<u32>) {
        use std::os::unix::fs::FileExt;
        let mut buf = [0u8; 512];
        for (tid, file) in &self.stats {
            let n = file.read_at(&mut buf, 0).unwrap_or(0);
            if state_of(&buf[..n]) == Some(b'R') && !skip.contains(tid) {
                skip.push(*tid);
            }
        }
    }

    fn any_runnable(&mut self, skip: &[u32]) -> bool {
        use std::os::unix::fs::FileExt;
        if self.dir.is_null() {
            return false;
        }
        self.seen.clear();
        // SAFETY: `dir` is an open DIR of ours; readdir's entries live until the next call.
        unsafe {
            libc::rewinddir(self.dir);
            loop {
                let entry = libc::readdir(self.dir);
                if entry.is_null() {
                    break;
                }
                let name = std::ffi::CStr::from_ptr((*entry).d_name.as_ptr());
                if let Some(tid) = name.to_str().ok().and_then(|n| n.parse::<u32>().ok())
                    && !skip.contains(&tid)
                {
                    self.seen.push(tid);
                }
            }
        }
        let seen = &self.seen;
        self.stats.retain(|(tid, _)| seen.contains(tid));
        for &tid in seen {
            if !self.stats.iter().any(|(t, _)| *t == tid)
                && let Ok(file) = std::fs::File::open(format!("/proc/self/task/{tid}/stat"))
            {
                self.stats.push((tid, file));
            }
        }
        let mut buf = [0u8; 512];
        self.stats.iter().any(|(_, file)| {
            let n = file.read_at(&mut buf, 0).unwrap_or(0);
            state_of(&buf[..n]) == Some(b'R')
        })
    }
}

#[cfg(target_os = "linux")]
impl Drop for Tasks {
    fn drop(&mut self) {
        if !self.dir.is_null() {
            // SAFETY: opened by us, closed once.
            unsafe { libc::closedir(self.dir) };
        }
    }
}

/// The state letter of a `stat` line: the first field after the command name's `)`.
fn state_of(stat: &[u8]) -> Option<u8> {
    let close = stat.iter().rposition(|&b| b == b')')?;
    stat.get(close + 2).copied()
}

/// The kernel's id of the calling thread.
pub fn current_tid() -> u32 {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid has no arguments and cannot fail.
        unsafe { libc::gettid() as u32 }
    }
    #[cfg(not(target_os = "linux"))]
    {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[test]
    fn the_state_is_read_after_the_command_name() {
        assert_eq!(state_of(b"42 (a) b) R 1 2 3"), Some(b'R'));
        assert_eq!(state_of(b"42 (worker) S 1"), Some(b'S'));
        assert_eq!(state_of(b"garbage"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn it_waits_for_a_runnable_thread_to_finish_and_gives_up_on_one_that_spins() {
        // A thread that works for 30 ms: the wait ends when it does.
        let worker = std::thread::spawn(|| {
            let t = Instant::now();
            while t.elapsed() < Duration::from_millis(30) {
                std::hint::spin_loop();
            }
        });
        std::thread::sleep(Duration::from_millis(2));
        let mut quiet = QuietPoint::new(&[]);
        quiet.wait(Duration::from_secs(1));
        // (Other tests of this binary run beside it: the wait may last longer, never less.)
        assert!(worker.is_finished(), "{:?}", quiet.stats());
        worker.join().unwrap();

        // A thread that spins for good: one bounded wait, then it is not waited for.
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let flag = std::sync::Arc::clone(&stop);
        let spinner = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                std::hint::spin_loop();
            }
        });
        let mut quiet = QuietPoint::new(&[]);
        let t = Instant::now();
        for _ in 0..10 {
            quiet.wait(Duration::from_millis(5));
        }
        let stats = quiet.stats();
        assert!(stats.spinners >= 1, "{stats:?}");
        assert!(
            t.elapsed() < Duration::from_millis(200),
            "{:?}",
            t.elapsed()
        );
        // Beside it, a worker given work is still waited for: giving up on every thread
        // because one spins left a starved worker's leak out of the samples.
        let worker = std::thread::spawn(|| {
            let t = Instant::now();
            while t.elapsed() < Duration::from_millis(30) {
                std::hint::spin_loop();
            }
        });
        std::thread::sleep(Duration::from_millis(2));
        quiet.wait(Duration::from_secs(1));
        assert!(worker.is_finished(), "{:?}", quiet.stats());
        worker.join().unwrap();
        stop.store(true, Ordering::Relaxed);
        spinner.join().unwrap();
    }
}
