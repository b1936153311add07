#!/usr/bin/env bash
# Start-up latency of `lamina run --rm IMAGE true` against runc (bundle prepared beforehand on the same
# rootfs), podman and docker. Medians over RUNS runs with hyperfine; ratios against lamina.
# Usage: bench/run.sh [path/to/lamina]   (needs root; env RUNS, default 20)
set -euo pipefail
LAMINA=${1:-$(dirname "$0")/../target/release/lamina}
[ -x "$LAMINA" ] || LAMINA=$(dirname "$0")/../target/debug/lamina
RUNS=${RUNS:-20}
IMAGE=${IMAGE:-localhost:5000/busybox:latest}
export DOCKER_HOST=${DOCKER_HOST:-unix:///tmp/peers-dockerd/docker.sock}
W=$(mktemp -d "$(mountpoint -q /bench && echo /bench || echo /tmp)/lamina-bench-run.XXXXXX")
trap 'rm -rf "$W"' EXIT

# One busybox rootfs shared by lamina (as its lower dir) and runc (as its bundle rootfs).
mkdir -p "$W/rootfs/bin" "$W/rootfs/etc"
if [ -f /tmp/peers-busybox-rootfs.tar ]; then
  tar -xf /tmp/peers-busybox-rootfs.tar -C "$W/rootfs"
else
  cp /usr/bin/busybox "$W/rootfs/bin/busybox"
  for a in $("$W/rootfs/bin/busybox" --list); do [ "$a" = busybox ] || ln -sf busybox "$W/rootfs/bin/$a"; done
fi
mkdir -p "$W/bundle" && cp -a "$W/rootfs" "$W/bundle/rootfs"
(cd "$W/bundle" && runc spec && sed -i 's/"terminal": true/"terminal": false/; s/"sh"/"true"/' config.json)

# runc's bundle has a network namespace with nothing in it: `--network none` is the same job. The
# default (a bridge: veth, nftables, via ip and nft) is what docker run does.
cmds=(-n lamina "$LAMINA --root $W/store run --rm --network none $W/rootfs true"
      -n lamina-bridge "$LAMINA --root $W/store run --rm $W/rootfs true"
      -n runc "runc run -b $W/bundle lamina-bench-runc-$$")
if command -v podman >/dev/null && podman pull -q --tls-verify=false "$IMAGE" >/dev/null 2>&1; then
  if podman run --rm --tls-verify=false "$IMAGE" true >/dev/null 2>&1; then
    cmds+=(-n podman "podman run --rm $IMAGE true")
  else
    echo "podman run fails here (rlimits above the host's hard limits?):" >&2
    podman run --rm "$IMAGE" true 2>&1 | tail -1 >&2 || true
  fi
fi
if command -v docker >/dev/null && docker pull -q "$IMAGE" >/dev/null 2>&1; then
  cmds+=(-n docker "docker run --rm $IMAGE true")
fi
hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$W/r.json" "${cmds[@]}" >&2
# The floor, apart: runc create, start and delete of the prepared bundle (start waits for nothing: `true`
# exits at once, so delete includes reaping it).
rc=lamina-bench-runc-split-$$
hf() { hyperfine -N --warmup 2 --runs "$RUNS" "$@" >&2 || true; }
# --prepare runs before every timed run, --cleanup only once after them all.
hf --export-json "$W/s1.json" --prepare "sh -c 'runc delete -f $rc 2>/dev/null; true'" --cleanup "runc delete -f $rc" \
  -n "runc create" "runc create -b $W/bundle $rc"
hf --export-json "$W/s2.json" --prepare "sh -c 'runc delete -f $rc 2>/dev/null; runc create -b $W/bundle $rc'" \
  --cleanup "runc delete -f $rc" -n "runc start" "runc start $rc"
hf --export-json "$W/s3.json" --prepare "sh -c 'runc delete -f $rc 2>/dev/null; runc create -b $W/bundle $rc; runc start $rc'" \
  -n "runc delete" "runc delete -f $rc"
python3 - "$W/s1.json" "$W/s2.json" "$W/s3.json" > "$W/split.json" <<'PY'
import json, sys
out = []
for p in sys.argv[1:]:
    try:
        out += json.load(open(p))["results"]
    except (OSError, ValueError):
        pass  # that phase failed; hyperfine said why
print(json.dumps({"results": out}))
PY
python3 - "$W/r.json" "$W/split.json" <<'PY'
import json, os, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
base = r["lamina"]["median"]
print(f"{'tool':<8} {'median ms':>10} {'lamina / tool':>14}")
for name, x in r.items():
    print(f"{name:<8} {x['median']*1000:>10.1f} {base/x['median']:>14.2f}")
if os.path.exists(sys.argv[2]):
    s = {x["command"]: x["median"] * 1000 for x in json.load(open(sys.argv[2]))["results"]}
    print("floor (runc on a prepared bundle): " + ", ".join(f"{k} {v:.1f} ms" for k, v in s.items())
          + f"; lamina run --rm is {base * 1000 - r['runc']['median'] * 1000:+.1f} ms from runc run")
PY
