#!/usr/bin/env bash
# What attestations cost: lamina build with and without `--provenance=mode=max --sbom=true` on bench/build.sh's
# workload (~20k small files, a 100 MB text file rewritten by a RUN, 16 MB of random data; three stages).
# Cold (--no-cache), warm (no change) and incremental (one source changed) wall time, median of RUNS, the
# two variants interleaved run by run so that load from other processes hits both alike. Target: ≤ 10%.
#   bench/attest.sh [RUNS]        (needs root; data on /bench when mounted, see ../shared/peers/benchfs.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
if [ -z "${LAMINA_BIN:-}" ]; then cargo build --release -p lamina >/dev/null 2>&1; fi
L=${LAMINA_BIN:-$PWD/target/release/lamina}
if [ -z "${BENCH_DIR:-}" ] && mountpoint -q /bench; then BENCH_DIR=/bench/lamina-attest-$$; fi
work=${BENCH_DIR:-/tmp/lamina-bench-attest}
rm -rf "$work"; mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
ctx=$work/ctx
store=$work/store

# The workload is bench/build.sh's, taken from there so that there is one copy of it.
eval "$(sed -n '/^# --- workload/,/^# --- bases/p' bench/build.sh)"
[ -f "$ctx/Dockerfile" ] || { echo "attest.sh: no workload from bench/build.sh" >&2; exit 1; }
$L --root "$store" import /tmp/peers-busybox-rootfs.tar bench-busybox >/dev/null

ATTEST=(--provenance=mode=max --sbom=true)
build() { # variant args...
  local variant=$1; shift
  local extra=(); [ "$variant" = attest ] && extra=("${ATTEST[@]}")
  "$L" --root "$store" build -q --network none "${extra[@]}" "$@" -t "bench-$variant" "$ctx" >/dev/null
}
now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

build plain; build attest   # prime the page cache and the bases
for phase in cold warm incr; do
  for _ in $(seq "$RUNS"); do
    case $phase in
      cold) args=(--no-cache) ;;
      *) args=() ;;
    esac
    for variant in plain attest; do
      # Each incremental run of each variant rebuilds from the same one-line change.
      [ "$phase" = incr ] && echo "int touched_${variant}_$RANDOM(void) { return 1; }" >> "$ctx/src/mod07/f03.c"
      s=$(now); build "$variant" "${args[@]}"; e=$(now)
      echo "$e - $s" | bc >> "$work/$variant.$phase"
    done
  done
done

# The attested result is an index with an attestation manifest (platform unknown/unknown); the plain one is not.
"$L" --root "$store" images > "$work/images"
grep -E '^bench-attest .*unknown/unknown' "$work/images" >/dev/null || { echo "attest.sh: bench-attest has no attestation" >&2; exit 1; }
grep -E '^bench-plain .*unknown/unknown' "$work/images" >/dev/null && { echo "attest.sh: bench-plain has an attestation" >&2; exit 1; }

printf '\n%-8s %10s %10s %10s\n' phase plain attest overhead
for phase in cold warm incr; do
  p=$(median < "$work/plain.$phase"); a=$(median < "$work/attest.$phase")
  printf '%-8s %9.2fs %9.2fs %9.1f%%\n' "$phase" "$p" "$a" "$(echo "($a - $p) * 100 / $p" | bc -l)"
done
