#!/usr/bin/env bash
# Layer write/apply benchmark: lamina vs tar|gzip, tar|pigz, tar|zstd -T0 (write) and umoci unpack, tar -x
# (apply) on a ~500 MB node_modules-like tree. Not a test; prints a table. Needs python3, pigz, zstd, umoci.
#
#   bench/layers.sh [WORKDIR]      (default: a temp dir; the tree is cached in WORKDIR/tree between runs)
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${1:-${TMPDIR:-/tmp}/lamina-bench-layers}
RUNS=${RUNS:-2}
mkdir -p "$WORK"
TREE=$WORK/tree

for t in python3 pigz zstd gzip tar umoci sha256sum; do
    command -v "$t" >/dev/null || { echo "missing tool: $t" >&2; exit 1; }
done

if [ ! -f "$TREE/.complete" ]; then
    echo "generating tree in $TREE ..." >&2
    rm -rf "$TREE"
    python3 - "$TREE" <<'PY'
import os, random, sys
root = sys.argv[1]
rng = random.Random(42)
words = ("function return const let var module exports require this that value key index length push map "
         "filter reduce object array string number undefined null true false async await promise then catch "
         "error options config default prototype call apply bind").split()
def text(n):
    out, size = [], 0
    while size < n:
        line = "  " * rng.randint(0, 4) + " ".join(rng.choice(words) for _ in range(rng.randint(3, 12))) + ";\n"
        out.append(line); size += len(line)
    return "".join(out)[:n].encode()
pool = text(4 << 20)
files = 0
for d in range(200):
    pkg = os.path.join(root, "node_modules", f"pkg-{d:03d}", "lib" if d % 2 else "dist")
    os.makedirs(pkg, exist_ok=True)
    for f in range(100):
        size = int(rng.lognormvariate(8.3, 1.0))  # median ~4 KB, long tail
        size = min(size, 200_000)
        off = rng.randrange(0, len(pool) - size)
        with open(os.path.join(pkg, f"file{f:03d}.js"), "wb") as fh:
            fh.write(pool[off:off + size])
        files += 1
big = os.path.join(root, "big"); os.makedirs(big, exist_ok=True)
# Compressible: 150 MB of log-like text; incompressible: 100 MB random; 50 MB binary-ish.
with open(os.path.join(big, "app.log"), "wb") as fh:
    for i in range(150 * 16):
        off = rng.randrange(0, len(pool) - (1 << 16))
        fh.write(pool[off:off + (1 << 16)])
with open(os.path.join(big, "random.bin"), "wb") as fh:
    fh.write(rng.randbytes(100 << 20))
with open(os.path.join(big, "model.bin"), "wb") as fh:
    for i in range(50):
        chunk = bytearray(rng.randbytes(1 << 19)) + bytes(1 << 19)
        fh.write(chunk)
print(f"{files} small files", file=sys.stderr)
PY
    touch "$TREE/.complete"
fi
rm -f "$TREE/.complete.tmp"
echo "tree: $(du -sh --exclude=.complete "$TREE" | cut -f1), $(find "$TREE" -type f | wc -l) files, $(find "$TREE" -type d | wc -l) dirs" >&2

echo "building release bench binary ..." >&2
cargo build --release -q -p lamina-store --example layerbench
BIN=target/release/examples/layerbench

now() { date +%s.%N; }
# best-of-RUNS wall time of a shell command
timeit() {
    local best="" s e t
    for _ in $(seq "$RUNS"); do
        [ -n "${PREP:-}" ] && eval "$PREP"
        s=$(now); eval "$1" >/dev/null; e=$(now)
        t=$(echo "$e - $s" | bc)
        if [ -z "$best" ] || [ "$(echo "$t < $best" | bc)" = 1 ]; then best=$t; fi
    done
    echo "$best"
}

OUT=$WORK/out; rm -rf "$OUT"; mkdir -p "$OUT"
tar -c -C "$TREE" --exclude=.complete . >/dev/null   # warm the page cache

