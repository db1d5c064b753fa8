// Owns finding the processes of a measured tree (--include-children) that the heap library
// does not count: a statically linked child, or one started with LD_PRELOAD cleared from its
// environment. Their RSS, fds and threads are summed; their heap is in no counter.

use std::time::{Duration, Instant};

use crate::external::heap::Heap;
use crate::external::tree;

/// The shortest time between two looks (each reads /proc/<pid>/maps of every member).
const EVERY: Duration = Duration::from_millis(200);
/// How long a process may go uncounted before it is taken as uncounted for good: one just
/// forked or executed has not attached yet (its loader maps the library, then it takes a
/// slot), which takes well under a millisecond on a quiet machine.
const SETTLE: Duration = Duration::from_millis(150);

#[derive(Debug, Default)]
pub(super) struct Uncounted {
    /// Processes found uncounted (pid, name), in the order found.
    pub(super) found: Vec<(u32, Option<String>)>,
    /// Processes seen uncounted once, with when they were first seen so.
    seen: Vec<(u32, Instant)>,
    last_look: Option<Instant>,
}

impl Uncounted {
    /// Look at `members` (the tree just sampled) other than `root`, at most every
    /// [`EVERY`]: which of them the heap library counts.
    pub(super) fn look(&mut self, heap: &Heap, members: &[u32], root: u32, now: Instant) {
        if self
            .last_look
            .is_some_and(|last| now.duration_since(last) < EVERY)
        {
            return;
        }
        self.last_look = Some(now);
        for &pid in members.iter().filter(|&&p| p != root) {
            if self.found.iter().any(|(p, _)| *p == pid) {
                continue;
            }
            let since = self.seen.iter().find(|(p, _)| *p == pid).map(|(_, t)| *t);
            match (heap.counts(pid), since) {
                (Some(false), Some(since)) if now.duration_since(since) >= SETTLE => {
                    self.seen.retain(|(p, _)| *p != pid);
                    self.found.push((pid, tree::name(pid)));
                }
                (Some(false), None) => self.seen.push((pid, now)),
                (Some(false), Some(_)) => {}
                // Counted now, or ended: a later process with its pid starts afresh.
                (Some(true) | None, _) => self.seen.retain(|(p, _)| *p != pid),
            }
        }
    }

    /// The processes found, as "name (pid N)", at most three named.
    pub(super) fn named(&self) -> String {
        let mut names: Vec<String> = self
            .found
            .iter()
            .take(3)
            .map(|(pid, name)| match name {
                Some(name) => format!("{name} (pid {pid})"),
                None => format!("pid {pid}"),
            })
            .collect();
        if self.found.len() > 3 {
            names.push(format!("{} more", self.found.len() - 3));
        }
        names.join(", ")
    }
}
