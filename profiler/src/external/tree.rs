// Owns reading a process and its descendants from outside: liveness, the tree, summed statistics.
// Must never signal, trace or otherwise touch the processes it reads: /proc and the probe only.

// Why not the procfs crate (evaluated: procfs 0.18): it can do all of this (Stat::state and
// PF_EXITING in Stat::flags, Task::children, all_processes for the parent table), but for the
// ~50 lines it would replace it adds procfs, procfs-core and hex (about 12,800 lines, some 16 s of
// release compile on a 2-core machine; its default features also pull chrono and flate2), and it
// does more per read on this path, sampled every 100 ms: an O_PATH descriptor and PathBufs per
// Process and per Task before the file itself, and a parse of all 52 stat fields with the name
// copied into a String, where this needs three. And probe.rs keeps its own allocation-free
// parser of /proc/<pid>/stat either way: procfs would add a second one, not remove hand-written
// /proc parsing from the crate.

use crate::probe::{Probe, ProcessStats, Target};

/// What /proc says about a process right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    /// Running or sleeping: its numbers mean something.
    Alive,
    /// Exiting or a zombie: its memory is being (or has been) released; numbers are meaningless.
    Ending,
    /// No such process (or not readable).
    Gone,
}

/// Whether `pid` is blocked waiting for a child to end (`waitpid`: the kernel's `do_wait`, as
/// /proc/<pid>/wchan names it). `false` where that cannot be read.
pub(crate) fn waits_for_a_child(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/wchan")).is_ok_and(|w| w.trim() == "do_wait")
}

/// The state of `pid`. Off Linux, only alive or gone (by signal 0, which sends nothing).
pub(crate) fn state(pid: u32) -> State {
    #[cfg(target_os = "linux")]
    {
        match read_stat(pid) {
            Some(stat) if stat.ending && !stat.other_thread_runs(pid) => State::Ending,
            Some(_) => State::Alive,
            None => State::Gone,
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        if Probe::new(Target::Pid(pid)).is_alive() {
            State::Alive
        } else {
            State::Gone
        }
    }
}

/// When `pid` started (clock ticks after boot), if it is there: the same pid with another
/// start time is another process.
pub(crate) fn start_time(pid: u32) -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        read_stat(pid).map(|stat| stat.start)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = pid;
        None
    }
}

/// Now, in the clock ticks after boot that [`start_time`] counts (one tick early, so that a
/// process started at once is never before it), if /proc/uptime can be read.
pub(crate) fn now() -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        let uptime = std::fs::read_to_string("/proc/uptime").ok()?;
        let seconds: f64 = uptime.split_ascii_whitespace().next()?.parse().ok()?;
        Some(((seconds * crate::probe::ticks_per_second()) as u64).saturating_sub(1))
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

/// The short command name of `pid` (/proc/<pid>/comm), if readable.
pub(crate) fn name(pid: u32) -> Option<String> {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    Some(comm.trim_end().to_string()).filter(|c| !c.is_empty())
}

/// Whether `pid` took on ids or capabilities this process does not have (an executable
/// set-user-ID, set-group-ID or with file capabilities: the kernel exec'd it securely, and its
/// loader ignores a preload given by path). `None` when /proc/<pid>/status cannot be read.
pub(crate) fn raised_privileges(pid: u32) -> Option<bool> {
    #[cfg(target_os = "linux")]
    {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        // SAFETY: getuid and getgid cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        Some(raised_in_status(&status, uid, gid))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = pid;
        None
    }
}

/// [`raised_privileges`] from the text of /proc/<pid>/status: any of its real, effective,
/// saved or filesystem ids other than `uid`/`gid` (ours), or effective capabilities.
#[cfg(target_os = "linux")]
fn raised_in_status(status: &str, uid: u32, gid: u32) -> bool {
    let field = |key: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(key))
            .unwrap_or("")
    };
    let other_than = |key: &str, ours: u32| {
        field(key)
            .split_ascii_whitespace()
            .any(|id| id.parse::<u32>().is_ok_and(|id| id != ours))
    };
    let capabilities = u64::from_str_radix(field("CapEff:").trim(), 16).unwrap_or(0);
    other_than("Uid:", uid) || other_than("Gid:", gid) || (uid != 0 && capabilities != 0)
}

