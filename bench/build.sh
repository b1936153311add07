#!/usr/bin/env bash
# lamina build vs `buildah bud --layers` vs docker BuildKit on a realistic multi-stage workload:
# ~20k small files in ~200 dirs (node_modules-like), a few hundred sources, a ~100 MB compressible file,
# a ~16 MB incompressible one, RUN steps that copy/transform and create tens of MB.
# Measures cold (--no-cache), warm (no change), incremental (one source changed) wall time and peak RSS.
#   bench/build.sh [RUNS]        (needs root; DOCKER_HOST defaults to the peers' dockerd)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
export DOCKER_HOST=${DOCKER_HOST:-unix:///tmp/peers-dockerd/docker.sock}
export DOCKER_BUILDKIT=1
DOCKER=${DOCKER:-$( [ -x /usr/bin/docker ] && echo /usr/bin/docker || echo docker )}
if [ -z "${LAMINA_BIN:-}" ]; then cargo build --release -p lamina >/dev/null 2>&1; fi
L=${LAMINA_BIN:-$PWD/target/release/lamina}
TOOLS=${TOOLS:-lamina buildah docker}
# On the benchfs when it is mounted (../shared/peers/benchfs.sh; issue 20: the root ext4 here has no journal)
work=${BENCH_DIR:-$(mountpoint -q /bench && echo /bench/lamina-bench-build || echo /tmp/lamina-bench-build)}
rm -rf "$work"; mkdir -p "$work"
ctx=$work/ctx
store=$work/store

# --- workload -----------------------------------------------------------------------------------------
python3 - "$ctx" <<'PY'
import os, sys, random
ctx = sys.argv[1]
r = random.Random(42)
for d in range(200):
    p = os.path.join(ctx, "node_modules", f"pkg{d:03d}", "lib")
    os.makedirs(p, exist_ok=True)
    for f in range(100):
        with open(os.path.join(p, f"m{f:03d}.js"), "w") as fh:
            fh.write(f"module.exports = function m{d}_{f}(x) {{ return x * {f} + {d}; }};\n" * r.randint(1, 8))
for d in range(20):
    p = os.path.join(ctx, "src", f"mod{d:02d}")
    os.makedirs(p, exist_ok=True)
    for f in range(15):
        with open(os.path.join(p, f"f{f:02d}.c"), "w") as fh:
            fh.write("".join(f"int fn_{d}_{f}_{i}(int a) {{ return a + {i}; }}\n" for i in range(40)))
os.makedirs(os.path.join(ctx, "assets"), exist_ok=True)
with open(os.path.join(ctx, "assets", "big.dat"), "w") as fh:
    line = "".join(chr(97 + (i % 26)) for i in range(99)) + "\n"
    for i in range(1_000_000):
        fh.write(f"{i:08d} {line[:90]}\n")  # 100-byte lines: one 100 MB line made busybox sed quadratic
with open(os.path.join(ctx, "assets", "random.bin"), "wb") as fh:
    fh.write(os.urandom(16 << 20))
PY
cat > "$ctx/Dockerfile" <<'DF'
ARG BASE=bench-busybox
FROM ${BASE} AS deps
WORKDIR /app
COPY node_modules/ ./node_modules/
RUN find node_modules -name '*.js' | wc -l > /app/deps-count && tar -cf /app/deps.tar node_modules/pkg00*

FROM ${BASE} AS build
WORKDIR /src
COPY src/ ./src/
RUN mkdir -p /out && cat src/*/*.c > /out/bundle.c && sed 's/int /long /g' /out/bundle.c > /out/bundle-long.c \
 && dd if=/dev/zero of=/out/gen.bin bs=1M count=24 2>/dev/null && wc -l /out/bundle.c > /out/lines

FROM ${BASE}
WORKDIR /app
COPY --from=deps /app/ ./
COPY assets/ ./assets/
COPY --from=build /out/ ./dist/
RUN cp assets/big.dat /tmp/big && sed 's/a/A/g' /tmp/big > ./assets/big-upper.dat && rm /tmp/big
CMD ["sh"]
DF
echo "context: $(find "$ctx" -type f | wc -l) files, $(du -sh "$ctx" | cut -f1)"

# --- bases --------------------------------------------------------------------------------------------
$L --root "$store" import /tmp/peers-busybox-rootfs.tar bench-busybox >/dev/null
$DOCKER load -q -i /tmp/peers-busybox-docker.tar | awk '{print $NF}' | xargs -I{} $DOCKER tag {} bench-busybox >/dev/null
# `pull -q` prints the image ID: use it, not "the first image listed" (an earlier run's output).
bb_buildah=$(buildah pull -q docker-archive:/tmp/peers-busybox-docker.tar | awk 'END {print}')

# --- runners ------------------------------------------------------------------------------------------
rss_file=$work/rss
t_lamina() { /usr/bin/time -f %M -o "$rss_file" "$L" --root "$store" build -q --network none "$@" -t bench "$ctx" >/dev/null; }
t_buildah() { /usr/bin/time -f %M -o "$rss_file" buildah bud -q --layers --network none --build-arg BASE="$bb_buildah" "$@" -t bench "$ctx" >/dev/null 2>&1; }
t_docker() { /usr/bin/time -f %M -o "$rss_file" "$DOCKER" build -q --network none "$@" -t bench "$ctx" >/dev/null 2>&1; }

now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
measure() { # tool phase
  local tool=$1 phase=$2 times=() rss=0
  for _ in $(seq "$RUNS"); do
    case $phase in
      cold) args=(--no-cache) ;;
      warm) args=() ;;
      incr) args=(); echo "int touched_$RANDOM(void) { return 1; }" >> "$ctx/src/mod07/f03.c" ;;
    esac
    local s; s=$(now); "t_$tool" "${args[@]}"; local e; e=$(now)
    times+=("$(echo "$e - $s" | bc)")
    local m; m=$(tail -1 "$rss_file"); [ "$m" -gt "$rss" ] && rss=$m
  done
  printf '%s\n' "${times[@]}" | median > "$work/$tool.$phase"
  echo "$rss" > "$work/$tool.$phase.rss"
}

for tool in $TOOLS; do
  "t_$tool" >/dev/null 2>&1 || true   # prime caches/bases
  for phase in cold warm incr; do measure "$tool" "$phase"; done
done

# --- floor: what the cold build cannot beat on this machine ---------------------------------------------
# cp -a of the context (reading it, creating its files) and tar | pigz of every layer lamina wrote (the
# snapshot dirs of one cold build into a fresh store: the trees it had to archive and compress), at
# lamina's gzip level.
floor_cp=0 floor_gz=0
if [[ " $TOOLS " == *" lamina "* ]]; then
  sync; s=$(now); cp -a "$ctx" "$work/floor-cp"; sync -f "$work"; e=$(now); floor_cp=$(echo "$e - $s" | bc)
  rm -rf "$work/floor-cp"
  fs=$work/floor-store
  $L --root "$fs" import /tmp/peers-busybox-rootfs.tar bench-busybox >/dev/null
  $L --root "$fs" build -q --network none -t bench "$ctx" >/dev/null
  sync; s=$(now)
  for d in "$fs"/snapshots/*/; do
    case $(basename "$d") in staging|l) continue ;; esac
    [ -L "${d%/}" ] && continue
    tar -C "$d" -cf - . 2>/dev/null | pigz -4 -p "$(nproc)" >/dev/null
  done
  e=$(now); floor_gz=$(echo "$e - $s" | bc)
  rm -rf "$fs"
