//! Exact heap counting through `profiler::Alloc`. A plain `main` (harness = false) on purpose:
//! the counters are process-wide, and libtest's own threads would run beside the checks.
//! (The panics printed on stderr are the ones the panicking-workload checks catch.)

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
    // The callback and what it captured are the caller's: made counted, freed counted.
    let watched = || {
        let seen = vec![0u64; 8];
        let report = profiler::Profiler::new("watched")
            .iterations(5)
            .extend(false)
            .on_progress(move |p| {
                std::hint::black_box((&seen, p.done));
            })
            .run(|| std::hint::black_box(vec![0u8; 100]).len());
        drop(report);
    };
    // On a thread of its own, as a libtest test runs: the sampler thread's start-up, and what
    // the run made on the calling thread that its exit frees, used to take 4 blocks off.
    // Joined, not scoped: a scope returns once the closure is done, before the thread's exit
    // has freed what the thread holds, which a read right after would see.
    let sampled_between = || {
        std::thread::spawn(|| {
            let report = profiler::Profiler::new("sampled between")
                .iterations(5)
                .extend(false)
                .interval(std::time::Duration::from_millis(2))
                .run(|| std::thread::sleep(std::time::Duration::from_millis(3)));
            // The workload only sleeps: every boundary, sample 0 included, reads the same heap
            // (the sampler's start-up is taken back before sample 0).
            let run = &report.runs[0];
            let heaps: Vec<_> = run.samples.iter().map(|s| s.heap_bytes).collect();
            let between: Vec<_> = run.interval_samples.iter().map(|s| s.heap_bytes).collect();
            assert!(!between.is_empty(), "samples between boundaries");
            assert!(
                heaps.iter().chain(&between).all(|h| *h == heaps[0]),
                "{heaps:?} {between:?}"
            );
            drop(report);
        })
        .join()
        .unwrap();
    };
    unmoved::leaves_the_heap_as_it_found_it("a run, its report dropped", &quiet);
    unmoved::leaves_the_heap_as_it_found_it("a run sampled between boundaries", &sampled_between);
    unmoved::leaves_the_heap_as_it_found_it("a run with a progress callback", &watched);
    unmoved::leaves_the_heap_as_it_found_it("an extended run, its report dropped", &extended);
    unmoved::leaves_the_heap_as_it_found_it("a sweep, its report dropped", &sweep);
}

/// The CLI's paths (a workload on a watched worker thread, plainly and `--concurrency`), each
/// with its watch shared between two threads: made untracked, freed untracked by whichever
/// lets it go last. The level's watch used to be freed counted: one block off the heap per
/// workload.
fn guarded_runs_leave_the_heap_as_they_found_it() {
    use std::sync::Arc;
    let catalog = Arc::new(vec![profiler::Workload::new(
        "small",
        "allocates and frees",
        profiler::Expected::Clean,
        || Ok(|| drop(std::hint::black_box(vec![0u8; 100]))),
    )]);
    let settings = profiler::options::Settings {
        iterations: 5,
        extend: false,
        ..Default::default()
    };
    let levels = profiler::options::ConcurrencySettings {
        levels: vec![1, 2],
        limits: Default::default(),
    };
    let plain = || {
        let progress = |_| {};
        drop(profiler::session::run_workload_guarded(
            &catalog, 0, &settings, progress,
        ));
    };
    let copies = || {
        drop(profiler::session::concurrency::run_workload_levels_guarded(
            &catalog, 0, &settings, &levels,
        ));
    };
    unmoved::leaves_the_heap_as_it_found_it("a guarded run", &plain);
    unmoved::leaves_the_heap_as_it_found_it("a guarded --concurrency run", &copies);
}

/// What a run keeps for itself on the calling thread (which profiles it ran there, by name)
/// is not on the heap while that thread lives: a workload that runs profiles on its threads,
/// or a check of the heap around a run on a fresh thread, sees nothing of it. It used to be
/// counted: 2 blocks, 163 B, until the thread's exit.
fn a_first_run_on_a_thread_leaves_its_heap() {
    std::thread::spawn(|| {
        let before = profiler::alloc::heap().unwrap();
        let report = profiler::Profiler::new("first on its thread")
            .iterations(5)
            .extend(false)
            .run(|| std::hint::black_box(vec![0u8; 100]).len());
        drop(report);
        let after = profiler::alloc::heap().unwrap();
        assert_eq!(
            (after.live_blocks, after.live_bytes),
            (before.live_blocks, before.live_bytes),
            "a first run on a thread, before the thread ends, moved the heap"
        );
    })
    .join()
    .unwrap();
}

/// Exact attribution (dhat passes after the run): what the passes read (sites, the counters'
/// cross-check) used to be made untracked and freed counted, 18 blocks off the heap per run.
/// A workload that panics during the passes (its 13th call) unwinds through dhat's state,
/// made untracked: it must be dropped untracked there too. Either way the passes leave no file
/// but the one kept (dhat's file of a panicked pass used to stay beside it).
fn exact_attribution_leaves_the_heap_as_it_found_it() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("exact.dhat.json");
    // 12 iterations leaking 1 KiB each, then passes of 2, 4 and 8 (unless `stop_at` panics).
    let exact = |stop_at: usize| {
        let mut kept = Vec::with_capacity(100);
        let report = profiler::Profiler::new("exact")
            .iterations(12)
            .extend(false)
            .attribute(profiler::Attribute::Exact)
            .attribute_iterations(2)
            .attribute_file(&file)
            .run(|| {
                assert!(kept.len() < stop_at, "the passes' first call");
                kept.push(vec![0u8; 1024]);
            });
        let run = &report.runs[0];
        let note = run.attribution_note.clone().unwrap_or_default();
        match stop_at {
            usize::MAX => assert!(run.attribution.is_some(), "{note}"),
            _ => assert!(note.contains("panicked under dhat"), "{note}"),
        }
        drop((report, kept, note));
    };
    unmoved::leaves_the_heap_as_it_found_it("an exact-attribution run", &|| exact(usize::MAX));
    unmoved::leaves_the_heap_as_it_found_it("an exact-attribution run that panics", &|| exact(12));
    let mut left: Vec<_> = std::fs::read_dir(dir.path())
        .expect("the directory")
        .map(|entry| entry.expect("an entry").file_name())
        .collect();
    left.sort();
    assert_eq!(left, ["exact.dhat.json"], "the passes left files behind");
}

/// A program's run with a marker and samples between markers: those samples were pushed
/// counted and adopted again (+1 block per run), and the threads reading its output were not
/// joined (what they held was freed whenever they got to it).
fn a_marked_program_leaves_the_heap_as_it_found_it() {
    let marked = || {
        let run = profiler::external::Program::command([
            "sh",
            "-c",
            "for i in 1 2 3 4 5 6 7 8; do echo tick; sleep 0.02; done",
        ])
        .interval(std::time::Duration::from_millis(5))
        .marker("tick")
        .unwrap()
        .iterations(5)
        .extend(false)
        .run()
        .unwrap();
        assert!(!run.interval_samples.is_empty(), "samples between markers");
        drop(run);
    };
    unmoved::leaves_the_heap_as_it_found_it("a marked program's run", &marked);
}

fn main() {
    exact::heap_counts_are_exact();
    runs_leave_the_heap_as_they_found_it();
    a_first_run_on_a_thread_leaves_its_heap();
    exact_attribution_leaves_the_heap_as_it_found_it();
    a_marked_program_leaves_the_heap_as_it_found_it();
    guarded_runs_leave_the_heap_as_they_found_it();
    println!("heap_counts: ok");
}
