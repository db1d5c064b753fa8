#!/usr/bin/env bash
# The counting allocator against the system allocator, whole process against whole process:
# two release builds of the same loops, differing only in their global allocator, run
# alternately N times (default 5) in one session. Prints the median ns per round of each and
# their ratio, per loop and thread count.
#
#   scripts/alloc-overhead.sh [N] [ROUNDS]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
n="${1:-5}"
rounds="${2:-4000000}"
cargo build --release --locked --quiet --manifest-path "$root/Cargo.toml" -p bench-suite \
    --example alloc_ab_system --example alloc_ab_profiler
bin="${CARGO_TARGET_DIR:-$root/target}/release/examples"
results=$(mktemp)
trap 'rm -f "$results"' EXIT
for ((i = 0; i < n; i++)); do
    "$bin/alloc_ab_system" "$rounds" >>"$results"
    "$bin/alloc_ab_profiler" "$rounds" >>"$results"
done
python3 - "$results" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    label, loop, threads, ns = line.split()
    runs.setdefault((loop, threads), {}).setdefault(label, []).append(float(ns))
print(f"{'loop':<15}{'threads':>8}{'system ns':>12}{'profiler ns':>13}{'ratio':>8}")
for (loop, threads), by in runs.items():
    s, p = statistics.median(by["system"]), statistics.median(by["profiler"])
    print(f"{loop:<15}{threads:>8}{s:>12.2f}{p:>13.2f}{p / s:>8.3f}")
PY
