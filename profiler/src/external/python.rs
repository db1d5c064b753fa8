// Owns one question about a running CPython process: does it keep its small objects in its
// own arenas, whatever PYTHONMALLOC profile set? Reads /proc only; never changes the program.

//! CPython's small-object allocator (pymalloc) carves objects of up to 512 B out of arenas
//! of its own: the heap counters see an arena, not the objects in it, so a leak of small
//! objects reads as flat. `profile` sets PYTHONMALLOC=malloc for a program it starts, but the
//! program can undo that: `env PYTHONMALLOC=pymalloc python3 ...`, `python3 -E` or `-I`
//! (which ignore every PYTHON* variable), a `#!/usr/bin/python3 -Es` line, `env -i`. The
//! process that runs says which: its command line and its environment.

use std::ffi::OsStr;
use std::path::Path;

/// Why the running process `pid`, a CPython interpreter, keeps its small objects in arenas,
/// as what it runs with ("PYTHONMALLOC=pymalloc", "its -E option (CPython then ignores
/// PYTHONMALLOC)"): `None` when it counts them one by one, or is not CPython, or cannot be
/// read.
pub(crate) fn arenas_of(pid: u32) -> Option<String> {
    let proc = Path::new("/proc").join(pid.to_string());
    let exe = std::fs::read_link(proc.join("exe")).ok()?;
    if !super::heap::is_python(exe.file_name()?) {
        return None;
    }
    let cmdline = std::fs::read(proc.join("cmdline")).ok()?;
    let environ = std::fs::read(proc.join("environ")).ok()?;
    arenas(&split(&cmdline), &split(&environ))
}

fn split(raw: &[u8]) -> Vec<&[u8]> {
    raw.split(|&b| b == 0).filter(|s| !s.is_empty()).collect()
}

/// [`arenas_of`] from the process's arguments (its own name first) and environment.
fn arenas(args: &[&[u8]], environ: &[&[u8]]) -> Option<String> {
    if let Some(option) = ignores_environment(args.get(1..).unwrap_or_default()) {
        return Some(format!(
            "its -{option} option (CPython then ignores PYTHONMALLOC)"
        ));
    }
    let set = environ
        .iter()
        .find_map(|var| var.strip_prefix(b"PYTHONMALLOC="));
    match set {
        None => Some("PYTHONMALLOC unset (its environment was cleared)".to_string()),
        Some(b"malloc" | b"malloc_debug") => None,
        // An empty or unknown value: CPython's default, pymalloc.
        Some(v) => Some(format!(
            "PYTHONMALLOC={}",
            OsStr::new(std::str::from_utf8(v).unwrap_or("?")).to_string_lossy()
        )),
    }
}

/// The interpreter option among `args` (those after its name) that makes it ignore the
/// environment: `E` or `I`, alone or in a cluster (`-Es`, `-IS`), before the script, `-c` or
/// `-m` end the options.
fn ignores_environment(args: &[&[u8]]) -> Option<char> {
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let Some(cluster) = arg.strip_prefix(b"-") else {
            return None; // the script
        };
        if cluster.is_empty() || cluster.starts_with(b"-") {
            // `-` (stdin) ends the options; `--help` and the like take no value, but for
            // `--check-hash-based-pycs`, whose value may be the next argument.
            if cluster.is_empty() || cluster == b"-" {
                return None;
            }
            if cluster == b"-check-hash-based-pycs" {
                args.next();
            }
            continue;
        }
        for (i, &c) in cluster.iter().enumerate() {
            match c {
                b'E' | b'I' => return Some(char::from(c)),
                b'c' | b'm' => return None,
                // The option's value is the rest of the cluster, or the next argument.
                b'W' | b'X' => {
                    if i + 1 == cluster.len() {
                        args.next();
                    }
                    break;
                }
                _ => {}
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(args: &[&str], environ: &[&str]) -> Option<String> {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        let environ: Vec<&[u8]> = environ.iter().map(|a| a.as_bytes()).collect();
        arenas(&args, &environ)
    }

    #[test]
    fn a_python_that_counts_its_objects_one_by_one_keeps_no_arenas() {
        let malloc = ["PATH=/bin", "PYTHONMALLOC=malloc"];
        assert_eq!(check(&["python3", "leak.py"], &malloc), None);
        assert_eq!(
            check(&["python3", "-u", "-X", "dev", "leak.py"], &malloc),
            None
        );
        // After the script, or the code of -c, options are the program's.
        assert_eq!(check(&["python3", "leak.py", "-E"], &malloc), None);
        assert_eq!(check(&["python3", "-c", "pass", "-I"], &malloc), None);
        assert!(check(&["python3", "-Wignore", "-E"], &malloc).is_some());
        assert_eq!(check(&["python3", "-W", "-E", "x.py"], &malloc), None);
        let pycs = ["python3", "--check-hash-based-pycs", "never", "-E", "x.py"];
        assert!(check(&pycs, &malloc).is_some());
        let pycs = ["python3", "--check-hash-based-pycs=never", "-E", "x.py"];
        assert!(check(&pycs, &malloc).is_some());
    }

    #[test]
    fn a_python_that_undid_pythonmalloc_says_how() {
        let malloc = ["PYTHONMALLOC=malloc"];
        assert_eq!(
            check(&["python3", "-Es", "tool.py"], &malloc).as_deref(),
            Some("its -E option (CPython then ignores PYTHONMALLOC)")
        );
        assert_eq!(
            check(&["python3", "-sI", "tool.py"], &malloc).as_deref(),
            Some("its -I option (CPython then ignores PYTHONMALLOC)")
        );
        assert_eq!(
            check(&["python3", "x.py"], &["PYTHONMALLOC=pymalloc"]).as_deref(),
            Some("PYTHONMALLOC=pymalloc")
        );
        assert_eq!(
            check(&["python3", "x.py"], &["HOME=/root"]).as_deref(),
            Some("PYTHONMALLOC unset (its environment was cleared)")
        );
    }
}
