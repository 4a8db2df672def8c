#!/usr/bin/env bash
# Compile the training runtime with nvcc as a generated project does (templates/Makefile.hbs:
# the trainer, AdamW and strata_cli_train inside libmodel.so; templates/main.cpp.hbs dispatching
# `train`), link it with the example model, check the exports, and smoke-run `model train`'s
# help and argument errors, which need no GPU. Needs the CUDA toolkit, no GPU.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="$(mktemp -d "${TMPDIR:-/tmp}/strata_trainer_nvcc.XXXXXX")"
trap 'rm -rf "$build"' EXIT
NVCC="${NVCC:-nvcc}"
ARCH="${ARCH:-sm_90a}"
flags=(-std=c++17 -O2 -Xcompiler -fPIC -Xcompiler -fvisibility=hidden -I"$root/runtime/include" -I"$root/runtime/src" -I"$root/templates/include")
lib=(json dtype safetensors init manifest strata_abi arena program adamw_host train_data checkpoint loss_plot trainer cli_train train_entry)
for s in "${lib[@]}" cli_common cli_generate npy; do
  lang=()
  case "$s" in strata_abi|arena) lang=(-x cu) ;; esac
  "$NVCC" "${flags[@]}" "${lang[@]}" -c "$root/runtime/src/$s.cpp" -o "$build/$s.o" &
done
"$NVCC" "${flags[@]}" -arch="$ARCH" -Xcompiler -Wall -c "$root/runtime/src/adamw.cu" -o "$build/adamw.o" &
"$NVCC" "${flags[@]}" -c "$root/tests/runtime/example_model.cu" -o "$build/model.o" &
wait
objs=()
for s in "${lib[@]}" adamw model; do objs+=("$build/$s.o"); done
"$NVCC" -shared "${objs[@]}" -o "$build/libmodel.so" -lcudart
# the generated main.cpp, from the template
sed 's/{{name}}/example/g' "$root/templates/main.cpp.hbs" >"$build/main.cpp"
"$NVCC" "${flags[@]}" -c "$build/main.cpp" -o "$build/main.o"
"$NVCC" "$build/main.o" "$build"/{cli_common,cli_generate,npy,dtype,json,manifest,init,safetensors}.o -o "$build/model" -L"$build" -lmodel -lcudart
bad="$(nm -D --defined-only "$build/libmodel.so" | awk '{print $3}' | grep -v '^strata_' | grep -v '^_' || true)"
if [ -n "$bad" ]; then echo "unexpected exports from libmodel.so:"; echo "$bad"; exit 1; fi
nm -D --defined-only "$build/libmodel.so" | awk '{print $3}' | grep -q '^strata_cli_train$' || { echo "strata_cli_train is not exported"; exit 1; }
cat >"$build/manifest.json" <<'JSON'
{"name": "example", "vocabSize": 8, "maxBatch": 1, "maxSeqlen": 4,
 "weights": [{"name": "embed", "dtype": "BF16", "shape": [8, 8], "init": {"kind": "normal", "std": 0.02}}]}
JSON
run() { LD_LIBRARY_PATH="$build${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$build/model" "$@"; }
run train --help | grep -q "989 TFLOP/s" || { echo "model train --help failed"; exit 1; }
set +e
run train --manifest "$build/manifest.json" --data "$build/missing.tok" --steps 1 --batch 1 --seq 2 --out "$build/out" 2>"$build/err"
rc=$?
set -e
grep -q "cannot open token file" "$build/err" && [ $rc -eq 2 ] || { echo "model train argument error: rc=$rc"; cat "$build/err"; exit 1; }
run info --manifest "$build/manifest.json" | grep -q '"name": "example"' || { echo "model info broke"; exit 1; }
echo "trainer nvcc check OK"
