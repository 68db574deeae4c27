#!/usr/bin/env bash
# Runs the cargo-fuzz targets in fuzz/, one after the other, for a given time each.
#
#   bash scripts/fuzz.sh [--time SECONDS] [target...]
#
# With no target named, every target of fuzz/Cargo.toml runs (default: 60 seconds each).
# Installs cargo-fuzz when missing, builds every target once (release, debug assertions and
# overflow checks on, no sanitizer: waf-core forbids unsafe code), then runs each target on a
# scratch copy of its committed seed corpus (fuzz/corpus/<target>/ is never written to), one
# libFuzzer job at nice 19. Prints the executions and executions per second of each target and
# exits 1 when a target crashed, naming the crash file (kept under fuzz/artifacts/<target>/).
#
# Environment: FUZZ_WORK (scratch folder; default: a fresh temporary one, removed at the end
# unless a target crashed), FUZZ_ARGS (more libFuzzer flags, e.g. "-max_len=65536"),
# FUZZ_TARGET_DIR (cargo's target folder; default fuzz/target).
set -euo pipefail
cd "$(dirname "$0")/.."

time_per_target=60
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --time) time_per_target="$2"; shift 2 ;;
    --time=*) time_per_target="${1#--time=}"; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
case "$time_per_target" in
  ''|*[!0-9]*) echo "--time takes a whole number of seconds" >&2; exit 2 ;;
esac

export RUSTC_BOOTSTRAP=1
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

cd fuzz
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo fuzz list)
fi
build_flags=(--sanitizer none --debug-assertions)
target_dir=${FUZZ_TARGET_DIR:-$(pwd)/target}
triple=$(rustc -vV | sed -n 's/^host: //p')

echo "== building ${targets[*]}"
start=$(date +%s)
cargo fuzz build "${build_flags[@]}" --target-dir "$target_dir"
echo "built in $(( $(date +%s) - start ))s"
bin="$target_dir/$triple/release"

work=${FUZZ_WORK:-$(mktemp -d -t waf-fuzz.XXXXXX)}
mkdir -p "$work"
failed=()
results=()
for t in "${targets[@]}"; do
  if [ ! -d "corpus/$t" ]; then
    echo "no seed corpus fuzz/corpus/$t" >&2
    exit 2
  fi
  corpus="$work/corpus/$t"
  rm -rf "$corpus"
  mkdir -p "$corpus" "artifacts/$t"
  cp -R "corpus/$t/." "$corpus/"
  log="$work/$t.log"
  echo "== $t: ${time_per_target}s (log: $log)"
  set +e
  # shellcheck disable=SC2086
  # The binary itself, not `cargo fuzz run`: what was built above is what runs, even if the
  # sources change meanwhile.
  nice -n 19 "$bin/$t" -artifact_prefix="$(pwd)/artifacts/$t/" \
    -max_total_time="$time_per_target" -print_final_stats=1 ${FUZZ_ARGS:-} "$corpus" >"$log" 2>&1
  status=$?
  set -e
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  seconds=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second(s)$/\1/p' "$log" | tail -1)
  if [ -z "$runs" ]; then
    # A crash ends the run before the final stats: take the last status line's count.
    runs=$(sed -n 's/^#\([0-9][0-9]*\)\t.*/\1/p' "$log" | tail -1)
  fi
  runs=${runs:-0}
  seconds=${seconds:-$time_per_target}
  per_second=$(( seconds > 0 ? runs / seconds : runs ))
  crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
  if [ $status -ne 0 ] || [ -n "$crash" ]; then
    echo "!! $t CRASHED after $runs executions: ${crash:-see $log}"
    grep -m1 -A3 -E "panicked|ERROR: libFuzzer|==ERROR" "$log" || tail -20 "$log"
    failed+=("$t: ${crash:-$log}")
  else
    echo "$t: $runs executions in ${seconds}s, $per_second exec/s, corpus $(ls "$corpus" | wc -l) files"
  fi
  results+=("$(printf '| `%s` | %s | %s | %s |' "$t" "$per_second" "$runs" "$seconds")")
done

echo
echo "| target | exec/s | total executions | seconds |"
echo "|---|---:|---:|---:|"
printf '%s\n' "${results[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo
  echo "crashes (reproduce: cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run ${build_flags[*]} <target> <file>):"
  printf '  %s\n' "${failed[@]}"
  echo "logs and working corpora: $work"
  exit 1
fi
[ -n "${FUZZ_WORK:-}" ] || rm -rf "$work"
