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
use std::path::{Path, PathBuf};

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

/// jemalloc loaded as a shared library: named in the `LD_PRELOAD` the program inherits (a
/// path, or a name the loader looks up), or needed by the executable at `executable` (its
/// name, `libjemalloc.so.2`, whole between two NUL bytes in the dynamic string table). Such a
/// build replaces malloc, so its blocks pass through the heap library (which comes first in
/// `LD_PRELOAD`) and only its retention matters. Returns the library's name and its options
/// variable: read from the library's file where it is found, else `MALLOC_CONF`, which every
/// build that replaces malloc reads (a prefix is for builds that live beside malloc). Only the
/// executable's own needs are read, not those of the libraries it loads.
pub(crate) fn shared_jemalloc(executable: Option<&Path>) -> Option<(String, String)> {
    let preloaded = std::env::var("LD_PRELOAD").ok().and_then(|list| {
        list.split([':', ' '])
            .find(|entry| is_jemalloc_library(entry))
            .map(str::to_string)
    });
    let library = preloaded.or_else(|| executable.and_then(needed_jemalloc))?;
    let file = if library.contains('/') {
        Some(PathBuf::from(&library))
    } else {
        library_dirs()
            .into_iter()
            .map(|dir| dir.join(&library))
            .find(|path| path.is_file())
    };
    let var = file
        .and_then(|file| jemalloc_options_variable(&file))
        .unwrap_or_else(|| ["MALLOC", "CONF"].join("_"));
    let name = Path::new(&library)
        .file_name()
        .map_or(library.clone(), |n| n.to_string_lossy().into_owned());
    Some((name, var))
}

/// The file name of jemalloc's shared library without its version, joined at run time as the
/// marks are: this crate's binaries do not carry it whole.
fn jemalloc_library() -> String {
    ["lib", "jemalloc", ".so"].concat()
}

/// A file name of jemalloc's shared library: `libjemalloc.so`, with or without a version.
fn is_jemalloc_library(entry: &str) -> bool {
    Path::new(entry)
        .file_name()
        .and_then(|name| name.to_str())
        .and_then(|name| name.strip_prefix(jemalloc_library().as_str()))
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
}

/// The jemalloc library the executable at `path` needs, if any.
fn needed_jemalloc(path: &Path) -> Option<String> {
    static NEEDED: std::sync::LazyLock<regex::bytes::Regex> = std::sync::LazyLock::new(|| {
        let library = regex::escape(&jemalloc_library());
        regex::bytes::Regex::new(&format!(r"(?-u)\x00({library}(?:\.[0-9]+)*)\x00"))
            .expect("a literal pattern")
    });
    scan(path, 64, |bytes| {
        let name = NEEDED.captures(bytes)?.get(1)?.as_bytes();
        Some(String::from_utf8_lossy(name).into_owned())
    })
}

/// Where the dynamic loader looks for a library named without a path: `LD_LIBRARY_PATH`, then
/// the usual system directories (an executable's own run path is not read: the library is
/// then not found, and the options variable is the default one).
fn library_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("LD_LIBRARY_PATH")
        .map(|list| std::env::split_paths(&list).collect())
        .unwrap_or_default();
    let multiarch = format!("{}-linux-gnu", std::env::consts::ARCH);
    for base in ["/lib", "/usr/lib", "/usr/local/lib"] {
        dirs.push(Path::new(base).join(&multiarch));
        dirs.push(PathBuf::from(base));
    }
    dirs.extend(["/lib64", "/usr/lib64"].map(PathBuf::from));
    dirs
}

/// The environment that turns off the retention of freed pages of a jemalloc whose options
/// variable is `var` (none when the user set the variable: kept), and the note that says
/// which; `library` names a shared one.
///
/// jemalloc keeps freed pages resident and gives them back over its decay time (10 s by
/// default), so under steady churn a clean program's RSS climbs for seconds: a tokio service
/// at 2.5 ms per iteration rose from 7.9 to 17-21 MiB over 2,560 iterations (7 s) and was a
/// false leak in 7 runs of 28; with the decay off its RSS was flat at ~10 MiB from the 10th
/// iteration on, 3 runs of 47 a leak (a wander), and its leaking variant a leak in 14 of
/// 14. A C service on the system's shared jemalloc rose from 75 to 157 MiB over 1,200
/// iterations (a leak, exit 1); with the decay off, flat at 17.5 MiB for 9,600. mimalloc
/// purges after 10 ms, glibc keeps no pages by time: nothing to turn off.
pub(crate) fn retention_off(
    var: &str,
    library: Option<&str>,
) -> (Option<(String, String)>, String) {
    let whose = match library {
        Some(library) => format!("this program's jemalloc ({library}, a shared library)"),
        None => "this program's jemalloc".to_string(),
    };
    match std::env::var_os(var) {
        Some(set) => (
            None,
            format!(
                "{var}={} was kept as set for {whose}: jemalloc's retention of freed pages \
                 (dirty_decay_ms, 10 s by default) makes RSS climb for seconds under churn \
                 without a leak, unless turned off ({var}={JEMALLOC_NO_RETENTION})",
                set.to_string_lossy()
            ),
        ),
        None => (
            Some((var.to_string(), JEMALLOC_NO_RETENTION.to_string())),
            format!(
                "{var}={JEMALLOC_NO_RETENTION} was set for {whose}: it gives freed pages back \
                 at once instead of over 10 s, so that RSS follows what the program holds \
                 (kept resident, they made RSS climb for seconds without a leak); set {var} \
                 yourself to keep other settings"
            ),
        ),
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
        assert_eq!(needed_jemalloc(&itself), None);
    }

    #[test]
    fn a_shared_jemalloc_is_found_by_its_name_in_the_dynamic_string_table() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bin");
        let library = jemalloc_library();
        for (content, expected) in [
            (
                format!("\0libc.so.6\0{library}.2\0"),
                Some(format!("{library}.2")),
            ),
            (format!("\0{library}\0"), Some(library.clone())),
            // a message that names it, a library of another name
            (format!("\0cannot open {library}.2\0"), None),
            (format!("\0{library}.2x\0"), None),
            (format!("\0{}\0", library.replace(".so", "_pic.so")), None),
        ] {
            let mut bytes = vec![b'a'; (1 << 20) - 9];
            bytes.extend_from_slice(content.as_bytes());
            std::fs::write(&path, &bytes).unwrap();
            assert_eq!(needed_jemalloc(&path), expected, "{content:?}");
        }
        // Joined here too: this test binary must not carry the name whole.
        for (entry, expected) in [
            (format!("/usr/lib/x86_64-linux-gnu/{library}.2"), true),
            (library.clone(), true),
            (format!("/opt/{library}.2.bak/libfoo.so"), false),
            (library.replace(".so", "_pic.so"), false),
            (format!("{library}ft.so"), false),
        ] {
            assert_eq!(is_jemalloc_library(&entry), expected, "{entry}");
        }
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
