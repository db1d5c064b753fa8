#!/usr/bin/env bash
# The heap library's cost on a malloc-heavy program: scripts/preload/malloc_loop.c (20M
# allocations of 16-1040 bytes, each with a free) run alone and under `profile -- ...` with the
# library (sampled every 100 ms, as by default), in alternating pairs so that both see the same
# machine. Prints each pair, then the median ratios: whole process (wall time from exec to
# exit, profile's own start and stop included) and the loop's own time (main to exit, as the
# program measures it). MODE `bare` is nothing but malloc and free (the worst case), `touch`
# fills each block. Usage: scripts/preload-overhead.sh [PAIRS] [ITERATIONS] [bare|touch]
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
printf '%-6s %12s %12s %12s %12s\n' pair alone_wall alone_loop profiled_wall profiled_loop
: > "$work/pairs"
for i in $(seq 1 "$pairs"); do
    # Alternate which goes first, so that neither always runs on a warmer machine.
    if (( i % 2 )); then
        a=$(run "$work/loop" "$iterations" "$mode")
        p=$(run "$profile" -q -- "$work/loop" "$iterations" "$mode")
    else
        p=$(run "$profile" -q -- "$work/loop" "$iterations" "$mode")
        a=$(run "$work/loop" "$iterations" "$mode")
    fi
    echo "$a $p" >> "$work/pairs"
    read -r aw al pw pl <<< "$a $p"
    printf '%-6s %12.4f %12.4f %12.4f %12.4f\n' "$i" "$aw" "$al" "$pw" "$pl"
done
python3 - "$work/pairs" "$mode" <<'PY'
import statistics, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
wall = statistics.median(r[2] / r[0] for r in rows)
loop = statistics.median(r[3] / r[1] for r in rows)
print(f"{len(rows)} pairs, mode {sys.argv[2]}")
print(f"median ratio, whole process (profile -- loop vs loop): {wall:.3f}x")
print(f"median ratio, the loop's own time:                     {loop:.3f}x")
PY
