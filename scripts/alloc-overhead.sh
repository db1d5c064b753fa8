#!/usr/bin/env bash
# The counting allocator against the allocator it wraps, whole process against whole process:
# release builds of the same loops, differing only in their global allocator, run alternately
# N times (default 5) in one session: System; a global allocator that only forwards to
# System (the floor of any wrapper: examples/alloc_ab_forward.rs); profiler::Alloc over System
# (sampling off, and on at one sample per 2 MiB allocated, ALWAYS_ON_INTERVAL:
# examples/alloc_ab_sampled.rs); the peers over System side by side (divan's AllocProfiler, stats_alloc's StatsAlloc, cap's Cap
# with no limit, dhat::Alloc with no dhat::Profiler running); mimalloc, and
# profiler::Alloc::wrapping(mimalloc), sampling off and on. Prints, per loop and thread count,
# one row per allocator: its median ns per round and its ratio to the allocator inside it
# (System, or mimalloc for profiler::Alloc::wrapping(mimalloc)): the median of the ratios of
# runs made next to each other, with a 95% bootstrap interval (on this 2-core VM two copies
# of the same binary differ by up to 2-3% in medians of 15 runs: read a ratio with its
# interval).
# ALLOC_AB_SET picks other examples, e.g. "system profiler sampled spans spans_apart
# spans_sampled" for heap per span, exact and sampled (each worker thread looping inside a span,
# of one name for all, or of its own: bench-suite/examples/alloc_ab_spans*.rs).
# ALLOC_AB_INTERVALS="2097152 4194304" also runs the sampled binary at each of these mean
# intervals (bytes; rows "sampled <size>"): the same binary, so the same code placement.
# ALLOC_AB_ALIGN=1 builds every binary with each function at the start of a 64-byte line
# (-C llvm-args=-align-all-functions=6, in a target directory of its own): the allocator's
# fast path is inlined into the __rust_alloc / __rust_dealloc shims of each binary, and where
# they happen to land (how many cache lines their ~85 bytes cross) moves a ratio by 1-3%
# between otherwise equal builds (docs/MEASUREMENTS.md, section 2). Aligned, every binary
# has the same placement: use it to compare allocators, not to predict a user's build.
#
#   scripts/alloc-overhead.sh [N] [ROUNDS]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
n="${1:-5}"
rounds="${2:-4000000}"
# Run in this order each time; each is bench-suite/examples/alloc_ab_<name>.rs.
default=(system forward profiler sampled divan stats_alloc cap dhat mimalloc profiler_mimalloc sampled_mimalloc)
read -r -a examples <<<"${ALLOC_AB_SET:-${default[*]}}"
build_args=()
for e in "${examples[@]}"; do build_args+=(--example "alloc_ab_$e"); done
target="${CARGO_TARGET_DIR:-$root/target}"
if [[ "${ALLOC_AB_ALIGN:-0}" == 1 ]]; then
    target="$target/aligned"
    export RUSTFLAGS="${RUSTFLAGS:-} -C llvm-args=-align-all-functions=6"
fi
read -r -a intervals <<<"${ALLOC_AB_INTERVALS:-}"
for iv in "${intervals[@]}"; do
    if ! [[ "$iv" =~ ^[1-9][0-9]*$ ]]; then
        echo "alloc-overhead.sh: ALLOC_AB_INTERVALS must list whole numbers of bytes, not '$iv'" >&2
        exit 2
    fi
done
if ((${#intervals[@]})) && [[ " ${examples[*]} " != *" sampled "* ]]; then
    build_args+=(--example alloc_ab_sampled)
fi
CARGO_TARGET_DIR="$target" cargo build --release --locked --quiet \
    --manifest-path "$root/Cargo.toml" -p bench-suite "${build_args[@]}"
bin="$target/release/examples"
results=$(mktemp)
trap 'rm -f "$results"' EXIT
for ((i = 0; i < n; i++)); do
    for e in "${examples[@]}"; do
        "$bin/alloc_ab_$e" "$rounds" >>"$results"
    done
    for iv in "${intervals[@]}"; do
        ALLOC_AB_INTERVAL="$iv" "$bin/alloc_ab_sampled" "$rounds" |
            sed "s/^sampled /sampled@$iv /" >>"$results"
    done
done
python3 - "$results" <<'PY'
import random, statistics, sys
# runs[(loop, threads)][label] = ns per round of each alternation, in order
runs = {}
for line in open(sys.argv[1]):
    label, loop, threads, ns = line.split()
    runs.setdefault((loop, threads), {}).setdefault(label, []).append(float(ns))
# (label the binary prints, name in the table, the allocator it wraps: the ratio's denominator)
rows = [
    ("system", "system", None),
    ("forward", "forward only", "system"),
    ("profiler", "profiler", "system"),
    ("sampled", "sampled 2MiB", "system"),
    ("divan", "divan", "system"),
    ("stats_alloc", "stats_alloc", "system"),
    ("cap", "cap", "system"),
    ("dhat", "dhat (idle)", "system"),
    ("mimalloc", "mimalloc", None),
    ("profiler-mimalloc", "profiler/mi", "mimalloc"),
    ("sampled-mimalloc", "sampled/mi", "mimalloc"),
    ("spans", "spans exact", "system"),
    ("spans-apart", "spans apart", "system"),
    ("spans-sampled", "spans sampled", "system"),
]
# The sampled binary at other intervals (ALLOC_AB_INTERVALS), in the order given.
for label in dict.fromkeys(l for (_, _), by in runs.items() for l in by if l.startswith("sampled@")):
    iv = int(label.split("@")[1])
    size = f"{iv >> 20}MiB" if iv % (1 << 20) == 0 else f"{iv >> 10}KiB" if iv % 1024 == 0 else f"{iv}B"
    rows.append((label, f"sampled {size}", "system"))
# Sampling on against divan (which samples nothing), paired directly: the issue's "not behind".
if any("divan" in by for by in runs.values()):
    rows.append(("sampled", "sampled/divan", "divan"))


def paired(ns, inner):
    """The ratio of each alternation's run to its inner allocator's run of the same round:
    runs next to each other in time share the machine's drift, which the medians of the two
    series apart do not cancel."""
    return [a / b for a, b in zip(ns, inner)]


def interval(ratios, draws=2000):
    """A 95% bootstrap interval of the median ratio (seeded: the same data prints the same)."""
    rng = random.Random(1)
    medians = sorted(
        statistics.median(rng.choices(ratios, k=len(ratios))) for _ in range(draws)
    )
    return medians[int(0.025 * draws)], medians[int(0.975 * draws) - 1]


print(f"{'loop':<15}{'threads':>8}  {'allocator':<13}{'median ns':>10}{'ratio':>8}  {'95% interval':<15} to")
for (loop, threads), by in runs.items():
    first = True
    for label, name, inner in rows:
        if label not in by:
            continue
        ns = by[label]
        ratio = ""
        if inner in by:
            ratios = paired(ns, by[inner])
            lo, hi = interval(ratios)
            ratio = f"{statistics.median(ratios):>8.3f}  {f'[{lo:.3f}, {hi:.3f}]':<15} {inner}"
        where = f"{loop:<15}{threads:>8}" if first else ""
        print(f"{where:<23}  {name:<13}{statistics.median(ns):>10.2f}{ratio}")
        first = False
PY
