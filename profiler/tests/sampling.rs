//! Sampled attribution under `profiler::Alloc`, threads handing blocks to each other while
//! sampling is switched on and off: every sampled block must be freed as one (a page of the
//! sampler's given to the system allocator would abort the process), and the counts stay
//! exact.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::mpsc;

#[global_allocator]
static ALLOC: profiler::Alloc = profiler::Alloc::new();

use profiler::alloc::sampled;

/// A producer thread makes batches of blocks of 8 B to 8 KiB (small ones are sampled on
/// pages, large ones in place), some zeroed, some grown and shrunk; a consumer thread frees
/// them. `meanwhile` runs on the calling thread, then both stop and are joined (their
/// thread-local destructors included, which a scope does not wait for).
fn exchange(meanwhile: impl FnOnce()) {
    static STOP: AtomicBool = AtomicBool::new(false);
    STOP.store(false, Relaxed);
    let (tx, rx) = mpsc::sync_channel::<Vec<Vec<u8>>>(4);
    let consumer = std::thread::spawn(move || {
        for batch in rx {
            drop(batch);
        }
    });
    let producer = std::thread::spawn(move || {
        let mut round = 0u64;
        while !STOP.load(Relaxed) {
            round += 1;
            let batch: Vec<Vec<u8>> = (0..64u64)
                .map(|i| {
                    let size = 8 + ((round * 64 + i) * 2_654_435_761 % 8_192) as usize;
                    let mut v = if i % 3 == 0 {
                        vec![0u8; size]
                    } else {
                        Vec::with_capacity(size)
                    };
                    if i % 5 == 0 {
                        v.reserve(size * 2); // realloc, sampled or not
                        v.shrink_to(size / 2);
                    }
                    v
                })
                .collect();
            if tx.send(batch).is_err() {
                break;
            }
        }
    });
    meanwhile();
    STOP.store(true, Relaxed);
    producer.join().unwrap();
    consumer.join().unwrap();
}

