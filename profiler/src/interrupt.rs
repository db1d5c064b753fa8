// Owns noticing Ctrl-C (SIGINT), SIGTERM and SIGHUP: signal-hook actions that only set flags, read by the
// run loops, and end the process on a second signal.
// Must never do work inside a signal handler (no allocation, no locks, no I/O): the actions
// registered here store to atomics or run the signal's default action, nothing else.

//! Interruption requests, for runs that must still write their report when stopped.
//!
//! [`install`] replaces the default action of SIGINT, SIGTERM and SIGHUP (ending the process)
//! with one that records the request; long loops poll [`requested`] and wind down, so the samples
//! taken so far are still judged and written. A second signal while the first is still
//! recorded (not [`reset`]) ends the process at once, without a report, the way it would have
//! ended had nothing been installed: the way out when winding down itself hangs. Only once
//! [`GRACE`] has passed since the first, though: one signal often arrives twice (`timeout`
//! signals the command and then its whole process group, a terminal's Ctrl-C reaches every
//! process of the foreground group), and a tester's `timeout 3 profile ...` lost its report
//! in 1 run of 8 that way.
//!
//! ```no_run
//! profiler::interrupt::install().expect("signal handlers");
//! while !profiler::interrupt::requested() {
//!     // sample, then sleep a little
//! #   break;
//! }
//! ```
//!
//! There is no `uninstall`: signal-hook can unregister an action but does not restore the
//! default disposition when a signal's last action goes (the signal would then be ignored, see
//! `signal_hook::low_level::unregister`), and no caller needs the handlers removed.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};

/// A signal this soon after the first is taken as the same one, delivered twice.
pub const GRACE: std::time::Duration = std::time::Duration::from_millis(500);

/// Set by SIGINT, SIGTERM or SIGHUP, and only by them: it arms the second signal's default action.
static SIGNALLED: AtomicBool = AtomicBool::new(false);
/// Set by [`request`]: a stop asked for from code, which arms nothing.
static REQUESTED: AtomicBool = AtomicBool::new(false);
/// The number of the last signal received, 0 for none.
static SIGNAL: AtomicUsize = AtomicUsize::new(0);
/// When the first signal arrived (CLOCK_MONOTONIC, milliseconds).
static FIRST_AT_MS: AtomicI64 = AtomicI64::new(0);

/// The signals whose actions are registered. Registering them twice would make the first
/// signal look like a second one to the later copy of the actions, so [`install`] skips them.
#[cfg(unix)]
static INSTALLED: std::sync::Mutex<Vec<i32>> = std::sync::Mutex::new(Vec::new());

/// Install the SIGINT, SIGTERM and SIGHUP handlers (idempotent). Off Unix this does nothing.
/// SIGHUP (the terminal closed, an SSH session dropped) is one more way to be asked to stop:
/// ending at once would leave the started program running and no report written.
///
/// The first of these signals is recorded ([`requested`] turns true); a second one, before
/// [`reset`] and at least [`GRACE`] after the first, runs the signal's default action: the
/// process dies of that signal (a shell shows 130 for SIGINT, 143 for SIGTERM) with nothing
/// written. Blocking calls of other threads are restarted rather than failing with EINTR
/// (signal-hook installs with SA_RESTART).
pub fn install() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let mut installed = INSTALLED.lock().unwrap_or_else(|e| e.into_inner());
        for signal in [SIGINT, SIGTERM, SIGHUP] {
            if installed.contains(&signal) {
                continue;
            }
            // The default action rather than exit(status): a parent then sees the process
            // killed by the signal, as if it had never been caught.
            // SAFETY: the action only reads the monotonic clock (async-signal-safe), loads and
            // stores atomics, and runs the default action, as signal-hook's own
            // `register_conditional_default` does.
            unsafe {
                signal_hook::low_level::register(signal, move || on_signal(signal))?;
            }
            installed.push(signal);
        }
    }
    Ok(())
}

