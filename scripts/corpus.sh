#!/usr/bin/env bash
# The corpus (corpus/: workloads on tokio, rayon, crossbeam, moka, dashmap, bumpalo, regex,
# tracing, serde_json, lru, lasso, tempfile; about half leaking, half clean) through the
# verdict, REPEATS times each, one process per run, optionally beside K CPU-burning processes.
#
#   scripts/corpus.sh [REPEATS] [--burners K] [--only NAME]... [--iterations N] [-- ARGS...]
#
#   REPEATS         runs of every workload (default 5)
#   --burners K     start K busy loops (sh -c 'while :; do :; done') for the whole measurement;
#                   they are killed on exit (only the PIDs this script started)
#   --only NAME     run only this workload (repeatable)
#   --iterations N  iterations before the first verdict (default 20, extended by the profiler
#                   as usual: 20 -> 40 -> 80 -> 160, on to 1280 while a metric is only
#                   too noisy to bound)
#   -- ARGS...      passed on to every run of the corpus binary
#
# Every run is `corpus --workload NAME --json FILE -q --iterations N`; its verdict is read from
# the JSON and counted against the workload's expected verdict (`corpus list`):
#   expected leak:  found (leak), missed (clean: the worst), leak-inconclusive
#   expected clean: clean, false leak, clean-inconclusive
# plus failed runs (no report, a panic, a timeout). Prints a Markdown summary on stdout (one
# row per workload, a total with rates, then the reason sentences of every run that did not
# get its expected verdict); progress goes to stderr. Reports are kept in
# ${CARGO_TARGET_DIR:-target}/corpus/runs/<date>/.
#
# Exit status: 0 when no run was a false leak, a missed leak or a failure; 1 otherwise; 2 on
# bad usage or a failed build.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

usage() {
    if [[ "${1:-2}" == 0 ]]; then
        sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    else
        sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    fi
    exit "${1:-2}"
}

repeats=5
burners=0
iterations=20
only=()
extra=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --burners) [[ $# -ge 2 && "$2" =~ ^[0-9]+$ ]] || usage; burners="$2"; shift 2 ;;
        --burners=*) burners="${1#*=}"; [[ "$burners" =~ ^[0-9]+$ ]] || usage; shift ;;
        --only) [[ $# -ge 2 ]] || usage; only+=("$2"); shift 2 ;;
        --only=*) only+=("${1#*=}"); shift ;;
        --iterations) [[ $# -ge 2 && "$2" =~ ^[0-9]+$ ]] || usage; iterations="$2"; shift 2 ;;
        --iterations=*) iterations="${1#*=}"; [[ "$iterations" =~ ^[0-9]+$ ]] || usage; shift ;;
        -h|--help) usage 0 ;;
        --) shift; extra=("$@"); break ;;
        *) [[ "$1" =~ ^[0-9]+$ && "$1" -ge 1 ]] || usage; repeats="$1"; shift ;;
    esac
done

target="${CARGO_TARGET_DIR:-$root/target}/corpus"
echo "corpus: building (release, target dir ${target#"$root"/})" >&2
CARGO_TARGET_DIR="$target" cargo build --release --quiet \
    --manifest-path "$root/corpus/Cargo.toml" --bin corpus || exit 2
bin="$target/release/corpus"

