#!/usr/bin/env bash
# Benchmark of lamina's inspect family (issue 7): diff two ~100k-file images differing in 1% of the files,
# and analyze a ~1 GB image. Reports wall time and peak RSS (/usr/bin/time -v). Targets: < 3 s, < 200 MB.
# Baseline for scale: `tar -tzf` listing the same layers (pure decompression + tar parsing, no hashing).
# Usage: bench/inspect.sh [WORKDIR]   (fixtures are generated once into WORKDIR, default /tmp/lamina-bench-inspect)
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-/tmp/lamina-bench-inspect}
cargo build --release -p lamina >/dev/null 2>&1 || cargo build --release -p lamina
bin=$PWD/target/release/lamina
if [ ! -e "$work/layout/index.json" ]; then
  echo "generating fixtures in $work (once)..." >&2
  rm -rf "$work"; mkdir -p "$work/layout"
  python3 bench/inspect_fixtures.py "$work/layout"
fi
L="$work/layout"

measure() { # label, command...
  local label=$1; shift
  local log; log=$(mktemp)
  local status=0
  /usr/bin/time -v "$@" >/dev/null 2>"$log" || status=$?
  local wall rss
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$log")
  rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.1f MB", $2/1024}' "$log")
  printf '%-46s %10s  peak RSS %10s  exit %s\n' "$label" "$wall" "$rss" "$status"
  rm -f "$log"
}

blob_of() { # image, layer index
  python3 - "$L" "$1" "$2" <<'PY'
import json, sys
L, name, i = sys.argv[1], sys.argv[2], int(sys.argv[3])
idx = json.load(open(f"{L}/index.json"))
m = next(x for x in idx["manifests"] if x["annotations"]["org.opencontainers.image.ref.name"] == name)
man = json.load(open(f"{L}/blobs/sha256/{m['digest'][7:]}"))
print(f"{L}/blobs/sha256/{man['layers'][i]['digest'][7:]}")
PY
}

echo "machine: $(nproc) cores; $(date -u)"
measure "diff a b (strict, 100k files, 1% differ)" "$bin" diff "oci:$L:a" "oci:$L:b"
measure "diff --semantic a b" "$bin" diff --semantic "oci:$L:a" "oci:$L:b"
measure "diff --format json a b" "$bin" diff --format json "oci:$L:a" "oci:$L:b"
measure "baseline: tar -tzf both layers" sh -c "tar -tzf $(blob_of a 0) >/dev/null && tar -tzf $(blob_of b 0) >/dev/null"
measure "analyze big (~1 GB, 4 layers)" "$bin" analyze "oci:$L:big" --highest-wasted-bytes 20MB
big_cmd=""
for i in 0 1 2 3; do big_cmd+="tar -tzf $(blob_of big $i) >/dev/null; "; done
measure "baseline: tar -tzf all 4 layers of big" sh -c "$big_cmd"
if command -v dive >/dev/null; then measure "dive --ci big" dive --ci "oci-archive:$L" ; fi
