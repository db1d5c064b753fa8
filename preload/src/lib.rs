// Owns the preload library's bytes and the layout of the region it shares with the profiler.
// Must never depend on the profiler: the profiler depends on it.

//! The heap library `profile -- COMMAND` injects into a program with `LD_PRELOAD`.
//!
//! The library itself is C (`src/preload.c`), compiled by this crate's build script with the
//! C compiler the Rust toolchain links with, and embedded here as bytes: a binary built on
//! memcreep writes [`LIBRARY`] to a private directory at run time and preloads it, with no
//! install step. It interposes the malloc family (sizes from `malloc_usable_size`, counted per
//! thread without locks) and, with markers, snapshots its counters at every line the program
//! writes to stdout or stderr. [`layout`] is the shared region's layout, the one definition
//! both sides compile from.

/// The layout of the shared counters region (offsets in bytes, sizes, environment names).
pub mod layout {
    include!("layout.rs");
}

// The layout holds together: checked when this crate compiles.
const _: () = {
    use layout::*;
    assert!(H_LINES + 16 <= HEADER_SIZE);
    assert!(H_EPOCH.is_multiple_of(64));
    assert!(SLOTS_OFFSET.is_multiple_of(4096));
    assert!(S_RESET_CALLS + 8 <= SLOT_SIZE && R_PEAK + 8 <= SLOT_SIZE);
    assert!(E_PID + 4 <= ENTRY_SIZE);
    assert!(REGION_SIZE == PEAKS_OFFSET + RING * PEAK_SIZE);
    assert!(MAGIC == u64::from_le_bytes(*b"MEMCREEP"));
};

/// The shared object, ready to be written to a file and preloaded; empty when it could not be
/// built (see [`UNAVAILABLE`]).
pub const LIBRARY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/libmemcreep_preload.so"));

/// The file name the library is written under.
pub const FILE_NAME: &str = "libmemcreep_preload.so";

/// Why the library could not be built (empty when it was).
pub const UNAVAILABLE: &str = include_str!(concat!(env!("OUT_DIR"), "/unavailable.txt"));

/// Whether this build carries the library.
pub fn available() -> bool {
    !LIBRARY.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn the_library_is_a_shared_object() {
        assert!(available(), "{UNAVAILABLE}");
        assert_eq!(&LIBRARY[..4], b"\x7fELF");
        assert!(UNAVAILABLE.is_empty());
    }
}
