#!/usr/bin/env bash
# The counting allocator against the allocator it wraps, whole process against whole process:
# release builds of the same loops, differing only in their global allocator, run alternately
# N times (default 5) in one session: System, profiler::Alloc over System, divan's
# AllocProfiler over System (a peer, side by side), mimalloc, and
# profiler::Alloc::wrapping(mimalloc). Prints the median ns per round of each and the ratio of
# each counting build to the allocator inside it, per loop and thread count.
#
#   scripts/alloc-overhead.sh [N] [ROUNDS]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
n="${1:-5}"
rounds="${2:-4000000}"
cargo build --release --locked --quiet --manifest-path "$root/Cargo.toml" -p bench-suite \
    --example alloc_ab_system --example alloc_ab_profiler --example alloc_ab_divan \
    --example alloc_ab_mimalloc --example alloc_ab_profiler_mimalloc
bin="${CARGO_TARGET_DIR:-$root/target}/release/examples"
results=$(mktemp)
trap 'rm -f "$results"' EXIT
for ((i = 0; i < n; i++)); do
    "$bin/alloc_ab_system" "$rounds" >>"$results"
    "$bin/alloc_ab_profiler" "$rounds" >>"$results"
    "$bin/alloc_ab_divan" "$rounds" >>"$results"
    "$bin/alloc_ab_mimalloc" "$rounds" >>"$results"
    "$bin/alloc_ab_profiler_mimalloc" "$rounds" >>"$results"
done
python3 - "$results" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    label, loop, threads, ns = line.split()
    runs.setdefault((loop, threads), {}).setdefault(label, []).append(float(ns))
print(f"{'loop':<15}{'threads':>8}{'system':>9}{'profiler':>10}{'ratio':>7}{'divan':>8}"
      f"{'ratio':>7}{'mimalloc':>10}{'profiler/mi':>13}{'ratio':>7}   (median ns per round)")
for (loop, threads), by in runs.items():
    s, p = statistics.median(by["system"]), statistics.median(by["profiler"])
    d = statistics.median(by["divan"])
    m, pm = statistics.median(by["mimalloc"]), statistics.median(by["profiler-mimalloc"])
    print(f"{loop:<15}{threads:>8}{s:>9.2f}{p:>10.2f}{p / s:>7.3f}{d:>8.2f}{d / s:>7.3f}"
          f"{m:>10.2f}{pm:>13.2f}{pm / m:>7.3f}")
PY
