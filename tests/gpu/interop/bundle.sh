#!/usr/bin/env bash
# GPU parity, step 2 (here, with Node): import the models make_models.py saved on the GPU machine,
# export them back to Hugging Face form, compile them (--emit-only: the GPU machine builds them
# with make) and gather what run_parity.py needs into one folder (git-ignored .interop-bundle/).
#
#   tests/gpu/interop/bundle.sh MODELS_DIR OUT_DIR [TAG=STRATA_CHECKOUT ...]
#
# MODELS_DIR is the untarred models/ folder. Each model is compiled by this checkout into
# <model>/project and, for every TAG=DIR given, by the Strata checkout DIR into
# <model>/project-TAG (e.g. a known-good commit exported with `git archive C | tar -x -C DIR`
# and node_modules linked in); the runner reports every project it finds. A model that fails to
# compile is reported and skipped, not fatal.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
models=$(realpath "$1"); out=$(realpath -m "$2"); shift 2
strata() { (cd "$root" && npx tsx compiler/cli/main.ts "$@"); }
rm -rf "$out"; mkdir -p "$out"
cp "$here/run_parity.py" "$out/"
for m in nemotron_h mamba2 mamba llama megatron_hybrid; do
  [ -d "$models/$m" ] || { echo "skip $m: not in $models"; continue; }
  d="$out/$m"; mkdir -p "$d"
  if [ "$m" = megatron_hybrid ]; then
    strata import-megatron "$models/$m" -o "$d/weights.safetensors" --arch "$d/arch.ts" --name megatron-hybrid || continue
    cp "$models/nemotron_h/tokens.npy" "$models/nemotron_h/ref_logits_f32.npy" "$d/"   # the same model
  else
    strata import-hf "$models/$m" -o "$d/arch.ts" --weights-out "$d/weights.safetensors" --name "${m//_/-}" || continue
    cp "$models/$m/tokens.npy" "$models/$m/ref_logits_f32.npy" "$d/"
    strata export-hf "$d/arch.ts" --weights "$d/weights.safetensors" -o "$d/exported" --no-check || echo "export-hf $m failed"
  fi
  strata compile "$d/arch.ts" --emit-only --max-batch 2 --max-seq 80 -o "$d/project" --no-check || echo "compile $m failed (this checkout)"
  for spec in "$@"; do
    tag=${spec%%=*}; other=$(realpath "${spec#*=}")
    # the architecture file imports the DSL of the checkout that wrote it: point it at the other one
    rel=$(realpath --relative-to="$d" "$other/compiler/dsl/index.js")
    sed -E "s#from \"[^\"]*compiler/dsl/index.js\"#from \"$rel\"#" "$d/arch.ts" > "$d/arch-$tag.ts"
    (cd "$other" && npx tsx compiler/cli/main.ts compile "$d/arch-$tag.ts" --emit-only --max-batch 2 --max-seq 80 -o "$d/project-$tag" --no-check) || echo "compile $m failed ($tag)"
  done
done
echo "bundle ready: $out"
