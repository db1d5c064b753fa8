#!/usr/bin/env bash
# The heap library's cost on a malloc-heavy program: scripts/preload/malloc_loop.c (20M
# allocations of 16-1040 bytes, each with a free) run alone and under `profile -- ...` with the
# library (sampled every 100 ms, as by default), in alternating pairs so that both see the same
# machine. Prints each pair, then the median ratios: whole process (wall time from exec to
# exit, profile's own start and stop included) and the loop's own time (main to exit, as the
# program measures it). MODE `bare` is nothing but malloc and free (the worst case), `touch`
# fills each block. Usage: scripts/preload-overhead.sh [PAIRS] [ITERATIONS] [bare|touch]
# With OTHER_LIB=/path/to/libmemcreep_preload.so (another build of the library, e.g. the one
# before a change), each round also runs the loop under `profile` with that copy
# (MEMCREEP_PRELOAD), the three in rotating order, and prints its ratios and other/this.
set -euo pipefail
cd "$(dirname "$0")/.."
pairs=${1:-10}
iterations=${2:-20000000}
mode=${3:-bare}
cargo build --release --quiet --bin profile
target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
profile="$target/release/profile"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"${CC:-cc}" -O2 -o "$work/loop" scripts/preload/malloc_loop.c

now() { date +%s%N; }
# One run: prints "WALL_S LOOP_S".
run() {
    local t0 t1 loop
    t0=$(now)
    loop=$("$@" 2>&1 >/dev/null | awk '/^loop /{print $2}')
    t1=$(now)
    echo "$(( (t1 - t0) / 1000 ))e-6 $loop"
}
other=${OTHER_LIB:-}
printf '%-6s %12s %12s %12s %12s' pair alone_wall alone_loop profiled_wall profiled_loop
[[ -n "$other" ]] && printf ' %12s %12s' other_wall other_loop
printf '\n'
: > "$work/pairs"
for i in $(seq 1 "$pairs"); do
    # Rotate which goes first, so that none always runs on a warmer machine.
    declare -A r=()
    kinds=(a p)
    [[ -n "$other" ]] && kinds+=(o)
    n=${#kinds[@]}
    for ((k = 0; k < n; k++)); do
        case ${kinds[$(( (i + k) % n ))]} in
            a) r[a]=$(run "$work/loop" "$iterations" "$mode") ;;
            p) r[p]=$(run "$profile" -q -- "$work/loop" "$iterations" "$mode") ;;
            o) r[o]=$(MEMCREEP_PRELOAD="$other" run "$profile" -q -- "$work/loop" "$iterations" "$mode") ;;
        esac
    done
    echo "${r[a]} ${r[p]} ${r[o]:-}" >> "$work/pairs"
    # shellcheck disable=SC2086
    printf '%-6s' "$i"; printf ' %12.4f' ${r[a]} ${r[p]} ${r[o]:-}; printf '\n'
    unset r
done
python3 - "$work/pairs" "$mode" <<'PY'
import statistics, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
wall = statistics.median(r[2] / r[0] for r in rows)
loop = statistics.median(r[3] / r[1] for r in rows)
print(f"{len(rows)} pairs, mode {sys.argv[2]}")
print(f"median ratio, whole process (profile -- loop vs loop): {wall:.3f}x")
print(f"median ratio, the loop's own time:                     {loop:.3f}x")
if len(rows[0]) == 6:
    print(f"OTHER_LIB, whole process (vs loop):                    "
          f"{statistics.median(r[4] / r[0] for r in rows):.3f}x")
    print(f"OTHER_LIB, the loop's own time:                        "
          f"{statistics.median(r[5] / r[1] for r in rows):.3f}x")
    print(f"this library / OTHER_LIB, whole process:               "
          f"{statistics.median(r[2] / r[4] for r in rows):.3f}x")
PY
