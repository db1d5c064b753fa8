#!/usr/bin/env bash
# Flakiness check of the gate: the clean catalog through `profile` N times in a row (default
# 100). Every run must exit 0; prints how many runs had an inconclusive workload and which,
# and every metric judged other than clean, gating or not (RSS beside exact heap counters is
# informational), with the number of runs.
# With FLAKE_BURNERS=K, K CPU-burning processes run beside it (a busy CI runner).
#
#   [FLAKE_BURNERS=K] scripts/flake-check.sh [N] [extra profile arguments...]
#
# Reports of runs that failed are kept in target/flake-check/.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
runs="${1:-100}"
shift || true
out="$root/target/flake-check"
mkdir -p "$out"
cargo build --release --locked --quiet --manifest-path "$root/Cargo.toml" --bin profile || exit 2
profile="${CARGO_TARGET_DIR:-$root/target}/release/profile"

args=()
while read -r name expected _; do
    [[ "$expected" == clean ]] && args+=(--workload "$name")
done < <("$profile" list)

source "$root/scripts/burners.sh"
start_burners "${FLAKE_BURNERS:-0}"

failures=0
inconclusive=0
declare -A by_workload=() by_metric=()
for ((i = 1; i <= runs; i++)); do
    json="$out/run-$i.json"
    "$profile" -q --json "$json" "${args[@]}" "$@"
    code=$?
    if [[ $code -ne 0 ]]; then
        failures=$((failures + 1))
        echo "run $i: exit $code (report kept: ${json#"$root"/})"
        continue
    fi
    # First line: the workloads judged inconclusive; second: every metric judged other than
    # clean, gating or not (RSS beside heap counters is not), as workload/metric/verdict.
    names="" metrics=""
    if ! summary=$(python3 - "$json" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
runs = report["runs"]
print(" ".join(r["workload"] for r in runs if r["verdict"] == "inconclusive"))
print(" ".join(f"{r['workload']}/{name}/{m['verdict']}" for r in runs
               for name, m in r["metrics"].items() if m["verdict"] != "clean"))
PY
); then
        failures=$((failures + 1))
        echo "run $i: report unreadable (kept: ${json#"$root"/})"
        continue
    fi
    { read -r names; read -r metrics; } <<<"$summary"
    if [[ -n "$names" ]]; then
        inconclusive=$((inconclusive + 1))
        for n in $names; do by_workload[$n]=$(( ${by_workload[$n]:-0} + 1 )); done
    fi
    for m in $metrics; do by_metric[$m]=$(( ${by_metric[$m]:-0} + 1 )); done
    rm -f "$json"
done

echo "flake-check: $runs runs of $(( ${#args[@]} / 2 )) clean workloads (${FLAKE_BURNERS:-0} CPU burners beside): $failures failed (exit != 0), $inconclusive had an inconclusive workload"
for n in "${!by_workload[@]}"; do
    echo "  $n: inconclusive in ${by_workload[$n]} runs"
done
echo "metrics judged other than clean (gating or not; workload/metric/verdict): ${#by_metric[@]} kinds"
for m in "${!by_metric[@]}"; do
    echo "  $m: ${by_metric[$m]} runs"
done
[[ $failures -eq 0 ]]
