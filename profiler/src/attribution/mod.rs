// Owns call-site attribution: the exact dhat passes over a workload, the frames shared with
// sampled attribution (`sampled`), and which sites retain memory that grows with the number of
// iterations. Must never run outside an attribution request.

//! Where is it leaking? Call-site attribution.
//!
//! By default (`--attribute`, [`Attribute::OnGrowth`], [`Attribute::Always`]) allocations are
//! sampled during the run itself: see [`sampled`]. This module holds the exact mode
//! ([`Attribute::Exact`], `--attribute exact`) and the frame handling both share.
//!
//! **Exact.** After the counting run, the workload runs three more times under dhat's heap profiler, for
//! k, 2k and 4k iterations (k = 4 by default). dhat records a backtrace per allocation (about 20-30x
//! slower, which is why the passes are short) and writes, per call site, the bytes and blocks
//! still live at the end of the pass (`eb`, `ebk`). A leaking site retains memory in
//! proportion to the iterations: its growth from the 2k to the 4k pass is about twice its
//! growth from k to 2k. A cache, a buffer or memory replaced as a cache turns over retains
//! about the same at the end of every pass, or less and less more: not a leak. Sites are
//! reported by bytes retained per iteration, first frame = the first frame of your code
//! (the toolkit's, std's allocation plumbing and dhat's frames are trimmed).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::alloc::{self, Untracked, untracked};
use crate::error::Error;
use crate::model::{AttributionInfo, LeakSite};

pub mod sampled;
#[cfg(target_os = "linux")]
mod symbols;

/// Whether and how call sites are attributed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Attribute {
    /// Never (the default).
    #[default]
    Off,
    /// Sampled during the run; sites named when the counting run finds the heap growing
    /// (heap bytes or blocks leak or are inconclusive).
    OnGrowth,
    /// Sampled during the run; sites named whatever the heap's verdict.
    Always,
    /// Exact: dhat passes after the run, when the heap grows (about 20-30x slower per
    /// iteration; they also cross-check the counters).
    Exact,
}

impl Attribute {
    /// Whether allocations are sampled during the run.
    pub fn sampled(self) -> bool {
        matches!(self, Attribute::OnGrowth | Attribute::Always)
    }
}

/// Per call site, what a dhat pass saw still live at its end.
#[derive(Debug, Clone, Default)]
struct Site {
    eb: f64,
    ebk: f64,
    frames: Vec<Frame>,
}

#[derive(Debug, Clone, PartialEq)]
struct Frame {
    function: String,
    location: String,
    /// The full source path, when the address could be resolved again.
    file: Option<PathBuf>,
}

/// Result of one pass, made counted (after the pass's heap reads) and dropped counted.
struct Pass {
    sites: HashMap<String, Site>,
    ms_per_iteration: f64,
    mismatch: Option<String>,
}

/// Run the passes (k, 2k, 4k iterations) and find the leaking sites. `keep` is where dhat's
/// file of the longest pass is kept. `counting_ms` is the counting run's median iteration time.
pub fn attribute<R>(
    workload: &mut impl FnMut() -> R,
    k: u32,
    keep: &Path,
    counting_ms: Option<f64>,
) -> Result<(Vec<LeakSite>, AttributionInfo), Error> {
    if !alloc::can_route_to_dhat() {
        return Err(Error::InvalidArgument {
            argument: "--attribute",
            reason: "dhat records through the system allocator, and profiler::Alloc wraps \
                     another one here (Alloc::wrapping): attribution is not available"
                .into(),
        });
    }
    let k = k.max(1);
    let passes = [k, 2 * k, 4 * k];
    let scratch = Scratch(keep.with_extension("pass.json"));
    let mut results = Vec::new();
    for (i, &n) in passes.iter().enumerate() {
        let file = if i + 1 == passes.len() {
            keep
        } else {
            &scratch.0
        };
        results.push(pass(workload, n, file)?);
    }
    drop(scratch);
    let sites = leaking_sites(&results[0], &results[1], &results[2], k);
    let slowdown = counting_ms
        .filter(|ms| *ms > 0.0)
        .map(|ms| results[2].ms_per_iteration / ms);
    let mismatches: Vec<String> = results.iter().filter_map(|r| r.mismatch.clone()).collect();
    Ok((
        sites,
        AttributionInfo {
            method: "exact".into(),
            interval_bytes: None,
            samples: None,
            sampling_ms: None,
            passes: passes.to_vec(),
            dhat_file: Some(keep.display().to_string()),
            slowdown,
            cross_check: (!mismatches.is_empty()).then(|| mismatches.join("; ")),
        },
    ))
}

