// Owns one question about a running program: how much memory lies in malloc's own regions
// (glibc's brk heap and its arena heaps), live or free? Reads /proc/<pid>/maps text only.

//! glibc gives each thread that allocates an arena of its own (up to 8 per core), each arena
//! its own heaps: 64 MiB of address space reserved at a 64 MiB boundary, the part in use
//! readable and writable, the rest not. What a thread freed stays in its arena, so a program
//! whose threads take turns at a burst of work keeps each arena's high-water mark: a tokio
//! service on glibc (4 workers, a peak of 1.2 MiB live) held 4 arenas of ~1.4 MiB resident
//! each. That is malloc's memory, not a managed runtime's heap: read as "outside malloc",
//! its heap verdicts were never clean (9 runs of 10 inconclusive).

/// The size of a glibc arena heap's reservation on 64-bit targets (`HEAP_MAX_SIZE`: twice the
/// largest default mmap threshold, 32 MiB).
const ARENA_HEAP: u64 = 64 << 20;

/// Malloc's own regions in a process's maps, as address ranges: the brk heap (`[heap]`) and
/// the part in use of every glibc arena heap (an anonymous read-write mapping at a 64 MiB
/// boundary whose reservation, with the inaccessible mapping after it, is exactly 64 MiB).
/// Their span is an upper bound of what they hold resident: glibc makes pages accessible as
/// an arena's top grows and gives them back as it shrinks ([`resident`] tells which are).
pub(crate) fn malloc_ranges(maps: &[u8]) -> Vec<(u64, u64)> {
    let mappings: Vec<Mapping> = maps
        .split(|&b| b == b'\n')
        .filter_map(Mapping::parse)
        .collect();
    mappings
        .iter()
        .enumerate()
        .filter(|&(i, m)| {
            m.name == b"[heap]" || (m.is_arena_start() && m.reserved_to(mappings.get(i + 1)))
        })
        .map(|(_, m)| (m.start, m.end))
        .collect()
}

/// Bytes of `ranges` resident in the memory of process `pid` (pages present, from
/// `/proc/<pid>/pagemap`: 8 bytes per page, bit 63 set when present), or `None` when the file
/// cannot be read. The kernel walks the page tables of those ranges only: for a service with
/// 100 MiB in its arenas, 200 KiB read. Unlike `maps`, it tells the pages a program touched
/// from those it only reserved: glibc hands out blocks on pages nobody wrote yet (a buffer
/// of 64 KiB of which 512 B were written), and RSS grows as later blocks land on them.
pub(crate) fn resident(pid: u32, ranges: &[(u64, u64)]) -> Option<u64> {
    use std::io::{Read, Seek, SeekFrom};
    // SAFETY: sysconf has no preconditions.
    let page = u64::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) })
        .ok()
        .filter(|&p| p > 0)?;
    let mut file = std::fs::File::open(format!("/proc/{pid}/pagemap")).ok()?;
    let mut buf = vec![0u8; 8 << 10];
    let mut pages = 0u64;
    for &(start, end) in ranges {
        file.seek(SeekFrom::Start(start / page * 8)).ok()?;
        let mut left = ((end - start) / page * 8) as usize;
        while left > 0 {
            let n = file.read(&mut buf[..left.min(8 << 10)]).ok()?;
            if n == 0 {
                break;
            }
            pages += buf[..n - n % 8]
                .chunks_exact(8)
                .filter(|entry| entry[7] & 0x80 != 0)
                .count() as u64;
            left -= n;
        }
    }
    Some(pages * page)
}

/// One line of a maps file, the fields this module reads.
struct Mapping<'a> {
    start: u64,
    end: u64,
    perms: &'a [u8],
    /// The path or pseudo-name (`[heap]`), empty for an anonymous mapping.
    name: &'a [u8],
}

