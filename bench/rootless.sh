#!/usr/bin/env bash
# Rootless vs root lamina builds of a multi-thousand-file workload (issue 13: within 1.15x of root).
# ~8k small files in 80 dirs, a few hundred sources, RUN steps that copy, transform and chown.
# Measures cold (fresh store), warm (no change) and incremental (one source changed) wall time, as root
# and as a user with a subordinate range (created here: lamina-bench-rl), and prints the ratios.
#   bench/rootless.sh [RUNS]     (needs root, newuidmap; put it on /bench: ../shared/peers/benchfs.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
if [ -z "${LAMINA_BIN:-}" ]; then cargo build --release -p lamina >/dev/null 2>&1; fi
L=${LAMINA_BIN:-$PWD/target/release/lamina}
U=lamina-bench-rl
work=${BENCH_DIR:-$(mountpoint -q /bench && echo /bench/lamina-bench-rootless || echo /tmp/lamina-bench-rootless)}
[ "$(id -u)" = 0 ] || { echo "rootless.sh: run as root (it creates the test user)" >&2; exit 1; }
command -v newuidmap >/dev/null || { echo "rootless.sh: apt-get install uidmap" >&2; exit 1; }
id -u "$U" >/dev/null 2>&1 || useradd -m -s /bin/sh "$U"
for f in /etc/subuid /etc/subgid; do
  sed -i "/^$U:/d" "$f"; echo "$U:4000000:65536" >>"$f"
done
rm -rf "$work"; mkdir -p "$work"; chmod 0755 "$work"
ctx=$work/ctx
python3 - "$ctx" <<'PY'
import os, sys, random
ctx = sys.argv[1]
r = random.Random(7)
for d in range(80):
    p = os.path.join(ctx, "vendor", f"pkg{d:02d}")
    os.makedirs(p, exist_ok=True)
    for f in range(100):
        with open(os.path.join(p, f"m{f:03d}.js"), "w") as fh:
            fh.write(f"export const v{d}_{f} = {r.randint(0, 1 << 30)};\n" * r.randint(1, 6))
for d in range(10):
    p = os.path.join(ctx, "src", f"mod{d}")
    os.makedirs(p, exist_ok=True)
    for f in range(20):
        with open(os.path.join(p, f"f{f:02d}.c"), "w") as fh:
            fh.write("".join(f"int fn_{d}_{f}_{i}(int a) {{ return a + {i}; }}\n" for i in range(30)))
PY
cat >"$ctx/Dockerfile" <<'DF'
FROM bench-base
WORKDIR /app
COPY vendor/ ./vendor/
RUN cp -a vendor vendor-copy && chown -R 1000:1000 vendor-copy && find vendor -type f | wc -l > count
COPY src/ ./src/
RUN cat src/*/*.c > bundle.c && sed 's/int /long /g' bundle.c > bundle-long.c && chmod 4755 bundle.c \
 && rm -rf vendor-copy/pkg0* && mkdir -p out && cp -a src out/ && chown -R 1000:1000 out
DF
bash testdata/conformance/make-base.sh "$work/base.tar"
chmod -R a+rX "$work"
mkdir -p "$work/user"; chown "$U": "$work/user"

as() { # as WHO STORE ARGS...: run lamina as root or as the user
  local who=$1 store=$2; shift 2
  if [ "$who" = root ]; then "$L" --root "$store" "$@"; else runuser -u "$U" -- env -i PATH="$PATH" HOME="/home/$U" "$L" --root "$store" "$@"; fi
}
now() { date +%s.%N; }
declare -A total
for who in root user; do for k in cold warm incr; do total[$who.$k]=0; done; done
for run in $(seq "$RUNS"); do
  for who in root user; do
    store=$work/$who/store-$run
    rm -rf "$store"
    as "$who" "$store" import "$work/base.tar" bench-base >/dev/null
    t0=$(now); as "$who" "$store" build -q --network none -t b "$ctx" >/dev/null; t1=$(now)
    as "$who" "$store" build -q --network none -t b "$ctx" >/dev/null; t2=$(now)
    echo "// change $run $who" >>"$ctx/src/mod0/f00.c"
    as "$who" "$store" build -q --network none -t b "$ctx" >/dev/null; t3=$(now)
    total[$who.cold]=$(echo "${total[$who.cold]} + $t1 - $t0" | bc -l)
    total[$who.warm]=$(echo "${total[$who.warm]} + $t2 - $t1" | bc -l)
    total[$who.incr]=$(echo "${total[$who.incr]} + $t3 - $t2" | bc -l)
    rm -rf "$store"
  done
done
printf '%-12s %10s %10s %8s\n' phase root_s rootless_s ratio
for k in cold warm incr; do
  r=$(echo "${total[root.$k]} / $RUNS" | bc -l); u=$(echo "${total[user.$k]} / $RUNS" | bc -l)
  printf '%-12s %10.3f %10.3f %8.3f\n' "$k" "$r" "$u" "$(echo "$u / $r" | bc -l)"
done
rm -rf "$work"