/// The action of SIGINT, SIGTERM and SIGHUP, in the signal handler.
#[cfg(unix)]
fn on_signal(signal: i32) {
    let now = monotonic_ms();
    if SIGNALLED.load(Ordering::SeqCst) {
        let first = FIRST_AT_MS.load(Ordering::SeqCst);
        if now.saturating_sub(first) >= GRACE.as_millis() as i64 {
            let _ = signal_hook::low_level::emulate_default_handler(signal);
        }
        return;
    }
    FIRST_AT_MS.store(now, Ordering::SeqCst);
    SIGNAL.store(signal as usize, Ordering::SeqCst);
    SIGNALLED.store(true, Ordering::SeqCst);
}

/// CLOCK_MONOTONIC in milliseconds (clock_gettime is async-signal-safe).
#[cfg(unix)]
fn monotonic_ms() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid out-pointer; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec * 1000 + ts.tv_nsec / 1_000_000
}

/// `true` once SIGINT, SIGTERM or SIGHUP arrived (after [`install`]) or [`request`] was called, until
/// [`reset`].
pub fn requested() -> bool {
    SIGNALLED.load(Ordering::SeqCst) || REQUESTED.load(Ordering::SeqCst)
}

/// The last signal received (`libc::SIGINT`, `libc::SIGTERM` or `libc::SIGHUP`), if any since
/// [`reset`].
pub fn signal() -> Option<i32> {
    // The signal number is stored before the flag is set, so a set flag has its number.
    if !SIGNALLED.load(Ordering::SeqCst) {
        return None;
    }
    i32::try_from(SIGNAL.load(Ordering::SeqCst))
        .ok()
        .filter(|&s| s != 0)
}

/// Forget a request (for a program that handles one interruption and goes on): the next
/// signal is a first one again.
pub fn reset() {
    REQUESTED.store(false, Ordering::SeqCst);
    SIGNALLED.store(false, Ordering::SeqCst);
    SIGNAL.store(0, Ordering::SeqCst);
    FIRST_AT_MS.store(0, Ordering::SeqCst);
}

/// Record a request as if a signal had arrived (for tests, or to stop a run from code). A
/// signal after it is still a first one: it is recorded and does not end the process.
pub fn request() {
    REQUESTED.store(true, Ordering::SeqCst);
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use signal_hook::low_level::raise;

    /// Set in the copy of this test binary that [`a_second_signal_ends_the_process`] starts.
    const CHILD: &str = "PROFILER_INTERRUPT_TEST_CHILD";

    // The flags are process-wide: a test in this binary that polls `requested()` could see
    // these requests in the instant between `raise` and `reset`. None does today. Every raise
    // in this process is in this one test, so that no two can make a first and a second signal.
    #[test]
    fn a_signal_sets_the_flag_instead_of_ending_the_process() {
        install().unwrap();
        install().unwrap();
        reset();
        assert!(!requested());
        raise(libc::SIGTERM).unwrap();
        assert!(requested());
        assert_eq!(signal(), Some(libc::SIGTERM));
        reset();
        assert_eq!(signal(), None);
        assert!(!requested());

        // A request from code arms nothing: the signal after it is a first one.
        request();
        assert!(requested());
        assert_eq!(signal(), None);
        raise(libc::SIGINT).unwrap();
        assert_eq!(signal(), Some(libc::SIGINT));
        reset();
        assert!(!requested());
    }

    #[test]
    fn a_second_signal_ends_the_process() {
        use std::os::unix::process::ExitStatusExt;
        if std::env::var_os(CHILD).is_some() {
            install().unwrap();
            install().unwrap();
            raise(libc::SIGINT).unwrap();
            assert!(requested());
            println!("first signal recorded");
            // The same signal delivered twice (to the process, then to its group).
            raise(libc::SIGINT).unwrap();
            println!("a signal within the grace survived");
            std::thread::sleep(GRACE + std::time::Duration::from_millis(50));
            raise(libc::SIGINT).unwrap();
            println!("second signal survived");
            return;
        }
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "interrupt::tests::a_second_signal_ends_the_process",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.signal(), Some(libc::SIGINT), "{out:?}");
        assert!(stdout.contains("first signal recorded"), "{stdout}");
        assert!(stdout.contains("within the grace survived"), "{stdout}");
        assert!(!stdout.contains("second signal survived"), "{stdout}");
    }
}
