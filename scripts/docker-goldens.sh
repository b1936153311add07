#!/bin/bash
# docker-goldens.sh: regenerates testdata/docker-format/: the image archive golden.tar (built by lamina,
# reproducibly) and what the reference docker CLIs print for it, for cli/tests/docker_format.rs to compare
# lamina's output with field by field. Not run in CI (it needs two dockerd); run it by hand, as root, after
#   ../shared/peers/up.sh          (dockerd 20.10 on /tmp/peers-dockerd/docker.sock)
#   ../shared/peers/oracle-up.sh   (docker 26 on /tmp/oracle-dockerd/docker.sock)
# Each case of cases.tsv (name, then the CLI arguments, tab-separated) is run by both CLIs on the same loaded
# archive; outputs go to docker-<server version>/<name>.txt. Usage: scripts/docker-goldens.sh [LAMINA_BIN]
set -euo pipefail
cd "$(dirname "$0")/.."
lamina=${1:-target/debug/lamina}
out=testdata/docker-format
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The image: FROM scratch with files, a symlink, an empty file, metadata steps; two tags.
ctx=$tmp/ctx
mkdir -p "$ctx/app/sub"
printf 'hello golden\n' > "$ctx/app/hello.txt"
head -c 4321 /dev/zero | tr '\0' 'x' > "$ctx/app/sub/data.bin"
: > "$ctx/app/empty"
ln -s hello.txt "$ctx/app/link"
cat > "$ctx/Dockerfile" <<'EOF'
FROM scratch
ARG VERSION=1.2.3
ENV APP_VERSION=${VERSION} PATH=/app:/bin
LABEL org.example.team="platform" org.example.version=${VERSION}
COPY app/ /app/
WORKDIR /app
COPY app/hello.txt /etc/motd
USER 1000:1000
CMD ["/app/run", "--flag"]
EOF
"$lamina" --root "$tmp/store" build -q --network none --source-date-epoch 1700000000 \
  -t golden:v1 -t localhost/golden:2 --output "type=docker,dest=$out/golden.tar" "$ctx" >/dev/null

# The container image for `ps`: busybox alone, a label a container inherits; an archive in $tmp only (the
# test builds the same image from the host's busybox: only its name and config reach `ps`).
sh_ctx=$tmp/sh-ctx
mkdir -p "$sh_ctx"
cp "$(command -v busybox)" "$sh_ctx/busybox"
printf 'FROM scratch\nCOPY busybox /bin/busybox\nLABEL org.example.team=platform\n' > "$sh_ctx/Dockerfile"
"$lamina" --root "$tmp/store" build -q --network none -t golden-sh:v1 \
  --output "type=docker,dest=$tmp/golden-sh.tar" "$sh_ctx" >/dev/null

run_cases() {  # run_cases CASES DOCKER_CMD… : writes $dir/<case>.txt
  local cases=$1; shift
  while IFS=$'\t' read -r -a c; do
    [ ${#c[@]} -gt 1 ] || continue
    "$@" "${c[@]:1}" > "$dir/${c[0]}.txt"
  done < "$cases"
}

for sock in /tmp/peers-dockerd/docker.sock /tmp/oracle-dockerd/docker.sock; do
  if [ ! -S "$sock" ]; then
    echo "skipping $sock: no daemon (start it with ../shared/peers/up.sh or oracle-up.sh)" >&2
    continue
  fi
  d=(docker -H "unix://$sock")
  version=$("${d[@]}" version --format '{{.Server.Version}}' | cut -d+ -f1)
  dir=$out/docker-$version
  mkdir -p "$dir"
  "${d[@]}" rmi -f golden:v1 localhost/golden:2 >/dev/null 2>&1 || true
  "${d[@]}" load -i "$out/golden.tar" >/dev/null
  run_cases "$out/cases.tsv" "${d[@]}"
  "${d[@]}" rmi -f golden:v1 localhost/golden:2 >/dev/null
  # ps: one exited container, with a label of its own and one from its image (as in docker_format.rs).
  "${d[@]}" rm -f golden-ps >/dev/null 2>&1 || true
  "${d[@]}" load -i "$tmp/golden-sh.tar" >/dev/null
  "${d[@]}" run --name golden-ps --label team=platform golden-sh:v1 /bin/busybox echo hello-golden >/dev/null
  run_cases "$out/cases-ps.tsv" "${d[@]}"
  "${d[@]}" rm -f golden-ps >/dev/null
  "${d[@]}" rmi -f golden-sh:v1 >/dev/null
  echo "wrote $dir (docker $version)"
done
