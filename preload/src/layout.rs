// The layout of the shared counters region, the one definition both sides use: lib.rs
// re-exports it for the profiler, build.rs passes each constant to the C compiler as a macro
// (preload.c checks its structs against them with _Static_assert). Plain constants only: this
// file is `include!`d by build.rs.

/// "MEMCREEP" read as a little-endian u64: the library writes it last when it attaches.
pub const MAGIC: u64 = 0x5045_4552_434d_454d;
/// Bumped whenever anything below changes meaning.
pub const VERSION: u32 = 4;

/// The header: identity, the epoch, line counters (one 4 KiB page).
pub const HEADER_SIZE: usize = 4096;
/// Offsets in the header (bytes).
pub const H_MAGIC: usize = 0;
pub const H_VERSION: usize = 8;
pub const H_SLOTS: usize = 12;
pub const H_RING: usize = 16;
/// The pid of the first process that attached: the program the profiler started.
pub const H_ROOT_PID: usize = 20;
/// Processes that attached and count (the root, then children when they are included).
pub const H_PROCESSES: usize = 24;
/// Bit 0: a process ran out of slots (its late threads share one, counted with atomics).
/// Bit 1: a line could not be snapshotted (two threads writing lines at once).
pub const H_FLAGS: usize = 28;
/// Slots handed out so far (a high-water mark: slots at or past it were never used).
pub const H_USED: usize = 32;
/// Processes that loaded the library but are not counted (children without
/// --include-children, exec'd or forked), u32.
pub const H_DECLINED: usize = 36;
/// The root process's own RSS high-water mark in bytes (`VmHWM`), written when it exits
/// through `exit()`, 0 otherwise (u64). The kernel's `ru_maxrss` of a started program also
/// counts the process image it was exec'd from: the profiler's own 14 MiB.
pub const H_HWM: usize = 40;
/// Allocations and bytes allocated by processes whose slots were taken over (i64 each):
/// when the slots ran out, those of processes that exited are reused, and what they counted
/// moves here, so that the tree's cumulative counts never fall.
pub const H_EXITED_ALLOCATIONS: usize = 48;
pub const H_EXITED_ALLOCATED: usize = 56;
/// The number of the peak window: every newline on stdout/stderr (with markers) or every time
/// sample of the profiler (without) starts a new one, resetting the slots' peaks.
pub const H_EPOCH: usize = 64;
/// Odd while a process moves an exited one's counts into the header and clears its slot
/// (u64, bumped before and after): a reader of cumulative counts reads again meanwhile.
pub const H_RECLAIMS: usize = 72;
/// Lines claimed on stdout (index 0) and stderr (index 1), one u64 each.
pub const H_LINES: usize = 128;

pub const FLAG_OUT_OF_SLOTS: u32 = 1;
pub const FLAG_LINE_SKIPPED: u32 = 2;

/// Per-thread counter slots, 64 bytes (one cache line) each.
pub const SLOTS: usize = 1024;
pub const SLOT_SIZE: usize = 64;
/// Offsets in a slot: owner pid (u32, 0 never used, DEAD for a process image gone),
/// in_use (u32: 0 free, 1 a thread's, or RECORD), then i64s.
pub const S_OWNER: usize = 0;
pub const S_IN_USE: usize = 4;
pub const S_LIVE_BYTES: usize = 8;
pub const S_ALLOCATIONS: usize = 16;
pub const S_FREES: usize = 24;
pub const S_ALLOCATED_BYTES: usize = 32;
/// The peak of the slot's own live bytes in the current window.
pub const S_PEAK: usize = 40;
/// The live bytes this slot last added to its process's published sum (see RECORD).
pub const S_PUBLISHED: usize = 48;
/// `allocations + frees` when the current peak window started (written by whoever starts
/// it): a slot that made no call since has held its drift from `S_PUBLISHED` all along.
pub const S_RESET_CALLS: usize = 56;
/// `in_use` of a process's record: a slot holding no counts but, at R_SUM, the sum of its
/// slots' `S_PUBLISHED` and, at R_PEAK, the highest that sum reached in the current window.
/// A slot publishes when its live bytes moved more than PUBLISH_BEYOND from what it last
/// published (checked after each call is counted), so that between calls the process's heap
/// is never more than the published sum plus PUBLISH_BEYOND per slot: a bound on its peak
/// that, unlike the sum of per-slot peaks, does not grow with bytes one thread allocates and
/// another frees.
pub const RECORD: u32 = 2;
pub const R_SUM: usize = 8;
pub const R_PEAK: usize = 16;
pub const PUBLISH_BEYOND: i64 = 256 << 10;
/// Owner of a slot whose process image is gone (exec'd or a reused pid).
pub const DEAD: u32 = u32::MAX;
/// Owner of a slot while a process takes it over from one that exited.
pub const RECLAIMING: u32 = u32::MAX - 1;

/// Snapshots per output stream, indexed by line number modulo RING.
pub const RING: usize = 16384;
pub const ENTRY_SIZE: usize = 64;
/// Offsets in a line snapshot: seq (u64: line index + 1, written last; 0 while written),
/// hash (FNV-1a 64 of the line without its '\n'), then the writing process's counters.
pub const E_SEQ: usize = 0;
pub const E_HASH: usize = 8;
pub const E_LIVE_BYTES: usize = 16;
pub const E_BLOCKS: usize = 24;
pub const E_ALLOCATED_BYTES: usize = 32;
pub const E_ALLOCATIONS: usize = 40;
/// The peak window this line closed.
pub const E_EPOCH: usize = 48;
pub const E_PID: usize = 56;

/// Peaks of closed windows, indexed by epoch modulo RING: (epoch + 1, peak) per 16 bytes.
pub const PEAK_SIZE: usize = 16;

pub const SLOTS_OFFSET: usize = HEADER_SIZE;
pub const RINGS_OFFSET: usize = SLOTS_OFFSET + SLOTS * SLOT_SIZE;
pub const PEAKS_OFFSET: usize = RINGS_OFFSET + 2 * RING * ENTRY_SIZE;
/// Size of the whole region (the file is created this long). The library touches every page
/// it will write when it attaches (the line snapshots only with --marker), so that the pages
/// of the mapping count in the program's RSS from the start instead of growing with its lines.
pub const REGION_SIZE: usize = PEAKS_OFFSET + RING * PEAK_SIZE;

/// Environment variables the profiler sets for the program.
pub const ENV_FILE: &str = "MEMCREEP_HEAP_FILE";
/// "1": snapshot the counters at every line written to stdout or stderr (with --marker).
pub const ENV_LINES: &str = "MEMCREEP_HEAP_LINES";
/// "1": processes other than the first one (children) count too, in their own slots.
pub const ENV_CHILDREN: &str = "MEMCREEP_HEAP_CHILDREN";

/// FNV-1a 64, the line hash both sides compute.
pub const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
pub const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