fn sampled_blocks_are_freed_as_sampled_blocks_across_threads_and_switches() {
    // Once unsampled first: std's first threads and channels keep a few blocks for good.
    exchange(|| std::thread::sleep(std::time::Duration::from_millis(20)));
    let before = profiler::alloc::heap().unwrap();
    exchange(|| {
        for round in 0..40 {
            sampled::set_interval(Some(if round % 2 == 0 { 512 } else { 64 * 1024 }));
            std::thread::sleep(std::time::Duration::from_millis(5));
            // Reading the table while other threads sample into it (the copy is untracked
            // memory, dropped as such).
            profiler::alloc::untracked(|| drop(sampled::live()));
            sampled::set_interval(None);
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    });
    let (taken, _) = sampled::cost();
    assert!(taken > 100, "only {taken} samples: the test did not sample");
    let after = profiler::alloc::heap().unwrap();
    // Everything made in the exchange was freed in it: the counters net out exactly.
    assert_eq!(
        (after.live_blocks, after.live_bytes),
        (before.live_blocks, before.live_bytes)
    );
    assert_eq!(
        sampled::live_count(),
        0,
        "every sampled block was freed as one"
    );
    println!("{taken} samples");
}

/// One large block leaked per iteration: every allocation of it is sampled (its size is
/// beyond any interval chosen), including the first after each change of interval. The
/// iteration also sleeps 10 ms: the rate is chosen within a budget of the iteration's time,
/// and an iteration of the block alone (~0.2 ms in a debug build, where a sample costs ~20
/// us) would be given one sample, an interval of 1 MiB, a chance of 63% to sample the block,
/// and an estimate only as good as a Poisson count of ~20 (it read 0.77 MiB once in CI).
fn a_large_block_leaked_per_iteration_is_named() {
    let profiler = profiler::Profiler::new("large").attribute(profiler::Attribute::Always);
    let line = line!() + 1;
    let leak = || vec![1u8; 1 << 20].leak().len();
    let report = profiler.run(|| {
        std::thread::sleep(std::time::Duration::from_millis(10));
        leak()
    });
    let run = &report.runs[0];
    let first = run
        .leak_sites
        .first()
        .unwrap_or_else(|| panic!("no site: {run:?}"));
    assert!(
        first.location.ends_with(&format!("sampling.rs:{line}")),
        "{first:?}"
    );
    let mib = f64::from(1 << 20);
    assert!(
        (0.8 * mib..1.25 * mib).contains(&first.bytes_per_iteration),
        "{first:?}"
    );
}

/// Samples come at the rate asked for: one per `interval` bytes allocated on average, on a
/// thread that allocated before (its distance is drawn afresh when the interval changes).
fn samples_come_one_per_interval_bytes() {
    let interval = 64 << 10;
    let blocks = 256 * 1024;
    let size = 256;
    drop(std::hint::black_box(vec![0u8; 16]));
    let (before, _) = sampled::cost();
    sampled::set_interval(Some(interval));
    for _ in 0..blocks {
        drop(std::hint::black_box(Vec::<u8>::with_capacity(size)));
    }
    sampled::set_interval(None);
    let taken = sampled::cost().0 - before;
    // 1024 expected; a Poisson count's standard deviation is 32: +-5 of them.
    let expected = (blocks * size) as u64 / interval;
    assert!(
        (expected - 160..=expected + 160).contains(&taken),
        "{taken} samples for {expected} expected"
    );
    assert_eq!(sampled::live_count(), 0);
}

/// A `Vec` that keeps growing by doubling holds one large block, born when it last grew:
/// never steady, but certain to be sampled, and holding the heap's growth. Named as regrown.
fn a_vec_growing_by_doubling_is_named_as_regrown() {
    let mut kept: Vec<u64> = Vec::new();
    let profiler = profiler::Profiler::new("doubling").attribute(profiler::Attribute::Always);
    let line = line!() + 1;
    let report = profiler.run(|| kept.extend(0..8192u64));
    let run = &report.runs[0];
    assert!(run.heap_grows(), "{run:?}");
    let site = run
        .leak_sites
        .iter()
        .find(|s| s.location.ends_with(&format!("sampling.rs:{line}")))
        .unwrap_or_else(|| panic!("not named: {:?}", run.leak_sites));
    assert_eq!(site.growth.as_deref(), Some("regrown"), "{site:?}");
    assert!(site.bytes_per_iteration > 0.0, "{site:?}");
    drop(kept);
}

/// Below a stack floor (what the toolkit sets around each call of a workload), a sampled
/// backtrace stops at the floor's frame: shorter, still holding the frames beneath it.
fn backtraces_stop_at_the_stack_floor() {
    #[inline(never)]
    fn make(size: usize) -> Vec<u8> {
        std::hint::black_box(Vec::with_capacity(size))
    }
    #[inline(never)]
    fn below_a_floor(size: usize) -> Vec<u8> {
        let anchor = 0u8;
        let floor = std::hint::black_box(&anchor) as *const u8 as usize;
        let previous = sampled::set_stack_floor(floor);
        let v = make(size);
        sampled::set_stack_floor(previous);
        v
    }
    // Blocks of 64 KiB are certain to be sampled at a 1 KiB interval.
    let (whole_size, cut_size) = ((64 << 10) + 1, (64 << 10) + 2);
    sampled::set_interval(Some(1024));
    let whole = make(whole_size);
    let cut = below_a_floor(cut_size);
    sampled::set_interval(None);
    let depth = |size: usize| {
        profiler::alloc::untracked(|| {
            let (blocks, stacks) = (sampled::live(), sampled::stacks());
            let block = blocks.iter().find(|b| b.size == size).expect("sampled");
            stacks[block.stack as usize].ips().len()
        })
    };
    let (whole_depth, cut_depth) = (depth(whole_size), depth(cut_size));
    assert!(
        (3..whole_depth).contains(&cut_depth),
        "{cut_depth} frames under the floor, {whole_depth} without"
    );
    drop((whole, cut));
}

/// Small sampled blocks live in the sampler's own range of pages, where a free recognises them
/// by address; a small block aligned beyond a page cannot be one, so it is left unsampled,
/// and freeing it must hand it back to the system allocator whole.
fn small_blocks_are_sampled_unless_aligned_beyond_a_page() {
    use std::alloc::{Layout, alloc, dealloc, realloc};
    let (plain, over) = (
        Layout::from_size_align(64, 8).unwrap(),
        Layout::from_size_align(64, 16 << 10).unwrap(),
    );
    // Every allocation is due for a sample at an interval of 1 byte.
    sampled::set_interval(Some(1));
    let before = sampled::live_count();
    // SAFETY: non-zero sizes; each block is freed with its own layout.
    let p = unsafe { alloc(plain) };
    let with_plain = sampled::live_count();
    let q = unsafe { alloc(over) };
    assert!(!p.is_null() && !q.is_null());
    unsafe { q.write_bytes(1, 64) };
    // Grown, still small: not sampled either.
    let q = unsafe { realloc(q, over, 128) };
    let with_over = sampled::live_count();
    sampled::set_interval(None);
    assert!(!q.is_null());
    assert_eq!(q as usize % (16 << 10), 0, "alignment kept");
    assert!((0..64).all(|i| unsafe { *q.add(i) } == 1), "contents kept");
    let over = Layout::from_size_align(128, 16 << 10).unwrap();
    unsafe {
        p.write_bytes(1, 64);
        q.write_bytes(1, 128);
        dealloc(p, plain);
        dealloc(q, over);
    }
    assert_eq!(
        (with_plain, with_over, sampled::live_count()),
        (before + 1, before + 1, before),
        "the small block sampled, the over-aligned one not; both freed"
    );
}

fn main() {
    // First: the exchange compares exact counts before and after, with nothing else going on.
    sampled_blocks_are_freed_as_sampled_blocks_across_threads_and_switches();
    samples_come_one_per_interval_bytes();
    a_large_block_leaked_per_iteration_is_named();
    a_vec_growing_by_doubling_is_named_as_regrown();
    backtraces_stop_at_the_stack_floor();
    small_blocks_are_sampled_unless_aligned_beyond_a_page();
    println!("sampling: ok");
}
