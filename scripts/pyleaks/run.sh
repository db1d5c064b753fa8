#!/usr/bin/env bash
# Published Python packages with a documented leak in one release and the fix in a later one,
# each release profiled from outside by `profile --marker` the same way, REPEATS times:
#
#   scripts/pyleaks/run.sh [REPEATS] [--burners K] [--only PKG]... [--iterations N]
#
#   REPEATS         runs of every package version (default 5)
#   --burners K     start K busy loops (sh -c 'while :; do :; done') for the whole measurement;
#                   they are killed on exit (only the PIDs this script started)
#   --only PKG      measure only this package (repeatable): msgspec, ujson, protobuf, sh
#   --iterations N  marked iterations before the first verdict (default 20; the profiler
#                   extends as usual: 20 -> 40 -> 80 -> 160)
#
# The pairs (leaking release, fixed release; see the driver of each for the issue links):
#   msgspec   0.14.1 / 0.14.2  memory: msgpack decode of a tuple field > 16 items (C refcount)
#   ujson     5.11.0 / 5.12.0  memory: loads() of an integer beyond 64 bits keeps its digits
#   protobuf  4.24.4 / 4.25.0  memory: upb map lookups copy the key into the message's arena
#   sh        1.12.2 / 1.12.3  fds: one pipe fd per command run
#
# Every version has its own venv, $PYLEAKS_VENVS/<pkg>-<version> (default /tmp/pyleaks),
# made here with `python3 -m venv` and `pip install --no-deps --only-binary=:all: PKG==VERSION`
# when it is missing or holds another version ($PYTHON picks the interpreter, default python3).
# Each run is
#   profile --marker '^tick' --iterations N --json FILE -q -- <venv>/bin/python <pkg>_driver.py
# with the binary $PROFILE (default target/release/profile, built if missing). Its verdict is
# read from the JSON and counted against the expected one (leak for the leaking release, clean
# for the fixed one). Prints a Markdown table on stdout (one row per package version: verdicts
# counted, exit codes, iterations, runs whose report notes marker lines that arrived bunched,
# i.e. samples that missed the iteration boundaries), then the RSS/fds/threads reasons of every run that did not
# get its expected verdict; progress goes to stderr. Reports and the drivers' output are kept
# in ${CARGO_TARGET_DIR:-target}/pyleaks/runs/<date>-b<K>/.
#
# The drivers read PYLEAKS_KIB (leak per iteration of a leaking memory release, default 32)
# and PYLEAKS_SLEEP_MS (idle after each marker line, default 10) from the environment: see
# _common.py.
#
# Exit status: 0 when no fixed release was called a leak, no leaking release was called clean
# and no run failed; 1 otherwise; 2 on bad usage, a failed build or a venv that cannot be made.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

usage() {
    sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&"$([[ "${1:-2}" == 0 ]] && echo 1 || echo 2)"
    exit "${1:-2}"
}

repeats=5
burners=0
iterations=20
only=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --burners) [[ $# -ge 2 && "$2" =~ ^[0-9]+$ ]] || usage; burners="$2"; shift 2 ;;
        --burners=*) burners="${1#*=}"; [[ "$burners" =~ ^[0-9]+$ ]] || usage; shift ;;
        --only) [[ $# -ge 2 ]] || usage; only+=("$2"); shift 2 ;;
        --only=*) only+=("${1#*=}"); shift ;;
        --iterations) [[ $# -ge 2 && "$2" =~ ^[0-9]+$ && "$2" -ge 1 ]] || usage; iterations="$2"; shift 2 ;;
        --iterations=*) iterations="${1#*=}"; [[ "$iterations" =~ ^[0-9]+$ && "$iterations" -ge 1 ]] || usage; shift ;;
        -h|--help) usage 0 ;;
        *) [[ "$1" =~ ^[0-9]+$ && "$1" -ge 1 ]] || usage; repeats="$1"; shift ;;
    esac
done