/// One dhat pass of `n` iterations, dhat's file written atomically to `file`.
fn pass<R>(workload: &mut impl FnMut() -> R, n: u32, file: &Path) -> Result<Pass, Error> {
    // Dropped in the reverse order on a panicking workload's unwinding: calls go back to the
    // counters, dhat's state (made untracked) is dropped untracked and writes its file, which
    // is then removed.
    let tmp = Scratch(file.with_extension("tmp"));
    let profiler = Untracked::make(|| {
        dhat::Profiler::builder()
            .file_name(&tmp.0)
            .trim_backtraces(Some(40))
            .build()
    });
    let before = alloc::heap();
    let routed = Routed::on();
    let started = Instant::now();
    let mut interrupted = false;
    for _ in 0..n {
        if crate::interrupt::requested() {
            interrupted = true;
            break;
        }
        drop(workload());
    }
    let elapsed = started.elapsed();
    drop(routed);
    let after = alloc::heap();
    // What the pass reads from here on is counted, and freed counted: the cross-check is
    // over, and an error it returns is the caller's to drop.
    let mismatch = before.zip(after).and_then(|(before, after)| {
        let stats = dhat::HeapStats::get();
        let ours = (after.allocated_bytes - before.allocated_bytes) as u64;
        let blocks = (after.allocations - before.allocations) as u64;
        (ours != stats.total_bytes || blocks != stats.total_blocks).then(|| {
            format!(
                "pass of {n}: dhat saw {} B in {} allocations, the counters {ours} B in {blocks}",
                stats.total_bytes, stats.total_blocks
            )
        })
    });
    // dhat reports each pass on stderr; the toolkit reports the sites itself.
    untracked(move || without_stderr(|| drop(profiler)));
    if interrupted {
        return Err(Error::Interrupted);
    }
    std::fs::rename(&tmp.0, file).map_err(|source| Error::Write {
        path: file.to_path_buf(),
        source,
    })?;
    let sites = parse_dhat(file)?;
    Ok(Pass {
        sites,
        ms_per_iteration: elapsed.as_secs_f64() * 1e3 / f64::from(n),
        mismatch,
    })
}

/// A file the passes write for themselves, removed however they end (a pass that fails or
/// panics leaves nothing behind; once renamed, there is nothing to remove).
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Calls routed through dhat until dropped, on a panicking workload's unwinding too.
struct Routed;

impl Routed {
    fn on() -> Self {
        alloc::route_to_dhat(true);
        Routed
    }
}

impl Drop for Routed {
    fn drop(&mut self) {
        alloc::route_to_dhat(false);
    }
}

/// Run `f` with the process's stderr pointed at /dev/null.
fn without_stderr(f: impl FnOnce()) {
    #[cfg(unix)]
    {
        use std::io::Write;
        let _ = std::io::stderr().flush();
        // SAFETY: plain descriptor juggling; stderr is restored before returning.
        unsafe {
            // Close-on-exec: a program another thread starts meanwhile must not inherit it.
            let saved = libc::fcntl(2, libc::F_DUPFD_CLOEXEC, 0);
            let null = libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if saved >= 0 && null >= 0 {
                libc::dup2(null, 2);
                libc::close(null);
                f();
                libc::dup2(saved, 2);
                libc::close(saved);
                return;
            }
            for fd in [saved, null] {
                if fd >= 0 {
                    libc::close(fd);
                }
            }
        }
    }
    f()
}