/// The live descendants of `pid` (children, their children, ...), found through
/// /proc/<pid>/task/<tid>/children, or by scanning every /proc/<n>/stat for parent links when
/// the kernel does not offer that file. A descendant whose parent exited is re-parented
/// (to init or a subreaper) and is no longer counted: it left the tree.
pub(crate) fn descendants(pid: u32) -> Vec<u32> {
    #[cfg(target_os = "linux")]
    {
        let mut found = Vec::new();
        let mut queue = vec![pid];
        let mut parents: Option<Vec<(u32, u32)>> = None;
        while let Some(p) = queue.pop() {
            let children = match children_file(p) {
                Some(c) => c,
                None => {
                    let table = parents.get_or_insert_with(parent_table);
                    table
                        .iter()
                        .filter(|&&(_, ppid)| ppid == p)
                        .map(|&(child, _)| child)
                        .collect()
                }
            };
            for c in children {
                // A cycle is impossible in a process tree, but a reused pid could fake one.
                if c != pid && !found.contains(&c) {
                    found.push(c);
                    queue.push(c);
                }
            }
        }
        found
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = pid;
        Vec::new()
    }
}

/// Reads one process, or a process and its descendants summed.
pub(crate) struct TreeProbe {
    root: u32,
    probe: Probe,
    include_children: bool,
    /// The processes the last read summed: the root, then the descendants read with it.
    members: Vec<u32>,
}

impl TreeProbe {
    pub(crate) fn new(root: u32, include_children: bool) -> Self {
        TreeProbe {
            root,
            probe: Probe::new(Target::Pid(root)),
            include_children,
            members: vec![root],
        }
    }

    /// The processes the last read summed (the root alone until a read found more).
    pub(crate) fn members(&self) -> &[u32] {
        &self.members
    }

    /// The statistics of the root (plus its live descendants), or `None` once the root is
    /// ending or gone: a process tearing down its memory would show a fall that is not there.
    /// Also `None` while the root has no memory at all (RSS 0: in the middle of exec, or a
    /// kernel thread): its numbers then describe no program, and a 0 must never be recorded
    /// for what was not measured.
    pub(crate) fn read(&mut self) -> Option<ProcessStats> {
        let mut total = self.probe.read();
        // In the middle of exec (the old image gone, the new one not mapped yet) for about a
        // millisecond: wait for it rather than take the program for ended, which once left
        // a run that re-executes itself without RSS, fd and thread verdicts.
        for _ in 0..50 {
            if total.rss_bytes != Some(0) || state(self.root) != State::Alive {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
            total = self.probe.read();
        }
        if total.rss_bytes? == 0 {
            return None;
        }
        if self.include_children {
            self.members.truncate(1);
            for pid in descendants(self.root) {
                let one = Probe::new(Target::Pid(pid)).read();
                // Skip a descendant that ended between listing and reading.
                if one.rss_bytes.is_some() && state(pid) == State::Alive {
                    total = add(total, one);
                    self.members.push(pid);
                }
            }
        }
        // Read the state after the numbers: alive now means alive while they were read.
        (state(self.root) == State::Alive).then_some(total)
    }
}

/// Field-wise sum; unknown stays unknown only if it was unknown in the root.
fn add(a: ProcessStats, b: ProcessStats) -> ProcessStats {
    fn sum<T: std::ops::Add<Output = T>>(a: Option<T>, b: Option<T>) -> Option<T> {
        match (a, b) {
            (Some(a), Some(b)) => Some(a + b),
            (a, _) => a,
        }
    }
    ProcessStats {
        rss_bytes: sum(a.rss_bytes, b.rss_bytes),
        rss_file_bytes: sum(a.rss_file_bytes, b.rss_file_bytes),
        vsize_bytes: sum(a.vsize_bytes, b.vsize_bytes),
        fds: sum(a.fds, b.fds),
        threads: sum(a.threads, b.threads),
        cpu_ms: sum(a.cpu_ms, b.cpu_ms),
    }
}

#[cfg(target_os = "linux")]
struct Stat {
    ppid: u32,
    /// Zombie, dead, or flagged PF_EXITING.
    ending: bool,
    /// Clock ticks after boot when the process started: with the pid, who it is (a pid is
    /// reused once its process is reaped).
    start: u64,
    threads: u64,
}

#[cfg(target_os = "linux")]
impl Stat {
    /// The first thread of `pid` (this stat's) ended, and another thread of it still runs:
    /// `main` called `pthread_exit` and the process lives on (an exit of the whole process
    /// marks every thread as exiting).
    fn other_thread_runs(&self, pid: u32) -> bool {
        self.threads > 1
            && std::fs::read_dir(format!("/proc/{pid}/task")).is_ok_and(|tasks| {
                tasks.flatten().any(|task| {
                    std::fs::read(task.path().join("stat"))
                        .ok()
                        .and_then(|text| parse_stat(&text))
                        .is_some_and(|s| !s.ending)
                })
            })
    }
}

/// State, parent and flags from /proc/<pid>/stat.
#[cfg(target_os = "linux")]
fn read_stat(pid: u32) -> Option<Stat> {
    let text = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

#[cfg(target_os = "linux")]
fn parse_stat(text: &[u8]) -> Option<Stat> {
    const PF_EXITING: u64 = 0x4;
    // The command name (field 2) may hold spaces and parentheses: start after the last ')'.
    let close = text.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(&text[close + 1..]).ok()?;
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?; // field 3
    let ppid: u32 = fields.next()?.parse().ok()?; // field 4
    let flags: u64 = fields.nth(4)?.parse().ok()?; // field 9, after pgrp, session, tty, tpgid
    let threads: u64 = fields.nth(10)?.parse().ok()?; // field 20, after minflt..itrealvalue
    let start: u64 = fields.nth(1)?.parse().ok()?; // field 22
    let ending = matches!(state, "Z" | "X" | "x") || flags & PF_EXITING != 0;
    Some(Stat {
        ppid,
        ending,
        start,
        threads,
    })
}

/// The children of `pid` (of all its threads).
#[cfg(target_os = "linux")]
pub(crate) fn children(pid: u32) -> Vec<u32> {
    children_file(pid).unwrap_or_else(|| {
        parent_table()
            .into_iter()
            .filter(|&(_, ppid)| ppid == pid)
            .map(|(child, _)| child)
            .collect()
    })
}

/// Children of every thread of `pid`, or `None` if the kernel offers no `children` files
/// (CONFIG_PROC_CHILDREN off). A process that is gone has no children.
#[cfg(target_os = "linux")]
fn children_file(pid: u32) -> Option<Vec<u32>> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Some(Vec::new());
    };
    let mut out = Vec::new();
    let mut readable = false;
    for task in tasks.flatten() {
        if let Ok(text) = std::fs::read_to_string(task.path().join("children")) {
            readable = true;
            out.extend(
                text.split_ascii_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok()),
            );
        }
    }
    readable.then_some(out)
}

