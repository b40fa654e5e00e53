#!/usr/bin/env bash
# Build the row tests for this machine and run them: every SIMD row this CPU
# has against its C twin. Usage: src/native/tests/run-native.sh [CXX]
# $ROW_TEST_FLAGS adds compiler flags (.ci/sanitize: -fsanitize=address,undefined).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
native=$(dirname "$here")
cxx=${1:-${CXX:-g++}}
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
flags=(-std=c++17 -O2 -Wall -Wextra -Werror -ffp-contract=off)
read -r -a extra_flags <<<"${ROW_TEST_FLAGS:-}"
flags+=("${extra_flags[@]}")
objs=()
for src in row_common.cc cpu.cc row_sse41.cc row_avx2.cc row_neon64.cc; do
  extra=()
  case "$(uname -m)-$src" in
    x86_64-row_sse41.cc) extra=(-msse4.1) ;;
    x86_64-row_avx2.cc) extra=(-mavx2 -mf16c) ;;
  esac
  "$cxx" "${flags[@]}" "${extra[@]}" -c "$native/$src" -o "$build/${src%.cc}.o"
  objs+=("$build/${src%.cc}.o")
done
"$cxx" "${flags[@]}" "$here/test_rows.cc" "${objs[@]}" -o "$build/test_rows"
"$build/test_rows"
