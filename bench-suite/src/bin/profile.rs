//! `profile`: the toolkit's command line over the bench-suite catalog.

#[global_allocator]
static ALLOC: profiler::Alloc = profiler::Alloc::new();

fn main() -> std::process::ExitCode {
    profiler::cli::main(bench_suite::catalog())
}
