#!/usr/bin/env bash
# Fuzz the report/baseline reader, the verdict functions and the size/tolerance parsers for a
# bounded time each (default 60 s). Not part of every CI run: run it by hand or nightly.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]
#
# Needs cargo-fuzz (installed here if missing). cargo-fuzz passes nightly-only flags to rustc;
# on a stable toolchain RUSTC_BOOTSTRAP=1 lets them through. Crashes land in
# fuzz/artifacts/<target>/; the corpus grows in fuzz/corpus/<target>/.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
seconds="${1:-60}"
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
cd "$root/fuzz"
# Seed the reader with a real report so the fuzzer starts from valid JSON.
mkdir -p corpus/report_reader
if [[ ! -s corpus/report_reader/seed.json ]]; then
    cargo run --quiet --release --manifest-path "$root/Cargo.toml" --bin profile -- \
        --workload box-leak -n 10 --no-extend -q --json corpus/report_reader/seed.json || true
fi
status=0
for target in report_reader verdict arguments; do
    echo "== fuzzing $target for ${seconds}s"
    RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer none "$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=4096 || status=1
done
exit $status
