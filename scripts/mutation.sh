#!/usr/bin/env bash
# Mutation check of the critical modules with mutmut 3 (not part of CI; docs/testing.md has the
# scores, the time each target takes and the surviving mutants accepted as equivalent).
#
#   bash scripts/mutation.sh [TARGET...]     TARGET: errors manifest noise schedule resume
#                                            (default: all, in that order)
#
# Each target runs in its own copy of the working tree under $VIDM_RT_MUTATION_DIR (default
# /tmp/vidm-rt-mutation/TARGET), so the repository gets no mutants/ folder, with only the tests
# that exercise it (mutmut then runs, per mutant, only those of them that reach the mutated
# function). It prints the score and the surviving mutants and writes them to
# TARGET/survivors.txt there; `cd` into that folder and run `mutmut show NAME` for a diff.
# Runs at low priority (nice 15) on $VIDM_RT_MUTATION_JOBS processes (default 2).
set -euo pipefail
set -f  # the mutate and mutant-name patterns are for mutmut, not for the shell
root=$(cd "$(dirname "$0")/.." && pwd)
mutmut=$root/.venv/bin/mutmut
if [ ! -x "$mutmut" ]; then
  echo "error: mutmut is not installed in .venv: .venv/bin/pip install 'mutmut>=3.3'" >&2
  exit 2
fi
base=${VIDM_RT_MUTATION_DIR:-/tmp/vidm-rt-mutation}
jobs=${VIDM_RT_MUTATION_JOBS:-2}

# target -> "files to mutate|test selection[|mutant names, fnmatch patterns]"
declare -A targets=(
  [errors]="vidm_rt/errors.py|tests/test_errors.py"
  [manifest]="vidm_rt/manifest.py vidm_rt/manifest_schema.py|tests/test_manifest.py tests/test_manifest_helpers.py"
  [noise]="vidm_rt/noise.py|tests/test_noise.py"
  [schedule]="vidm_rt/schedule/*|tests/test_schedule.py tests/test_sampler_reference.py tests/test_schedule_edges.py"
  # Restoring a run: restore() refuses changed options, saved_steps() finds the checkpoint,
  # against the refusal test. What restore() then loads is checked by the exact-resume test,
  # left out here: it trains twice, about 90 s per mutant on 2 busy cores.
  [resume]="vidm_rt/train/checkpoints.py|tests/test_train.py -k refuses_each|vidm_rt.train.checkpoints.x_restore__* vidm_rt.train.checkpoints.x_saved_steps__*"
)
selected=("$@")
[ ${#selected[@]} -gt 0 ] || selected=(errors manifest noise schedule resume)

for target in "${selected[@]}"; do
  spec=${targets[$target]:-}
  if [ -z "$spec" ]; then
    echo "error: unknown target '$target': choose from ${!targets[*]}" >&2
    exit 2
  fi
  work=$base/$target
  rm -rf "$work"
  mkdir -p "$work"
  (cd "$root" && git ls-files -z --cached --others --exclude-standard -- vidm_rt tests cpp/src \
     pyproject.toml | xargs -0 cp --parents -t "$work")
  {
    echo "[mutmut]"
    echo "source_paths = vidm_rt"
    echo "also_copy = cpp"  # a manifest test reads the C parser's format version
    echo "only_mutate ="
    for f in $(cut -d'|' -f1 <<< "$spec"); do echo "    $f"; done
    echo "pytest_add_cli_args_test_selection ="
    for a in $(cut -d'|' -f2 <<< "$spec"); do echo "    $a"; done
    echo "pytest_add_cli_args = -p no:cacheprovider -q"
    # torch is not fork-safe once it has run: its tests hang in workers forked from mutmut's
    # main process, so they are forked from a clean server instead.
    [ "$target" != resume ] || echo "process_isolation = forkserver"
  } > "$work/setup.cfg"
  IFS='|' read -r files tests names <<< "$spec"
  echo "== $target: mutating $files${names:+ ($names)} against $tests"
  began=$(date +%s)
  # shellcheck disable=SC2086  # the patterns are words, expanded by mutmut, not the shell
  (cd "$work" && nice -n 15 "$mutmut" run --max-children "$jobs" $names \
     > run.log 2>&1) || {
    tail -n 30 "$work/run.log" >&2
    echo "error: mutmut failed for $target (log: $work/run.log)" >&2
    exit 1
  }
  seconds=$(( $(date +%s) - began ))
  (cd "$work" && "$mutmut" results --all true 2>/dev/null) > "$work/all.txt"
  if [ -n "$names" ]; then  # only the mutants asked for (the others were never run)
    pattern=$(printf '%s\n' $names | sed 's/[.]/[.]/g; s/[*]/.*/g' | paste -sd'|')
    grep -E "^ *($pattern):" "$work/all.txt" > "$work/asked.txt" || true
    mv "$work/asked.txt" "$work/all.txt"
  fi
  grep -E ": (survived|no tests|suspicious)$" "$work/all.txt" | sed 's/^ *//' \
    > "$work/survivors.txt" || true
  total=$(grep -c ":" "$work/all.txt" || true)
  # A timeout is a mutant that made the tests hang (e.g. an endless read loop): caught.
  killed=$(grep -cE ": (killed|timeout)$" "$work/all.txt" || true)
  echo "$target: $killed of $total mutants killed ($(( 100 * killed / (total > 0 ? total : 1) ))%)" \
       "in ${seconds} s; not killed: $work/survivors.txt"
  cat "$work/survivors.txt"
done
