// Owns finding the processes of a measured tree (--include-children) that the heap library
// does not count: a statically linked child, one started with LD_PRELOAD cleared from its
// environment, a setuid one, one started once the slots ran out. Their RSS, fds and threads
// are summed; their heap is in no counter.

use std::time::{Duration, Instant};

use crate::external::heap::Heap;
use crate::external::tree;

/// The shortest time between two looks at processes not known to be counted (each look
/// reads /proc/<pid>/maps).
const EVERY: Duration = Duration::from_millis(200);
/// How long a process found counted goes before it is looked at again (it may execute a
/// program the library cannot enter).
const COUNTED_AGAIN: Duration = Duration::from_secs(2);
/// How long a process may go uncounted before it is taken as uncounted for good: one just
/// forked or executed has not attached yet (its loader maps the library, then it takes a
/// slot), which takes well under a millisecond on a quiet machine.
const SETTLE: Duration = Duration::from_millis(150);

/// A process, told apart from a later one with its pid by its start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Process {
    pid: u32,
    start: Option<u64>,
}

#[derive(Debug, Default)]
pub(super) struct Uncounted {
    /// Processes found uncounted, with their names, in the order found.
    found: Vec<(Process, Option<String>)>,
    /// Of those, the ones still in the tree at the last look.
    present: Vec<Process>,
    /// Processes seen uncounted once, with when they were first seen so.
    seen: Vec<(Process, Instant)>,
    /// Processes found counted, with when to look at them again.
    counted: Vec<(Process, Instant)>,
    last_look: Option<Instant>,
}

impl Uncounted {
    /// Look at `members` (the tree just sampled) other than `root`, at most every [`EVERY`]:
    /// which of them the heap library counts.
    pub(super) fn look(&mut self, heap: &Heap, members: &[u32], root: u32, now: Instant) {
        if self
            .last_look
            .is_some_and(|last| now.duration_since(last) < EVERY)
        {
            return;
        }
        self.last_look = Some(now);
        let tree: Vec<Process> = members
            .iter()
            .filter(|&&pid| pid != root)
            .map(|&pid| Process {
                pid,
                start: tree::start_time(pid),
            })
            .collect();
        // What left the tree is forgotten: a later process may take its pid.
        self.seen.retain(|(p, _)| tree.contains(p));
        self.counted.retain(|(p, _)| tree.contains(p));
        self.present = self
            .found
            .iter()
            .map(|(p, _)| *p)
            .filter(|p| tree.contains(p))
            .collect();
        for p in tree {
            let known =
                |list: &[(Process, Instant)]| list.iter().find(|(q, _)| *q == p).map(|(_, t)| *t);
            if self.present.contains(&p) || known(&self.counted).is_some_and(|next| now < next) {
                continue;
            }
            match (heap.counts(p.pid), known(&self.seen)) {
                (Some(false), Some(since)) if now.duration_since(since) >= SETTLE => {
                    self.seen.retain(|(q, _)| *q != p);
                    self.counted.retain(|(q, _)| *q != p);
                    self.found.push((p, tree::name(p.pid)));
                    self.present.push(p);
                }
                (Some(false), None) => self.seen.push((p, now)),
                (Some(false), Some(_)) | (None, _) => {}
                (Some(true), _) => {
                    self.seen.retain(|(q, _)| *q != p);
                    self.counted.retain(|(q, _)| *q != p);
                    self.counted.push((p, now + COUNTED_AGAIN));
                }
            }
        }
    }

    /// The last look before the program is stopped: at once, whatever the time since the
    /// one before, and again [`SETTLE`] after the newest process seen uncounted, so that a run
    /// shorter than two looks (20 iterations of 2 ms: its worker, started without LD_PRELOAD,
    /// leaked unseen and the heap read clean, with no note) still finds what went uncounted.
    /// `members` reads the tree as it is now.
    pub(super) fn last_look(&mut self, heap: &Heap, members: impl Fn() -> Vec<u32>, root: u32) {
        self.last_look = None;
        self.look(heap, &members(), root, Instant::now());
        let Some(newest) = self.seen.iter().map(|&(_, since)| since).max() else {
            return;
        };
        std::thread::sleep((newest + SETTLE).saturating_duration_since(Instant::now()));
        self.last_look = None;
        self.look(heap, &members(), root, Instant::now());
    }

    /// The processes found uncounted and still in the tree at the last look, as "name (pid
    /// N)", at most three named; `None` when there are none.
    pub(super) fn present(&self) -> Option<(String, usize)> {
        let present: Vec<&(Process, Option<String>)> = self
            .found
            .iter()
            .filter(|(p, _)| self.present.contains(p))
            .collect();
        if present.is_empty() {
            return None;
        }
        let mut names: Vec<String> = present
            .iter()
            .take(3)
            .map(|(p, name)| match name {
                Some(name) => format!("{name} (pid {})", p.pid),
                None => format!("pid {}", p.pid),
            })
            .collect();
        if present.len() > 3 {
            names.push(format!("{} more", present.len() - 3));
        }
        Some((names.join(", "), present.len()))
    }

    /// Whether any process of the tree was found uncounted during the run.
    pub(super) fn any(&self) -> bool {
        !self.found.is_empty()
    }

    /// How many processes were found uncounted and had left the tree by the last look.
    pub(super) fn gone(&self) -> usize {
        self.found.len() - self.present.len()
    }
}
