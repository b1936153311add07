#!/usr/bin/env bash
# Runs the conformance harness and prints one line per failing case (its first differences), for a quick
# status in CI logs or notes:  ./testdata/conformance/summary.sh [CARGO TEST FILTER...]
set -uo pipefail
cd "$(dirname "$0")/../.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test -p lamina --test conformance -- --test-threads="${THREADS:-2}" --nocapture "$@" >"$log" 2>&1
rc=$?
grep -E '^conformance [^ ]+: skipped' "$log" | sort -u | head -3
pass=$(grep -cE '^test [a-z0-9_]+ \.\.\. ok$' "$log")
fail=$(grep -cE '^test [a-z0-9_]+ \.\.\. FAILED$' "$log")
echo "passed: $pass  failed: $fail"
# Each failure's message: the headline and up to 6 difference lines.
awk '/^conformance [^ ]+: /{n=7} n>0{print; n--}' "$log" | grep -v ': skipped' | cut -c1-220
exit $rc
