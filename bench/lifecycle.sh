#!/usr/bin/env bash
# Latency of the container lifecycle commands against runc on the same busybox rootfs:
# `lamina create` alone, `lamina start -a` of a created container running `true` (request and record
# prepared, like runc's bundle) against `runc run` of a prepared bundle, and `run --rm` for
# reference. Medians over RUNS runs with hyperfine; ratios against runc.
# Usage: bench/lifecycle.sh [path/to/lamina]   (needs root; env RUNS, default 20)
set -euo pipefail
LAMINA=${1:-$(dirname "$0")/../target/release/lamina}
[ -x "$LAMINA" ] || LAMINA=$(dirname "$0")/../target/debug/lamina
RUNS=${RUNS:-20}
W=$(mktemp -d /tmp/lamina-bench-lifecycle.XXXXXX)
trap 'rm -rf "$W"' EXIT

mkdir -p "$W/rootfs/bin" "$W/rootfs/etc"
cp /usr/bin/busybox "$W/rootfs/bin/busybox"
for a in $("$W/rootfs/bin/busybox" --list); do [ "$a" = busybox ] || ln -sf busybox "$W/rootfs/bin/$a"; done
mkdir -p "$W/bundle" && cp -a "$W/rootfs" "$W/bundle/rootfs"
(cd "$W/bundle" && runc spec && sed -i 's/"terminal": true/"terminal": false/; s/"sh"/"true"/' config.json)

L="$LAMINA --root $W/store"
ct=$($L create --network none "$W/rootfs" true)
hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$W/r.json" \
  -n "lamina create" "$L create --network none $W/rootfs true" \
  -n "lamina start -a" "$L start -a $ct" \
  -n "lamina run --rm" "$L run --rm --network none $W/rootfs true" \
  -n "runc run" "runc run -b $W/bundle lamina-bench-lc-$$" >&2
python3 - "$W/r.json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
base = r["runc run"]["median"]
print(f"{'command':<16} {'median ms':>10} {'ratio vs runc run':>18}")
for name, x in r.items():
    print(f"{name:<16} {x['median']*1000:>10.1f} {x['median']/base:>18.2f}")
PY
