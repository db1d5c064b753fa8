// Owns the allocation-heavy loops of the whole-process allocator comparison (two binaries,
// one per global allocator, run side by side). Must never depend on which allocator is global.

//! `examples/alloc_ab_system.rs` and `examples/alloc_ab_profiler.rs` are the same program
//! with `System` and `profiler::Alloc` as their global allocator; `scripts/alloc-overhead.sh`
//! runs them alternately and prints the ratios. Unlike `benches/overhead.rs` (one binary whose
//! allocator switches at run time), nothing but the allocator differs between the two.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Instant;

/// `rounds` allocations of 8..512 B, each freeing the one made 256 rounds before.
pub fn mixed(rounds: u64, seed: u64) {
    ring::<256>(rounds, seed, |x| 8 + (x % 505) as usize);
}

/// `rounds` allocations of 4..64 KiB, each freeing the one made 64 rounds before: blocks of
/// a page or more (buffers, large strings), which a sampling allocator cannot tell from a
/// sampled block by their address alone.
pub fn large(rounds: u64, seed: u64) {
    ring::<64>(rounds, seed, |x| (4 << 10) + (x % (60 << 10)) as usize);
}

/// `rounds` allocations of `size(x)` bytes for a xorshift draw `x`, each freeing the one
/// made `RING` rounds before (a constant: the index stays a mask).
#[inline(always)]
fn ring<const RING: usize>(rounds: u64, seed: u64, size: impl Fn(u64) -> usize) {
    let mut live: Vec<Option<Vec<u8>>> = (0..RING).map(|_| None).collect();
    let mut x = seed | 1;
    for i in 0..rounds as usize {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        live[i % RING] = Some(Vec::with_capacity(size(x)));
        black_box(&live[i % RING]);
    }
}

/// `rounds` inserts into a HashMap of Strings kept at 1,000 entries.
pub fn hashmap(rounds: u64, seed: u64) {
    let mut map: HashMap<u64, String> = HashMap::new();
    for i in 0..rounds {
        map.insert(i ^ seed, format!("value number {i}"));
        if i >= 1_000 {
            map.remove(&((i - 1_000) ^ seed));
        }
    }
    black_box(map.len());
}

/// Time each loop on 1 and 2 threads (best of 7) and print one line per case:
/// `<label> <loop> <threads> <ns per round>`. `ALLOC_AB_ONLY=<loop>` (`mixed_8_512`,
/// `hashmap_churn`, `large_4k_64k`) runs that loop alone.
pub fn run(label: &str) {
    run_in(label, || ());
}

/// [`run`], each worker thread holding what `enter` returns while it loops (a span's guard:
/// the cost of heap per span).
pub fn run_in<G>(label: &str, enter: fn() -> G) {
    let rounds: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(4_000_000);
    // (name, loop, fraction of `rounds` it runs: a round of the large loop costs 8-10x more)
    type Loop = (&'static str, fn(u64, u64), u64);
    let loops: [Loop; 3] = [
        ("mixed_8_512", mixed, 1),
        ("hashmap_churn", hashmap, 1),
        ("large_4k_64k", large, 8),
    ];
    let only = std::env::var("ALLOC_AB_ONLY").ok();
    for (name, work, fraction) in loops {
        let rounds = (rounds / fraction).max(1);
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        for threads in [1u64, 2] {
            let mut best = f64::MAX;
            for _ in 0..7 {
                let start = Instant::now();
                std::thread::scope(|s| {
                    for t in 0..threads {
                        s.spawn(move || {
                            let _inside = enter();
                            work(rounds, 0x9E37_79B9 + t)
                        });
                    }
                });
                best = best.min(start.elapsed().as_secs_f64());
            }
            println!("{label} {name} {threads} {:.3}", best * 1e9 / rounds as f64);
        }
    }
}