STORE=$OUT/store
declare -A T S
T[lamina_gzip]=$(PREP="rm -rf $STORE" timeit "$BIN write $TREE $STORE gzip:6")
GZ=$(ls -S "$STORE"/blobs/sha256/* | head -1); S[lamina_gzip]=$(stat -c %s "$GZ"); cp "$GZ" "$OUT/layer.tar.gz"
T[lamina_gzip4]=$(PREP="rm -rf $STORE" timeit "$BIN write $TREE $STORE gzip")
S[lamina_gzip4]=$(stat -c %s "$(ls -S "$STORE"/blobs/sha256/* | head -1)")
T[lamina_zstd]=$(PREP="rm -rf $STORE" timeit "$BIN write $TREE $STORE zstd")
S[lamina_zstd]=$(stat -c %s "$(ls -S "$STORE"/blobs/sha256/* | head -1)")
T[tar_gzip]=$(timeit "tar -c -C $TREE . | gzip > $OUT/t.gz");    S[tar_gzip]=$(stat -c %s "$OUT/t.gz")
T[tar_pigz]=$(timeit "tar -c -C $TREE . | pigz > $OUT/t.pigz");  S[tar_pigz]=$(stat -c %s "$OUT/t.pigz")
T[tar_zstd]=$(timeit "tar -c -C $TREE . | zstd -q -T0 > $OUT/t.zst"); S[tar_zstd]=$(stat -c %s "$OUT/t.zst")

# An OCI layout holding the lamina gzip layer, for umoci.
LAYOUT=$OUT/layout; mkdir -p "$LAYOUT/blobs/sha256"
LD=$(sha256sum "$OUT/layer.tar.gz" | cut -d' ' -f1); LS=$(stat -c %s "$OUT/layer.tar.gz")
DIFF=$(zcat "$OUT/layer.tar.gz" | sha256sum | cut -d' ' -f1)
cp "$OUT/layer.tar.gz" "$LAYOUT/blobs/sha256/$LD"
put() { local d; d=$(printf '%s' "$1" | sha256sum | cut -d' ' -f1); printf '%s' "$1" >"$LAYOUT/blobs/sha256/$d"; echo "$d ${#1}"; }
read -r CD CS < <(put '{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":["sha256:'"$DIFF"'"]}}')
read -r MD MS < <(put '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:'"$CD"'","size":'"$CS"'},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:'"$LD"'","size":'"$LS"'}]}')
echo '{"imageLayoutVersion":"1.0.0"}' >"$LAYOUT/oci-layout"
echo '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:'"$MD"'","size":'"$MS"',"annotations":{"org.opencontainers.image.ref.name":"bench"}}]}' >"$LAYOUT/index.json"

D=$OUT/dest
T[apply_lamina]=$(PREP="rm -rf $D" timeit "$BIN apply $OUT/layer.tar.gz $D")
T[apply_umoci]=$(PREP="rm -rf $D" timeit "umoci unpack --image $LAYOUT:bench $D")
T[apply_tarx]=$(PREP="rm -rf $D; mkdir -p $D" timeit "tar -xzf $OUT/layer.tar.gz -C $D")
T[apply_pigzx]=$(PREP="rm -rf $D; mkdir -p $D" timeit "pigz -dc $OUT/layer.tar.gz | tar -x -C $D")
rm -rf "$D" "$LAYOUT" "$STORE" "$OUT"/t.*

r() { echo "scale=2; $1 / $2" | bc; }
RAW=$(du -sb --exclude=.complete "$TREE" | cut -f1)
printf '\n%-28s %9s %12s %8s %14s\n' "layer write ($((RAW >> 20)) MiB)" "seconds" "bytes" "ratio" "vs lamina gzip"
for k in lamina_gzip lamina_gzip4 lamina_zstd tar_gzip tar_pigz tar_zstd; do
    printf '%-28s %9.2f %12s %8s %13sx\n' "$k" "${T[$k]}" "${S[$k]}" "$(r "${S[$k]}" "$RAW")" "$(r "${T[$k]}" "${T[lamina_gzip]}")"
done
printf '\n%-28s %9s %14s\n' "layer apply (gzip layer)" "seconds" "vs lamina"
for k in apply_lamina apply_umoci apply_tarx apply_pigzx; do
    printf '%-28s %9.2f %13sx\n' "$k" "${T[$k]}" "$(r "${T[$k]}" "${T[apply_lamina]}")"
done
echo
echo "targets: write >= 1.5x faster than tar|pigz: $(r "${T[tar_pigz]}" "${T[lamina_gzip]}")x at level 6," \
     "$(r "${T[tar_pigz]}" "${T[lamina_gzip4]}")x at level 4;" \
     "apply >= 2x faster than umoci: $(r "${T[apply_umoci]}" "${T[apply_lamina]}")x"