impl<'a> Mapping<'a> {
    /// `start-end perms offset dev inode [name]`.
    fn parse(line: &'a [u8]) -> Option<Mapping<'a>> {
        let mut fields = line.split(|&b| b == b' ').filter(|f| !f.is_empty());
        let range = fields.next()?;
        let perms = fields.next()?;
        let (_offset, _dev, _inode) = (fields.next()?, fields.next()?, fields.next()?);
        let name = fields.next().unwrap_or(b"");
        let dash = range.iter().position(|&b| b == b'-')?;
        let hex = |s: &[u8]| u64::from_str_radix(std::str::from_utf8(s).ok()?, 16).ok();
        Some(Mapping {
            start: hex(&range[..dash])?,
            end: hex(&range[dash + 1..])?,
            perms,
            name,
        })
    }

    /// Anonymous, private, readable and writable, at a 64 MiB boundary.
    fn is_arena_start(&self) -> bool {
        self.name.is_empty() && self.perms == b"rw-p" && self.start.is_multiple_of(ARENA_HEAP)
    }

    /// Whether this mapping's reservation is exactly an arena heap's: all of it, or up to the
    /// end of the inaccessible anonymous mapping right after it.
    fn reserved_to(&self, next: Option<&Mapping>) -> bool {
        let end = self.start + ARENA_HEAP;
        self.end == end
            || next.is_some_and(|n| {
                n.start == self.end && n.end == end && n.perms == b"---p" && n.name.is_empty()
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_brk_heap_and_glibcs_arena_heaps_are_mallocs_and_nothing_else_is() {
        // From a tokio service on glibc (4 workers), shortened; the JVM-like heap at the end
        // is reserved far beyond 64 MiB, a thread stack has its guard page below it.
        let maps = b"\
55d0c0000000-55d0c0006000 r--p 00000000 08:01 123 /usr/bin/server
55d0c1a4f000-55d0c1a90000 rw-p 00000000 00:00 0                          [heap]
7f1a2c000000-7f1a2c160000 rw-p 00000000 00:00 0 
7f1a2c160000-7f1a30000000 ---p 00000000 00:00 0 
7f1a30000000-7f1a34000000 rw-p 00000000 00:00 0 
7f1a34000000-7f1a34150000 rw-p 00000000 00:00 0 
7f1a34150000-7f1a38000000 ---p 00000000 00:00 0 
7f1a38000000-7f1a38100000 rw-p 00000000 00:00 0 
7f1a38100000-7f1a48000000 ---p 00000000 00:00 0 
7f1a4c000000-7f1a4c001000 ---p 00000000 00:00 0 
7f1a4c001000-7f1a4c201000 rw-p 00000000 00:00 0 
7f1a50000000-7f1a50010000 rw-p 00000000 00:00 0 
7ffd1c000000-7ffd1c021000 rw-p 00000000 00:00 0                          [stack]
";
        let heap = 0x55d0c1a90000u64 - 0x55d0c1a4f000;
        let arenas = 0x160000u64 + 0x4000000 + 0x150000;
        let span = |maps: &[u8]| -> u64 { malloc_ranges(maps).iter().map(|(a, b)| b - a).sum() };
        assert_eq!(span(maps), heap + arenas);
        assert_eq!(span(b""), 0);
        assert_eq!(span(b"garbage\nmore garbage"), 0);
    }

    /// The page map counts the pages a process touched, not those it only mapped: 3 of 16
    /// pages of an anonymous mapping of this process written, then all of them.
    #[test]
    fn resident_counts_the_pages_touched_in_the_ranges() {
        let page = 4096usize;
        let len = 16 * page;
        // SAFETY: a fresh private anonymous mapping, unmapped below.
        let at = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(at, libc::MAP_FAILED);
        let range = [(at as u64, at as u64 + len as u64)];
        let me = std::process::id();
        assert_eq!(resident(me, &range), Some(0));
        for i in [0, 5, 15] {
            // SAFETY: within the mapping.
            unsafe { (at as *mut u8).add(i * page).write(1) };
        }
        assert_eq!(resident(me, &range), Some(3 * page as u64));
        // SAFETY: within the mapping.
        unsafe { std::ptr::write_bytes(at as *mut u8, 1, len) };
        assert_eq!(resident(me, &range), Some(len as u64));
        assert_eq!(resident(me, &[]), Some(0));
        assert_eq!(resident(u32::MAX, &range), None);
        // SAFETY: the mapping made above.
        unsafe { libc::munmap(at, len) };
    }
}
