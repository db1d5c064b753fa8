// Owns which span each thread is in: its stack of the spans it entered and has not exited, and
// the exits that happened on another thread than the entry (a guard held across an `.await`).
// Never allocates while the allocator asks; its own memory is untracked.

//! Each thread's stack of entered spans, as `tracing`'s registry keeps one: an exit removes
//! that span wherever it is (guards dropped out of order), and the thread is then in the last
//! one entered, whatever the depth.
//!
//! A span can be exited on a thread that never entered it: a guard (`span.enter()`) held
//! across an `.await` is dropped wherever the runtime polls the task next. The thread that
//! entered it would otherwise stay in that span for good, charging it everything it allocates
//! from then on, long after the span closed. Such an exit is recorded here as a stray exit,
//! numbered; every thread, at its next allocation inside a span (or its next enter or exit),
//! takes off its stack the entries of that span made before the stray exit. So a stray exit
//! ends the span on the thread that entered it, as the guard's drop meant to. (A thread
//! that entered the same span on its own and is still in it loses it too: that takes the same
//! span entered on two threads at once, one of them through a guard crossing an `.await`.)
//! A stray exit takes off the thread's oldest entry of that span made before it: a later
//! entry of the same span on that thread (a re-poll entering it again) is the one its own
//! thread will exit.
//!
//! Only the last [`STRAY_RING`] stray exits are kept: a thread that did not allocate inside a
//! span while more happened keeps the entries it cannot tell about, and the exits it missed
//! are counted ([`lost_exits`]) so that a run can say its spans may be over-charged.

use std::cell::RefCell;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::*};

use super::untracked;

/// Stray exits kept for threads to catch up with (16 bytes each, static).
const STRAY_RING: usize = 1024;

/// Stray exits some thread could no longer apply, having fallen more than [`STRAY_RING`]
/// behind.
static LOST: AtomicU64 = AtomicU64::new(0);

/// The number of the last stray exit (0: none yet). Read on the cold path of an allocation
/// inside a span: threads that have seen it pay one relaxed load.
static LAST_STRAY: AtomicU64 = AtomicU64::new(0);

/// Stray exit `k` is at `k % STRAY_RING`, as (span id, `k`).
static STRAYS: Mutex<[(u64, u64); STRAY_RING]> = Mutex::new([(0, 0); STRAY_RING]);

/// A thread's stack: (span id, its counters' address, the last stray exit when entered),
/// innermost last; and the last stray exit this thread has applied.
struct Stack {
    entries: Vec<(u64, usize, u64)>,
    seen: u64,
}

thread_local! {
    static STACK: RefCell<Stack> = const { RefCell::new(Stack { entries: Vec::new(), seen: 0 }) };
}

// It grows uncounted (inside `untracked`), so it must be freed uncounted too when its thread
// exits: freed counted, every thread that entered a span would leave the process heap one
// block low, and could hide a leak of one block per thread.
impl Drop for Stack {
    fn drop(&mut self) {
        let entries = std::mem::take(&mut self.entries);
        untracked(|| drop(entries));
    }
}

impl Stack {
    /// The counters of the innermost span entered (0 for none).
    fn top(&self) -> usize {
        self.entries.last().map_or(0, |&(_, at, _)| at)
    }

    /// Take off the entries that stray exits since the last call ended. Never allocates.
    fn catch_up(&mut self) {
        if LAST_STRAY.load(Acquire) == self.seen {
            return;
        }
        let strays = STRAYS.lock().unwrap_or_else(|e| e.into_inner());
        // Read under the lock: exits recorded between a read before it and the lock would
        // overwrite the oldest slots, skipped below uncounted.
        let last = LAST_STRAY.load(Acquire);
        let first = (self.seen + 1).max(last.saturating_sub(STRAY_RING as u64 - 1));
        // Only entries made before a missed exit can be wrong for it.
        if first > self.seen + 1
            && self
                .entries
                .iter()
                .any(|&(_, _, before)| before + 1 < first)
        {
            LOST.fetch_add(first - self.seen - 1, Relaxed);
        }
        for k in first..=last {
            let (id, number) = strays[(k % STRAY_RING as u64) as usize];
            if number != k {
                continue;
            }
            if let Some(i) = self
                .entries
                .iter()
                .position(|&(entered, _, before)| entered == id && before < k)
            {
                self.entries.remove(i);
            }
        }
        self.seen = last;
    }
}

/// Stray exits that threads with spans entered missed so far (they may stay in a span that
/// ended, charging it what they allocate).
pub fn lost_exits() -> u64 {
    LOST.load(Relaxed)
}

/// Record that span `id` was exited on a thread that had not entered it.
fn stray(id: u64) {
    let mut strays = STRAYS.lock().unwrap_or_else(|e| e.into_inner());
    let k = LAST_STRAY.load(Relaxed) + 1;
    strays[(k % STRAY_RING as u64) as usize] = (id, k);
    LAST_STRAY.store(k, Release);
}

/// The calling thread entered span `id`, charged to the counters at `at`. Returns where the
/// thread now is: `at`.
pub fn entered(id: u64, at: usize) -> usize {
    untracked(|| {
        let _ = STACK.try_with(|s| {
            let mut s = s.borrow_mut();
            s.catch_up();
            let last = s.seen;
            s.entries.push((id, at, last));
        });
    });
    at
}

/// The calling thread exited span `id`. Returns the counters of the span it is now in (0 for
/// none).
pub fn exited(id: u64) -> usize {
    untracked(|| {
        STACK
            .try_with(|s| {
                let mut s = s.borrow_mut();
                s.catch_up();
                match s.entries.iter().rposition(|&(entered, _, _)| entered == id) {
                    Some(i) => {
                        s.entries.remove(i);
                    }
                    None => stray(id),
                }
                s.top()
            })
            .unwrap_or(0)
    })
}

/// The counters of the span the calling thread is in once it has caught up with the stray
/// exits it has not seen: `None` while there are none (or its stack is busy or gone).
pub(super) fn caught_up() -> Option<usize> {
    if LAST_STRAY.load(Relaxed) == 0 {
        return None;
    }
    STACK
        .try_with(|s| {
            let mut s = s.try_borrow_mut().ok()?;
            if s.seen == LAST_STRAY.load(Relaxed) {
                return None;
            }
            s.catch_up();
            Some(s.top())
        })
        .ok()
        .flatten()
}
