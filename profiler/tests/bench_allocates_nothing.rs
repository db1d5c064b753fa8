//! `MemoryBench::bench` on routines that allocate nothing per call (after a one-time setup):
//! criterion cannot measure 0 bytes per iteration ("took zero time per iteration"), wrote no
//! estimate, and a later `cargo bench -- --baseline` panicked on the baseline it never saved.
//! The profile counts them exactly: 0.

use std::sync::OnceLock;
use std::time::Duration;

use criterion::Criterion;
use profiler::bench::MemoryBench;

#[global_allocator]
static ALLOC: profiler::Alloc = profiler::Alloc::new();

fn main() {
    if std::env::var_os("CRITERION_HOME").is_some() {
        return benches();
    }
    // As `cargo bench` runs it (criterion reads its options from the arguments): a baseline
    // saved, then compared with.
    let dir = tempfile::tempdir().unwrap();
    for args in [["--save-baseline", "zb"], ["--baseline", "zb"]] {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .arg("--bench")
            .args(args)
            .env("CRITERION_HOME", dir.path())
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{args:?}: {text}");
        assert!(!text.contains("ERROR"), "{args:?}: {text}");
        assert!(text.contains("read 0 B"), "{args:?}: {text}");
    }
    println!("routines allocating nothing: a baseline saved and compared with");
}

fn benches() {
    let dir = std::path::PathBuf::from(std::env::var_os("CRITERION_HOME").unwrap());
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(10))
        .measurement_time(Duration::from_millis(50))
        .sample_size(10)
        .without_plots();
    let mut memory = MemoryBench::new("nothing");
    memory.bench(&mut c, "add", || {
        std::hint::black_box(std::hint::black_box(2u64) + 1)
    });
    static TABLE: OnceLock<Vec<u64>> = OnceLock::new();
    memory.bench(&mut c, "once", || {
        TABLE.get_or_init(|| (0..64).collect()).len()
    });
    memory.finish();
    let summary = std::fs::read_to_string(dir.join("nothing/memory-summary.md")).unwrap();
    for name in ["add", "once"] {
        let row = summary
            .lines()
            .find(|l| l.starts_with(&format!("| `{name}` ")))
            .unwrap_or_else(|| panic!("no row for {name}: {summary}"));
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        assert_eq!((cells[3], cells[4]), ("0 B", "0"), "{row}");
    }
    println!("routines allocating nothing read 0 B and 0 allocations per iteration");
}