# name <TAB> expected ("clean" or "leak") <TAB> the metrics expected to leak
catalog="$("$bin" list | sed -E 's/^([^ ]+) +(clean|leak)( \(([^)]*)\))? .*/\1\t\2\t\4/')" || exit 2
names=()
while IFS=$'\t' read -r name _; do names+=("$name"); done <<<"$catalog"
if [[ ${#only[@]} -gt 0 ]]; then
    for n in "${only[@]}"; do
        grep -q "^$n"$'\t' <<<"$catalog" || { echo "corpus: no workload named $n" >&2; exit 2; }
    done
    names=("${only[@]}")
fi

out="$target/runs/$(date +%Y%m%d-%H%M%S)-b$burners"
mkdir -p "$out"
printf '%s\n' "$catalog" >"$out/expected.tsv"
: >"$out/runs.tsv"

source "$root/scripts/burners.sh"
start_burners "$burners"
[[ $burners -gt 0 ]] && echo "corpus: $burners burners running (pids ${burner_pids[*]})" >&2

total=$(( repeats * ${#names[@]} ))
done_runs=0
started=$(date +%s.%N)
for ((r = 1; r <= repeats; r++)); do
    for name in "${names[@]}"; do
        json="$out/$name-$r.json"
        t0=$(date +%s.%N)
        "$bin" --workload "$name" --json "$json" -q --iterations "$iterations" "${extra[@]}" \
            >"$out/$name-$r.log" 2>&1
        code=$?
        t1=$(date +%s.%N)
        wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
        printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$r" "$code" "$wall" "$json" >>"$out/runs.tsv"
        done_runs=$((done_runs + 1))
        echo "corpus: [$done_runs/$total] $name #$r: exit $code, ${wall}s" >&2
    done
done
ended=$(date +%s.%N)
stop_burners

commit="$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
dirty=""
[[ -n "$(git -C "$root" status --porcelain -- profiler 2>/dev/null)" ]] && dirty=" (profiler/ modified)"

python3 - "$out" "$repeats" "$burners" "$iterations" "$started" "$ended" "$commit$dirty" "$(nproc)" \
    "${extra[*]:-}" <<'PY'
import json, os, sys

out, repeats, burners, iterations, started, ended, commit, cores, extra = sys.argv[1:10]
expected, expected_metrics = {}, {}
for line in open(os.path.join(out, "expected.tsv")).read().split("\n"):
    if line:
        name, exp, metrics = line.split("\t")
        expected[name] = exp
        expected_metrics[name] = [m.strip() for m in metrics.split(",") if m.strip()]

rows = {}      # name -> counters
order = []
failures = []  # (name, run, outcome, lines)
for line in open(os.path.join(out, "runs.tsv")):
    name, rep, code, wall, path = line.rstrip("\n").split("\t")
    if name not in rows:
        order.append(name)
        rows[name] = dict(runs=0, found=0, missed=0, leak_inc=0, clean=0, false_leak=0,
                          clean_inc=0, failed=0, wall=0.0, iterations=[])
    row = rows[name]
    row["runs"] += 1
    row["wall"] += float(wall)
    exp = expected[name]
    verdict, run, note = None, None, ""
    try:
        run = json.load(open(path))["runs"][0]
        if run.get("failure"):
            note = f"failed: {run['failure']}"
        else:
            verdict = run["verdict"]
            row["iterations"].append(run["iterations"])
    except (OSError, ValueError, KeyError, IndexError) as e:
        note = f"no report (exit {code}): {e}"
    if verdict is None:
        row["failed"] += 1
        failures.append((name, rep, "failed", [note]))
        continue
    outcome = {("leak", "leak"): "found", ("leak", "clean"): "missed",
               ("leak", "inconclusive"): "leak_inc", ("clean", "clean"): "clean",
               ("clean", "leak"): "false_leak", ("clean", "inconclusive"): "clean_inc"}[(exp, verdict)]
    row[outcome] += 1
    if outcome in ("found", "clean"):
        continue
    # The reasons: for a false leak the metrics that leaked; for an inconclusive verdict the
    # inconclusive ones; for a leak missed or inconclusive also the metrics expected to leak.
    lines = []
    for metric, m in run["metrics"].items():
        if not m.get("gating"):
            continue
        wanted = m["verdict"] == "leak" if outcome == "false_leak" else (
            m["verdict"] == "inconclusive"
            or (outcome in ("missed", "leak_inc") and metric in expected_metrics[name]))
        if wanted:
            lines.append(f"{metric} {m['verdict']}: {m['reason']}")
    failures.append((name, rep, outcome, lines, run["iterations"]))

def pct(n, d):
    return f"{100.0 * n / d:.0f}%" if d else "-"

label = {"found": "found", "missed": "MISSED", "leak_inc": "leak inconclusive", "clean": "clean",
         "false_leak": "FALSE LEAK", "clean_inc": "clean inconclusive", "failed": "FAILED"}

print(f"## Corpus verdicts: {repeats} runs per workload, {burners} burner(s)\n")
print(f"Commit {commit}, {cores} cores, `--iterations {iterations}` (extension up to the default "
      f"8x, 64x for noise only){', extra arguments `' + extra + '`' if extra.strip() else ''}; "
      f"wall time {float(ended) - float(started):.1f} s. Reports: `{out}`.\n")
print("| workload | expected | runs | found | missed | leak inconclusive | false leak | clean inconclusive | clean | failed | iterations (median) | wall per run (s) |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
tot = dict(leak_runs=0, clean_runs=0, found=0, missed=0, leak_inc=0, clean=0, false_leak=0,
           clean_inc=0, failed=0, wall=0.0)
for name in sorted(order, key=lambda n: (expected[n] != "leak", n)):
    r = rows[name]
    exp = expected[name]
    dash = "-"
    its = sorted(r["iterations"])
    med = its[len(its) // 2] if its else dash
    if exp == "leak":
        cells = [r["found"], f"**{r['missed']}**" if r["missed"] else 0, r["leak_inc"], dash, dash, dash]
        tot["leak_runs"] += r["runs"]
    else:
        cells = [dash, dash, dash, f"**{r['false_leak']}**" if r["false_leak"] else 0, r["clean_inc"], r["clean"]]
        tot["clean_runs"] += r["runs"]
    for k in ("found", "missed", "leak_inc", "clean", "false_leak", "clean_inc", "failed"):
        tot[k] += r[k]
    tot["wall"] += r["wall"]
    failed = f"**{r['failed']}**" if r["failed"] else 0
    print(f"| {name} | {exp} | {r['runs']} | " + " | ".join(str(c) for c in cells)
          + f" | {failed} | {med} | {r['wall'] / r['runs']:.2f} |")
lr, cr = tot["leak_runs"], tot["clean_runs"]
print(f"| **total** | {sum(1 for n in order if expected[n] == 'leak')} leak, "
      f"{sum(1 for n in order if expected[n] == 'clean')} clean | {lr + cr} | "
      f"{tot['found']} ({pct(tot['found'], lr)}) | {tot['missed']} ({pct(tot['missed'], lr)}) | "
      f"{tot['leak_inc']} ({pct(tot['leak_inc'], lr)}) | {tot['false_leak']} ({pct(tot['false_leak'], cr)}) | "
      f"{tot['clean_inc']} ({pct(tot['clean_inc'], cr)}) | {tot['clean']} ({pct(tot['clean'], cr)}) | "
      f"{tot['failed']} | | {tot['wall']:.1f} s in all |")
print()
print(f"Rates: of {lr} runs of leaking workloads, {pct(tot['found'], lr)} found, "
      f"{pct(tot['missed'], lr)} missed (judged clean), {pct(tot['leak_inc'], lr)} inconclusive; "
      f"of {cr} runs of clean workloads, {pct(tot['false_leak'], cr)} false leaks, "
      f"{pct(tot['clean_inc'], cr)} inconclusive, {pct(tot['clean'], cr)} clean.")

if failures:
    print("\n### Runs without their expected verdict\n")
    for name in sorted({f[0] for f in failures}, key=lambda n: (expected[n] != "leak", n)):
        print(f"- **{name}** (expected {expected[name]}):")
        for f in failures:
            if f[0] != name:
                continue
            its = f" at {f[4]} iterations" if len(f) > 4 else ""
            print(f"  - run {f[1]}: {label[f[2]]}{its}")
            for line in f[3]:
                print(f"    - {line}")

sys.exit(10 if tot["missed"] or tot["false_leak"] or tot["failed"] else 0)
PY
status=$?
# The summary exits 10 when a run was a false leak, a missed leak or a failure.
case $status in
    0) exit 0 ;;
    10) exit 1 ;;
    *) echo "corpus: the summary failed (exit $status)" >&2; exit 2 ;;
esac
