//! Exact heap counting through `profiler::Alloc`. A plain `main` (harness = false) on purpose:
//! the counters are process-wide, and libtest's own threads would run beside the checks.
//! (The panic printed on stderr is the one the panicking-workload check catches.)

mod exact;
mod unmoved;

#[global_allocator]
static ALLOC: profiler::Alloc = profiler::Alloc::new();

/// `harness = false` (see profiler/Cargo.toml): no libtest threads run beside the check, so
/// process-wide counts see nothing but it.
/// A run's own bookkeeping nets out once its report is dropped. Made untracked and freed
/// counted, each used to take its size off the heap: the store of samples (one block of 256 B
/// per run), the reasons of an extension and the leaks it confirms (2 blocks per extended
/// run), and a sweep's repetitions of a size (one block of 4 KiB per size).
fn runs_leave_the_heap_as_they_found_it() {
    let quiet = || {
        let report = profiler::Profiler::new("quiet")
            .iterations(5)
            .extend(false)
            .run(|| std::hint::black_box(vec![0u8; 100]).len());
        drop(report);
    };
    let extended = || {
        let mut kept = Vec::with_capacity(1000);
        let report = profiler::Profiler::new("leaky")
            .iterations(20)
            .run(|| kept.push(vec![0u8; 64]));
        assert!(!report.runs[0].extensions.is_empty(), "it extended");
        drop((report, kept));
    };
    let sweep = || {
        let report = profiler::Profiler::new("sizes")
            .sweep(&[1000, 2000, 4000], |n| move || vec![0u8; n as usize].len());
        drop(report);
    };
    unmoved::leaves_the_heap_as_it_found_it("a run, its report dropped", &quiet);
    unmoved::leaves_the_heap_as_it_found_it("an extended run, its report dropped", &extended);
    unmoved::leaves_the_heap_as_it_found_it("a sweep, its report dropped", &sweep);
}

fn main() {
    exact::heap_counts_are_exact();
    runs_leave_the_heap_as_they_found_it();
    println!("heap_counts: ok");
}
