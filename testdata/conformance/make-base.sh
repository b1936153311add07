#!/usr/bin/env bash
# Writes the conformance base image rootfs as a deterministic tar (same bytes for the same busybox binary):
#   make-base.sh OUT.tar
# Contents: /usr/bin/busybox from Debian's busybox-static, one symlink per applet of `busybox --list` in
# /usr/bin, /bin and /sbin as symlinks to usr/bin (merged /usr), a minimal /etc with passwd/group naming a few
# extra users and groups (the --chown cases resolve them), and the mountpoints a container runtime needs
# (/dev /proc /sys, /etc/hosts /etc/resolv.conf /etc/hostname) so RUN steps leave no runtime noise in layers.
# Every entry has mtime 2020-01-01T00:00:00Z; owners are numeric; entries are sorted by name.
set -euo pipefail
out=${1:?usage: make-base.sh OUT.tar}
case $out in /*) ;; *) out=$PWD/$out ;; esac
bb=${BUSYBOX:-$(command -v busybox || true)}
[ -n "$bb" ] && [ -x "$bb" ] || { echo "make-base.sh: busybox not found (apt-get install busybox-static)" >&2; exit 1; }
if ! "$bb" --list >/dev/null 2>&1 || ldd "$bb" >/dev/null 2>&1; then
  echo "make-base.sh: $bb is not a static busybox (need Debian's busybox-static)" >&2; exit 1
fi

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
umask 022
cd "$stage"
mkdir -p usr/bin etc dev proc sys tmp root home/app home/svc var/log var/tmp
install -m 0755 "$bb" usr/bin/busybox
for a in $("$bb" --list); do
  [ "$a" = busybox ] || ln -s busybox "usr/bin/$a"
done
ln -s usr/bin bin
ln -s usr/bin sbin
ln -s bin usr/sbin

cat > etc/passwd <<'P'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
app:x:1000:1000:app user:/home/app:/bin/sh
svc:x:1500:2500:service:/home/svc:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
P
cat > etc/group <<'G'
root:x:0:
daemon:x:1:
staff:x:50:app
app:x:1000:
svcgrp:x:2500:svc
extra:x:3000:app,svc
nogroup:x:65534:
G
printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' > etc/hosts
: > etc/resolv.conf
: > etc/hostname
printf 'base image for lamina conformance tests\n' > etc/motd
chmod 0600 etc/motd
chmod 1777 tmp var/tmp
chmod 0700 root
chown 1000:1000 home/app
chown 1500:2500 home/svc
chmod 0750 home/svc

# GNU tar: ustar headers carry no atime/ctime, so the bytes depend only on names, modes, owners and content.
find . -mindepth 1 -exec touch -h -d @1577836800 {} +
top=$(ls -A | LC_ALL=C sort)
# shellcheck disable=SC2086
tar --sort=name --numeric-owner --format=gnu -cf "$out.tmp" -C "$stage" $top
mv "$out.tmp" "$out"
