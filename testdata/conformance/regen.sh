#!/usr/bin/env bash
# Regenerates the goldens (expected/tree.txt, expected/config.json) of every case, or of the cases named on
# the command line, with `docker build` on the modern oracle: Debian trixie's docker 26 (BuildKit 0.13, buildx
# 0.13) started by /work/shared/peers/oracle-up.sh. See README.md for the format.
#   ./regen.sh [CASE...]
# Needs: the oracle up (or DOCKER/DOCKER_HOST pointing at another BuildKit docker), python3, GNU tar,
# busybox-static (for the base image).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
ORACLE=/var/lib/lamina-oracle
export DOCKER_HOST=${DOCKER_HOST:-unix:///tmp/oracle-dockerd/docker.sock}
export DOCKER_BUILDKIT=1
if [ -z "${DOCKER:-}" ]; then
  # The oracle's own 26.x client, with its buildx plugin (a wrapper that also sets DOCKER_CONFIG).
  if [ -x $ORACLE/bin/docker ]; then DOCKER=$ORACLE/bin/docker; else DOCKER=docker; fi
fi
BASE=lamina-test-base

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$here/make-base.sh" "$work/base.tar"
"$DOCKER" import "$work/base.tar" "$BASE:latest" >/dev/null
bb=$(tar -xOf "$work/base.tar" usr/bin/busybox | sha256sum | cut -d' ' -f1)
bbsize=$(tar -xOf "$work/base.tar" usr/bin/busybox | wc -c)
printf 'busybox\t%s\t%s\n' "$bbsize" "$bb" > "$here/base.txt"

# Read a case's `args` file into the array ARGS (one flag and its value per line; blank lines and # comments
# skipped).
read_args() {
  ARGS=()
  [ -f "$1/args" ] || return 0
  while IFS= read -r line || [ -n "$line" ]; do
    case $line in '' | '#'*) continue ;; esac
    flag=${line%% *}
    if [ "$flag" = "$line" ]; then ARGS+=("$flag"); else ARGS+=("$flag" "${line#* }"); fi
  done < "$1/args"
}

# Extract `docker save` output of image $1 into dir $2; print the layer tar paths bottom first, then config.
save_image() {
  "$DOCKER" save "$1" | tar -xf - -C "$2"
  python3 - "$2" <<'PY'
import json, sys, os
d = sys.argv[1]
m = json.load(open(os.path.join(d, "manifest.json")))[0]
for l in m["Layers"]:
    print(os.path.join(d, l))
print(os.path.join(d, m["Config"]))
PY
}

build_case() {
  local name=$1 dir=$here/$1
  local t=$work/$name
  mkdir -p "$t/ctx"
  [ -d "$dir/context" ] && cp -a "$dir/context/." "$t/ctx/"
  # Only what git records counts: the executable bit. Checkout umask and owner must not leak into goldens.
  find "$t/ctx" -type d -exec chmod 0755 {} +
  find "$t/ctx" -type f \( -perm -u+x -exec chmod 0755 {} + -o -exec chmod 0644 {} + \)
  chown -R 0:0 "$t/ctx" 2>/dev/null || true
  if [ -f "$dir/setup.sh" ]; then (cd "$t/ctx" && umask 022 && sh "$dir/setup.sh"); fi
  local tag=lamina-conf-$name
  read_args "$dir"
  if [ -f "$dir/pre.Dockerfile" ]; then
    (cd "$t/ctx" && "$DOCKER" build --network=none --progress=plain -f "$dir/pre.Dockerfile" -t "$tag-pre" . \
      >"$t/pre.log" 2>&1) || { cat "$t/pre.log" >&2; echo "regen: $name: pre build failed" >&2; return 1; }
  fi
  (cd "$t/ctx" && "$DOCKER" build --network=none --progress=plain -f "$dir/Dockerfile" -t "$tag" \
    ${ARGS[@]+"${ARGS[@]}"} . >"$t/build.log" 2>&1) \
    || { cat "$t/build.log" >&2; echo "regen: $name: build failed" >&2; return 1; }
  mkdir -p "$t/img" "$dir/expected"
  mapfile -t files < <(save_image "$tag" "$t/img")
  local config=${files[-1]}
  unset 'files[-1]'
  python3 "$here/dump.py" tree "${files[@]}" > "$dir/expected/tree.txt"
  python3 "$here/dump.py" config "$config" > "$dir/expected/config.json"
  python3 "$here/dump.py" contents "${files[@]}" > "$dir/expected/contents.json"
  "$DOCKER" rmi -f "$tag" >/dev/null
  [ -f "$dir/pre.Dockerfile" ] && "$DOCKER" rmi -f "$tag-pre" >/dev/null
  echo "regen: $name ok" >&2
}

if [ $# -gt 0 ]; then cases=("$@"); else
  cases=()
  for d in "$here"/*/; do [ -f "$d/Dockerfile" ] && cases+=("$(basename "$d")"); done
fi
fail=0
for c in "${cases[@]}"; do build_case "$c" || fail=1; done
exit $fail
