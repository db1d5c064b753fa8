//! The allocator comparison's control: the system allocator (see `bench_suite::alloc_loop`).

fn main() {
    bench_suite::alloc_loop::run("system");
}
