// Owns reading a process's RSS, virtual size, open fds, threads and CPU time (self or a pid).
// Must never allocate on the Linux fast path, nor signal or otherwise touch the probed process.

//! Process probes.
//!
//! On Linux the probe reads, into stack buffers: for this process `/proc/self/status` (threads,
//! RSS and its pages of mapped files, virtual size; CPU time comes from its clock), for another
//! `/proc/<pid>/stat` (threads, RSS, virtual size, CPU ticks) and the `RssFile` of its status;
//! and `stat("/proc/<pid>/fd")`, whose size is the exact number of open descriptors on kernels
//! 6.2 and later (older kernels: the directory is listed). A sample of this process takes about
//! 5.5 us, against 35-48 us for a sysinfo refresh (see `bench-suite/benches/overhead.rs`).
//! Elsewhere the probe uses sysinfo.

use crate::alloc::untracked;

/// Which process a [`Probe`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The calling process.
    Current,
    /// Another process, read-only.
    Pid(u32),
}

/// What one probe read found. `None` means "could not be measured", never zero.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ProcessStats {
    pub rss_bytes: Option<u64>,
    /// The part of `rss_bytes` that is pages of mapped files (`RssFile`): the program's own
    /// code and libraries, and files it reads through mmap. The kernel drops and re-reads
    /// them at will, so they are left out of the RSS verdict.
    pub rss_file_bytes: Option<u64>,
    pub vsize_bytes: Option<u64>,
    pub fds: Option<u64>,
    pub threads: Option<u64>,
    /// User + system CPU time of the whole process since it started.
    pub cpu_ms: Option<f64>,
}

/// How the probe reads: the /proc fast path or sysinfo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Procfs,
    Sysinfo,
}

/// Reads RSS, virtual size, fds, threads and CPU time of one process.
pub struct Probe {
    target: Target,
    backend: Backend,
    sysinfo: Option<SysinfoProbe>,
}

impl Probe {
    /// The fastest backend available for `target` (/proc on Linux, sysinfo elsewhere).
    pub fn new(target: Target) -> Self {
        let backend = if cfg!(target_os = "linux") {
            Backend::Procfs
        } else {
            Backend::Sysinfo
        };
        Self::with_backend(target, backend)
    }

    /// A probe with a chosen backend (`Backend::Procfs` falls back to sysinfo off Linux).
    pub fn with_backend(target: Target, backend: Backend) -> Self {
        let backend = if cfg!(target_os = "linux") {
            backend
        } else {
            Backend::Sysinfo
        };
        let sysinfo =
            (backend == Backend::Sysinfo).then(|| untracked(|| SysinfoProbe::new(target)));
        Probe {
            target,
            backend,
            sysinfo,
        }
    }

    pub fn target(&self) -> Target {
        self.target
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// One read of every process statistic. Allocation-free on the /proc path; the sysinfo
    /// path allocates, untracked.
    pub fn read(&mut self) -> ProcessStats {
        match (&mut self.sysinfo, self.backend) {
            (Some(sys), _) => untracked(|| sys.read()),
            (None, _) => procfs::read(self.target),
        }
    }

    /// `true` if the probed process still exists.
    pub fn is_alive(&mut self) -> bool {
        match self.target {
            Target::Current => true,
            Target::Pid(pid) => pid_alive(pid),
        }
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        // sysinfo's tables were allocated untracked: free them untracked too.
        if let Some(sys) = self.sysinfo.take() {
            untracked(move || drop(sys));
        }
    }
}

/// CPU time (user + system) of the calling process, in milliseconds, from the kernel's
/// per-process clock (nanosecond resolution, unlike the 10 ms ticks of /proc).
pub fn own_cpu_ms() -> Option<f64> {
    #[cfg(unix)]
    return cpu_clock_ms(libc::CLOCK_PROCESS_CPUTIME_ID);
    #[cfg(not(unix))]
    None
}

/// CPU time (user + system) of the calling thread, in milliseconds (the kernel's per-thread
/// clock): what work on this thread cost, however long other processes kept it waiting.
pub fn thread_cpu_ms() -> Option<f64> {
    #[cfg(unix)]
    return cpu_clock_ms(libc::CLOCK_THREAD_CPUTIME_ID);
    #[cfg(not(unix))]
    None
}

/// One of the kernel's CPU-time clocks, in milliseconds.
#[cfg(unix)]
fn cpu_clock_ms(clock: libc::clockid_t) -> Option<f64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and out-pointer.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    (rc == 0).then(|| ts.tv_sec as f64 * 1e3 + ts.tv_nsec as f64 / 1e6)
}

