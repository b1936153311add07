#!/usr/bin/env bash
# The main job, offline, on a fresh machine: build lamina, create a local busybox base image from Debian's
# busybox-static, import + inspect it, then `lamina build` the examples on it, all in ./demo-store.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v busybox >/dev/null 2>&1 || need+=(busybox-static)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
[ -e /usr/include/seccomp.h ] || need+=(libseccomp-dev)
# RUN steps use the default bridge network: veths through iproute2, NAT through nftables.
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v nft >/dev/null 2>&1 || need+=(nftables)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
cargo build --release -p lamina
export LAMINA_ROOT="${LAMINA_ROOT:-$PWD/demo-store}"
bin=$PWD/target/release/lamina
$bin version

# A minimal busybox root filesystem: the static binary, one symlink per applet, passwd/group, /tmp.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/rootfs/bin" "$work/rootfs/etc" "$work/rootfs/root" "$work/rootfs/tmp" "$work/rootfs/usr/bin"
chmod 1777 "$work/rootfs/tmp"
cp "$(command -v busybox)" "$work/rootfs/bin/busybox"
for a in $("$work/rootfs/bin/busybox" --list); do [ -e "$work/rootfs/bin/$a" ] || ln -s busybox "$work/rootfs/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$work/rootfs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$work/rootfs/etc/group"
tar --numeric-owner --owner=0 --group=0 -C "$work/rootfs" -cf "$work/busybox-rootfs.tar" .

echo "== lamina import" >&2
$bin import "$work/busybox-rootfs.tar" demo/busybox:latest \
  --change 'CMD ["/bin/sh"]' --change 'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin' --message 'busybox from the host'
echo "== lamina images" >&2
$bin images
echo "== lamina inspect" >&2
$bin inspect demo/busybox:latest
$bin history demo/busybox:latest
echo "== lamina save / load / unpack / fsck" >&2
$bin save demo/busybox:latest -o "$work/demo.tar"
$bin unpack demo/busybox:latest "$work/unpacked"
ls "$work/unpacked"
$bin fsck

# The main job: `lamina build` the examples on that base (offline). The multi-stage one runs two stages in
# parallel; the third uses a cache mount and a secret.
echo "== lamina build" >&2
$bin tag demo/busybox:latest lamina/busybox
$bin build --progress plain -t lamina/example-site examples/static-site
$bin build --progress plain -t lamina/example-greet examples/multi-stage
$bin build --progress plain -t lamina/example-cache \
  --secret id=api_token,src=examples/cache-and-secrets/token.example examples/cache-and-secrets
echo "== warm rebuild: every step cached, no context file read" >&2
$bin build --progress plain -t lamina/example-site examples/static-site
$bin build -q -o "type=docker,dest=$work/greet-docker.tar" examples/multi-stage >/dev/null
echo "docker archive of lamina/example-greet: $(du -h "$work/greet-docker.tar" | cut -f1)" >&2
$bin run --rm --network none lamina/example-greet lamina
$bin images
