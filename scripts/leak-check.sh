#!/usr/bin/env bash
# The leak-regression gate, the one command a CI job runs.
#
#   scripts/leak-check.sh                         # the whole catalog
#   scripts/leak-check.sh --workload json-roundtrip --max-peak 64MiB
#
# Builds `profile` in release mode, runs it over the catalog (or the workloads and options
# given), writes report.json, summary.md and plots under target/leak-check/, compares with
# baselines/leak-check.json when it exists, and exits with profile's code: 0 pass, 1 leak /
# budget exceeded / regression, 2 bad usage, 3 a workload failed.
#
# Environment: LEAK_CHECK_OUT (output directory), LEAK_CHECK_BASELINE (baseline file),
# LEAK_CHECK_SAVE_BASELINE=1 (save this run as the baseline when it passes).
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${LEAK_CHECK_OUT:-$root/target/leak-check}"
baseline="${LEAK_CHECK_BASELINE:-$root/baselines/leak-check.json}"

cargo build --release --locked --quiet --manifest-path "$root/Cargo.toml" --bin profile || exit 2
profile="${CARGO_TARGET_DIR:-$root/target}/release/profile"

mkdir -p "$out" || exit 2
rm -f "$out"/plot*.png
# Our outputs and baseline, unless the caller chose their own.
given() { local flag="$1"; shift; for a in "$@"; do [[ "$a" == "$flag" || "$a" == "$flag="* ]] && return 0; done; return 1; }
args=()
given --json "$@" || args+=(--json "$out/report.json")
given --markdown "$@" || args+=(--markdown "$out/summary.md")
given --plot "$@" || args+=(--plot "$out/plot.png")
if [[ -f "$baseline" ]] && ! given --baseline "$@"; then
    args+=(--baseline "$baseline")
fi
if [[ "${LEAK_CHECK_SAVE_BASELINE:-0}" == 1 ]]; then
    mkdir -p "$(dirname "$baseline")" || exit 2
    args+=(--save-baseline "$baseline")
fi

"$profile" "${args[@]}" "$@"
code=$?
echo "leak-check: exit $code; report, summary and plots in ${out#"$root"/}/" >&2
exit "$code"
