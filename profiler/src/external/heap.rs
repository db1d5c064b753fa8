// Owns the heap counters of a started program: deciding whether the preload library can be
// injected, the private directory with the library and the shared counters region, the
// environment that loads it, and reading the region (sums, line snapshots, peaks). Must never
// write into the region beyond what starts a peak window (the epoch, each slot's peak and
// call count at the start, each record's peak): the program owns its counters.

//! Exact heap counters for a started program, through the `memcreep-preload` library.
//!
//! For one run the profiler creates a private directory (mode 0700, unique, removed when the
//! run ends) holding the library (written from [`preload::LIBRARY`], or the copy named by
//! `MEMCREEP_PRELOAD`) and a counters file created exclusively with mode 0600, so that no
//! other user can read or forge the counters. The program gets `LD_PRELOAD` (prepended to its
//! own) and the file's path; the library maps the file, writes a header (magic, version, its
//! pid) and counts every malloc-family call per thread. The profiler maps the same file and
//! sums the slots of the processes it measures.
//!
//! With a marker the library also snapshots its counters each time the program writes a line
//! to stdout or stderr, keyed by the line's number on that stream and a hash of its bytes; the
//! output reader pairs each line it reads with its snapshot (`Pairing`), so a marker sample
//! is the program's heap when it wrote the line, however far it ran ahead of the profiler.

use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};

use preload::layout::*;

/// How far ahead of the last paired line the reader looks for a line's snapshot: lines the
/// library recorded but the reader never sees (written elsewhere, or not written) are skipped.
const WINDOW: u64 = 1024;

/// The environment variable naming another copy of the library to preload.
pub const ENV_LIBRARY: &str = "MEMCREEP_PRELOAD";

/// Counters of one or more processes, summed over their slots.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Totals {
    pub(crate) live_bytes: i64,
    pub(crate) blocks: i64,
    /// Cumulative since each process attached.
    pub(crate) allocated_bytes: i64,
    pub(crate) allocations: i64,
    /// Peak of live bytes in the current window: per process, the lower of the sum of its
    /// per-thread peaks and its published bound (see the layout's `RECORD`), summed.
    pub(crate) peak: i64,
}

/// The state of the process that wrote a line, when it wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LineSnapshot {
    pub(crate) live_bytes: i64,
    pub(crate) blocks: i64,
    pub(crate) allocated_bytes: i64,
    pub(crate) allocations: i64,
    /// The peak window this line closed.
    pub(crate) epoch: u64,
    pub(crate) pid: u32,
}

/// The private directory, the library in it and the mapped counters region of one run.
pub(crate) struct Heap {
    /// Removed on drop, with the library and the counters file.
    _dir: tempfile::TempDir,
    library: PathBuf,
    counters: PathBuf,
    /// `counters` with its links resolved, as a process's maps name it.
    counters_resolved: Vec<u8>,
    base: *mut u8,
    /// Per child process (by its record's offset and pid: a record taken over by a new
    /// process, once the slots ran out, is another's), the lowest live bytes and blocks it was
    /// read at, if below 0 (see [`Heap::sum_over`]).
    floors: std::sync::Mutex<std::collections::HashMap<(usize, u32), (i64, i64)>>,
    /// What [`Heap::cumulative`] last returned.
    last_cumulative: std::sync::Mutex<(i64, i64)>,
}

// SAFETY: the region is shared memory read and written only through atomics (see `at`); the
// pointer stays valid until drop, which needs exclusive ownership.
unsafe impl Send for Heap {}
unsafe impl Sync for Heap {}

impl Drop for Heap {
    fn drop(&mut self) {
        // SAFETY: mapped in `Heap::create` with this length, unmapped once.
        unsafe { libc::munmap(self.base.cast(), REGION_SIZE) };
    }
}

