#!/usr/bin/env bash
# Build and run the host-only training runtime tests (tests/runtime/trainer_host_test.cpp): the
# trainer, the host twin of the AdamW kernels, checkpoints, token files and `model train`'s
# arguments, over a fake model in host memory. No GPU, no CUDA headers.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="${TMPDIR:-/tmp}/strata_trainer_host_test.$$"
trap 'rm -f "$out"' EXIT
srcs=(json dtype safetensors init manifest adamw_host train_data checkpoint loss_plot trainer cli_train)
files=()
for s in "${srcs[@]}"; do files+=("$root/runtime/src/$s.cpp"); done
"${CXX:-g++}" -std=c++17 -O1 -Wall -Wextra -Werror -pthread \
  -I"$root/runtime/include" -I"$root/runtime/src" -I"$root/templates/include" \
  "$root/tests/runtime/trainer_host_test.cpp" "${files[@]}" -o "$out"
"$out"
