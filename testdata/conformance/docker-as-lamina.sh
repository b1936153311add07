#!/usr/bin/env bash
# A stand-in for the `lamina` binary that drives docker, to check the conformance harness itself (its context
# preparation, args, pre-builds, unpack and config plumbing) against the goldens it must reproduce exactly:
#   LAMINA_CONFORMANCE_BIN=$PWD/testdata/conformance/docker-as-lamina.sh \
#     cargo test -p lamina --test conformance    (DOCKER= another client; default: the oracle's)
# Implements only what the harness calls: import, build, unpack -o, inspect --format json.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
D=${DOCKER:-/var/lib/lamina-oracle/bin/docker}
export DOCKER_BUILDKIT=1
[ "${1:-}" = --root ] && shift 2
cmd=${1:?subcommand}
shift
for a in "$@"; do [ "$a" = --help ] && exit 0; done
case $cmd in
  import) "$D" import "$1" "$2" >/dev/null ;;
  build) exec "$D" build "$@" ;;
  inspect) exec "$D" image inspect "${!#}" ;;
  unpack)
    ref=$1 out=$3
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    "$D" save "$ref" | tar -xf - -C "$tmp"
    python3 "$here/dump.py" flatten-tar "$tmp" "$out"
    ;;
  *) echo "docker-as-lamina: unsupported: $cmd" >&2; exit 2 ;;
esac
