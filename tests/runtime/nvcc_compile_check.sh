#!/usr/bin/env bash
# Compile every runtime source with nvcc (C++17) and link the example model
# into libmodel.so and a bin/model CLI, exactly as a generated project does.
# Needs the CUDA toolkit but no GPU (nothing is run).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="$(mktemp -d "${TMPDIR:-/tmp}/strata_nvcc_check.XXXXXX")"
trap 'rm -rf "$build"' EXIT
NVCC="${NVCC:-nvcc}"
flags=(-std=c++17 -O2 -Xcompiler -fPIC -Xcompiler -fvisibility=hidden -I"$root/runtime/include" -I"$root/runtime/src" -I"$root/templates/include")
# The ABI and the CUDA-dependent arena are compiled as CUDA (-x cu) like
# generated .cu files; pure host files go through nvcc as plain C++ (faster).
objs=()
for s in json dtype safetensors init manifest npy cli_common cli_generate strata_abi arena program; do
  lang=()
  case "$s" in strata_abi|arena) lang=(-x cu) ;; esac
  "$NVCC" "${flags[@]}" "${lang[@]}" -c "$root/runtime/src/$s.cpp" -o "$build/$s.o"
done
lib_objs=("$build"/{json,dtype,safetensors,init,manifest,strata_abi,arena,program}.o)
"$NVCC" "${flags[@]}" -c "$root/tests/runtime/example_model.cu" -o "$build/model.o"
"$NVCC" -shared "${lib_objs[@]}" "$build/model.o" -o "$build/libmodel.so" -lcudart
# The CLI links the shared library and uses only the C ABI, plus its own
# copies of the host-only readers it checks inputs with before creating the model
# (cli_common npy dtype json manifest init safetensors; the library exports nothing else).
printf '#include "cli_common.h"\nint main(int argc, char** argv) { return strata::cli_main(argc, argv, "manifest.json"); }\n' >"$build/main.cpp"
"$NVCC" "${flags[@]}" -c "$build/main.cpp" -o "$build/main.o"
"$NVCC" "$build/main.o" "$build"/{cli_common,cli_generate,npy,dtype,json,manifest,init,safetensors}.o -o "$build/model" -L"$build" -lmodel -lcudart
# Only the C ABI may be exported.
bad="$(nm -D --defined-only "$build/libmodel.so" | awk '{print $3}' | grep -v '^strata_' | grep -v '^_' || true)"
if [ -n "$bad" ]; then echo "unexpected exports from libmodel.so:"; echo "$bad"; exit 1; fi
nm -D --defined-only "$build/libmodel.so" | awk '{print $3}' | grep '^strata_' | sort
# Smoke-run `model info`: it describes the model from the manifest, before any
# CUDA call, so it prints JSON with or without a GPU.
cat >"$build/manifest.json" <<'JSON'
{"name": "example", "vocabSize": 8, "maxBatch": 1, "maxSeqlen": 4,
 "weights": [{"name": "embed", "dtype": "BF16", "shape": [8, 8], "init": {"kind": "normal", "std": 0.02}}]}
JSON
set +e
LD_LIBRARY_PATH="$build${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$build/model" info --manifest "$build/manifest.json" >"$build/info.out" 2>&1
rc=$?
set -e
cat "$build/info.out"
if [ $rc -ne 0 ] || ! grep -q '"name": "example"' "$build/info.out"; then
  echo "model info must describe the model without a GPU (rc=$rc)"; exit 1
fi
echo "nvcc compile check OK"
