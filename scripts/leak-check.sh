#!/usr/bin/env bash
# The leak-regression gate, the one command a CI job runs.
#
#   scripts/leak-check.sh                         # the whole catalog
#   scripts/leak-check.sh --workload json-roundtrip --max-peak 64MiB
#   LEAK_CHECK_CMD='cargo run --release --example memory --' scripts/leak-check.sh
#
# Builds `profile` in release mode, runs it over the catalog (or the workloads and options
# given), writes report.json, summary.md and plots under <target dir>/leak-check/, compares
# with baselines/leak-check.json when it exists, and exits with profile's code: 0 pass, 1 leak
# / budget exceeded / regression, 2 bad usage, 3 a workload failed, 130 interrupted. Any other
# code is the command's own, when it did not run as profile (127 not found, 101 cargo failed,
# 128+n killed by signal n): the last line says so.
#
# Environment:
#   LEAK_CHECK_CMD            the command to run instead of this workspace's `profile` (split on
#                             spaces; it must take profile's options, e.g. a crate's own
#                             `cargo run --release --example memory --`); nothing is built then
#   LEAK_CHECK_OUT            output directory (default: <target dir>/leak-check, the target
#                             dir being $CARGO_TARGET_DIR or cargo's configured one)
#   LEAK_CHECK_BASELINE       baseline file (default: baselines/leak-check.json); when given,
#                             it must exist unless this run saves it (exit 2 otherwise)
#   LEAK_CHECK_SAVE_BASELINE=1  save this run as the baseline when it passes, over the baseline
#                             it was compared with (--baseline FILE when given), keeping that
#                             one's other workloads; an explicit --save-baseline FILE wins
#                             (1, true, yes or on save; 0, false, no, off or empty do not;
#                             anything else is exit 2)
# The workspace is the one of the current directory (outside any, the one holding this
# script); relative paths above are taken from the current directory.
set -uo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
if manifest="$(cargo locate-project --workspace --message-format plain 2>/dev/null)"; then
    root="$(dirname "$manifest")"
else
    root="$here"
fi
# Where cargo builds: CARGO_TARGET_DIR, build.target-dir of .cargo/config.toml, or target/.
target_dir="$(cargo metadata --no-deps --format-version 1 --manifest-path "$root/Cargo.toml" 2>/dev/null |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
target_dir="${target_dir:-${CARGO_TARGET_DIR:-$root/target}}"
out="${LEAK_CHECK_OUT:-$target_dir/leak-check}"
baseline="${LEAK_CHECK_BASELINE:-$root/baselines/leak-check.json}"

# A value that reads as "yes" must not save nothing in silence (`true` once did).
case "$(tr '[:upper:]' '[:lower:]' <<<"${LEAK_CHECK_SAVE_BASELINE:-0}")" in
1 | true | yes | on) save_baseline=1 ;;
0 | false | no | off | "") save_baseline=0 ;;
*)
    echo "leak-check: LEAK_CHECK_SAVE_BASELINE='$LEAK_CHECK_SAVE_BASELINE' is neither 1 nor 0" \
        "(nor true/false, yes/no, on/off)" >&2
    exit 2
    ;;
esac

if [[ -n "${LEAK_CHECK_CMD:-}" ]]; then
    read -r -a command <<<"$LEAK_CHECK_CMD"
else
    # --locked only where there is a lock file to hold to (a library may not commit one).
    locked=()
    [[ -f "$root/Cargo.lock" ]] && locked=(--locked)
    if ! cargo build --release ${locked[@]+"${locked[@]}"} --quiet --manifest-path "$root/Cargo.toml" --bin profile; then
        echo "leak-check: could not build the \`profile\` binary of $root; set LEAK_CHECK_CMD to" \
            "your own command (e.g. LEAK_CHECK_CMD='cargo run --release --example memory --')" >&2
        exit 2
    fi
    command=("$target_dir/release/profile")
fi

mkdir -p "$out" || exit 2
# One check per output directory at a time: two gates writing the same report, summary and
# plots (two CI jobs on one runner, a matrix sharing a target directory) each deleted the
# other's plots and left whichever report came last for both. flock(1) is Linux's; where it
# is missing, nothing is locked. The lock is released when this script exits.
if command -v flock >/dev/null 2>&1; then
    if ! exec 9>>"$out/.leak-check.lock"; then
        echo "leak-check: cannot write the lock file $out/.leak-check.lock" >&2
        exit 2
    fi
    # -E 75: a lock held elsewhere; any other failure is the lock's own (a file system
    # without locks), which no other check explains. A flock without -E (busybox's, on
    # Alpine) fails on the option itself: then plain -n, whose failure cannot tell which.
    locked=0
    flock -n -E 75 9 2>/dev/null || locked=$?
    if [[ $locked -ne 0 && $locked -ne 75 ]] && flock -n 9 2>/dev/null; then
        locked=0
    fi
    case $locked in
        0) ;;
        75)
            echo "leak-check: another leak check is writing to $out: give each its own" \
                "LEAK_CHECK_OUT" >&2
            exit 2
            ;;
        *)
            echo "leak-check: could not lock $out/.leak-check.lock (flock failed; a flock" \
                "without -E, as busybox's, also fails so while another check holds it)" >&2
            exit 2
            ;;
    esac
