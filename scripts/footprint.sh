#!/usr/bin/env bash
# The profiler's own memory over a long run: a no-op workload for 1,000,000 iterations
# (--no-extend) must keep the whole `profile` process under a peak RSS bound, because the
# samples it keeps are bounded (merged past 65,536; see profiler/src/store.rs). CI runs it.
#
#   scripts/footprint.sh [ITERATIONS] [LIMIT_MIB]     (defaults: 1000000 40)
#
# Prints the peak RSS, the run's sample count, its RSS verdict and the median time of an
# iteration; exits 1 over the RSS bound, or if a no-op iteration's median `duration_ms` is
# not under 1 us (the iteration's own time, without the profiler's sampling).
set -euo pipefail
cd "$(dirname "$0")/.."
iterations=${1:-1000000}
limit_mib=${2:-40}
target=${CARGO_TARGET_DIR:-target}
cargo build --release --locked -q -p bench-suite --example fixture_catalog
bin="$target/release/examples/fixture_catalog"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
python3 - "$bin" "$iterations" "$limit_mib" "$out/r.json" <<'PY'
import json, resource, subprocess, sys, time
binary, iterations, limit_mib, report = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
t0 = time.monotonic()
code = subprocess.call([binary, "--workload", "noop", "--iterations", iterations,
                        "--no-extend", "-q", "--json", report], stdout=subprocess.DEVNULL)
secs = time.monotonic() - t0
peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
run = json.load(open(report))["runs"][0]
rss = run["metrics"].get("rss_bytes", {})
durations = sorted(s["duration_ms"] for s in run["samples"][1:] if s.get("duration_ms") is not None)
median_us = durations[len(durations) // 2] * 1e3 if durations else float("nan")
print(f"{iterations} no-op iterations in {secs:.1f} s: peak RSS {peak_mib:.1f} MiB "
      f"(limit {limit_mib:.0f} MiB), {len(run['samples'])} samples kept, "
      f"median duration_ms {median_us * 1e3:.0f} ns, "
      f"exit {code}, rss_bytes {rss.get('verdict')}: {rss.get('reason')}")
if not median_us < 1.0:
    sys.exit(f"footprint: a no-op iteration's median duration_ms is {median_us:.3f} us, not under 1 us")
if code != 0:
    sys.exit(f"footprint: the no-op run exited {code}, expected 0")
if peak_mib > limit_mib:
    sys.exit(f"footprint: peak RSS {peak_mib:.1f} MiB is over {limit_mib:.0f} MiB")
PY
