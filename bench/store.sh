#!/usr/bin/env bash
# Store/archive benchmarks vs peers (hyperfine): load a docker-archive, save an OCI archive, unpack an image.
# Input: a ~200 MB image (busybox + a big mixed layer) built here. Usage: bench/store.sh [SIZE_MB]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p lamina >/dev/null
bin=$PWD/target/release/lamina
mb=${1:-200}
w=$(mktemp -d); trap 'rm -rf "$w"' EXIT
mkdir -p "$w/rootfs/bin" "$w/rootfs/data/small"
cp "$(command -v busybox)" "$w/rootfs/bin/busybox"
head -c $((mb / 2 * 1024 * 1024)) /dev/urandom > "$w/rootfs/data/random.bin"
yes 'lamina benchmark text line' | head -c $((mb / 2 * 1024 * 1024)) > "$w/rootfs/data/text.txt"
for i in $(seq 1 2000); do echo "file $i" > "$w/rootfs/data/small/f$i"; done
tar --numeric-owner -C "$w/rootfs" -cf "$w/rootfs.tar" .
export LAMINA_ROOT=$w/store
$bin import "$w/rootfs.tar" bench/img:1 >/dev/null
$bin save bench/img:1 -o "$w/docker.tar"
skopeo copy -q "docker-archive:$w/docker.tar" "oci:$w/layout:1"
hyperfine -w 1 -r 3 \
  -p "rm -rf $w/s2" -n 'lamina load (docker-archive)' "$bin --root $w/s2 load -q -i $w/docker.tar" \
  -p "rm -rf $w/o2" -n 'skopeo copy docker-archive: oci:' "skopeo copy -q docker-archive:$w/docker.tar oci:$w/o2:1"
hyperfine -w 1 -r 3 \
  -n 'lamina save --format oci' "$bin save bench/img:1 --format oci -o $w/out.tar" \
  -n 'skopeo copy oci: oci-archive:' "rm -f $w/out2.tar; skopeo copy -q oci:$w/layout:1 oci-archive:$w/out2.tar:1"
hyperfine -w 1 -r 3 \
  -p "rm -rf $w/u1" -n 'lamina unpack' "$bin unpack bench/img:1 $w/u1" \
  -p "rm -rf $w/u2" -n 'umoci unpack' "umoci unpack --image $w/layout:1 $w/u2"
