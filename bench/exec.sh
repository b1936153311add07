#!/usr/bin/env bash
# `exec` latency: `lamina exec CT true` into a running detached container, against `podman exec` and
# `docker exec` (../shared/peers/up.sh's dockerd) into theirs, all on the same busybox rootfs with no
# network. Medians over RUNS runs with hyperfine; ratios of lamina to each peer.
# Usage: bench/exec.sh [path/to/lamina]   (needs root; env RUNS, default 20)
set -euo pipefail
LAMINA=${1:-$(dirname "$0")/../target/release/lamina}
[ -x "$LAMINA" ] || LAMINA=$(dirname "$0")/../target/debug/lamina
RUNS=${RUNS:-20}
W=$(mktemp -d /tmp/lamina-bench-exec.XXXXXX)
L="$LAMINA --root $W/store"
DOCKER_SOCK=/tmp/peers-dockerd/docker.sock
D="docker -H unix://$DOCKER_SOCK"
cleanup() {
  $L rm -f bench-exec >/dev/null 2>&1 || true
  podman rm -f lamina-bench-exec >/dev/null 2>&1 || true
  [ -S "$DOCKER_SOCK" ] && $D rm -f lamina-bench-exec >/dev/null 2>&1 || true
  rm -rf "$W"
}
trap cleanup EXIT

mkdir -p "$W/rootfs/bin" "$W/rootfs/etc" "$W/rootfs/tmp"
cp /usr/bin/busybox "$W/rootfs/bin/busybox"
for a in $("$W/rootfs/bin/busybox" --list); do [ "$a" = busybox ] || ln -sf busybox "$W/rootfs/bin/$a"; done
tar -C "$W/rootfs" -cf "$W/rootfs.tar" .

$L run -d --name bench-exec --network none "$W/rootfs" sleep 100000 >/dev/null
cmds=(-n "lamina exec" "$L exec bench-exec true")
if command -v podman >/dev/null && podman import -q "$W/rootfs.tar" lamina-bench-exec-img >/dev/null 2>&1 &&
   podman run -d --name lamina-bench-exec --network none lamina-bench-exec-img sleep 100000 >/dev/null 2>&1; then
  cmds+=(-n "podman exec" "podman exec lamina-bench-exec true")
else
  echo "exec.sh: podman cannot run a container here; no podman figure" >&2
fi
if [ -S "$DOCKER_SOCK" ] && $D import "$W/rootfs.tar" lamina-bench-exec-img >/dev/null 2>&1 &&
   $D run -d --name lamina-bench-exec --network none lamina-bench-exec-img sleep 100000 >/dev/null 2>&1; then
  cmds+=(-n "docker exec" "$D exec lamina-bench-exec true")
else
  echo "exec.sh: no dockerd on $DOCKER_SOCK (../shared/peers/up.sh); no docker figure" >&2
fi
hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$W/r.json" "${cmds[@]}" >&2
python3 - "$W/r.json" <<'PY'
import json, sys
r = {x["command"]: x["median"] for x in json.load(open(sys.argv[1]))["results"]}
me = r["lamina exec"]
for name, t in r.items():
    line = f"{name:<12} {t*1000:8.1f} ms"
    if name != "lamina exec":
        line += f"   lamina/{name.split()[0]} {me/t:.2f}"
    print(line)
PY
