// Owns finding a quiet point before a boundary sample: waiting, boundedly, until the process's
// other threads are not runnable. Must never allocate tracked memory, nor wait without a bound.

//! On a busy machine, threads that consume work handed to them (a pool fed through a
//! channel, a runtime's workers) are starved during a short run: at the boundary they still
//! hold a backlog, and a backlog that grows for the whole run looks like a leak. Before a
//! boundary sample, [`QuietPoint::wait`] lets them run: while any thread of the process but
//! the caller (and the profiler's own) is runnable (`R` in `/proc/self/task/<tid>/stat`), the
//! caller sleeps a little, up to a bound. Reading a thread's state opens, reads and closes its
//! `stat` file (a few microseconds): no descriptor stays open, since open files are one of the
//! metrics measured.

use std::time::{Duration, Instant};

/// How long one wait may last at most, whatever the iteration takes.
pub const MAX_WAIT: Duration = Duration::from_millis(200);
/// The caller sleeps this long between two looks.
const NAP: Duration = Duration::from_micros(200);
/// After this many waits in a row that reached their bound, stop waiting for the run: some
/// thread of the process is always runnable (it spins, or it is the workload's own).
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
}

/// The threads of this process and how to look at them.
pub struct QuietPoint {
    /// Threads not to wait for: the caller and the profiler's own.
    skip: Vec<u32>,
    in_a_row: u32,
    stats: QuietStats,
}

impl QuietPoint {
    /// Looks at every thread but the caller and `skip` (the profiler's own threads).
    pub fn new(skip: &[u32]) -> Self {
        let mut all = skip.to_vec();
        all.push(current_tid());
        QuietPoint {
            skip: all,
            in_a_row: 0,
            stats: QuietStats::default(),
        }
    }

    /// Wait until no other thread is runnable, at most `bound` (and [`MAX_WAIT`]). Call it
    /// inside `alloc::untracked`: listing the threads allocates.
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
                self.stats.timed_out += 1;
                self.in_a_row += 1;
                self.stats.gave_up = self.in_a_row >= GIVE_UP_AFTER;
                self.note(waited);
                return;
            }
        }
    }

    fn note(&mut self, waited: Duration) {
        self.stats.longest_ms = self.stats.longest_ms.max(waited.as_secs_f64() * 1e3);
    }

    pub fn stats(&self) -> QuietStats {
        self.stats
    }

    #[cfg(target_os = "linux")]
    fn any_runnable(&mut self) -> bool {
        use std::io::Read;
        let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
            return false;
        };
        let mut buf = [0u8; 512];
        dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|tid| !self.skip.contains(tid))
            .any(|tid| {
                let Ok(mut file) = std::fs::File::open(format!("/proc/self/task/{tid}/stat"))
                else {
                    return false;
                };
                let n = file.read(&mut buf).unwrap_or(0);
                state_of(&buf[..n]) == Some(b'R')
            })
    }

    #[cfg(not(target_os = "linux"))]
    fn any_runnable(&mut self) -> bool {
        false
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

        // A thread that spins for good: three bounded waits, then no more.
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
        stop.store(true, Ordering::Relaxed);
        spinner.join().unwrap();
        let stats = quiet.stats();
        assert!(stats.gave_up, "{stats:?}");
        assert_eq!(stats.timed_out, GIVE_UP_AFTER);
        assert!(
            t.elapsed() < Duration::from_millis(200),
            "{:?}",
            t.elapsed()
        );
    }
}
