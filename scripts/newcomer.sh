#!/usr/bin/env bash
# A newcomer's crate follows the README, as pasted: the check that the README's instructions
# for using memcreep from another crate work.
#
#   scripts/newcomer.sh
#
# In a temp directory: `cargo new --lib my_crate`, then the README's marked blocks (a line
# `<!-- newcomer: NAME -->` right before a fenced block), with `<path to the clone>` replaced
# by this repository and `<URL you cloned from>` by its file:// URL:
#   lib                        -> src/lib.rs (the code under test)
#   dev-dependency-tests-only  -> Cargo.toml; test -> tests/leak_check.rs; `cargo test`
#   dev-dependency             -> Cargo.toml; example -> examples/memory.rs; `cargo test`;
#   command-line               -> run, exit 0 (1 if the example has an Expected::Leak workload)
#   cargo-add                  -> each line in a scratch crate: the same dependency as pasted
#   dev-dependency-git         -> a scratch crate; `cargo metadata` resolves it from git
#   bench-dependency, bench    -> a second crate: criterion (default features) and the
#                                 README's MemoryBench; `cargo bench` flags the leaking
#                                 routine, shows the clean one in ns, criterion's HTML report
#                                 is written; MEMCREEP_FAIL_ON_LEAK=1 makes it exit 1
#   workflow                   -> its `run:` lines, with GITHUB_STEP_SUMMARY set: outputs and
#                                 summary written (exit 0); save-baseline -> then a run that
#                                 compares (exit 0); then a regression in src/lib.rs (exit 1,
#                                 the saved baseline untouched)
# Builds share the workspace's target directory (${CARGO_TARGET_DIR:-target}), with its release
# profile's debug setting and a copy of its Cargo.lock in each new crate: the same versions of
# the same dependencies are built once for the workspace and the newcomer (in CI this halves
# the script's time), and a dependency's new release cannot break this check before the
# workspace takes it. Criterion writes to the temp directory (CRITERION_HOME), so no report of
# an earlier run can pass for this one's. Exits 1 naming the README instruction that failed
# (the crate is left in place for a look), 0 when all work.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
readme="$root/README.md"
target="${CARGO_TARGET_DIR:-$root/target}"
[[ "$target" == /* ]] || target="$PWD/$target"
export CARGO_TARGET_DIR="$target"
export CARGO_PROFILE_RELEASE_DEBUG="$(sed -n '/^\[profile.release\]/,/^\[/s/^debug *= *"\{0,1\}\([^"]*\)"\{0,1\}.*/\1/p' "$root/Cargo.toml")"
[[ -n "$CARGO_PROFILE_RELEASE_DEBUG" ]] || unset CARGO_PROFILE_RELEASE_DEBUG
# The outer CI's own summary is not ours to write to.
unset GITHUB_STEP_SUMMARY

work="$(mktemp -d "${TMPDIR:-/tmp}/newcomer.XXXXXX")"
crate="$work/my_crate"
phase_start=$SECONDS
phase() {
    printf '\n--- newcomer: %s (%ss)\n' "$*" "$SECONDS"
}
fail() {
    printf '\nnewcomer: FAILED: %s\n' "$*" >&2
    printf 'newcomer: the crate is left in %s; builds in %s\n' "$work" "$CARGO_TARGET_DIR" >&2
    exit 1
}
trap 'code=$?; if [[ $code -eq 0 ]]; then rm -rf "$work"; fi' EXIT

# The README reader: marked blocks, the workflow's `run:` scripts, cargo metadata answers.
cat >"$work/readme.py" <<'PY'
import json, re, shlex, sys

def block(readme, name, root):
    lines = open(readme, encoding="utf-8").read().split("\n")
    marker = f"<!-- newcomer: {name} -->"
    found = [i for i, l in enumerate(lines) if l.strip() == marker]
    if len(found) != 1:
        sys.exit(f"README.md has {len(found)} blocks marked `{marker}` (expected one)")
    i = found[0] + 1
    m = re.match(r"^(\s*)(```+|~~~+)\s*([\w-]*)", lines[i]) if i < len(lines) else None
    if not m:
        sys.exit(f"README.md: `{marker}` is not followed by a fenced code block")
    indent, fence, lang = len(m.group(1)), m.group(2), m.group(3)
    body = []
    i += 1
    while i < len(lines) and lines[i].strip() != fence:
        line = lines[i]
        body.append(line[indent:] if line[:indent].strip() == "" else line)
        i += 1
    if i == len(lines):
        sys.exit(f"README.md: the block after `{marker}` is never closed")
    text = "\n".join(body) + "\n"
    shell = lang in ("sh", "bash", "shell", "console")
    q = shlex.quote if shell else (lambda s: s)
    text = text.replace("<path to the clone>", q(root))
    text = text.replace("<URL you cloned from>", q("file://" + root))
    if lang in ("toml", "sh", "bash", "shell", "yaml", "yml"):
        left = re.findall(r"<[A-Za-z]+(?: [A-Za-z]+)+>", text)
        if left:
            sys.exit(f"README.md: block `{name}` has placeholders this script does not fill: {left}")
    sys.stdout.write(text)

def runs(workflow, outdir):
    """Write the `run:` scripts of a GitHub Actions workflow to outdir/run-N.sh, in order."""
    lines = open(workflow, encoding="utf-8").read().split("\n")
    scripts, i = [], 0
    while i < len(lines):
        m = re.match(r"^(\s*)(-\s+)?run:\s*(.*)$", lines[i])
        if not m:
            i += 1
            continue
        key_indent = len(m.group(1)) + len(m.group(2) or "")
        value = m.group(3).strip()
        i += 1
        if value.startswith("|"):
            body = []
            while i < len(lines) and (
                lines[i].strip() == "" or len(lines[i]) - len(lines[i].lstrip()) > key_indent
            ):
                body.append(lines[i])
                i += 1
            nonblank = [l for l in body if l.strip()]
            cut = min(len(l) - len(l.lstrip()) for l in nonblank) if nonblank else 0
            scripts.append("\n".join(l[cut:] for l in body).strip("\n") + "\n")
        elif value.startswith(">"):
            sys.exit("README.md: a folded (>) `run:` in the workflow; this script reads `|` or one line")
        else:
            scripts.append(value + "\n")
    if not scripts:
        sys.exit("README.md: the workflow has no `run:` step")
    for n, s in enumerate(scripts, 1):
        open(f"{outdir}/run-{n}.sh", "w", encoding="utf-8").write(s)
    print(len(scripts))

def flags(script):
    """The files the run lines name: FLAG PATH per line (--json, --markdown, ...)."""
    text = open(script, encoding="utf-8").read()
    for flag, path in re.findall(
        r"(--json|--markdown|--plot|--save-baseline|--baseline)[ =]\"?([^\s\")]+)", text
    ):
        print(flag, path)

def dev_dep(metadata, key):
    """The dev-dependency `key` of the crate in `cargo metadata --no-deps` output, in words."""
    pkg = json.load(open(metadata))["packages"][0]
    deps = [d for d in pkg["dependencies"] if (d.get("rename") or d["name"]) == key]
    if len(deps) != 1:
        sys.exit(f"no dependency named `{key}` in the crate's Cargo.toml")
    d = deps[0]
    source = d.get("path") or d.get("source") or "registry"
    print(f"package={d['name']} kind={d['kind']} source={source} "
          f"default-features={d['uses_default_features']} features={','.join(d['features'])}")

def resolved(metadata, name):
    """Where cargo resolved package `name` from, in a full `cargo metadata` output."""
    pkgs = [p for p in json.load(open(metadata))["packages"] if p["name"] == name]
    if not pkgs:
        sys.exit(f"cargo metadata did not resolve `{name}`")
    print(pkgs[0]["source"] or pkgs[0]["manifest_path"])

cmd, args = sys.argv[1], sys.argv[2:]
{"block": block, "runs": runs, "flags": flags, "dev-dep": dev_dep, "resolved": resolved}[cmd](*args)
PY
readme_py() { python3 "$work/readme.py" "$@"; }
# The README block NAME, to stdout (fails the run naming the block when it is missing).
snippet() { readme_py block "$readme" "$1" "$root" || fail "reading the README block '$1'"; }
# Run a command, expecting exit code $1; $2 says which README instruction it is.
expect() {
    local want="$1" what="$2" code=0
    shift 2
    "$@" || code=$?
    [[ $code -eq $want ]] || fail "$what: exit $code, the README says $want"
}
# A fresh crate as `cargo new --lib` makes it.
new_crate() {
    (cd "$work" && cargo new --lib --quiet "$1") || fail "cargo new --lib $1"
    cp "$root/Cargo.lock" "$work/$1/Cargo.lock"
}

phase "the README's Rust version is the workspace's"
msrv="$(sed -n 's/^rust-version *= *"\([^"]*\)".*/\1/p' "$root/Cargo.toml")"
[[ -n "$msrv" ]] || fail "no rust-version in $root/Cargo.toml"
grep -q "Rust $msrv\*\* or newer" "$readme" ||
    fail "README.md does not say 'Rust $msrv** or newer' (the workspace's rust-version)"
echo "Rust $msrv"

phase "cargo new --lib my_crate, with the README's src/lib.rs"
new_crate my_crate
snippet lib >"$crate/src/lib.rs"
cd "$crate"

phase "tests only: the dev-dependency without default features, tests/leak_check.rs, cargo test"
grep -q '^\[dev-dependencies\]' Cargo.toml && fail "cargo new already wrote [dev-dependencies]"
cp Cargo.toml "$work/Cargo.toml.new"
{ echo; snippet dev-dependency-tests-only; } >>Cargo.toml
mkdir -p tests examples
snippet test >tests/leak_check.rs
expect 0 "cargo test with the tests-only dev-dependency and tests/leak_check.rs" cargo test
if cargo tree --edges normal,dev --prefix none | grep -q '^clap '; then
    fail "the tests-only dev-dependency (default-features = false) still builds clap"
fi

phase "the command line: the dev-dependency with default features, examples/memory.rs"
cp "$work/Cargo.toml.new" Cargo.toml
{ echo; snippet dev-dependency; } >>Cargo.toml
snippet example >examples/memory.rs
expect 0 "cargo test with the example beside the tests" cargo test
want=0
grep -q 'Expected::Leak' examples/memory.rs && want=1
snippet command-line >"$work/command-line.sh"
cat "$work/command-line.sh"
expect "$want" "the README's command line over examples/memory.rs" bash -eo pipefail "$work/command-line.sh"

phase "cargo add writes the README's dependency lines"
snippet cargo-add >"$work/cargo-add.sh"
n=0
while IFS= read -r line <&3; do
    [[ "$line" =~ ^[[:space:]]*(#|$) ]] && continue
    n=$((n + 1))
    for variant in default tests-only; do
        extra=""
        [[ $variant == tests-only ]] && extra=" --no-default-features"
        # The git form is checked once (tests-only is a flag, checked on the path form).
        [[ $variant == tests-only && "$line" == *--git* ]] && continue
        scratch="add-$n-$variant"
        new_crate "$scratch"
        (cd "$work/$scratch" && bash -eo pipefail -c "$line$extra") || fail "the README's '$line$extra'"
        (cd "$work/$scratch" && cargo metadata --no-deps --format-version 1 >"$work/$scratch.json") ||
            fail "cargo metadata after '$line$extra'"
        got="$(readme_py dev-dep "$work/$scratch.json" profiler)" || fail "'$line$extra' did not add the dependency profiler"
        echo "$line$extra: $got"
        [[ "$got" == "package=memcreep kind=dev "* ]] || fail "'$line$extra' added $got, not memcreep as a dev-dependency"
        if [[ "$line" == *--path* ]]; then
            # Against the pasted TOML lines (tests-only, and the one with default features).
            pasted="$work/pasted-$variant"
            new_crate "pasted-$variant"
            block=dev-dependency
            [[ $variant == tests-only ]] && block=dev-dependency-tests-only
            { echo; snippet $block; } >>"$pasted/Cargo.toml"
            (cd "$pasted" && cargo metadata --no-deps --format-version 1 >"$pasted.json") || fail "cargo metadata of the README's $block line"
            want_dep="$(readme_py dev-dep "$pasted.json" profiler)"
            [[ "$got" == "$want_dep" ]] || fail "'$line$extra' gives $got, the README's $block line $want_dep"
        else
            (cd "$work/$scratch" && cargo metadata --format-version 1 >"$work/$scratch-full.json") ||
                fail "cargo metadata could not resolve what '$line' added"
            echo "  resolved from $(readme_py resolved "$work/$scratch-full.json" memcreep)"
        fi
    done
done 3<"$work/cargo-add.sh"
((n > 0)) || fail "the README's cargo-add block has no command"

phase "the git dependency line resolves (file:// URL of this repository)"
if [[ "$(git -C "$root" rev-parse --is-shallow-repository 2>/dev/null)" != false ]]; then
    echo "skipped: $root is not a git repository or a shallow clone (cargo cannot fetch from it)"
else
    new_crate git_form
    { echo; snippet dev-dependency-git; } >>"$work/git_form/Cargo.toml"
    (cd "$work/git_form" && cargo metadata --format-version 1 >"$work/git_form.json") ||
        fail "cargo metadata could not resolve the README's git dependency line"
    from="$(readme_py resolved "$work/git_form.json" memcreep)" || fail "the git dependency line did not resolve memcreep"
    echo "memcreep from $from"
    [[ "$from" == git+file://* ]] || fail "the git dependency line resolved memcreep from $from, not git"
fi

phase "the CI gate: the workflow's run: lines"
snippet workflow >"$work/workflow.yml"
mkdir -p "$work/runs"
count="$(readme_py runs "$work/workflow.yml" "$work/runs")" || fail "reading the README's workflow"
summary="$work/step-summary.md"
: >"$summary"
# Run every run: step in order, as GitHub does (bash -e -o pipefail, in the checkout).
workflow() {
    local want="$1" what="$2" code=0 n
    for ((n = 1; n <= count; n++)); do
        echo "+ run: step $n of the workflow"
        GITHUB_STEP_SUMMARY="$summary" GITHUB_REF=refs/heads/main CI=true \
            bash --noprofile --norc -eo pipefail "$work/runs/run-$n.sh" || code=$?
        ((code == 0)) || break
    done
    [[ $code -eq $want ]] || fail "the workflow's run: lines, $what: exit $code, expected $want"
}
declare -A file=()
for ((n = 1; n <= count; n++)); do
    while read -r flag path; do file[$flag]="$path"; done < <(readme_py flags "$work/runs/run-$n.sh")
done
for flag in --json --markdown --plot --save-baseline --baseline; do
    [[ -n "${file[$flag]:-}" ]] || fail "the workflow's run: lines give no $flag FILE"
done
grep -Fq "path: $(dirname "${file[--json]}")" "$work/workflow.yml" ||
    fail "the workflow's artifact path is not the directory of --json ${file[--json]}"

echo "first run, no baseline yet"
rm -f "${file[--baseline]}"
workflow 0 "first run (no baseline)"
for flag in --json --markdown --plot --save-baseline; do
    [[ -s "${file[$flag]}" ]] || fail "the first run wrote no ${file[$flag]} ($flag)"
done
grep -q "Leak check" "$summary" || fail "the first run appended nothing to GITHUB_STEP_SUMMARY"
first_summary_size=$(stat -c %s "$summary")

echo "the README's way to keep the baseline"
[[ "$(git rev-parse --show-toplevel 2>/dev/null)" == "$crate" ]] ||
    fail "cargo new did not make $crate a git repository (the save-baseline block runs git add)"
snippet save-baseline >"$work/save-baseline.sh"
cat "$work/save-baseline.sh"
expect 0 "the README's save-baseline command" bash -eo pipefail "$work/save-baseline.sh"
[[ -s "${file[--baseline]}" ]] || fail "the save-baseline command did not make ${file[--baseline]}"

echo "second run, compared with the baseline"
workflow 0 "second run (compared with ${file[--baseline]})"
grep -q "baseline \`${file[--baseline]}\`" "$summary" ||
    fail "the second run's step summary does not say it compared with ${file[--baseline]}"
(($(stat -c %s "$summary") > first_summary_size)) || fail "the second run appended nothing to GITHUB_STEP_SUMMARY"

echo "third run, after a regression in src/lib.rs: exit 1, the saved baseline untouched"
before="$(sha256sum <"${file[--save-baseline]}")"
cp src/lib.rs "$work/lib.rs.good"
grep -q '^pub fn .*{$' src/lib.rs || fail "the README's src/lib.rs has no 'pub fn ... {' line"
sed -i '0,/^pub fn .*{$/s//&\n    std::hint::black_box(vec![0u8; 64 * 1024]); \/\/ newcomer.sh: a regression/' src/lib.rs
workflow 1 "third run (64 KiB more per call than the baseline)"
grep -qi "regression" "${file[--markdown]}" || fail "the third run's summary does not name the regression"
[[ "$(sha256sum <"${file[--save-baseline]}")" == "$before" ]] ||
    fail "the failed run overwrote ${file[--save-baseline]}"
cp "$work/lib.rs.good" src/lib.rs

phase "cargo bench: criterion with its default features and the README's MemoryBench"
cd "$work"
new_crate my_bench
bench="$work/my_bench"
sed 's/\bmy_crate\b/my_bench/g' <"$crate/src/lib.rs" >"$bench/src/lib.rs"
snippet bench-dependency >>"$bench/Cargo.toml"
mkdir -p "$bench/benches"
snippet bench | sed 's/\bmy_crate\b/my_bench/g' >"$bench/benches/memory.rs"
cd "$bench"
export CRITERION_HOME="$work/criterion"
# Short criterion settings keep CI quick; the memory profile is the profiler's own.
expect 0 "cargo bench with the README's bench (MEMCREEP_FAIL_ON_LEAK unset: exit 0)" \
    cargo bench --bench memory -- --warm-up-time 0.2 --measurement-time 0.5
table="$CRITERION_HOME/parsing/memory-summary.md"
[[ -s "$table" ]] || fail "cargo bench wrote no memory table at $table"
grep -E '^\| `parse-and-keep`' "$table" | grep -q 'leak' ||
    fail "the memory table does not flag parse-and-keep as a leak: $(cat "$table")"
grep -E '^\| `parse` ' "$table" | grep -q 'clean' ||
    fail "the memory table does not call parse clean: $(cat "$table")"
grep -E '^\| `parse` ' "$table" | grep -qE '\| [0-9]+ ns \|' ||
    fail "parse's time is not shown in ns: $(cat "$table")"
[[ -s "$CRITERION_HOME/report/index.html" ]] ||
    fail "criterion's HTML report was not written (criterion's own plotting beside ours)"
expect 1 "cargo bench with MEMCREEP_FAIL_ON_LEAK=1 (a leak: exit 1)" \
    env MEMCREEP_FAIL_ON_LEAK=1 cargo bench --bench memory -- --warm-up-time 0.2 --measurement-time 0.5
cd "$crate"

phase "done: every README instruction for your own crate works ($((SECONDS - phase_start)) s)"