/// Read dhat's JSON: per program point, `eb`/`ebk` and its frames (`fs` into `ftbl`).
fn parse_dhat(path: &Path) -> Result<HashMap<String, Site>, Error> {
    let bad = |reason: String| Error::InvalidReport {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let v: serde_json::Value =
        serde_json::from_slice(&text).map_err(|e| bad(format!("not dhat JSON ({e})")))?;
    if v["dhatFileVersion"].as_u64() != Some(2) {
        return Err(bad("not a dhatFileVersion 2 file".into()));
    }
    let ftbl: Vec<&str> = v["ftbl"]
        .as_array()
        .ok_or_else(|| bad("no ftbl".into()))?
        .iter()
        .map(|f| f.as_str().unwrap_or(""))
        .collect();
    let mut resolver = Resolver::default();
    let mut sites: HashMap<String, Site> = HashMap::new();
    for pp in v["pps"].as_array().ok_or_else(|| bad("no pps".into()))? {
        let strings: Vec<&str> = pp["fs"]
            .as_array()
            .map(|fs| {
                fs.iter()
                    .filter_map(|i| ftbl.get(i.as_u64()? as usize).copied())
                    .collect()
            })
            .unwrap_or_default();
        let frames = resolver.frames(&strings);
        let user = user_frames(&frames);
        let key = site_key(&user);
        let site = sites.entry(key).or_default();
        site.eb += pp["eb"].as_f64().unwrap_or(0.0);
        site.ebk += pp["ebk"].as_f64().unwrap_or(0.0);
        if site.frames.is_empty() {
            site.frames = user;
        }
    }
    Ok(sites)
}

/// Turns dhat's frame strings back into frames with full source paths. dhat shortens paths
/// to their last three components and, in release builds, inlined functions have short
/// names: neither tells std's `src/vec/mod.rs` from yours. Each distinct address is resolved
/// again (with the `backtrace` crate dhat itself uses, so its symbol cache is warm), which
/// gives the full path of every inlined frame; dhat's string is the fallback.
#[derive(Default)]
struct Resolver {
    cache: HashMap<usize, Vec<Frame>>,
}

impl Resolver {
    fn frames(&mut self, strings: &[&str]) -> Vec<Frame> {
        let mut out = Vec::new();
        let mut last_ip = None;
        for s in strings {
            let ip = s
                .split_once(": ")
                .and_then(|(ip, _)| usize::from_str_radix(ip.trim_start_matches("0x"), 16).ok());
            match ip {
                // dhat lists each inlined frame of an address with the same address.
                Some(ip) if last_ip == Some(ip) => continue,
                Some(ip) => {
                    last_ip = Some(ip);
                    let resolved = self.cache.entry(ip).or_insert_with(|| resolve(ip));
                    if resolved.is_empty() {
                        out.extend(parse_frame(s));
                    } else {
                        out.extend(resolved.iter().cloned());
                    }
                }
                None => out.extend(parse_frame(s)),
            }
        }
        out
    }
}

/// The frames of return addresses `ips` (innermost first), each address resolved once through
/// `cache`, up to the first frame of the toolkit's own run loop after a frame of yours:
/// nothing beyond it is shown, and resolving the rest (down to the thread's start in the C
/// library) would only read more debug info.
fn resolve_stack(ips: &[usize], cache: &mut HashMap<usize, Vec<Frame>>) -> Vec<Frame> {
    let mut out = Vec::new();
    let mut yours = false;
    for ip in ips {
        for frame in cache.entry(*ip).or_insert_with(|| resolve(*ip)).iter() {
            if yours && in_toolkit(frame) {
                out.push(frame.clone());
                return out;
            }
            yours |= !is_plumbing_frame(frame);
            out.push(frame.clone());
        }
    }
    out
}

/// Every (inlined) frame at the call site before return address `ip`, innermost first.
fn resolve(ip: usize) -> Vec<Frame> {
    if let Some(frame) = system_library_frame(ip) {
        return vec![frame];
    }
    #[cfg(target_os = "linux")]
    if let Some(frames) = symbols::resolve(ip) {
        return frames;
    }
    resolve_by_backtrace(ip)
}

/// [`resolve`] through the `backtrace` crate, which reads every compile unit of the binary
/// the first time.
fn resolve_by_backtrace(ip: usize) -> Vec<Frame> {
    let mut frames = Vec::new();
    // A return address points after the call: look one byte back to land on the call.
    backtrace::resolve(ip.saturating_sub(1) as *mut std::ffi::c_void, |symbol| {
        let function = symbol
            .name()
            .map_or_else(|| "???".to_string(), |n| format!("{n:#}"));
        frames.push(Frame::at(function, symbol.filename(), symbol.lineno()));
    });
    frames
}

impl Frame {
    /// The frame of `function` at `file:line` (as much of it as is known).
    fn at(function: String, file: Option<&Path>, line: Option<u32>) -> Frame {
        let location = match (file, line) {
            (Some(f), Some(line)) => format!("{}:{line}", shown_path(f)),
            (Some(f), None) => shown_path(f),
            _ => String::new(),
        };
        Frame {
            function,
            location,
            file: file.map(Path::to_path_buf),
        }
    }
}

/// Directories of the system's shared libraries (the C library, libgcc...).
const SYSTEM_LIBRARIES: [&str; 4] = ["/lib/", "/lib64/", "/usr/lib/", "/usr/lib64/"];

/// The frame of `ip` when it is in a system library: named after the exported symbol before
/// it, without reading the library's debug info. Those frames are only ever entry points on
/// the way to Rust code (a thread's start, `main`'s caller), and with the distribution's
/// detached debug info installed (libc6-dbg, which valgrind brings) reading it costs tens of
/// milliseconds of decompression.
#[cfg(unix)]
fn system_library_frame(ip: usize) -> Option<Frame> {
    use std::ffi::CStr;
    // SAFETY: dladdr only reads the loader's tables; a zeroed Dl_info is a valid out-parameter.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    let found = unsafe { libc::dladdr(ip.saturating_sub(1) as *const libc::c_void, &mut info) };
    if found == 0 || info.dli_fname.is_null() {
        return None;
    }
    // SAFETY: dladdr's strings are NUL-terminated and live as long as the object is loaded.
    let path = unsafe { CStr::from_ptr(info.dli_fname) }.to_string_lossy();
    if !SYSTEM_LIBRARIES.iter().any(|dir| path.starts_with(dir)) {
        return None;
    }
    // The object this code is in (your binary, even installed under /usr/lib) is not one.
    let mut own: libc::Dl_info = unsafe { std::mem::zeroed() };
    let this = system_library_frame as *const () as *const libc::c_void;
    if unsafe { libc::dladdr(this, &mut own) } != 0 && own.dli_fbase == info.dli_fbase {
        return None;
    }
    let function = if info.dli_sname.is_null() {
        "???".to_string()
    } else {
        // SAFETY: as above.
        let name = unsafe { CStr::from_ptr(info.dli_sname) };
        format!("{:#}", backtrace::SymbolName::new(name.to_bytes()))
    };
    let file = PathBuf::from(path.as_ref());
    let location = file
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    Some(Frame {
        function,
        location,
        file: Some(file),
    })
}

#[cfg(not(unix))]
fn system_library_frame(_ip: usize) -> Option<Frame> {
    None
}

/// A path as people read it: relative to the current directory when under it, else its last
/// three components (as dhat shows them).
fn shown_path(path: &Path) -> String {
    if let Ok(cwd) = std::env::current_dir()
        && let Ok(rel) = path.strip_prefix(&cwd)
    {
        return rel.display().to_string();
    }
    let parts: Vec<_> = path.components().collect();
    let keep = parts.len().saturating_sub(3);
    parts[keep..]
        .iter()
        .collect::<PathBuf>()
        .display()
        .to_string()
}

/// "0x55d1c2: crate::module::function (src/file.rs:12:5)" -> function and "src/file.rs:12".
fn parse_frame(s: &str) -> Option<Frame> {
    let rest = s.split_once(": ").map_or(s, |(_, r)| r);
    let (function, location) = match rest.rfind(" (") {
        Some(i) if rest.ends_with(')') => (&rest[..i], &rest[i + 2..rest.len() - 1]),
        _ => (rest, ""),
    };
    // file:line:col -> file:line
    let location = match location.rsplit_once(':') {
        Some((file_line, col)) if col.chars().all(|c| c.is_ascii_digit()) => file_line,
        _ => location,
    };
    Some(Frame {
        function: function.to_string(),
        location: location.to_string(),
        file: None,
    })
}

/// Where a frame's code lives, by its full source path.
fn origin(file: &Path) -> Option<bool> {
    let p = file.to_string_lossy();
    let std = p.starts_with("/rustc/")
        || p.contains("/lib/rustlib/src/rust/")
        || p.contains("/library/std/src/")
        || p.contains("/library/core/src/")
        || p.contains("/library/alloc/src/")
        // std's own dependencies (its hashbrown) as official toolchains build them.
        || p.starts_with("/rust/deps/");
    let toolkit = file.starts_with(concat!(env!("CARGO_MANIFEST_DIR"), "/src"));
    let dhat = p.contains("/dhat-") || p.contains("/backtrace-");
    let system = SYSTEM_LIBRARIES.iter().any(|dir| p.starts_with(dir));
    // Some(true): plumbing; Some(false): code to show; None: cannot tell from the path.
    if std || toolkit || dhat || system {
        Some(true)
    } else if file.is_absolute() {
        Some(false)
    } else {
        None
    }
}

/// The C runtime's and the thread library's entry points: never your code.
const ENTRY: [&str; 5] = [
    "start_thread",
    "clone",
    "clone3",
    "__libc_start_main",
    "_start",
];

/// Is this frame allocation plumbing (std, core, alloc, hashbrown), the toolkit or dhat?
fn is_plumbing(function: &str) -> bool {
    const PLUMBING: [&str; 9] = [
        "std",
        "core",
        "alloc",
        "hashbrown",
        "profiler",
        "dhat",
        "backtrace",
        "serde",
        "serde_json",
    ];
    if function.starts_with("__rg_")
        || function.starts_with("__rust")
        || function == "[root]"
        || ENTRY.contains(&function)
    {
        return true;
    }
    // `<Type as Trait>::method`: judge by the type.
    let subject = function.strip_prefix('<').unwrap_or(function);
    let subject = subject.trim_start_matches('&').trim_start_matches("mut ");
    if subject.starts_with('[') || subject.starts_with('(') {
        return true;
    }
    let first = subject.split([':', '<', ' ', '>']).next().unwrap_or("");
    let primitive = matches!(
        first,
        "str"
            | "u8"
            | "u16"
            | "u32"
            | "u64"
            | "usize"
            | "i8"
            | "i16"
            | "i32"
            | "i64"
            | "isize"
            | "f32"
            | "f64"
            | "bool"
            | "char"
            | "T"
    );
    primitive || PLUMBING.contains(&first)
}

/// Whether a frame is in a dependency: a crate cargo downloaded (registry or git checkout).
fn in_dependency(f: &Frame) -> bool {
    f.file.as_deref().is_some_and(|p| {
        let p = p.to_string_lossy();
        p.contains("/registry/src/") || p.contains("/git/checkouts/")
    })
}

/// Your code's frames: from the first frame that is not plumbing (by its source path when
/// known, else by its name), skipping plumbing in between, up to the toolkit's run loop; at
/// most 6. Frames of dependencies (tokio's, hashbrown's...) before the first frame of your
/// own crates are left out, so that a site is the line of yours that called into them; a
/// stack with no frame of yours keeps them.
fn user_frames(frames: &[Frame]) -> Vec<Frame> {
    let Some(start) = frames.iter().position(|f| !is_plumbing_frame(f)) else {
        return Vec::new();
    };
    let shown: Vec<&Frame> = frames[start..]
        .iter()
        .take_while(|f| !in_toolkit(f))
        .filter(|f| !is_plumbing_frame(f))
        .collect();
    let own = shown.iter().position(|f| !in_dependency(f)).unwrap_or(0);
    shown[own..].iter().take(6).map(|f| (*f).clone()).collect()
}

/// Whether a frame is plumbing: an allocator shim, an entry point, std, the toolkit, dhat, a
/// system library (by its source path when known, else by its name).
fn is_plumbing_frame(f: &Frame) -> bool {
    // The compiler's allocator shims sit at the `#[global_allocator]` line of the binary.
    let shim = ["__rust", "__rg_", "__rdl_", "__rustc::"]
        .iter()
        .any(|p| f.function.starts_with(p));
    shim || ENTRY.contains(&f.function.as_str())
        || f.file
            .as_deref()
            .and_then(origin)
            .unwrap_or_else(|| is_plumbing(&f.function))
}

/// Whether a frame is the toolkit's own (its run loop, below your code).
fn in_toolkit(f: &Frame) -> bool {
    f.file
        .as_deref()
        .is_some_and(|p| p.starts_with(concat!(env!("CARGO_MANIFEST_DIR"), "/src")))
        || f.function.starts_with("profiler::")
}

/// A site's key: your code's frames. The same line reached through different std internals
/// is one site.
fn site_key(user: &[Frame]) -> String {
    user.iter()
        .map(|f| format!("{} {}", f.function, f.location))
        .collect::<Vec<_>>()
        .join(" <- ")
}

/// Frames as the report shows them: `function (file:line)`.
fn shown_backtrace(frames: &[Frame]) -> Vec<String> {
    frames
        .iter()
        .map(|f| format!("{} ({})", f.function, f.location))
        .collect()
}

/// Sites whose retained memory grows linearly with the iterations of the passes.
fn leaking_sites(a: &Pass, b: &Pass, c: &Pass, k: u32) -> Vec<LeakSite> {
    let k = f64::from(k);
    let mut out: Vec<LeakSite> = c
        .sites
        .iter()
        .filter_map(|(key, site_c)| {
            let get = |p: &Pass| p.sites.get(key).cloned().unwrap_or_default();
            let (site_a, site_b) = (get(a), get(b));
            let first = user_frames_of(site_c)?;
            // Growth per iteration from k to 2k, and from 2k to 4k (twice as many iterations).
            let bytes1 = (site_b.eb - site_a.eb) / k;
            let bytes2 = (site_c.eb - site_b.eb) / (2.0 * k);
            let blocks1 = (site_b.ebk - site_a.ebk) / k;
            let blocks2 = (site_c.ebk - site_b.ebk) / (2.0 * k);
            // A leak keeps its rate; turnover and caches slow down or stop.
            let keeps_rate = |r1: f64, r2: f64| r2 > 0.0 && r2 >= 0.6 * r1 && r1 > 0.0;
            let grows = (blocks2 >= 0.5 && keeps_rate(blocks1, blocks2))
                || (bytes2 >= 16.0 && keeps_rate(bytes1, bytes2));
            grows.then(|| LeakSite {
                growth: None,
                function: first.function.clone(),
                location: first.location.clone(),
                bytes_per_iteration: site_c.eb / (4.0 * k),
                blocks_per_iteration: site_c.ebk / (4.0 * k),
                backtrace: shown_backtrace(&site_c.frames),
                bytes_per_iteration_ci: None,
                blocks_per_iteration_ci: None,
                samples: None,
            })
        })
        .collect();
    out.sort_by(|x, y| y.bytes_per_iteration.total_cmp(&x.bytes_per_iteration));
    out
}

fn user_frames_of(site: &Site) -> Option<&Frame> {
    site.frames.first()
}

/// Where `--attribute` keeps dhat's file for `workload`: beside `json` if given, else in the
/// current directory.
pub fn dhat_path(workload: &str, json: Option<&Path>) -> PathBuf {
    let dir = json
        .and_then(|p| p.parent())
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    dir.join(format!(
        "{}.dhat-heap.json",
        crate::format::file_safe(workload)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_parse_and_plumbing_is_trimmed() {
        let f = parse_frame(
            "0x55d1c2: bench_suite::leaky::{{closure}} (bench-suite/src/leaky.rs:12:5)",
        )
        .unwrap();
        assert_eq!(f.function, "bench_suite::leaky::{{closure}}");
        assert_eq!(f.location, "bench-suite/src/leaky.rs:12");
        for plumbing in [
            "alloc::alloc::exchange_malloc",
            "<alloc::vec::Vec<T> as core::clone::Clone>::clone",
            "<str as alloc::borrow::ToOwned>::to_owned",
            "<[T] as alloc::slice::hack::ConvertVec>::to_vec",
            "hashbrown::raw::RawTable<T,A>::reserve_rehash",
            "profiler::alloc::dhat_route::alloc",
            "std::collections::hash::map::HashMap<K,V,S>::insert",
            "__rg_alloc",
        ] {
            assert!(is_plumbing(plumbing), "{plumbing}");
        }
        for user in [
            "bench_suite::workloads::leaking::render_cached",
            "<my_app::Config as core::clone::Clone>::clone",
            "my_app::main",
        ] {
            assert!(!is_plumbing(user), "{user}");
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn system_library_frames_are_named_from_the_loader_and_are_plumbing() {
        // An address inside the C library's `malloc`, as a return address would be.
        let ip = libc::malloc as *const () as usize + 1;
        let frames = resolve(ip);
        assert_eq!(frames.len(), 1, "{frames:?}");
        let frame = &frames[0];
        assert!(frame.function.contains("malloc"), "{frame:?}");
        assert!(frame.location.starts_with("libc.so"), "{frame:?}");
        assert!(is_plumbing_frame(frame), "{frame:?}");
        // Code of this binary is not a system library's: its debug info is read as before.
        assert!(system_library_frame(resolve as *const () as usize + 1).is_none());
    }

    /// The unit-by-unit resolver gives the frames the `backtrace` crate gives, on this test
    /// binary (full debug information, unlike the release catalog's line tables).
    #[cfg(target_os = "linux")]
    #[test]
    fn symbols_from_single_units_match_the_backtrace_crate() {
        #[inline(never)]
        fn stack() -> Vec<usize> {
            let mut ips = Vec::new();
            backtrace::trace(|frame| {
                ips.push(frame.ip() as usize);
                true
            });
            std::hint::black_box(ips)
        }
        let ips = stack();
        let mut compared = 0;
        for ip in ips {
            if system_library_frame(ip).is_some() {
                continue;
            }
            if let Some(frames) = symbols::resolve(ip) {
                assert_eq!(frames, resolve_by_backtrace(ip), "at {ip:#x}");
                compared += 1;
            }
        }
        assert!(
            compared >= 5,
            "only {compared} frames resolved unit by unit"
        );
    }

    #[test]
    fn resolving_a_stack_stops_below_your_code_at_the_toolkit() {
        let frame = |function: &str, file: &str| Frame {
            function: function.into(),
            location: String::new(),
            file: Some(file.into()),
        };
        let toolkit = concat!(env!("CARGO_MANIFEST_DIR"), "/src/engine/mod.rs");
        let stack = [
            frame("profiler::alloc::sampled::record", toolkit),
            frame(
                "alloc::vec::Vec<T>::push",
                "/rustc/abc/library/alloc/src/vec/mod.rs",
            ),
            frame("mine::work", "/home/me/mine/src/lib.rs"),
            frame("profiler::engine::drive", toolkit),
            frame("start_thread", "/usr/lib/x86_64-linux-gnu/libc.so.6"),
        ];
        let mut cache: HashMap<usize, Vec<Frame>> = HashMap::new();
        for (ip, f) in stack.iter().enumerate() {
            cache.insert(ip, vec![f.clone()]);
        }
        let ips: Vec<usize> = (0..stack.len()).collect();
        let frames = resolve_stack(&ips, &mut cache);
        let names: Vec<&str> = frames.iter().map(|f| f.function.as_str()).collect();
        assert_eq!(
            names,
            [
                "profiler::alloc::sampled::record",
                "alloc::vec::Vec<T>::push",
                "mine::work",
                "profiler::engine::drive"
            ]
        );
    }

    #[test]
    fn a_site_is_your_line_that_called_into_a_dependency() {
        let frame = |function: &str, file: &str| Frame {
            function: function.into(),
            location: format!("{file}:1"),
            file: Some(PathBuf::from(file)),
        };
        let tokio = "/home/u/.cargo/registry/src/index.crates.io-1/tokio-1.40.0/src/task.rs";
        let frames = [
            frame(
                "alloc::alloc::alloc",
                "/rustc/abc/library/alloc/src/alloc.rs",
            ),
            frame("tokio::runtime::task::core::Cell::new", tokio),
            frame("tokio::task::spawn", tokio),
            frame("my_app::start_heartbeat", "/home/u/my_app/src/main.rs"),
            frame("my_app::main", "/home/u/my_app/src/main.rs"),
        ];
        let user = user_frames(&frames);
        assert_eq!(user[0].function, "my_app::start_heartbeat");
        assert_eq!(user.len(), 2);
        // Nothing of yours on the stack: the dependency's frames are the site.
        let user = user_frames(&frames[..3]);
        assert_eq!(user[0].function, "tokio::runtime::task::core::Cell::new");
    }

    fn pass_of(eb: f64, ebk: f64) -> Pass {
        let mut sites = HashMap::new();
        sites.insert(
            "k".to_string(),
            Site {
                eb,
                ebk,
                frames: vec![Frame {
                    function: "app::leak".into(),
                    location: "src/app.rs:3".into(),
                    file: None,
                }],
            },
        );
        Pass {
            sites,
            ms_per_iteration: 1.0,
            mismatch: None,
        }
    }

    #[test]
    fn a_site_that_keeps_its_rate_leaks_and_a_turning_over_cache_does_not() {
        // 1 KiB and one block per iteration: 4, 8, 16 iterations.
        let leak = leaking_sites(
            &pass_of(4096.0, 4.0),
            &pass_of(8192.0, 8.0),
            &pass_of(16384.0, 16.0),
            4,
        );
        assert_eq!(leak.len(), 1);
        assert_eq!(leak[0].bytes_per_iteration, 1024.0);
        assert_eq!(leak[0].location, "src/app.rs:3");
        // A cache of 2,000 entries turning over: 60%, 84%, 97% replaced.
        let cache = leaking_sites(
            &pass_of(1200.0 * 256.0, 1200.0),
            &pass_of(1680.0 * 256.0, 1680.0),
            &pass_of(1940.0 * 256.0, 1940.0),
            4,
        );
        assert!(cache.is_empty(), "{cache:?}");
        // The same memory at the end of every pass: a buffer, not a leak.
        let flat = leaking_sites(
            &pass_of(5e5, 1.0),
            &pass_of(5e5, 1.0),
            &pass_of(5e5, 1.0),
            4,
        );
        assert!(flat.is_empty());
    }
}
