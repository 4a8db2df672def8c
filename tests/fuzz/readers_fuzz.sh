#!/usr/bin/env bash
# Build the runtime file-reader fuzzer with AddressSanitizer + UndefinedBehaviorSanitizer (g++,
# host only, no CUDA) and run it: readers_fuzz.sh SECONDS SEED. Exit status is the fuzzer's.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="${TMPDIR:-/tmp}/strata_readers_fuzz.$$"
trap 'rm -f "$out"' EXIT
srcs=(json dtype safetensors init manifest npy)
files=()
for s in "${srcs[@]}"; do files+=("$root/runtime/src/$s.cpp"); done
"${CXX:-g++}" -std=c++17 -O0 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all \
  -Wall -Wextra -pthread -I"$root/runtime/include" -I"$root/runtime/src" \
  "$root/tests/fuzz/readers_fuzz.cpp" "${files[@]}" -o "$out"
# allocator_may_return_null=0: a reader that trusts a size field and asks for terabytes is a failure
ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=0:abort_on_error=0:halt_on_error=1" \
UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
  "$out" "${1:-5}" "${2:-1}" "${3:-18446744073709551615}"
