#!/usr/bin/env bash
# Multi-platform builds (issue 14): one `--platform linux/amd64,linux/arm64` build against two
# single-platform builds of the same Dockerfile, and the cost of a RUN under QEMU emulation against the
# same RUN native. Every build is --no-cache; prints wall times and ratios (one run each unless RUNS=n).
#   bench/multiplatform.sh        (needs root, an x86_64 host, qemu-user-static and the arm64 busybox that
#                                  scripts/test.sh extracts; the store and context live on /bench)
# One run, 2 shared cores (other builds running), release binary, N=300000:
#   one two-platform build 6.42 s vs two single-platform builds 6.94 s (0.95 + 5.99): ratio 0.92
#   (the BUILDPLATFORM stage runs once; the emulated arm64 stage dominates);
#   RUN work native 0.63 s vs under qemu-user 4.80 s: emulation costs 7.6x for this CPU-bound shell work.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-1}
ARM64_BB=${LAMINA_BUSYBOX_ARM64:-/opt/lamina-arm64/bin/busybox}
[ "$(uname -m)" = x86_64 ] || { echo "needs an x86_64 host" >&2; exit 1; }
[ -x "$ARM64_BB" ] || { echo "no arm64 busybox at $ARM64_BB (run scripts/test.sh once)" >&2; exit 1; }
grep -qs '^flags:.*F' /proc/sys/fs/binfmt_misc/qemu-aarch64 ||
  { echo "no qemu-aarch64 binfmt handler with the F flag (apt-get install qemu-user-static)" >&2; exit 1; }
if [ -z "${LAMINA_BIN:-}" ]; then cargo build --release -p lamina >/dev/null 2>&1; fi
L=${LAMINA_BIN:-$PWD/target/release/lamina}
sh ../shared/peers/benchfs.sh >/dev/null 2>&1 || sh /work/shared/peers/benchfs.sh >/dev/null 2>&1 || true
base=/bench; mountpoint -q /bench || base=${TMPDIR:-/tmp}
work=$base/lamina-bench-multiplatform
rm -rf "$work"; mkdir -p "$work/ctx"
trap 'rm -rf "$work"' EXIT
ctx=$work/ctx store=$work/store
cp /usr/bin/busybox "$ctx/bb-amd64"; cp "$ARM64_BB" "$ctx/bb-arm64"

# A cross-compile shape: a native tools stage (BUILDPLATFORM) and a per-target stage with CPU-bound RUN
# work (a shell loop, hashing, a tar) on its own busybox.
N=${N:-300000}
cat >"$ctx/Dockerfile" <<DF
FROM --platform=\$BUILDPLATFORM scratch AS tools
ARG BUILDARCH
COPY --chmod=755 bb-\${BUILDARCH} /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN i=0; while [ \$i -lt $N ]; do i=\$((i+1)); done; echo built > /tool
FROM scratch
ARG TARGETARCH
COPY --chmod=755 bb-\${TARGETARCH} /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
COPY --from=tools /tool /tool
RUN i=0; while [ \$i -lt $N ]; do i=\$((i+1)); done; seq 1 200000 | sha256sum > /sum; tar -cf /t.tar /bin
DF
# Only the per-target work, for native vs emulated.
cat >"$ctx/Dockerfile.run" <<DF
FROM scratch
ARG TARGETARCH
COPY --chmod=755 bb-\${TARGETARCH} /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN i=0; while [ \$i -lt $N ]; do i=\$((i+1)); done; seq 1 200000 | sha256sum > /sum; tar -cf /t.tar /bin
DF

secs() { # command... → wall seconds
  local t0 t1
  t0=$(date +%s.%N)
  "$@" >/dev/null 2>"$work/last.log" || { cat "$work/last.log" >&2; exit 1; }
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc -l
}
build() { # platforms [dockerfile]
  "$L" --root "$store" build -q --no-cache --network none --platform "$1" -f "$ctx/${2:-Dockerfile}" "$ctx"
}
best() { # command... → the fastest of RUNS
  local b="" s
  for _ in $(seq "$RUNS"); do
    s=$(secs "$@")
    if [ -z "$b" ] || [ "$(echo "$s < $b" | bc -l)" = 1 ]; then b=$s; fi
  done
  echo "$b"
}

echo "machine: $(nproc) cores; $(date -u); store on $(findmnt -no FSTYPE -T "$work")"
build linux/amd64 >/dev/null 2>&1 || true # warm the page cache and the store's base blobs
both=$(best build linux/amd64,linux/arm64)
amd=$(best build linux/amd64)
arm=$(best build linux/arm64)
native=$(best build linux/amd64 Dockerfile.run)
emulated=$(best build linux/arm64 Dockerfile.run)
printf '%-52s %8.2f s\n' "one build, --platform linux/amd64,linux/arm64" "$both"
printf '%-52s %8.2f s  (amd64 %.2f + arm64 %.2f)\n' "two single-platform builds" "$(echo "$amd + $arm" | bc -l)" "$amd" "$arm"
printf '%-52s %8.2f\n' "ratio two-platform / two single" "$(echo "$both / ($amd + $arm)" | bc -l)"
printf '%-52s %8.2f s\n' "RUN work native (amd64)" "$native"
printf '%-52s %8.2f s\n' "RUN work emulated (arm64 under qemu-user)" "$emulated"
printf '%-52s %8.2f\n' "ratio emulated / native" "$(echo "$emulated / $native" | bc -l)"