fi
rm -f "$out"/plot*.png
# The caller's options: what comes before `--` (after it, the profiled program's own
# arguments, which may well include a --baseline or --json of its own).
opts=()
for a in "$@"; do
    [[ "$a" == "--" ]] && break
    opts+=("$a")
done
# Whether the caller gave option $1 ("--json FILE" or "--json=FILE").
given() {
    local flag="$1"
    for a in ${opts[@]+"${opts[@]}"}; do
        [[ "$a" == "$flag" || "$a" == "$flag="* ]] && return 0
    done
    return 1
}
# Our outputs and baseline, unless the caller chose their own.
args=()
given --json || args+=(--json "$out/report.json")
given --markdown || args+=(--markdown "$out/summary.md")
given --plot || args+=(--plot "$out/plot.png")
# Nor an earlier run's report and summary where this run writes its own: a run that stops
# before writing (bad usage) left the last run's "passed" summary for CI to upload.
given --json || rm -f "$out/report.json"
given --markdown || rm -f "$out/summary.md"
if ! given --baseline; then
    if [[ -d "$baseline" ]]; then
        echo "leak-check: the baseline $baseline is a directory: give LEAK_CHECK_BASELINE a file" >&2
        exit 2
    elif [[ -f "$baseline" ]]; then
        args+=(--baseline "$baseline")
    elif [[ -n "${LEAK_CHECK_BASELINE:-}" && "$save_baseline" != 1 ]]; then
        # A baseline named and not there (a typo, a path from another directory) must not
        # pass as "compared": the default one may simply not exist yet.
        echo "leak-check: no baseline at $baseline (LEAK_CHECK_BASELINE): nothing to compare" \
            "with; save one with LEAK_CHECK_SAVE_BASELINE=1" >&2
        exit 2
    fi
fi
# The value the caller gave option $1, if given.
value_of() {
    local flag="$1"
    set -- ${opts[@]+"${opts[@]}"}
    while (($#)); do
        case "$1" in
        "$flag") [[ $# -ge 2 ]] && { echo "$2"; return 0; } ;;
        "$flag"=*) echo "${1#"$flag"=}"; return 0 ;;
        esac
        shift
    done
    return 1
}
if [[ "$save_baseline" == 1 ]] && ! given --save-baseline; then
    # Saved over the baseline compared with, so that its other workloads are kept: saving
    # over ours while comparing with the caller's dropped every workload not run this time.
    save="$baseline"
    given --baseline && save="$(value_of --baseline)"
    mkdir -p "$(dirname "$save")" || exit 2
    args+=(--save-baseline "$save")
fi

report="$out/report.json"
given --json && report="$(value_of --json)"
# The report as it was (reports are written by renaming a new file into place: a new inode),
# through a link to it if it is one; GNU stat, else BSD's.
identity() {
    stat -L -c '%i %Y %s' "$report" 2>/dev/null || stat -L -f '%i %m %z' "$report" 2>/dev/null ||
        echo none
}
before="$(identity)"
# In the background so that a signal to this script alone (a CI runner stopping the job step)
# reaches profile at once: it stops, writes its report and keeps the baseline, instead of
# running on unwatched and saving it. A trap runs only once the foreground command is done.
# The subshell restores SIGINT and SIGQUIT, which a background job of a script ignores, and
# keeps the caller's standard input.
# (An empty array expands as nothing under `set -u` only since bash 4.4: macOS has 3.2.)
# The lock's descriptor is closed there: a process the profiled program leaves running would
# hold it after this script exits.
( trap - INT QUIT; exec 9>&-; exec "${command[@]}" ${args[@]+"${args[@]}"} "$@" ) 0<&0 &
child=$!
for sig in INT TERM HUP; do
    # shellcheck disable=SC2064 # the signal's name and the child's pid are fixed now.
    trap "kill -$sig $child 2>/dev/null" "$sig"
done
wait "$child"
code=$?
# A trapped signal ends `wait` early: wait again for the code profile exits with (bash keeps
# the status of a background process it has reaped, so the last wait always has it).
while kill -0 "$child" 2>/dev/null; do
    wait "$child"
done
wait "$child"
code=$?
trap - INT TERM HUP
written="report: ${report#"$PWD"/}"
given --markdown || written+=", summary: ${out#"$PWD"/}/summary.md"
given --plot || written+=", plots: ${out#"$PWD"/}/plot*.png"
what="exit $code"
case "$code" in
0 | 1 | 3 | 130) ;;
2) what="exit 2 (bad usage or input, see above)" ;;
127) what="exit 127 (the command was not found: ${command[0]})" ;;
*) what="exit $code (not one of profile's codes: the command did not run as profile, or was killed)" ;;
esac
# Only a report this run wrote is named: one left by an earlier run (profile killed, bad
# usage found before anything ran) is not this run's evidence.
if [[ -f "$report" && "$(identity)" != "$before" ]]; then
    echo "leak-check: $what; $written" >&2
else
    echo "leak-check: $what; no report written" >&2
fi
exit "$code"