/// (pid, parent) of every process, from /proc/<n>/stat.
#[cfg(target_os = "linux")]
fn parent_table() -> Vec<(u32, u32)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| Some((pid, read_stat(pid)?.ppid)))
        .collect()
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn a_set_user_id_group_id_or_capable_image_raised_privileges() {
        let status = |uid: &str, gid: &str, caps: &str| {
            format!(
                "Name:\tping\nUmask:\t0022\nState:\tS (sleeping)\nUid:\t{uid}\nGid:\t{gid}\n\
                 Groups:\t1000\nCapInh:\t0000000000000000\nCapEff:\t{caps}\n"
            )
        };
        let none = "0000000000000000";
        let plain = status("1000\t1000\t1000\t1000", "1000\t1000\t1000\t1000", none);
        assert!(!raised_in_status(&plain, 1000, 1000));
        // Set-user-ID root: the effective and saved ids are root's.
        let setuid = status("1000\t0\t0\t0", "1000\t1000\t1000\t1000", none);
        assert!(raised_in_status(&setuid, 1000, 1000));
        // ... and still after it made every id root's (setuid(0)).
        let all_root = status("0\t0\t0\t0", "1000\t1000\t1000\t1000", none);
        assert!(raised_in_status(&all_root, 1000, 1000));
        let setgid = status("1000\t1000\t1000\t1000", "1000\t5\t5\t5", none);
        assert!(raised_in_status(&setgid, 1000, 1000));
        // File capabilities (ping's cap_net_raw): same ids, effective capabilities.
        let capable = status(
            "1000\t1000\t1000\t1000",
            "1000\t1000\t1000\t1000",
            "0000000000002000",
        );
        assert!(raised_in_status(&capable, 1000, 1000));
        // Root's own processes hold every capability without raising anything.
        let root = status("0\t0\t0\t0", "0\t0\t0\t0", "000001ffffffffff");
        assert!(!raised_in_status(&root, 0, 0));
    }

    #[test]
    fn stat_lines_give_parent_and_ending() {
        // Fields 3 to 22 (state ... starttime), as the kernel writes them.
        let alive = b"42 (a (b) c) S 7 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 987654";
        let s = parse_stat(alive).unwrap();
        assert_eq!((s.ppid, s.start), (7, 987654));
        assert!(!s.ending);
        let zombie = b"42 (x) Z 7 42 42 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 5";
        assert!(parse_stat(zombie).unwrap().ending);
        let exiting = b"42 (x) R 7 42 42 0 -1 4194564 0 0 0 0 0 0 0 0 20 0 1 0 5";
        assert!(parse_stat(exiting).unwrap().ending);
        assert_eq!(
            start_time(std::process::id()),
            start_time(std::process::id())
        );
        assert!(start_time(std::process::id()).is_some());
    }

    #[test]
    fn a_child_is_found_among_the_descendants_and_summed() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let me = std::process::id();
        let found = descendants(me);
        let mut probe = TreeProbe::new(me, true);
        let alone = TreeProbe::new(me, false).read().unwrap();
        let tree = probe.read().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(found.contains(&child.id()), "{found:?}");
        assert!(tree.threads.unwrap() > alone.threads.unwrap());
        assert_eq!(state(child.id()), State::Gone);
    }
}
