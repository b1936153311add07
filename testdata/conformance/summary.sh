#!/usr/bin/env bash
# Runs the conformance harness and prints one line per failing case (its first differences), for a quick
# status in CI logs or notes:  ./testdata/conformance/summary.sh [CARGO TEST FILTER...]
set -uo pipefail
cd "$(dirname "$0")/../.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT
RUST_BACKTRACE=0 cargo test -p lamina --test conformance -- --test-threads="${THREADS:-2}" --nocapture "$@" >"$log" 2>&1
rc=$?
grep -E '^conformance [^ ]+: skipped' "$log" | sort -u | head -3
grep -E '^test result:' "$log"
grep -E '^    [a-z0-9_]+$' "$log" | sort -u | sed 's/^ */failed: /' 
# Each failure's message: the headline and up to 6 difference lines.
awk '/^conformance [^ ]+: /{n=7} n>0{print; n--}' "$log" | grep -v ': skipped' | cut -c1-220
exit $rc
