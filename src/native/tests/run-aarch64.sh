#!/usr/bin/env bash
# Cross-compile the row tests for aarch64 and run them under qemu: every NEON
# row against its C twin. Exits non-zero on any mismatch.
# Needs Debian's g++-aarch64-linux-gnu and qemu-user (.ci/run installs them).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
native=$(dirname "$here")
cxx=${CXX_AARCH64:-aarch64-linux-gnu-g++}
qemu=${QEMU_AARCH64:-qemu-aarch64}
command -v "$cxx" >/dev/null || { echo "run-aarch64.sh: $cxx not found (apt-get install g++-aarch64-linux-gnu)" >&2; exit 2; }
command -v "$qemu" >/dev/null || { echo "run-aarch64.sh: $qemu not found (apt-get install qemu-user)" >&2; exit 2; }
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
# Static, so qemu needs no aarch64 sysroot to run it.
"$cxx" -std=c++17 -O2 -Wall -Wextra -Werror -ffp-contract=off -static \
  "$here/test_rows.cc" "$native/row_common.cc" "$native/cpu.cc" "$native/row_neon64.cc" \
  -o "$build/test_rows"
"$qemu" "$build/test_rows"
