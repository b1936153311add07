#!/usr/bin/env bash
# The whole test suite: installs the system packages the tests use (when missing, as root), then runs
# formatting checks and every test in the workspace. Integration tests that need something this machine lacks
# skip with a printed reason
# (and fail under CI=true); the run ends with how many skipped and why.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for pair in skopeo:skopeo umoci:umoci docker-registry:docker-registry busybox:busybox-static \
            runc:runc pkg-config:pkg-config zstd:zstd pigz:pigz \
            htpasswd:apache2-utils openssl:openssl python3:python3 podman:podman \
            ip:iproute2 nft:nftables tmux:tmux; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair#*:}")
done
[ -e /usr/include/seccomp.h ] || need+=(libseccomp-dev)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "test.sh: installing ${need[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "test.sh: missing ${need[*]} (not root or no apt-get); tests needing them will skip" >&2
  fi
fi

cargo fmt --all -- --check

# Tests that can't run here record why (lamina-testkit); under CI=true they fail instead of skipping.
export LAMINA_SKIP_LOG="${LAMINA_SKIP_LOG:-$(mktemp -t lamina-skips.XXXXXX)}"
: >"$LAMINA_SKIP_LOG"
status=0
cargo test --workspace --all-targets --no-fail-fast -- --test-threads=2 "$@" || status=$?
skipped=$(wc -l <"$LAMINA_SKIP_LOG")
echo "test.sh: $skipped test(s) skipped for missing prerequisites" >&2
if [ "$skipped" -gt 0 ]; then
  cut -f2 "$LAMINA_SKIP_LOG" | sort | uniq -c | sort -rn | sed 's/^/  /' >&2
fi
exit "$status"
