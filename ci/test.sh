#!/usr/bin/env bash
# Runs every Criterion test binary given, keeps going past failures, and closes with one
# "N passed, N failed, N skipped" line. Exits non-zero when any test failed or a binary crashed.
set -u
passed=0; failed=0; skipped=0; bad_bins=()
# Sleeping, not spinning, OpenMP threads: on a loaded shared machine spinning makes small parallel
# regions 10-50x slower (measured: test_sample 21 s -> 1.3 s at load 12 on 2 cores).
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"
export IGPT_ROOT="${IGPT_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}"
export IGPT_BIN="${IGPT_BIN:-$IGPT_ROOT/${BUILD:-build}/igpt}"
for bin in "$@"; do
  name=$(basename "$bin")
  log=$(mktemp)
  start=$(date +%s)
  "$bin" --jobs "${TEST_JOBS:-2}" --verbose=0 >"$log" 2>&1
  rc=$?
  secs=$(( $(date +%s) - start ))
  syn=$(grep -a "Synthesis:" "$log" | tail -n 1)
  t=$(sed -n 's/.*Tested: \([0-9]*\).*/\1/p' <<<"$syn"); t=${t:-0}
  p=$(sed -n 's/.*Passing: \([0-9]*\).*/\1/p' <<<"$syn"); p=${p:-0}
  f=$(sed -n 's/.*Failing: \([0-9]*\).*/\1/p' <<<"$syn"); f=${f:-0}
  c=$(sed -n 's/.*Crashing: \([0-9]*\).*/\1/p' <<<"$syn"); c=${c:-0}
  s=$(grep -ac "SKIP" "$log")
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
  if [ "$rc" != 0 ] || [ -z "$syn" ]; then
    [ "$f" = 0 ] && failed=$((failed + 1))
    bad_bins+=("$name")
    echo "---- $name: FAILED (exit $rc, ${secs}s) ----"; cat "$log"; echo "----"
  else
    printf '%-28s %3d tests, %3d passed, %d skipped  (%ss)\n' "$name" "$t" "$p" "$s" "$secs"
    grep -a "SKIP" "$log" | sed 's/^/    /'
  fi
  rm -f "$log"
done
[ ${#bad_bins[@]} -gt 0 ] && echo "failed binaries: ${bad_bins[*]}"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ] && [ ${#bad_bins[@]} = 0 ]