impl Heap {
    /// Create the directory, the library and the counters region.
    pub(crate) fn create() -> Result<Heap, String> {
        let dir = private_dir()?;
        let library = match std::env::var_os(ENV_LIBRARY).filter(|v| !v.is_empty()) {
            Some(path) => {
                let path = PathBuf::from(path);
                if !path.is_file() {
                    return Err(format!("{ENV_LIBRARY}={} names no file", path.display()));
                }
                std::path::absolute(&path).unwrap_or(path)
            }
            None => {
                if !preload::available() {
                    return Err(format!(
                        "this profile was built without its heap library ({})",
                        preload::UNAVAILABLE.trim()
                    ));
                }
                let path = dir.path().join(preload::FILE_NAME);
                write_new(&path, preload::LIBRARY, 0o700)
                    .map_err(|e| format!("could not write the heap library: {e}"))?;
                path
            }
        };
        let text = library.to_string_lossy();
        if text.contains([':', ' ']) {
            return Err(format!(
                "the heap library's path {text} holds a ':' or a space, which LD_PRELOAD \
                 cannot carry (set TMPDIR to another directory)"
            ));
        }
        let counters = dir.path().join("heap");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&counters)
            .and_then(|f| f.set_len(REGION_SIZE as u64).map(|()| f))
            .and_then(|f| {
                // Blocks for every page now: touching a page of a sparse file on a full disk
                // would kill the profiler with SIGBUS.
                use std::os::fd::AsRawFd;
                // SAFETY: a valid open file descriptor and a length within the file.
                match unsafe { libc::posix_fallocate(f.as_raw_fd(), 0, REGION_SIZE as i64) } {
                    0 => Ok(f),
                    e => Err(std::io::Error::from_raw_os_error(e)),
                }
            })
            .map_err(|e| format!("could not create the heap counters file: {e}"))?;
        use std::os::fd::AsRawFd;
        // SAFETY: a fresh shared mapping of a file we just sized; checked for failure.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                REGION_SIZE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(format!(
                "could not map the heap counters: {}",
                std::io::Error::last_os_error()
            ));
        }
        // Give every page of the file its memory now, before the program starts: the library
        // maps the pages it will write when it attaches (so that they count in the program's
        // RSS from the start), which then costs it a mapping per page (~0.1 ms in all)
        // instead of a fresh zeroed page each (1-5 ms, measured on this machine's /tmp).
        for at in (0..REGION_SIZE).step_by(4096) {
            // SAFETY: within the mapping just made; nobody else has the file yet.
            unsafe { std::ptr::write_volatile(base.cast::<u8>().add(at), 0) };
        }
        let counters_resolved = std::fs::canonicalize(&counters)
            .unwrap_or_else(|_| counters.clone())
            .into_os_string()
            .into_encoded_bytes();
        Ok(Heap {
            _dir: dir,
            library,
            counters,
            counters_resolved,
            base: base.cast(),
            floors: Default::default(),
            last_cumulative: Default::default(),
        })
    }

    /// The environment that loads the library into the program: `LD_PRELOAD` (ours first,
    /// then the program's own), the counters file, whether to snapshot lines and whether
    /// children count.
    pub(crate) fn env(&self, lines: bool, children: bool) -> Vec<(OsString, OsString)> {
        let mut preload = self.library.clone().into_os_string();
        if let Some(existing) = std::env::var_os("LD_PRELOAD").filter(|v| !v.is_empty()) {
            preload.push(":");
            preload.push(existing);
        }
        let flag = |on: bool| OsString::from(if on { "1" } else { "0" });
        vec![
            ("LD_PRELOAD".into(), preload),
            (ENV_FILE.into(), self.counters.clone().into_os_string()),
            (ENV_LINES.into(), flag(lines)),
            (ENV_CHILDREN.into(), flag(children)),
        ]
    }

    fn at<T>(&self, offset: usize) -> &T {
        debug_assert!(offset + size_of::<T>() <= REGION_SIZE);
        debug_assert!(offset.is_multiple_of(align_of::<T>()));
        // SAFETY: in bounds and aligned (the layout's offsets are multiples of the field
        // sizes, the mapping page-aligned); T is an atomic, so concurrent writes by the
        // program are well-defined for us.
        unsafe { &*self.base.add(offset).cast::<T>() }
    }

    fn u64(&self, offset: usize) -> u64 {
        self.at::<AtomicU64>(offset).load(Ordering::Acquire)
    }

    fn i64(&self, offset: usize) -> i64 {
        self.at::<AtomicI64>(offset).load(Ordering::Relaxed)
    }

    fn u32(&self, offset: usize) -> u32 {
        self.at::<AtomicU32>(offset).load(Ordering::Acquire)
    }

    /// Whether the library attached in `pid`, the program's first process.
    pub(crate) fn attached(&self, pid: u32) -> bool {
        self.u64(H_MAGIC) == MAGIC && self.u32(H_VERSION) == VERSION && self.u32(H_ROOT_PID) == pid
    }

    /// Whether the library counts into this run's counters in `pid`'s current image: the
    /// counters file is mapped there (`None` when its maps cannot be read). The library maps
    /// it when it attaches and keeps it for the process's life; an exec drops every mapping,
    /// and the new image maps it again only if it attaches. So a program that executed
    /// itself anew without LD_PRELOAD, or with it but without `MEMCREEP_HEAP_FILE` (the
    /// library loaded with nothing to count into), has not: the slots it holds are the old
    /// image's, frozen. A process that has exited but is not yet reaped (a zombie) has empty
    /// maps, or maps cut short when it exited while they were read: that says nothing
    /// either, and must not switch the heap counters off for the lines it already wrote.
    pub(crate) fn counting_in(&self, pid: u32) -> Option<bool> {
        let maps = std::fs::read(format!("/proc/{pid}/maps")).ok()?;
        let path = &self.counters_resolved[..];
        // The path ends a line, or is followed by " (deleted)".
        if maps
            .windows(path.len() + 1)
            .any(|w| &w[..path.len()] == path && matches!(w[path.len()], b'\n' | b' '))
        {
            return Some(true);
        }
        let alive = super::tree::state(pid) == super::tree::State::Alive;
        (alive && !maps.is_empty()).then_some(false)
    }

    /// Whether the library counts in `pid`, a process of the measured tree: its current image
    /// maps the counters ([`Heap::counting_in`]) and the process took a slot (one that ran
    /// out of slots, was started with LD_PRELOAD or `MEMCREEP_HEAP_FILE` cleared, is
    /// statically linked, or whose loader refused the library, did not). A live
    /// process whose maps cannot be read (another user's, or setuid: its loader ignores a
    /// preload given by path anyway) counts only if it holds a slot and took on no ids or
    /// capabilities of its own: a child forked with --include-children takes its slot before
    /// it execs, and a set-user-ID image never gives it back. `None` when that cannot be told
    /// (the process is ending or gone).
    pub(crate) fn counts(&self, pid: u32) -> Option<bool> {
        let slot = self.slots_of(&[pid]).next().is_some();
        match self.counting_in(pid) {
            Some(loaded) => Some(loaded && slot),
            None if super::tree::state(pid) == super::tree::State::Alive => {
                let denied = matches!(
                    std::fs::File::open(format!("/proc/{pid}/maps")),
                    Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied
                );
                if !denied {
                    None
                } else if !slot {
                    Some(false)
                } else {
                    super::tree::raised_privileges(pid).map(|raised| !raised)
                }
            }
            None => None,
        }
    }

    /// Allocations and bytes allocated by every process that counted here, those that have
    /// exited included (a process's slots keep their counts, or the header does once another
    /// process took its slots over): with --include-children, children that come and go
    /// between two samples made allocations that no sample's processes hold any more. Read
    /// again while a takeover moves counts (`H_RECLAIMS` odd or changed).
    pub(crate) fn cumulative(&self) -> (i64, i64) {
        let reclaims = || self.at::<AtomicU64>(H_RECLAIMS).load(Ordering::Acquire);
        // A process killed in the middle of a takeover leaves the count odd for good: after a
        // while, take what was read, never less than what was last returned.
        for _ in 0..1000 {
            let before = reclaims();
            let sums = self.read_cumulative();
            std::sync::atomic::fence(Ordering::Acquire);
            if before % 2 == 0 && reclaims() == before {
                return self.no_less(sums);
            }
            std::thread::yield_now();
        }
        self.no_less(self.read_cumulative())
    }

    /// The exited processes' counts and every slot's, as they are now.
    fn read_cumulative(&self) -> (i64, i64) {
        let used = (self.u32(H_USED) as usize).min(SLOTS);
        (0..used)
            .map(|i| SLOTS_OFFSET + i * SLOT_SIZE)
            .filter(|&slot| !self.is_record(slot))
            .fold(
                (self.i64(H_EXITED_ALLOCATED), self.i64(H_EXITED_ALLOCATIONS)),
                |(bytes, allocations), slot| {
                    (
                        bytes + self.i64(slot + S_ALLOCATED_BYTES),
                        allocations + self.i64(slot + S_ALLOCATIONS),
                    )
                },
            )
    }

    /// `sums`, raised to what [`Heap::cumulative`] last returned: cumulative counts never fall.
    fn no_less(&self, sums: (i64, i64)) -> (i64, i64) {
        let mut last = self
            .last_cumulative
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        *last = (last.0.max(sums.0), last.1.max(sums.1));
        *last
    }

    /// The started program's own RSS high-water mark, written by the library as it exited
    /// through `exit()` (see the layout's `H_HWM`).
    pub(crate) fn high_water(&self) -> Option<u64> {
        let hwm = self.at::<AtomicU64>(H_HWM).load(Ordering::Acquire);
        (hwm > 0).then_some(hwm)
    }

    /// Processes that loaded the library and were not counted (children, without
    /// `--include-children`), as tallied: a fork child that then execs counts once at the fork
    /// and once more when the new image loads the library, so it tells "none" from "some".
    pub(crate) fn declined(&self) -> u32 {
        self.u32(H_DECLINED)
    }

    /// Flags the library raised (see the layout's `FLAG_*`).
    pub(crate) fn flags(&self) -> u32 {
        self.u32(H_FLAGS)
    }

    fn store(&self, offset: usize, value: i64) {
        self.at::<AtomicI64>(offset).store(value, Ordering::Relaxed);
    }

    /// The offsets of the slots (records included) of the processes `pids`.
    fn slots_of<'a>(&'a self, pids: &'a [u32]) -> impl Iterator<Item = usize> + 'a {
        let used = (self.u32(H_USED) as usize).min(SLOTS);
        (0..used)
            .map(|i| SLOTS_OFFSET + i * SLOT_SIZE)
            .filter(|&slot| pids.contains(&self.u32(slot + S_OWNER)))
    }

    fn is_record(&self, slot: usize) -> bool {
        self.u32(slot + S_IN_USE) == RECORD
    }

    /// The counters of the processes `pids` now, their peak in the current window.
    pub(crate) fn totals(&self, pids: &[u32]) -> Totals {
        self.sum_over(pids, false)
    }

    /// [`Heap::totals`], closing the window and starting a new one (a time sample without
    /// markers), as the library does at a line: each slot's peak becomes its live bytes and
    /// its call count is noted, each record's peak becomes its sum.
    pub(crate) fn take_window(&self, pids: &[u32]) -> Totals {
        self.at::<AtomicU64>(H_EPOCH).fetch_add(1, Ordering::AcqRel);
        self.sum_over(pids, true)
    }

    /// The processes `pids` summed. A child counts from its lowest point below zero: a forked
    /// child starts from 0 while it holds a copy of every block of its parent, so freeing them
    /// drove it below 0, and a pool of workers each freeing what it inherited cancelled the
    /// parent's real growth (a leak of 1 KiB per iteration read as clean, the tree's heap at
    /// -75 KiB). What it frees of its inheritance is not a fall of the tree's heap; what it
    /// allocates after is growth from there.
    fn sum_over(&self, pids: &[u32], new_window: bool) -> Totals {
        let mut t = Totals::default();
        let root = self.u32(H_ROOT_PID);
        for &pid in pids {
            let mut one = self.process_totals(pid, new_window);
            let record = self
                .slots_of(std::slice::from_ref(&pid))
                .find(|&slot| self.is_record(slot));
            if let (true, Some(record)) = (pid != root, record) {
                let mut floors = self.floors.lock().unwrap_or_else(|e| e.into_inner());
                // Records that changed hands are another process's now: forget their floors.
                floors.retain(|&(at, owner), _| self.u32(at + S_OWNER) == owner);
                let floor = floors.entry((record, pid)).or_insert((0, 0));
                *floor = (floor.0.min(one.live_bytes), floor.1.min(one.blocks));
                one.live_bytes -= floor.0;
                one.blocks -= floor.1;
                one.peak -= floor.0;
            }
            t.live_bytes += one.live_bytes;
            t.blocks += one.blocks;
            t.allocations += one.allocations;
            t.allocated_bytes += one.allocated_bytes;
            t.peak += one.peak;
        }
        t
    }

    /// One process's counters and peak: the lower of the sum of its slots' peaks and, when it
    /// has a record, the record's peak plus what each slot may have held unpublished (the
    /// library's `process_sums` computes the same from inside, in the same order: the
    /// record's window is closed after the slots' and the next one opened before them, so
    /// that a slot peaking while they are reset one by one is in both of its windows).
    fn process_totals(&self, pid: u32, new_window: bool) -> Totals {
        let pid = std::slice::from_ref(&pid);
        let record = self.slots_of(pid).find(|&slot| self.is_record(slot));
        let record_peak = record.map(|r| {
            let peak = self.at::<AtomicI64>(r + R_PEAK);
            if new_window {
                peak.swap(self.i64(r + R_SUM), Ordering::Relaxed)
            } else {
                peak.load(Ordering::Relaxed)
            }
        });
        let mut t = Totals::default();
        let (mut slot_peaks, mut unpublished) = (0, 0);
        for slot in self.slots_of(pid).filter(|&slot| !self.is_record(slot)) {
            let live = self.i64(slot + S_LIVE_BYTES);
            let allocations = self.i64(slot + S_ALLOCATIONS);
            let frees = self.i64(slot + S_FREES);
            t.live_bytes += live;
            t.blocks += allocations - frees;
            t.allocations += allocations;
            t.allocated_bytes += self.i64(slot + S_ALLOCATED_BYTES);
            slot_peaks += self.i64(slot + S_PEAK).max(live);
            let mut drift = live - self.i64(slot + S_PUBLISHED);
            if allocations + frees != self.i64(slot + S_RESET_CALLS) {
                drift = drift.max(PUBLISH_BEYOND);
            }
            unpublished += drift.max(0);
            if new_window {
                self.store(slot + S_PEAK, live);
                self.store(slot + S_RESET_CALLS, allocations + frees);
            }
        }
        t.peak = match (record, record_peak) {
            (Some(r), Some(before)) => {
                let published = before.max(self.i64(r + R_PEAK)).max(self.i64(r + R_SUM));
                slot_peaks.min((published + unpublished).max(t.live_bytes))
            }
            // A process that got no record (out of slots) publishes nothing.
            _ => slot_peaks,
        };
        t
    }

    /// Line `index` of `stream` (0 stdout, 1 stderr), if its snapshot is there and whole.
    fn entry(&self, stream: usize, index: u64) -> Option<(u64, LineSnapshot)> {
        let at = RINGS_OFFSET + (stream * RING + (index % RING as u64) as usize) * ENTRY_SIZE;
        let seq = self.u64(at + E_SEQ);
        if seq != index + 1 {
            return None;
        }
        let hash = self.u64(at + E_HASH);
        let snapshot = LineSnapshot {
            live_bytes: self.i64(at + E_LIVE_BYTES),
            blocks: self.i64(at + E_BLOCKS),
            allocated_bytes: self.i64(at + E_ALLOCATED_BYTES),
            allocations: self.i64(at + E_ALLOCATIONS),
            epoch: self.u64(at + E_EPOCH),
            pid: self.u32(at + E_PID),
        };
        std::sync::atomic::fence(Ordering::Acquire);
        (self.u64(at + E_SEQ) == seq).then_some((hash, snapshot))
    }

    /// Lines recorded so far on `stream`.
    fn lines(&self, stream: usize) -> u64 {
        self.u64(H_LINES + 8 * stream)
    }

    /// The highest peak of the windows after `after` up to and including `upto` that are
    /// still recorded; `None` when none is.
    pub(crate) fn peak_between(&self, after: u64, upto: u64) -> Option<i64> {
        let from = (after + 1).max(upto.saturating_sub(RING as u64 - 1));
        (from..=upto)
            .filter_map(|epoch| {
                let at = PEAKS_OFFSET + (epoch % RING as u64) as usize * PEAK_SIZE;
                let tag = self.u64(at);
                let peak = self.i64(at + 8);
                std::sync::atomic::fence(Ordering::Acquire);
                (tag == epoch + 1 && self.u64(at) == tag).then_some(peak)
            })
            .max()
    }
}

