#!/usr/bin/env bash
# The main job, offline, on a fresh machine: build lamina, create a local busybox base image from Debian's
# busybox-static, and import + inspect it in a store under ./demo-store.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v busybox >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static libseccomp-dev pkg-config >/dev/null
fi
cargo build --release -p lamina
export LAMINA_ROOT="${LAMINA_ROOT:-$PWD/demo-store}"
bin=target/release/lamina
$bin version