# package <TAB> version <TAB> expected <TAB> what leaks
pairs=$'msgspec\t0.14.1\tleak\tmemory
msgspec\t0.14.2\tclean\tmemory
ujson\t5.11.0\tleak\tmemory
ujson\t5.12.0\tclean\tmemory
protobuf\t4.24.4\tleak\tmemory
protobuf\t4.25.0\tclean\tmemory
sh\t1.12.2\tleak\tfds
sh\t1.12.3\tclean\tfds'
if [[ ${#only[@]} -gt 0 ]]; then
    for p in "${only[@]}"; do
        grep -q "^$p"$'\t' <<<"$pairs" || { echo "pyleaks: no package named $p" >&2; exit 2; }
    done
    pairs="$(grep -E "^($(IFS='|'; echo "${only[*]}"))"$'\t' <<<"$pairs")"
fi

python="${PYTHON:-python3}"
venvs="${PYLEAKS_VENVS:-/tmp/pyleaks}"
profile="${PROFILE:-$root/target/release/profile}"
if [[ ! -x "$profile" ]]; then
    echo "pyleaks: building the profile binary" >&2
    (cd "$root" && cargo build --release --quiet --bin profile) || exit 2
    profile="$root/target/release/profile"
fi

# The venvs, pinned: made again if missing or holding another version.
while IFS=$'\t' read -r pkg version _; do
    venv="$venvs/$pkg-$version"
    have="$("$venv/bin/python" -c "import importlib.metadata as m; print(m.version('$pkg'))" 2>/dev/null)"
    [[ "$have" == "$version" ]] && continue
    echo "pyleaks: making $venv" >&2
    rm -rf "$venv"
    mkdir -p "$venvs"
    if ! "$python" -m venv "$venv" ||
        ! "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps \
            --only-binary=:all: "$pkg==$version" >&2; then
        echo "pyleaks: cannot install $pkg==$version into $venv" >&2
        exit 2
    fi
done <<<"$pairs"

out="${CARGO_TARGET_DIR:-$root/target}/pyleaks/runs/$(date +%Y%m%d-%H%M%S)-b$burners"
mkdir -p "$out"
printf 'package\tversion\texpected\tleaks\n%s\n' "$pairs" >"$out/expected.tsv"
: >"$out/runs.tsv"

source "$root/scripts/burners.sh"
start_burners "$burners"
[[ $burners -gt 0 ]] && echo "pyleaks: $burners CPU burner(s): ${burner_pids[*]}" >&2

echo "pyleaks: $repeats run(s) of each version, reports in ${out#"$root"/}" >&2
while IFS=$'\t' read -r pkg version expected _; do
    for ((r = 1; r <= repeats; r++)); do
        name="$pkg-$version-$r"
        start=$SECONDS
        timeout -k 10 900 "$profile" --marker '^tick' --iterations "$iterations" \
            --json "$out/$name.json" -q -- \
            "$venvs/$pkg-$version/bin/python" "$here/${pkg}_driver.py" >"$out/$name.log" 2>&1
        code=$?
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$pkg" "$version" "$expected" "$r" "$code" \
            "$((SECONDS - start))" >>"$out/runs.tsv"
        echo "pyleaks: $name exit $code ($((SECONDS - start)) s)" >&2
    done
done <<<"$pairs"
stop_burners

"$python" - "$out" "$burners" "$iterations" <<'EOF'
import json, os, sys
out, burners, iterations = sys.argv[1], sys.argv[2], sys.argv[3]
rows, wrong, order = {}, [], []
bad = 0
for line in open(os.path.join(out, "runs.tsv")):
    pkg, version, expected, r, code, secs = line.rstrip("\n").split("\t")
    key = (pkg, version)
    if key not in rows:
        rows[key] = {"expected": expected, "leak": 0, "clean": 0, "inconclusive": 0,
                     "failed": 0, "codes": [], "iters": [], "secs": 0, "bunched": 0}
        order.append(key)
    row = rows[key]
    row["codes"].append(code)
    row["secs"] += int(secs)
    path = os.path.join(out, f"{pkg}-{version}-{r}.json")
    try:
        report = json.load(open(path))
        run = report["runs"][0]
        verdict = report["verdict"]
        if run.get("failure"):
            verdict = "failed"
    except (OSError, ValueError, KeyError, IndexError):
        report, run, verdict = None, None, "failed"
    row[verdict if verdict in row else "failed"] += 1
    if run:
        row["iters"].append(str(run["iterations"]))
        notes = (run.get("source") or {}).get("notes") or []
        row["bunched"] += any("marker lines arrived within" in n for n in notes)
    if verdict != expected:
        if verdict == "failed" or (expected, verdict) in (("clean", "leak"), ("leak", "clean")):
            bad += 1
        lines = [f"- {pkg} {version} run {r} (expected {expected}): {verdict}, exit {code}"
                 + (f", {run['iterations']} iterations" if run else ", no report")]
        if run:
            if run.get("failure"):
                lines.append(f"  - failure: {run['failure']}")
            for note in (run.get("source") or {}).get("notes") or []:
                lines.append(f"  - note: {note}")
            for metric in ("rss_bytes", "fds", "threads"):
                m = run["metrics"].get(metric)
                if m and (metric != "threads" or m["verdict"] != "clean"):
                    lines.append(f"  - {metric}: {m['verdict']} ({m['shape']}): {m['reason']}")
        wrong.extend(lines)

print(f"## pyleaks: {len(order)} package versions, burners {burners}, --iterations {iterations}\n")
print("| package | version | expected | leak | clean | inconclusive | failed | exit codes | iterations | bunched | time (s) |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for key in order:
    row = rows[key]
    print(f"| {key[0]} | {key[1]} | {row['expected']} | {row['leak']} | {row['clean']} | "
          f"{row['inconclusive']} | {row['failed']} | {' '.join(row['codes'])} | "
          f"{' '.join(row['iters'])} | {row['bunched']} | {row['secs']} |")
leaky = [k for k in order if rows[k]["expected"] == "leak"]
fixed = [k for k in order if rows[k]["expected"] == "clean"]
found = sum(rows[k]["leak"] for k in leaky)
false_leaks = sum(rows[k]["leak"] for k in fixed)
print(f"\nleaking releases: {found}/{sum(len(rows[k]['codes']) for k in leaky)} runs found the leak; "
      f"fixed releases: {false_leaks}/{sum(len(rows[k]['codes']) for k in fixed)} runs called a leak")
if wrong:
    print("\n### Runs without their expected verdict\n")
    print("\n".join(wrong))
sys.exit(1 if bad else 0)
EOF