/// Pairs the lines one output stream delivers with the library's snapshots, in order.
pub(crate) struct Pairing {
    heap: std::sync::Arc<Heap>,
    stream: usize,
    /// The next line index expected.
    cursor: u64,
}

impl Pairing {
    /// `stream`: 0 for stdout, 1 for stderr.
    pub(crate) fn new(heap: std::sync::Arc<Heap>, stream: usize) -> Self {
        Pairing {
            heap,
            stream,
            cursor: 0,
        }
    }

    /// The snapshot of the next line recorded with this hash, skipping lines recorded but
    /// never seen here; `None` for a line the library did not record (written by a process
    /// without it, or by a path it cannot see: it is then read live).
    pub(crate) fn pair(&mut self, hash: u64) -> Option<LineSnapshot> {
        let recorded = self.heap.lines(self.stream);
        let start = self.cursor.max(recorded.saturating_sub(RING as u64));
        let end = recorded.min(start + WINDOW);
        for index in start..end {
            if let Some((h, snapshot)) = self.heap.entry(self.stream, index)
                && h == hash
            {
                self.cursor = index + 1;
                return Some(snapshot);
            }
        }
        None
    }
}

/// FNV-1a 64 over a line's bytes, as the library computes it (continue from `h`).
pub(crate) fn hash_bytes(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h = (h ^ u64::from(b)).wrapping_mul(FNV_PRIME);
    }
    h
}

