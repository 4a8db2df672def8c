#!/usr/bin/env bash
# Build and run the host-only runtime tests (no GPU, no CUDA headers needed).
# Exit code is the test program's: 0 when every test passed.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="${TMPDIR:-/tmp}/strata_runtime_host_test.$$"
trap 'rm -f "$out"' EXIT
# Host-only runtime sources; arena.cpp and check.h need CUDA and are excluded.
srcs=(json dtype safetensors init manifest npy cli_common cli_generate strata_abi program)
files=()
for s in "${srcs[@]}"; do files+=("$root/runtime/src/$s.cpp"); done
"${CXX:-g++}" -std=c++17 -O1 -Wall -Wextra -Werror -pthread \
  -I"$root/runtime/include" -I"$root/runtime/src" -I"$root/templates/include" \
  "$root/tests/runtime/runtime_host_test.cpp" "${files[@]}" -o "$out"
"$out"
