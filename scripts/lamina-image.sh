#!/usr/bin/env bash
# Stages the build context of lamina's own image (see /Dockerfile) in OUT_DIR:
#   scripts/lamina-image.sh OUT_DIR [LAMINA_BINARY]
# rootfs.tar gets the lamina binary, newuidmap/newgidmap, every shared library
# `ldd` lists for them, /etc/passwd, /etc/group, /etc/subuid and /etc/subgid for user `builder` (1000)
# the system CA bundle, and an empty /tmp (1777). home/ is builder's home. Nothing else: no shell, no package manager.
#
# newuidmap/newgidmap carry file capabilities (cap_setuid / cap_setgid), not the setuid bit Debian
# gives them: a setuid-root newuidmap runs with euid 0, which owns nothing in the user namespace lamina
# made, so writing its uid_map then needs CAP_SYS_ADMIN in the bounding set, which a pod without
# added capabilities lacks. With file capabilities it keeps the user's euid (the namespace owner).
# The capabilities live in security.capability xattrs, which COPY does not carry: rootfs.tar is made
# with tar --xattrs and ADDed, whose extraction keeps them.
set -euo pipefail
out=${1:?usage: lamina-image.sh OUT_DIR [LAMINA_BINARY]}
bin=${2:-$(dirname "$0")/../target/release/lamina}
[ -x "$bin" ] || { echo "lamina-image.sh: $bin not found (cargo build --release -p lamina)" >&2; exit 1; }
for t in newuidmap newgidmap; do
  command -v "$t" >/dev/null || { echo "lamina-image.sh: $t missing (apt-get install uidmap)" >&2; exit 1; }
done
rm -rf "$out"
mkdir -p "$out/rootfs/usr/local/bin" "$out/rootfs/usr/bin" "$out/rootfs/etc" "$out/rootfs/tmp" \
  "$out/home/builder/.local/share"
chmod 1777 "$out/rootfs/tmp"
install -m 0755 "$bin" "$out/rootfs/usr/local/bin/lamina"
command -v setcap >/dev/null || { echo "lamina-image.sh: setcap missing (apt-get install libcap2-bin)" >&2; exit 1; }
for t in newuidmap newgidmap; do
  install -m 0755 "$(command -v "$t")" "$out/rootfs/usr/bin/$t"
done
setcap cap_setuid=ep "$out/rootfs/usr/bin/newuidmap"
setcap cap_setgid=ep "$out/rootfs/usr/bin/newgidmap"
# Libraries by the path the dynamic loader asks for (ldd's left column resolved), plus the loader.
for f in "$bin" "$(command -v newuidmap)" "$(command -v newgidmap)"; do
  ldd "$f" | awk '/=> \// {print $3} /^\t\/lib/ {print $1}'
done | sort -u | while read -r lib; do
  mkdir -p "$out/rootfs$(dirname "$lib")"
  cp -L "$lib" "$out/rootfs$lib"
done
cat >"$out/rootfs/etc/passwd" <<'P'
root:x:0:0:root:/:/nonexistent
builder:x:1000:1000:lamina builder:/home/builder:/nonexistent
P
printf 'root:x:0:\nbuilder:x:1000:\n' >"$out/rootfs/etc/group"
# In a pod the container's ids are the host's (or the pod's user namespace's): 100000.. is free in
# both, and the image's own /etc/subuid is what newuidmap reads.
echo 'builder:100000:65536' >"$out/rootfs/etc/subuid"
echo 'builder:100000:65536' >"$out/rootfs/etc/subgid"
# The registry client trusts the system roots (and refuses to start without any).
ca=/etc/ssl/certs/ca-certificates.crt
[ -f "$ca" ] || { echo "lamina-image.sh: $ca missing (apt-get install ca-certificates)" >&2; exit 1; }
mkdir -p "$out/rootfs/etc/ssl/certs"
cp -L "$ca" "$out/rootfs/etc/ssl/certs/"
find "$out/rootfs/etc" -type f -exec chmod 0644 {} +
tar --xattrs --xattrs-include=security.capability --numeric-owner --owner=0 --group=0 \
  -C "$out/rootfs" -cf "$out/rootfs.tar" .
rm -rf "$out/rootfs"
echo "lamina-image.sh: staged $(find "$out" -type f | wc -l) files in $out" >&2