/// The hash of an empty line: where each line's hash starts.
pub(crate) const HASH_START: u64 = FNV_OFFSET;

/// A directory only this user can enter, removed on drop.
fn private_dir() -> Result<tempfile::TempDir, String> {
    let dir = tempfile::Builder::new()
        .prefix("memcreep-")
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir()
        .map_err(|e| format!("could not create a private directory for the heap library: {e}"))?;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
        .map_err(|e| format!("could not make {} private: {e}", dir.path().display()))?;
    Ok(dir)
}

fn write_new(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Why the library cannot work for `program` (the command's first word), if it cannot: a
/// statically linked ELF has no dynamic loader to preload it, and the loader ignores
/// LD_PRELOAD for a program that gains privileges (setuid or setgid to someone else).
pub(crate) fn obstacle(program: &OsStr) -> Option<String> {
    let path = find_program(program)?;
    obstacle_at(&path, 0)
}

fn obstacle_at(path: &Path, depth: u32) -> Option<String> {
    let name = path.display();
    let meta = std::fs::metadata(path).ok()?;
    // SAFETY: plain getters without arguments.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    let mode = meta.mode();
    if (mode & 0o4000 != 0 && meta.uid() != uid) || (mode & 0o2000 != 0 && meta.gid() != gid) {
        return Some(format!(
            "{name} is setuid or setgid, and the dynamic loader ignores LD_PRELOAD for it"
        ));
    }
    let mut head = Vec::with_capacity(256);
    std::fs::File::open(path)
        .ok()?
        .take(256)
        .read_to_end(&mut head)
        .ok()?;
    if let Some(line) = head.strip_prefix(b"#!") {
        // A script: what runs is its interpreter (one level: `/usr/bin/env python3` is a
        // dynamic env, which then runs python3 with the same environment).
        if depth > 0 {
            return None;
        }
        let line = line.split(|&b| b == b'\n').next()?;
        let text = String::from_utf8_lossy(line);
        let interpreter = text.split_whitespace().next()?;
        return obstacle_at(Path::new(interpreter), depth + 1);
    }
    match elf_has_interpreter(path) {
        Some(false) => Some(format!(
            "{name} is statically linked: there is no dynamic loader to preload the heap \
             library into"
        )),
        _ => None,
    }
}

/// Whether the ELF file at `path` asks for a dynamic loader (a PT_INTERP program header);
/// `None` when it is not an ELF file this can read.
pub(crate) fn elf_has_interpreter(path: &Path) -> Option<bool> {
    use std::io::{Seek, SeekFrom};
    const PT_INTERP: u32 = 3;
    let mut file = std::fs::File::open(path).ok()?;
    let mut ident = [0u8; 64];
    file.read_exact(&mut ident).ok()?;
    if &ident[..4] != b"\x7fELF" || ident[5] != 1 {
        return None; // not ELF, or big-endian (not ours to read)
    }
    let wide = ident[4] == 2;
    let u16_at = |o: usize| u16::from_le_bytes([ident[o], ident[o + 1]]);
    let (phoff, phentsize, phnum) = if wide {
        (
            u64::from_le_bytes(ident[32..40].try_into().ok()?),
            u16_at(54),
            u16_at(56),
        )
    } else {
        (
            u64::from(u32::from_le_bytes(ident[28..32].try_into().ok()?)),
            u16_at(42),
            u16_at(44),
        )
    };
    if phentsize < 4 || phnum == 0 {
        return Some(false);
    }
    file.seek(SeekFrom::Start(phoff)).ok()?;
    let mut table = vec![0u8; usize::from(phentsize) * usize::from(phnum)];
    file.read_exact(&mut table).ok()?;
    Some(
        table
            .chunks(usize::from(phentsize))
            .any(|h| u32::from_le_bytes([h[0], h[1], h[2], h[3]]) == PT_INTERP),
    )
}

/// The file `program` names: itself with a '/', else the first match on PATH.
fn find_program(program: &OsStr) -> Option<PathBuf> {
    let path = Path::new(program);
    if program.as_encoded_bytes().contains(&b'/') {
        return Some(path.to_path_buf());
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(path))
        .find(|p| p.is_file())
}

/// Whether `program` is a CPython interpreter (python, python3, python3.12...), whose
/// small-object allocator would hide its objects from malloc.
pub(crate) fn is_python(program: &OsStr) -> bool {
    Path::new(program)
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| {
            n.strip_prefix("python")
                .is_some_and(|rest| rest.chars().all(|c| c.is_ascii_digit() || c == '.'))
        })
}

/// Whether the command line starts CPython: an interpreter named as such, through `env`
/// (`env [VAR=value...] python3 ...`), or a script whose `#!` line names one (directly or
/// through env): `./tool.py`, `pytest`, `gunicorn`...
pub(crate) fn runs_python(cmd: &[OsString]) -> bool {
    let Some((program, args)) = cmd.split_first() else {
        return false;
    };
    if is_python(program) {
        return true;
    }
    if is_env(program) {
        return after_env(args).is_some_and(is_python);
    }
    find_program(program)
        .and_then(|p| shebang(&p))
        .is_some_and(|line| {
            let mut words = line.split_ascii_whitespace().map(OsStr::new);
            words.next().is_some_and(|interpreter| {
                is_python(interpreter)
                    || (is_env(interpreter)
                        && after_env(
                            words
                                .map(OsStr::to_os_string)
                                .collect::<Vec<_>>()
                                .as_slice(),
                        )
                        .is_some_and(is_python))
            })
        })
}

/// The executable file the command runs first: the program itself, or the one `env` runs.
pub(crate) fn executable(cmd: &[OsString]) -> Option<PathBuf> {
    let (program, args) = cmd.split_first()?;
    let program = if is_env(program) {
        after_env(args)?
    } else {
        program
    };
    find_program(program)
}

fn is_env(program: &OsStr) -> bool {
    Path::new(program).file_name() == Some(OsStr::new("env"))
}

/// The program `env` runs: its first argument that is neither an option nor `VAR=value`.
fn after_env(args: &[OsString]) -> Option<&OsStr> {
    args.iter()
        .map(OsString::as_os_str)
        .find(|a| !a.as_encoded_bytes().starts_with(b"-") && !a.as_encoded_bytes().contains(&b'='))
}

/// The `#!` line of a script (without `#!`), if `path` is one.
fn shebang(path: &Path) -> Option<String> {
    let mut head = [0u8; 256];
    let n = std::fs::File::open(path).ok()?.read(&mut head).ok()?;
    let line = head[..n].strip_prefix(b"#!")?;
    let end = line.iter().position(|&b| b == b'\n').unwrap_or(line.len());
    Some(String::from_utf8_lossy(&line[..end]).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_is_recognised_through_env_and_scripts() {
        let dir = tempfile::tempdir().unwrap();
        let script = |name: &str, line: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, format!("{line}\nprint(1)\n")).unwrap();
            path.into_os_string()
        };
        let cmd = |words: &[&str]| words.iter().map(OsString::from).collect::<Vec<_>>();
        for yes in [
            cmd(&["python3", "x.py"]),
            cmd(&["env", "python3", "x.py"]),
            cmd(&["/usr/bin/env", "-S", "PYTHONPATH=.", "python3.12", "x.py"]),
            vec![script("a.py", "#!/usr/bin/python3")],
            vec![script("b", "#!/usr/bin/env python3 -u")],
            vec![script("c", "#! /opt/venv/bin/python")],
        ] {
            assert!(runs_python(&yes), "{yes:?}");
        }
        for no in [
            cmd(&["sh", "-c", "python3 x.py"]),
            cmd(&["env", "FOO=python3", "ruby", "x.rb"]),
            vec![script("d", "#!/bin/sh")],
            vec![script("e", "print(1)")],
            cmd(&[]),
        ] {
            assert!(!runs_python(&no), "{no:?}");
        }
    }

    #[test]
    fn pythons_are_recognised_by_name() {
        for yes in ["python", "python3", "/usr/bin/python3.11", "python3.12"] {
            assert!(is_python(OsStr::new(yes)), "{yes}");
        }
        for no in ["pythonista", "ipython", "sh", "python3-config"] {
            assert!(!is_python(OsStr::new(no)), "{no}");
        }
    }

    #[test]
    fn the_hash_is_fnv1a() {
        // Known FNV-1a 64 values.
        assert_eq!(hash_bytes(HASH_START, b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(hash_bytes(HASH_START, b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(
            hash_bytes(hash_bytes(HASH_START, b"do"), b"ne"),
            hash_bytes(HASH_START, b"done")
        );
    }

    #[test]
    fn static_and_dynamic_binaries_are_told_apart() {
        // The shell is dynamic on every machine we run on.
        assert_eq!(elf_has_interpreter(Path::new("/bin/sh")), Some(true));
        assert_eq!(obstacle(OsStr::new("sh")), None);
        assert_eq!(elf_has_interpreter(Path::new("/etc/hostname")), None);
    }

    #[test]
    fn the_region_is_private_and_removed_after_the_run() {
        let heap = Heap::create().unwrap();
        let dir = heap.counters.parent().unwrap().to_path_buf();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&heap.counters), 0o600);
        assert!(heap.library.is_file());
        assert!(!heap.attached(std::process::id()));
        assert_eq!(heap.totals(&[std::process::id()]), Totals::default());
        let env = heap.env(true, false);
        let preload = &env.iter().find(|(k, _)| k == "LD_PRELOAD").unwrap().1;
        assert!(
            preload
                .as_encoded_bytes()
                .starts_with(heap.library.as_os_str().as_encoded_bytes())
        );
        drop(heap);
        assert!(!dir.exists());
    }

    /// Write slot `index` of the region as process `pid`'s: `in_use`, then i64 fields.
    fn put(heap: &Heap, index: usize, pid: u32, in_use: u32, fields: &[(usize, i64)]) {
        let slot = SLOTS_OFFSET + index * SLOT_SIZE;
        heap.at::<AtomicU32>(slot + S_IN_USE)
            .store(in_use, Ordering::Relaxed);
        heap.at::<AtomicU32>(slot + S_OWNER)
            .store(pid, Ordering::Relaxed);
        for &(offset, value) in fields {
            heap.store(slot + offset, value);
        }
        heap.at::<AtomicU32>(H_USED)
            .fetch_max(index as u32 + 1, Ordering::Relaxed);
    }

    #[test]
    fn the_peak_is_the_lower_of_the_slot_peaks_and_the_published_bound() {
        let heap = Heap::create().unwrap();
        let (mib, beyond) = (1 << 20, PUBLISH_BEYOND);
        // A producer (10 MiB allocated, 8 MiB of it published) and a consumer (10 MiB freed,
        // all of it published): 2 MiB live, each slot's peak its own way.
        let producer = [
            (S_LIVE_BYTES, 10 * mib),
            (S_ALLOCATIONS, 10),
            (S_PEAK, 10 * mib),
        ];
        put(&heap, 0, 7, 1, &producer);
        heap.store(SLOTS_OFFSET + S_PUBLISHED, 10 * mib - beyond);
        let consumer = [
            (S_LIVE_BYTES, -8 * mib),
            (S_FREES, 8),
            (S_PUBLISHED, -8 * mib),
        ];
        put(&heap, 1, 7, 1, &consumer);
        put(
            &heap,
            2,
            7,
            RECORD,
            &[(R_SUM, 2 * mib - beyond), (R_PEAK, 3 * mib)],
        );
        // Another process's slot is not this one's.
        put(
            &heap,
            3,
            8,
            1,
            &[(S_LIVE_BYTES, 5 * mib), (S_PEAK, 5 * mib)],
        );
        let t = heap.totals(&[7]);
        assert_eq!((t.live_bytes, t.blocks, t.allocations), (2 * mib, 2, 10));
        // Both slots made calls since the (never started) window: 256 KiB each may be
        // unpublished, the producer's 256 KiB is.
        assert_eq!(t.peak, 3 * mib + 2 * beyond);
        // Closing the window reads the same, and starts the next: the record's peak becomes
        // its sum, each slot's peak its live bytes and its call count is noted...
        assert_eq!(heap.take_window(&[7]), t);
        let field =
            |index: usize, offset: usize| heap.i64(SLOTS_OFFSET + index * SLOT_SIZE + offset);
        assert_eq!(field(2, R_PEAK), 2 * mib - beyond);
        assert_eq!((field(0, S_PEAK), field(0, S_RESET_CALLS)), (10 * mib, 10));
        assert_eq!((field(1, S_PEAK), field(1, S_RESET_CALLS)), (-8 * mib, 8));
        // ... so that a slot that makes no call holds only what it held at the start.
        heap.store(SLOTS_OFFSET + S_PEAK, 12 * mib);
        assert_eq!(heap.totals(&[7]).peak, 2 * mib);
        // Without a record (a process that found no slot for it), the sum of slot peaks.
        put(&heap, 2, 7, 1, &[(R_SUM, 0), (R_PEAK, 0)]);
        assert_eq!(heap.totals(&[7]).peak, 12 * mib - 8 * mib);
        assert_eq!(heap.totals(&[7, 8]).live_bytes, 2 * mib + 5 * mib);
    }

    #[test]
    fn the_counters_mapped_tell_a_counting_image_and_a_zombie_says_nothing() {
        // A program that printed its last lines and exited, not yet reaped: its maps read as
        // empty, which once switched the heap counters off for the lines still to be paired.
        let heap = Heap::create().unwrap();
        // This process maps the counters (to read them); a program executed anew does not.
        assert_eq!(heap.counting_in(std::process::id()), Some(true));
        let mut other = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let comm = format!("/proc/{}/comm", other.id());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::fs::read_to_string(&comm).unwrap_or_default().trim() != "sleep"
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(heap.counting_in(other.id()), Some(false));
        other.kill().unwrap();
        other.wait().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let stat = format!("/proc/{}/stat", child.id());
        let zombie = || {
            let s = std::fs::read_to_string(&stat).unwrap_or_default();
            s.rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('Z'))
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !zombie() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(zombie(), "the child never exited");
        assert_eq!(heap.counting_in(child.id()), None);
        child.wait().unwrap();
    }
}
