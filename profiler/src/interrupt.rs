// Owns noticing Ctrl-C (SIGINT) and SIGTERM: handlers that only set a flag, read by the run loops.
// Must never do work inside a signal handler (no allocation, no locks, no I/O): it sets atomics.

//! Interruption requests, for runs that must still write their report when stopped.
//!
//! [`install`] replaces the default action of SIGINT and SIGTERM (ending the process) with a
//! handler that records the request; long loops poll [`requested`] and wind down, so the
//! samples taken so far are still judged and written. A second signal after the first is
//! recorded the same way: the loop decides how fast to stop.
//!
//! ```no_run
//! profiler::interrupt::install().expect("signal handlers");
//! while !profiler::interrupt::requested() {
//!     // sample, then sleep a little
//! #   break;
//! }
//! ```

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);
static SIGNAL: AtomicI32 = AtomicI32::new(0);

/// Install the SIGINT and SIGTERM handlers (idempotent). Off Unix this does nothing.
pub fn install() -> std::io::Result<()> {
    #[cfg(unix)]
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: a zeroed sigaction is valid; the handler only stores to atomics, which is
        // async-signal-safe. SA_RESTART keeps other threads' blocking calls from failing
        // with EINTR.
        let rc = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut())
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(unix)]
extern "C" fn on_signal(signal: libc::c_int) {
    SIGNAL.store(signal, Ordering::SeqCst);
    REQUESTED.store(true, Ordering::SeqCst);
}

/// `true` once SIGINT or SIGTERM arrived (after [`install`]), until [`reset`].
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// The last signal received (`libc::SIGINT` or `libc::SIGTERM`), if any.
pub fn signal() -> Option<i32> {
    requested().then(|| SIGNAL.load(Ordering::SeqCst))
}

/// Forget a request (for a program that handles one interruption and goes on).
pub fn reset() {
    REQUESTED.store(false, Ordering::SeqCst);
    SIGNAL.store(0, Ordering::SeqCst);
}

/// Record a request as if a signal had arrived (for tests, or to stop a run from code).
pub fn request() {
    REQUESTED.store(true, Ordering::SeqCst);
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    // The flag is process-wide: a test in this binary that polls `requested()` could see
    // this request in the instant between `raise` and `reset`. None does today.
    #[test]
    fn a_signal_sets_the_flag_instead_of_ending_the_process() {
        install().unwrap();
        reset();
        assert!(!requested());
        // SAFETY: raising a signal whose handler only stores to atomics.
        unsafe { libc::raise(libc::SIGTERM) };
        assert!(requested());
        assert_eq!(signal(), Some(libc::SIGTERM));
        reset();
        assert_eq!(signal(), None);
    }
}
