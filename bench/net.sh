#!/usr/bin/env bash
# Networking costs: start-up of `lamina run --rm ROOTFS true` on the default bridge against
# --network none, and published-port throughput (1 GiB host → container) of one `-p P:80`: to
# 127.0.0.1:P (lamina's userspace proxy) and to the bridge gateway's address :P (lamina's nft DNAT),
# and through podman's -p when podman can run here.
# Peers on the same machine, with ratios: podman (runc, CNI bridge) `run --rm true` on none and on its
# bridge and its -p throughput; docker 20.10 (../shared/peers/up.sh's dockerd, which has no bridge)
# `run --rm --network none true`.
# Usage: bench/net.sh [path/to/lamina]   (needs root, ip, nft; env RUNS default 20, PEER_RUNS default 5,
# MB default 1024)
set -euo pipefail
LAMINA=${1:-$(dirname "$0")/../target/release/lamina}
[ -x "$LAMINA" ] || LAMINA=$(dirname "$0")/../target/debug/lamina
RUNS=${RUNS:-20}
PEER_RUNS=${PEER_RUNS:-5}
MB=${MB:-1024}
W=$(mktemp -d /tmp/lamina-bench-net.XXXXXX)
L() { "$LAMINA" --root "$W/store" "$@"; }
cleanup() {
  L rm -f sink >/dev/null 2>&1 || true
  L network prune >/dev/null 2>&1 || true
  command -v podman >/dev/null && { podman rm -f lamina-bench-sink; podman rmi -f lamina-bench-bb; } >/dev/null 2>&1 || true
  rm -rf "$W"
}
trap cleanup EXIT

mkdir -p "$W/rootfs/bin" "$W/rootfs/etc" "$W/rootfs/tmp"
cp /usr/bin/busybox "$W/rootfs/bin/busybox"
for a in $("$W/rootfs/bin/busybox" --list); do [ "$a" = busybox ] || ln -sf busybox "$W/rootfs/bin/$a"; done

# Median wall time in ms of RUNS runs of "$@".
median_ms() {
  local t=()
  for _ in $(seq "$RUNS"); do
    local s e
    s=$(date +%s%N); "$@" >/dev/null; e=$(date +%s%N)
    t+=($(( (e - s) / 1000 )))
  done
  printf '%s\n' "${t[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.1f", a[int((NR+1)/2)]/1000}'
}

L run --rm "$W/rootfs" true >/dev/null   # warm: the default network's bridge now exists
none=$(median_ms L run --rm --network none "$W/rootfs" true)
bridge=$(median_ms L run --rm "$W/rootfs" true)
echo "run --rm true, median of $RUNS:   none ${none} ms   bridge ${bridge} ms"

# Free host ports.
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# Send MB MiB to ADDR:PORT, print MiB/s.
send() {
  python3 - "$1" "$2" "$MB" <<'PY'
import socket, sys, time
host, port, mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
buf = b"\0" * (1 << 20)
for _ in range(50):
    try:
        s = socket.create_connection((host, port)); break
    except OSError:
        time.sleep(0.1)
t = time.monotonic()
for _ in range(mb):
    s.sendall(buf)
s.shutdown(socket.SHUT_WR)
s.recv(1)
print(f"{mb / (time.monotonic() - t):.0f}")
PY
}

P=$(port)
L run -d --name sink -p "$P:80" "$W/rootfs" sh -c 'while true; do nc -l -p 80 >/dev/null; done' >/dev/null
sleep 0.3
proxy=$(send 127.0.0.1 "$P")
# A local non-loopback address of the host: rewritten by the output-hook DNAT rule.
GW=$(L network inspect bridge | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Gateway"])')
dnat=$(send "$GW" "$P")
echo "published port, $MB MiB host → container:   proxy ${proxy} MiB/s   nft DNAT ${dnat} MiB/s"

if command -v podman >/dev/null; then
  tar -C "$W/rootfs" -cf "$W/rootfs.tar" .
  if podman import -q "$W/rootfs.tar" lamina-bench-bb >/dev/null 2>&1 &&
     Q=$(port) && podman run -d --name lamina-bench-sink -p "127.0.0.1:$Q:80" lamina-bench-bb \
       sh -c 'while true; do nc -l -p 80 >/dev/null; done' >/dev/null 2>"$W/podman.err"; then
    sleep 1
    pp=$(send 127.0.0.1 "$Q")
    echo "podman -p: ${pp} MiB/s"
    RUNS=$PEER_RUNS
    pn=$(median_ms podman run --rm --network none lamina-bench-bb true)
    pb=$(median_ms podman run --rm lamina-bench-bb true)
    echo "podman run --rm true, median of $PEER_RUNS:   none ${pn} ms   bridge ${pb} ms"
    awk -v a="$none" -v b="$bridge" -v c="$pn" -v d="$pb" -v e="$proxy" -v f="$dnat" -v g="$pp" 'BEGIN {
      printf "ratios lamina/podman:  run none %.2f  run bridge %.2f  -p throughput proxy %.2f  DNAT %.2f (higher is better)\n", a/c, b/d, e/g, f/g }'
  else
    echo "podman cannot run a container with -p here: $(tail -1 "$W/podman.err" 2>/dev/null)"
  fi
fi

DOCKER_SOCK=/tmp/peers-dockerd/docker.sock
if [ -S "$DOCKER_SOCK" ] && command -v docker >/dev/null; then
  D() { docker -H "unix://$DOCKER_SOCK" "$@"; }
  D rmi -f lamina-bench-bb >/dev/null 2>&1 || true
  [ -f "$W/rootfs.tar" ] || tar -C "$W/rootfs" -cf "$W/rootfs.tar" .
  if D import "$W/rootfs.tar" lamina-bench-bb >/dev/null 2>&1; then
    RUNS=$PEER_RUNS
    dn=$(median_ms D run --rm --network none lamina-bench-bb true)
    echo "docker 20.10 run --rm --network none true, median of $PEER_RUNS: ${dn} ms (its dockerd has no bridge)"
    awk -v a="$none" -v c="$dn" 'BEGIN { printf "ratio lamina/docker:  run none %.2f\n", a/c }'
    D rmi -f lamina-bench-bb >/dev/null 2>&1 || true
  fi
fi
