//! Exact heap per span across a `realloc`: a block keeps the span that made it when it moves,
//! and stays on it when the `realloc` fails (the old block is still the caller's). The entry
//! is taken off the table before the inner allocator may free the old address, which another
//! thread could otherwise get and charge to its own span first.
#![cfg(feature = "tracing")]

use tracing_subscriber::layer::SubscriberExt;

#[global_allocator]
static ALLOC: profiler::Alloc = profiler::Alloc::new();

fn live(name: &str) -> i64 {
    profiler::SpanMemory::totals()
        .iter()
        .find(|t| t.name == name)
        .map_or(0, |t| t.live_bytes)
}

#[test]
fn a_block_keeps_its_span_through_a_realloc_that_moves_it_or_fails() {
    let subscriber = tracing_subscriber::registry().with(profiler::SpanMemory::new());
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
    let mut buffer: Vec<u8> = tracing::info_span!("grows").in_scope(|| Vec::with_capacity(1024));
    assert_eq!(live("grows"), 1024);
    // Outside the span: a failed realloc (no address space has 2^62 bytes) leaves the block
    // where it was, and on its span.
    assert!(buffer.try_reserve(1 << 62).is_err());
    assert_eq!(buffer.capacity(), 1024);
    assert_eq!(
        live("grows"),
        1024,
        "a failed realloc keeps the block on its span"
    );
    // A realloc that moves it (1 MiB: glibc maps it elsewhere): still the span's.
    buffer.reserve(1 << 20);
    assert!(buffer.capacity() >= 1 << 20);
    assert_eq!(live("grows"), buffer.capacity() as i64);
    drop(buffer);
    assert_eq!(live("grows"), 0);
}
