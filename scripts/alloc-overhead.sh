#!/usr/bin/env bash
# The counting allocator against the allocator it wraps, whole process against whole process:
# release builds of the same loops, differing only in their global allocator, run alternately
# N times (default 5) in one session: System, profiler::Alloc over System (sampling off, and on
# at one sample per 1 MiB allocated: examples/alloc_ab_sampled.rs), the peers over
# System side by side (divan's AllocProfiler, stats_alloc's StatsAlloc, cap's Cap with no
# limit, dhat::Alloc with no dhat::Profiler running), mimalloc, and
# profiler::Alloc::wrapping(mimalloc), sampling off and on. Prints, per loop and thread count, one row per
# allocator: its median ns per round and its ratio to the allocator inside it (System, or
# mimalloc for profiler::Alloc::wrapping(mimalloc)). ALLOC_AB_SET picks other examples, e.g.
# "system profiler sampled spans spans_sampled" for heap per span, exact and sampled (each
# worker thread looping inside a span: bench-suite/examples/alloc_ab_spans*.rs).
#
#   scripts/alloc-overhead.sh [N] [ROUNDS]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
n="${1:-5}"
rounds="${2:-4000000}"
# Run in this order each time; each is bench-suite/examples/alloc_ab_<name>.rs.
default=(system profiler sampled divan stats_alloc cap dhat mimalloc profiler_mimalloc sampled_mimalloc)
read -r -a examples <<<"${ALLOC_AB_SET:-${default[*]}}"
build_args=()
for e in "${examples[@]}"; do build_args+=(--example "alloc_ab_$e"); done
cargo build --release --locked --quiet --manifest-path "$root/Cargo.toml" -p bench-suite \
    "${build_args[@]}"
bin="${CARGO_TARGET_DIR:-$root/target}/release/examples"
results=$(mktemp)
trap 'rm -f "$results"' EXIT
for ((i = 0; i < n; i++)); do
    for e in "${examples[@]}"; do
        "$bin/alloc_ab_$e" "$rounds" >>"$results"
    done
done
python3 - "$results" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    label, loop, threads, ns = line.split()
    runs.setdefault((loop, threads), {}).setdefault(label, []).append(float(ns))
# (label the binary prints, name in the table, the allocator it wraps: the ratio's denominator)
rows = [
    ("system", "system", None),
    ("profiler", "profiler", "system"),
    ("sampled", "sampled 1MiB", "system"),
    ("divan", "divan", "system"),
    ("stats_alloc", "stats_alloc", "system"),
    ("cap", "cap", "system"),
    ("dhat", "dhat (idle)", "system"),
    ("mimalloc", "mimalloc", None),
    ("profiler-mimalloc", "profiler/mi", "mimalloc"),
    ("sampled-mimalloc", "sampled/mi", "mimalloc"),
    ("spans", "spans exact", "system"),
    ("spans-sampled", "spans sampled", "system"),
]
print(f"{'loop':<15}{'threads':>8}  {'allocator':<13}{'median ns':>10}{'ratio':>8}  to")
for (loop, threads), by in runs.items():
    median = {label: statistics.median(ns) for label, ns in by.items()}
    first = True
    for label, name, inner in rows:
        if label not in median:
            continue
        ratio = f"{median[label] / median[inner]:>8.3f}  {inner}" if inner else ""
        where = f"{loop:<15}{threads:>8}" if first else ""
        print(f"{where:<23}  {name:<13}{median[label]:>10.2f}{ratio}")
        first = False
PY
