//! Whether something leaves the process heap (`profiler::Alloc`'s counters) as it found it.

/// Run `profile` once (what it makes once, lazily, stays), then three times more: the heap's
/// live blocks and bytes must be where they were before those three.
pub fn leaves_the_heap_as_it_found_it(what: &str, profile: &dyn Fn()) {
    profile();
    let before = profiler::alloc::heap().expect("profiler::Alloc is installed");
    for _ in 0..3 {
        profile();
    }
    let after = profiler::alloc::heap().unwrap();
    assert_eq!(
        (after.live_blocks, after.live_bytes),
        (before.live_blocks, before.live_bytes),
        "{what}, three times over, moved the heap"
    );
}
