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
    let longest = MARKS.iter().map(|&m| mark(m).len()).max().unwrap_or(0);
    scan(path, longest, find)
}

/// The first thing `find` finds in the file at `path`, read in chunks, each starting with the
/// last `longest` bytes of the one before: what lies across their border is still found.
fn scan<T>(path: &Path, longest: usize, find: impl Fn(&[u8]) -> Option<T>) -> Option<T> {
    let mut file = std::fs::File::open(path).ok()?;
    let mut buf = vec![0u8; 1 << 20];
    let mut kept = 0;
    loop {
        let n = file.read(&mut buf[kept..]).ok()?;
        if n == 0 {
            return None;
        }
        let filled = kept + n;
        if let Some(found) = find(&buf[..filled]) {
            return Some(found);
        }
        kept = longest.min(filled);
        buf.copy_within(filled - kept..filled, 0);
    }
}

/// What jemalloc is told in its options variable so that it gives freed pages back at once
/// ([`retention_off`]).
pub(crate) const JEMALLOC_NO_RETENTION: &str = "dirty_decay_ms:0,muzzy_decay_ms:0";

/// The environment variable the jemalloc linked into the executable at `path` reads its
/// options from: `MALLOC_CONF`, or with the prefix its build gave its symbols
/// (tikv-jemallocator's `_RJEM_MALLOC_CONF`). jemalloc keeps the name as a string of its own
/// (it passes it to `getenv`), which the search finds whole between two NUL bytes.
pub(crate) fn jemalloc_options_variable(path: &Path) -> Option<String> {
    static NAME: std::sync::LazyLock<regex::bytes::Regex> = std::sync::LazyLock::new(|| {
        // Joined at run time, as the marks are: this crate's binaries do not carry it.
        let conf = ["MALLOC", "CONF"].join("_");
        regex::bytes::Regex::new(&format!(r"(?-u)\x00([A-Z_]{{0,16}}{conf})\x00"))
            .expect("a literal pattern")
    });
    scan(path, 32, |bytes| {
        let name = NAME.captures(bytes)?.get(1)?.as_bytes();
        Some(String::from_utf8_lossy(name).into_owned())
    })
}

/// The environment that turns off the retention of freed pages by the allocator `name`
/// linked into the executable at `path` (none when the user set the variable: kept), and
/// the note that says which; `None` when the allocator has no retention to turn off.
///
/// jemalloc keeps freed pages resident and gives them back over its decay time (10 s by
/// default), so under steady churn a clean program's RSS climbs for seconds: a tokio service
/// at 2.5 ms per iteration rose from 7.9 to 17-21 MiB over 2,560 iterations (7 s) and was a
/// false leak in 7 runs of 28; with the decay off its RSS was flat at ~10 MiB from the 10th
/// iteration on, 3 runs of 47 a leak (a wander), and its leaking variant a leak in 14 of
/// 14. mimalloc purges after 10 ms, glibc keeps no pages by time: nothing to turn off.
pub(crate) fn retention_off(name: &str, path: &Path) -> Option<(Option<(String, String)>, String)> {
    if name != "jemalloc" {
        return None;
    }
    let var = jemalloc_options_variable(path)?;
    Some(match std::env::var_os(&var) {
        Some(set) => (
            None,
            format!(
                "{var}={} was kept as set: jemalloc's retention of freed pages (dirty_decay_ms, \
                 10 s by default) makes RSS climb for seconds under churn without a leak, \
                 unless turned off ({var}={JEMALLOC_NO_RETENTION})",
                set.to_string_lossy()
            ),
        ),
        None => (
            Some((var.clone(), JEMALLOC_NO_RETENTION.to_string())),
            format!(
                "{var}={JEMALLOC_NO_RETENTION} was set for this program's jemalloc: it gives \
                 freed pages back at once instead of over 10 s, so that RSS follows what the \
                 program holds (kept resident, they made RSS climb for seconds without a \
                 leak); set {var} yourself to keep other settings"
            ),
        ),
    })
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
        assert_eq!(jemalloc_options_variable(&path), None);
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

    #[test]
    fn jemalloc_options_variable_is_the_whole_string_between_two_nuls() {
        let dir = tempfile::tempdir().unwrap();
        let conf = ["MALLOC", "CONF"].join("_");
        for (content, expected) in [
            (
                format!("xx\0_RJEM_{conf}\0yy"),
                Some(format!("_RJEM_{conf}")),
            ),
            (format!("\0{conf}\0"), Some(conf.clone())),
            // a message that names it, not the name itself
            (
                format!("\0value of the environment variable {conf}\0"),
                None,
            ),
            (format!("\0_rjem_{conf}\0"), None),
        ] {
            let path = dir.path().join("bin");
            let mut bytes = vec![b'a'; (1 << 20) - 7];
            bytes.extend_from_slice(content.as_bytes());
            std::fs::write(&path, &bytes).unwrap();
            assert_eq!(jemalloc_options_variable(&path), expected, "{content:?}");
        }
    }
}