fi

printf '\n%-12s %10s %10s %10s %14s\n' tool cold warm incr "peak RSS (MB)"
for tool in $TOOLS; do
  rss=$(cat "$work/$tool".*.rss | sort -n | tail -1)
  printf '%-12s %9.2fs %9.2fs %9.2fs %14s\n' "$tool" "$(cat "$work/$tool.cold")" "$(cat "$work/$tool.warm")" \
    "$(cat "$work/$tool.incr")" "$((rss / 1024))"
done
echo "(docker's RSS is the client's; the work happens in dockerd/buildkitd)"
ratio() { # a b: a/b, or - when either is missing
  if [ -f "$work/$1" ] && [ -f "$work/$2" ]; then echo "$(cat "$work/$1") / $(cat "$work/$2")" | bc -l | xargs printf '%.2f'; else echo -; fi
}
for peer in docker buildah; do
  name=$([ $peer = docker ] && echo BuildKit || echo buildah)
  printf 'ratios lamina/%-8s cold %s  warm %s  incr %s\n' "$name:" "$(ratio lamina.cold $peer.cold)" \
    "$(ratio lamina.warm $peer.warm)" "$(ratio lamina.incr $peer.incr)"
done
if [ "$floor_cp" != 0 ]; then
  printf 'floor: cp -a context %.2fs, tar|pigz -4 of lamina'"'"'s layers %.2fs; lamina cold = %.2fx (cp + pigz)\n' \
    "$floor_cp" "$floor_gz" "$(echo "$(cat "$work/lamina.cold") / ($floor_cp + $floor_gz)" | bc -l)"
fi
echo "(data in $work; remove it when done)"
