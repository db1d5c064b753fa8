// Owns one question about a program's executable: does it carry an allocator of its own
// (mimalloc, jemalloc, tcmalloc linked in), whose blocks never pass through the malloc the
// heap library counts? Reads the file only.

//! A Rust program built with `#[global_allocator] static A: mimalloc::MiMalloc` (or
//! tikv-jemallocator) allocates through functions linked into its executable, which no
//! preloaded library can see; its C libraries still call libc's malloc now and then (a
//! hostname lookup, a locale). The heap counters then see those few calls, a flat line, and
//! a tester's program leaking 1 KB an iteration through mimalloc read as heap-clean, exit 0.
//! The allocators are recognised by messages they carry in the executable, which stripping
//! keeps (symbol names it does not).

use std::io::Read;
use std::path::Path;

/// Text each allocator carries for its own error and warning messages: the name, then what
/// follows it. Kept apart and joined at run time, so that this crate's own binaries (and every
/// binary linking it) do not carry the marks themselves.
const MARKS: [(&str, &str, &str); 3] = [
    ("mimalloc", "", ": warning: "),
    ("jemalloc", "<", ">: "),
    ("tcmalloc", "", ": large alloc "),
];

/// A mark, whole.
fn mark((name, before, after): (&str, &str, &str)) -> String {
    format!("{before}{name}{after}")
}

/// The allocator linked into the executable at `path`, if one of [`MARKS`] is in it.
pub(crate) fn linked_into(path: &Path) -> Option<&'static str> {
    let mut file = std::fs::File::open(path).ok()?;
    let longest = MARKS.iter().map(|&m| mark(m).len()).max().unwrap_or(0);
    // In chunks, each starting with the end of the one before: a mark across their border
    // is still found.
    let mut buf = vec![0u8; 1 << 20];
    let mut kept = 0;
    loop {
        let n = file.read(&mut buf[kept..]).ok()?;
        if n == 0 {
            return None;
        }
        let filled = kept + n;
        if let Some(name) = find(&buf[..filled]) {
            return Some(name);
        }
        kept = longest.min(filled);
        buf.copy_within(filled - kept..filled, 0);
    }
}

fn find(bytes: &[u8]) -> Option<&'static str> {
    // One pass for all marks (a literal search, vectorised): an executable of hundreds of
    // MB is read once per run.
    static ANY: std::sync::LazyLock<regex::bytes::Regex> = std::sync::LazyLock::new(|| {
        let marks: Vec<String> = MARKS.iter().map(|&m| regex::escape(&mark(m))).collect();
        regex::bytes::Regex::new(&marks.join("|")).expect("literal marks")
    });
    let found = ANY.find(bytes)?.as_bytes();
    MARKS
        .iter()
        .find(|&&m| mark(m).as_bytes() == found)
        .map(|&(name, _, _)| name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn an_allocator_is_found_by_its_messages_wherever_they_sit_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bin");
        // Across the border of the first two chunks read.
        let mut bytes = vec![7u8; (1 << 20) - 5];
        // Names through black_box: a literal argument would be folded into the format string,
        // and this test binary would carry the marks it must not.
        let (jemalloc, mimalloc) = std::hint::black_box(("jemalloc", "mimalloc"));
        bytes.extend_from_slice(format!("<{jemalloc}>: Corrupt redzone").as_bytes());
        bytes.extend(vec![1u8; 4096]);
        std::fs::File::create(&path)
            .unwrap()
            .write_all(&bytes)
            .unwrap();
        assert_eq!(linked_into(&path), Some("jemalloc"));
        std::fs::write(&path, format!("\x7fELF...{mimalloc}: warning: x")).unwrap();
        assert_eq!(linked_into(&path), Some("mimalloc"));
        // The name alone, as in a help text, is not the allocator.
        std::fs::write(&path, b"a statically linked jemalloc or mimalloc").unwrap();
        assert_eq!(linked_into(&path), None);
        assert_eq!(linked_into(&dir.path().join("missing")), None);
        // Nor is this crate, which looks for the marks.
        let itself = std::env::current_exe().unwrap();
        assert_eq!(linked_into(&itself), None);
    }
}