/// The process's RSS high-water mark from a point on (Linux: the kernel's `VmHWM`, reset by
/// writing 5 to /proc/self/clear_refs), exact however briefly the peak lasted. Its reads and
/// writes are untracked.
#[derive(Debug)]
pub struct PeakRss {
    reset: bool,
}

impl PeakRss {
    /// Reset the high-water mark to the current RSS.
    pub fn start() -> Self {
        #[cfg(target_os = "linux")]
        let reset = untracked(|| std::fs::write("/proc/self/clear_refs", b"5").is_ok());
        #[cfg(not(target_os = "linux"))]
        let reset = false;
        PeakRss { reset }
    }

    /// The highest RSS since [`PeakRss::start`], or `None` when it could not be reset or read.
    pub fn peak(&self) -> Option<u64> {
        if !self.reset {
            return None;
        }
        untracked(high_water_mark)
    }
}

/// This process's RSS high-water mark (`VmHWM` of `/proc/self/status`), in bytes.
pub fn high_water_mark() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn pid_alive(pid: u32) -> bool {
    #[cfg(unix)]
    {
        // Signal 0 checks existence and permission without sending anything.
        // SAFETY: plain FFI call.
        let rc = unsafe { libc::kill(pid as libc::pid_t, 0) };
        rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

#[cfg(target_os = "linux")]
pub(crate) use procfs::ticks_per_second;

#[cfg(target_os = "linux")]
mod procfs {
    //! Allocation-free reads of /proc with fixed stack buffers.
    use super::{ProcessStats, Target};
    use std::sync::OnceLock;

    /// "/proc/<pid>/<leaf>\0" into a stack buffer.
    fn path<'a>(buf: &'a mut [u8; 64], target: Target, leaf: &str) -> &'a std::ffi::CStr {
        use std::io::Write;
        let mut cursor = std::io::Cursor::new(&mut buf[..]);
        let _ = match target {
            Target::Current => write!(cursor, "/proc/self/{leaf}\0"),
            Target::Pid(pid) => write!(cursor, "/proc/{pid}/{leaf}\0"),
        };
        let end = cursor.position() as usize;
        std::ffi::CStr::from_bytes_with_nul(&buf[..end]).unwrap_or(c"/proc/self/stat")
    }

    fn page_size() -> u64 {
        static PAGE: OnceLock<u64> = OnceLock::new();
        // SAFETY: sysconf has no preconditions.
        *PAGE.get_or_init(|| match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
            n if n > 0 => n as u64,
            _ => 4096,
        })
    }

    pub(crate) fn ticks_per_second() -> f64 {
        static TICKS: OnceLock<f64> = OnceLock::new();
        // SAFETY: sysconf has no preconditions.
        *TICKS.get_or_init(|| match unsafe { libc::sysconf(libc::_SC_CLK_TCK) } {
            n if n > 0 => n as f64,
            _ => 100.0,
        })
    }

    /// Held across a read of this process's own files: the descriptor one read opens for
    /// /proc/self/status is then never in another's count of open fds. K copies of a workload
    /// sampling at once (`--concurrency`) otherwise saw each other's reads as fds coming and
    /// going (an fd metric inconclusive at 20 iterations). Takes no allocation.
    static OWN_READS: std::sync::Mutex<()> = std::sync::Mutex::new(());

    pub(super) fn read(target: Target) -> ProcessStats {
        let _alone = (target == Target::Current)
            .then(|| OWN_READS.lock().unwrap_or_else(|e| e.into_inner()));
        let mut stats = match target {
            // CPU time comes from the kernel's clock below: status alone has the rest.
            Target::Current => read_status(target, "status").unwrap_or_default(),
            Target::Pid(_) => read_stat(target, "stat")
                .map(|stats| exact_memory(stats, target, "status"))
                .unwrap_or_default(),
        };
        stats.fds = count_fds(target, "fd");
        if let Target::Pid(pid) = target
            && stats.rss_bytes == Some(0)
            && stats.threads.is_some_and(|t| t > 1)
        {
            through_a_live_thread(pid, &mut stats);
        }
        if target == Target::Current {
            stats.cpu_ms = super::own_cpu_ms().or(stats.cpu_ms);
        }
        stats
    }

    /// A process whose first thread ended (`pthread_exit` in `main`) while others run: its
    /// /proc/<pid>/stat is a zombie's, without memory, and its fd directory is empty. Its
    /// memory and descriptors are read through a thread still running (CPU time and threads
    /// stay the first thread's, which are the whole process's). Once, a C program whose worker
    /// leaked an fd per iteration had no fd, RSS or thread verdict at all, exit 0.
    fn through_a_live_thread(pid: u32, stats: &mut ProcessStats) {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            return;
        };
        for tid in tasks
            .flatten()
            .filter_map(|t| t.file_name().to_str()?.parse::<u32>().ok())
        {
            let Some(task) = read_stat(Target::Pid(pid), &format!("task/{tid}/stat")) else {
                continue;
            };
            if task.rss_bytes.is_some_and(|r| r > 0) {
                let task = exact_memory(task, Target::Pid(pid), &format!("task/{tid}/status"));
                stats.rss_bytes = task.rss_bytes;
                stats.rss_file_bytes = task.rss_file_bytes;
                stats.vsize_bytes = task.vsize_bytes;
                stats.fds = count_fds(Target::Pid(pid), &format!("task/{tid}/fd"));
                return;
            }
        }
    }

    /// Fields of /proc/<pid>/stat (or a thread's, `leaf`): utime(14) stime(15) num_threads(20)
    /// vsize(23) rss(24).
    fn read_stat(target: Target, leaf: &str) -> Option<ProcessStats> {
        let mut buf = [0u8; 1024];
        let text = read_into(&mut buf, target, leaf)?;
        parse_stat(text, page_size(), ticks_per_second())
    }

    /// `stats` read from a stat file, with RSS and its file pages from the status file `leaf`
    /// (taken at once, so that one is part of the other). stat's RSS is the kernel's batched
    /// sum, which moves in 128 KiB jumps on this kernel, and status's is exact to the page;
    /// mixing stat's RSS with status's file pages read growth as nothing and a small
    /// program's memory as 0 B. A memory-less process (RSS 0: a zombie's first thread, exec
    /// under way) keeps stat's 0, which its callers look for.
    fn exact_memory(stats: ProcessStats, target: Target, leaf: &str) -> ProcessStats {
        if stats.rss_bytes == Some(0) {
            return stats;
        }
        match read_status(target, leaf) {
            Some(status) if status.rss_bytes.is_some_and(|r| r > 0) => ProcessStats {
                rss_bytes: status.rss_bytes,
                rss_file_bytes: status.rss_file_bytes,
                ..stats
            },
            _ => stats,
        }
    }

    /// RSS without file pages of `target`, from its status file.
    pub(super) fn anon_bytes(target: Target) -> Option<u64> {
        let stats = read_status(target, "status")?;
        Some(stats.rss_bytes?.saturating_sub(stats.rss_file_bytes?))
    }

    /// /proc/<pid>/status (or a thread's, `leaf`): RSS, its file pages, virtual size, threads.
    fn read_status(target: Target, leaf: &str) -> Option<ProcessStats> {
        // The status file is about 1.5 KiB.
        let mut buf = [0u8; 4096];
        Some(parse_status(read_into(&mut buf, target, leaf)?))
    }

    /// One `read` of /proc/<pid>/<leaf> into `buf` (what fits), without allocating.
    fn read_into<'a>(buf: &'a mut [u8], target: Target, leaf: &str) -> Option<&'a [u8]> {
        let mut pbuf = [0u8; 64];
        let p = path(&mut pbuf, target, leaf);
        // SAFETY: valid C string; the fd is closed before returning.
        let n = unsafe {
            let fd = libc::open(p.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
            if fd < 0 {
                return None;
            }
            let n = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
            libc::close(fd);
            n
        };
        (n > 0).then(|| &buf[..n as usize])
    }

    /// `VmRSS`, `RssFile` (Linux >= 4.5), `VmSize` and `Threads` of a status file. Reading
    /// it costs about what /proc/<pid>/stat does; unlike stat it tells file pages apart.
    pub(super) fn parse_status(text: &[u8]) -> ProcessStats {
        let kib = |key: &[u8]| field(text, key).map(|k| k * 1024);
        ProcessStats {
            rss_bytes: kib(b"VmRSS:"),
            rss_file_bytes: kib(b"RssFile:"),
            vsize_bytes: kib(b"VmSize:"),
            threads: field(text, b"Threads:"),
            ..ProcessStats::default()
        }
    }

    /// The number after `key` at the start of a line of `text`.
    fn field(text: &[u8], key: &[u8]) -> Option<u64> {
        let at = text
            .split(|&b| b == b'\n')
            .find_map(|line| line.strip_prefix(key))?;
        std::str::from_utf8(at)
            .ok()?
            .split_ascii_whitespace()
            .next()?
            .parse()
            .ok()
    }

    pub(super) fn parse_stat(text: &[u8], page: u64, ticks: f64) -> Option<ProcessStats> {
        // The command name (field 2) may hold spaces and parentheses: start after the last ')'.
        let close = text.iter().rposition(|&b| b == b')')?;
        let rest = std::str::from_utf8(&text[close + 1..]).ok()?;
        // rest starts at field 3 (state).
        let mut fields = rest.split_ascii_whitespace();
        let mut field = |n: usize| -> Option<u64> { fields.nth(n)?.parse().ok() };
        let utime = field(14 - 3)?; // skips state..cminflt: fields 3..13
        let stime = field(0)?;
        let threads = field(20 - 16)?; // skips cutime, cstime, priority, nice
        let vsize = field(23 - 21)?; // skips itrealvalue, starttime
        let rss_pages = field(0)?;
        Some(ProcessStats {
            rss_bytes: Some(rss_pages * page),
            rss_file_bytes: None,
            vsize_bytes: Some(vsize),
            fds: None,
            threads: Some(threads),
            cpu_ms: Some((utime + stime) as f64 * 1000.0 / ticks),
        })
    }

    /// Open descriptors: the size of /proc/<pid>/fd (or a thread's, `leaf`) on kernels >= 6.2,
    /// else list it.
    fn count_fds(target: Target, leaf: &str) -> Option<u64> {
        let mut pbuf = [0u8; 64];
        let p = path(&mut pbuf, target, leaf);
        // SAFETY: zeroed stat is a valid out-buffer; valid C string.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        if unsafe { libc::stat(p.as_ptr(), &mut st) } != 0 {
            return None;
        }
        if st.st_size > 0 {
            return Some(st.st_size as u64);
        }
        // SAFETY: opendir/readdir/closedir on a valid path; entries are read, not kept.
        unsafe {
            let dir = libc::opendir(p.as_ptr());
            if dir.is_null() {
                return None;
            }
            let mut n = 0u64;
            loop {
                let entry = libc::readdir(dir);
                if entry.is_null() {
                    break;
                }
                let name = (*entry).d_name.as_ptr();
                if *name != b'.' as libc::c_char {
                    n += 1;
                }
            }
            libc::closedir(dir);
            // Listing our own fd directory holds one descriptor open: not the process's.
            Some(if target == Target::Current {
                n.saturating_sub(1)
            } else {
                n
            })
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod procfs {
    use super::{ProcessStats, Target};
    pub(super) fn read(_target: Target) -> ProcessStats {
        ProcessStats::default()
    }
    pub(super) fn anon_bytes(_target: Target) -> Option<u64> {
        None
    }
}

/// RSS without file pages of process `pid` (Linux: its status file's `VmRSS` less `RssFile`),
/// read on its own, without allocating.
pub fn anon_bytes(pid: u32) -> Option<u64> {
    procfs::anon_bytes(Target::Pid(pid))
}

/// The portable probe: sysinfo, with its pitfalls corrected (see "Probes" in the measurements under docs/).
struct SysinfoProbe {
    system: Option<sysinfo::System>,
    pid: sysinfo::Pid,
    current: bool,
}

impl SysinfoProbe {
    fn new(target: Target) -> Self {
        let (pid, current) = match target {
            Target::Current => (sysinfo::Pid::from_u32(std::process::id()), true),
            Target::Pid(pid) => (sysinfo::Pid::from_u32(pid), false),
        };
        SysinfoProbe {
            system: sysinfo::System::new().ok(),
            pid,
            current,
        }
    }

    fn read(&mut self) -> ProcessStats {
        use sysinfo::{ProcessRefreshKind, ProcessesToUpdate};
        let Some(system) = self.system.as_mut() else {
            return ProcessStats::default();
        };
        system.refresh_processes_specifics(
            ProcessesToUpdate::Some(&[self.pid]),
            true,
            ProcessRefreshKind::nothing()
                .with_memory()
                .with_tasks()
                .with_cpu(),
        );
        let Some(process) = system.process(self.pid) else {
            return ProcessStats::default();
        };
        // open_files() of the current process counts the descriptor used to list the directory.
        let fds = process
            .open_files()
            .map(|n| n as u64 - u64::from(self.current && n > 0));
        ProcessStats {
            rss_bytes: Some(process.memory()),
            rss_file_bytes: None,
            vsize_bytes: Some(process.virtual_memory()),
            fds,
            // tasks() leaves out the main thread.
            threads: process.tasks().map(|t| t.len() as u64 + 1),
            cpu_ms: if self.current {
                own_cpu_ms()
            } else {
                Some(process.accumulated_cpu_time() as f64)
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn parses_stat_with_parentheses_in_the_name() {
        let line = b"4242 (my (odd) prog) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 7 0 12345 10485760 300 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n";
        let s = procfs::parse_stat(line, 4096, 100.0).unwrap();
        assert_eq!(s.threads, Some(7));
        assert_eq!(s.vsize_bytes, Some(10_485_760));
        assert_eq!(s.rss_bytes, Some(300 * 4096));
        assert_eq!(s.cpu_ms, Some(3000.0));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn reads_file_pages_from_status() {
        let text = b"Name:\tcat\nVmSize:\t    8192 kB\nVmRSS:\t    2048 kB\nRssAnon:\t     512 kB\nRssFile:\t    1536 kB\nRssShmem:\t       0 kB\nThreads:\t3\n";
        let s = procfs::parse_status(text);
        assert_eq!(s.rss_bytes, Some(2048 * 1024));
        assert_eq!(s.rss_file_bytes, Some(1536 * 1024));
        assert_eq!(s.vsize_bytes, Some(8192 * 1024));
        assert_eq!(s.threads, Some(3));
        let old = procfs::parse_status(b"Name:\tcat\nVmRSS:\t 2048 kB\n");
        assert_eq!(old.rss_file_bytes, None);
        // This process, and itself as another would read it: code mapped from the executable
        // is resident, so its file pages are some of its RSS.
        for target in [Target::Current, Target::Pid(std::process::id())] {
            let stats = Probe::new(target).read();
            let file = stats.rss_file_bytes.expect("RssFile of this process");
            assert!(file > 0 && file <= stats.rss_bytes.unwrap(), "{target:?}");
            assert!(stats.threads.is_some() && stats.vsize_bytes.is_some());
        }
    }

    #[test]
    fn a_pid_that_does_not_exist_reads_as_unknown() {
        let mut probe = Probe::new(Target::Pid(u32::MAX / 2));
        assert!(!probe.is_alive());
        let stats = probe.read();
        assert_eq!(stats.rss_bytes, None);
        assert_eq!(stats.fds, None);
    }
}
