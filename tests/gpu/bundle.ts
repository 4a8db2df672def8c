/**
 * `npm run gpu:bundle`: writes the git-ignored bundle the GPU suite runs from (.gpu-bundle/):
 * every tiny example compiled to a project (sources only: the GPU machine builds them with
 * nvcc), fresh random weights (bf16 safetensors), random tokens, and the reference interpreter's
 * golden logits computed in float64 from exactly those bf16 weights; plus the 8B
 * Mamba-2-Hybrid project (its weights are initialised on the GPU machine from a seed, not
 * carried). The runner is tests/gpu/run_suite.py; it needs no Node.
 *
 *   npm run gpu:bundle [-- OUT_DIR]
 */
import { mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { ModelDef } from "../../compiler/dsl/model.js";
import { emitProject, writeProject } from "../../compiler/codegen/project.js";
import { evaluate, randomParams } from "../../compiler/interp/interp.js";
import { fromArray, type Tensor } from "../../compiler/interp/tensor.js";
import { graphParams } from "../../compiler/ir/graph.js";
import { bf16Round, writeSafetensors } from "../../compiler/io/safetensors.js";
import { writeNpy } from "../../compiler/io/npy.js";
import { readTuningDb } from "../../compiler/tune/db.js";
import { modelInfo } from "../../compiler/cli/info.js";
import { exportHf } from "../../compiler/interop/export.js";
import { autodiff, withTrainingLoss } from "../../compiler/passes/autodiff.js";
import { byteTokenizer, loadCorpus, tokenizeDocuments, writeTokenFile } from "../../compiler/data/index.js";

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const OUT = path.resolve(process.argv[2] ?? path.join(REPO, ".gpu-bundle"));
const BATCH = 2;
const SEQ = 100; // ragged: not a multiple of the SSD chunk (64) or the attention tiles
const PREFILL = 67; // prefill this many, then decode the rest step by step (ragged too)

/** A small seeded PRNG (mulberry32) for the tokens. */
function mulberry32(a: number): () => number {
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function load(file: string): Promise<ModelDef> {
  return ((await import(path.join(REPO, "examples", file))) as { default: ModelDef }).default;
}

function dirBytes(d: string): number {
  let n = 0;
  for (const e of readdirSync(d)) {
    const p = path.join(d, e);
    const s = statSync(p);
    n += s.isDirectory() ? dirBytes(p) : s.size;
  }
  return n;
}

/** Compile options (ProgramOptions' booleans and strings) from a JSON object in an environment variable. */
function jsonOptions(name: string): Record<string, boolean | string> {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === "") return {};
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch (e) {
    throw new Error(`${name} must be a JSON object of compile options, e.g. '{"foldCasts":false}'; got '${raw}' (${(e as Error).message})`);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v) || Object.values(v).some((x) => typeof x !== "boolean" && typeof x !== "string"))
    throw new Error(`${name} must be a JSON object of boolean or string compile options, e.g. '{"foldCasts":false}'; got '${raw}'`);
  return v as Record<string, boolean | string>;
}

async function main() {
  rmSync(OUT, { recursive: true, force: true });
  mkdirSync(OUT, { recursive: true });
  // every random draw (weights, tokens) comes from this seed: printed, and reproducible with STRATA_SEED
  const seed = process.env.STRATA_SEED ? Number(process.env.STRATA_SEED) : Date.now() % 2 ** 31;
  if (!Number.isInteger(seed) || seed < 0) throw new Error(`STRATA_SEED must be a non-negative integer, got ${process.env.STRATA_SEED}`);
  console.error(`bundle seed ${seed} (STRATA_SEED=${seed} reproduces it)`);
  const rng = mulberry32(seed ^ 0x5eed);
  const projects: Record<string, unknown>[] = [];
  // STRATA_OPTIONS='{"foldCasts":false}': compile options (ProgramOptions) for every project, so
  // the suite checks a pass or a kernel variant against the interpreter and times it;
  // STRATA_AB='{...}': the training benchmark a second time with these options on top
  // (`hybrid-0.85b-ab`, run without the peers), so one suite call compares the two
  const OPTIONS = jsonOptions("STRATA_OPTIONS");
  const AB = process.env.STRATA_AB === undefined ? undefined : jsonOptions("STRATA_AB");
  const withOptions = Object.keys(OPTIONS).length > 0;
  if (withOptions) console.error(`  compile options for every project: ${JSON.stringify(OPTIONS)} (STRATA_OPTIONS)`);
  const tiny = readdirSync(path.join(REPO, "examples")).filter((f) => f.includes("tiny") && f.endsWith(".ts")).sort();
  for (const file of tiny) {
    const def = await load(file);
    const t0 = Date.now();
    const dir = path.join(OUT, def.config.name);
    // with the train entry: forward + loss + backward, checked against the interpreter's gradients
    // (tiny-custom-ratio recomputes every layer's activations in the backward: checked the same way)
    const recomputeAll = def.config.name === "tiny-custom-ratio";
    const p = emitProject(def, { maxBatch: BATCH, maxSeq: 128, maxContext: 128, train: true, ...(recomputeAll ? { recompute: "all" as const } : {}), ...OPTIONS });
    writeProject(p, dir);

    // weights: fresh random draw, rounded to the dtype the GPU stores
    const params = randomParams(p.graph, seed, "f64");
    const rounded: Record<string, Tensor> = {};
    const tensors = graphParams(p.graph).map((n) => {
      const name = n.attrs.name as string;
      const t = params[name]!;
      const data = new Float64Array(t.data.length);
      for (let i = 0; i < data.length; i++) data[i] = n.dtype === "bf16" ? bf16Round(t.data[i]!) : Math.fround(t.data[i]!);
      rounded[name] = { shape: t.shape, data };
      return { name, dtype: n.dtype === "bf16" ? ("BF16" as const) : ("F32" as const), shape: t.shape as number[], data: Float32Array.from(data) };
    });
    writeSafetensors(path.join(dir, "weights.safetensors"), tensors, { model: def.config.name, seed: String(seed) });

    const ids = Int32Array.from({ length: BATCH * SEQ }, () => Math.floor(rng() * def.config.vocab));
    writeNpy(path.join(dir, "tokens.npy"), "<i4", [BATCH, SEQ], ids);
    const logits = evaluate(p.graph, { bindings: { B: BATCH, T: SEQ }, inputs: { tokens: fromArray([BATCH, SEQ], ids) }, params: rounded, precision: "f64" }).logits!;
    writeNpy(path.join(dir, "golden.npy"), "<f4", [BATCH, SEQ, def.config.vocab], Float32Array.from(logits.data));
    // the same weights as a Hugging Face checkpoint, where the layout fits one: the peer of the
    // generation benchmark (HF transformers' generate on this GPU)
    let hf = "";
    try {
      exportHf(def, path.join(dir, "weights.safetensors"), path.join(dir, "hf"));
      hf = " + HF export";
    } catch (e) {
      hf = ` (no HF export: ${(e as Error).message.split("\n")[0]})`;
    }
    // training: loss and every weight's gradient from the interpreter (float64, the same bf16
    // weights), for random targets and loss weights (a fifth of them 0: masked positions)
    const targets = Int32Array.from({ length: BATCH * SEQ }, () => Math.floor(rng() * def.config.vocab));
    const lw = Float32Array.from({ length: BATCH * SEQ }, () => (rng() < 0.2 ? 0 : 0.25 + rng()));
    writeNpy(path.join(dir, "targets.npy"), "<i4", [BATCH, SEQ], targets);
    writeNpy(path.join(dir, "lossweights.npy"), "<f4", [BATCH, SEQ], lw);
    const tg = autodiff(withTrainingLoss(p.graph, { weighted: true }), { loss: "loss" });
    const tv = evaluate(tg, {
      bindings: { B: BATCH, T: SEQ },
      inputs: { tokens: fromArray([BATCH, SEQ], ids), targets: fromArray([BATCH, SEQ], targets), weights: fromArray([BATCH, SEQ], lw) },
      params: rounded,
      precision: "f64",
    });
    const gradTensors = Object.entries(tv)
      .filter(([k]) => k.startsWith("grad."))
      .map(([k, t]) => ({ name: k.slice(5), dtype: "F32" as const, shape: t.shape as number[], data: Float32Array.from(t.data) }));
    gradTensors.push({ name: "@loss", dtype: "F32" as const, shape: [1], data: Float32Array.from(tv.loss!.data) });
    writeSafetensors(path.join(dir, "train_golden.safetensors"), gradTensors, { model: def.config.name, seed: String(seed) });
    // the cached entries: prefill PREFILL tokens, then one step per remaining token
    projects.push({ name: def.config.name, kind: "golden", vocab: def.config.vocab, seq: SEQ, batch: BATCH, prefill: PREFILL, memcheck: def.config.name === "tiny-hybrid", train: true });
    console.error(`  ${def.config.name}: ${p.kernels.length} kernels, golden logits [${BATCH}, ${SEQ}, ${def.config.vocab}] in ${((Date.now() - t0) / 1000).toFixed(1)}s${hf}`);
  }

  // real text for `bin/model train` (loss falls, resume reproduces the run): Moby Dick, bytes
  const text = tokenizeDocuments(loadCorpus("moby-dick"), byteTokenizer(), 0.05);
  writeTokenFile(path.join(OUT, "moby-train.tok"), text.train);
  writeTokenFile(path.join(OUT, "moby-eval.tok"), text.eval!);
  console.error(`  moby-dick: ${text.train.ids.length} train / ${text.eval!.ids.length} eval byte tokens`);

  // the 8B models: one project each serves the T=4096 forward and decode at batches up to 256 and
  // contexts up to 128K (the arena holds 4096 tokens per call; state handles are sized per run)
  // Compiled with the repository's H200 tuning database (tuning/h200-sm_90a.json: `strata tune` of
  // these two models on the H200, as `strata compile --tuning` does), so the suite measures the
  // tiles a user on this GPU gets; STRATA_UNTUNED=1 measures the wave model's untuned defaults.
  const tuning = process.env.STRATA_UNTUNED ? undefined : readTuningDb(path.join(REPO, "tuning", "h200-sm_90a.json"));
  console.error(`  GEMM tiles: ${tuning ? "tuning/h200-sm_90a.json" : "untuned defaults (STRATA_UNTUNED)"}`);
  const SERVE = { maxBatch: 256, maxSeq: 4096, maxTokens: 4096, maxContext: 131072, ...(tuning ? { tuning } : {}), ...OPTIONS };
  for (const [file, kind] of [["mamba2-hybrid-8b.ts", "big"], ["transformer-8b.ts", "serving"]] as const) {
    const big = await load(file);
    const bp = emitProject(big, SERVE);
    writeProject(bp, path.join(OUT, big.config.name));
    // forward FLOPs from the IR's op rules, for the achieved rate against the chip's roofline
    const flops = modelInfo(big, { context: 4096 }).flopsPerToken.forward * 4096;
    projects.push({ name: big.config.name, kind, vocab: big.config.vocab, seq: 4096, batch: 1, forwardFlops: flops });
    console.error(`  ${big.config.name}: ${bp.kernels.length} kernels (weights initialised on the GPU machine)`);
  }

  // the training benchmark's ~0.85B hybrid (issue 9): the train entry at batch 4 × 4096
  const tb = await load("hybrid-0.85b.ts");
  for (const ab of AB ? [undefined, AB] : [undefined]) {
    const name = ab ? `${tb.config.name}-ab` : tb.config.name;
    const tbp = emitProject(tb, { maxBatch: 4, maxSeq: 4096, maxTokens: 16384, maxContext: 4096, train: true, ...(tuning ? { tuning } : {}), ...OPTIONS, ...(ab ?? {}) });
    writeProject(tbp, path.join(OUT, name));
    projects.push({ name, kind: "trainbench", vocab: tb.config.vocab, seq: 4096, batch: 4 });
    console.error(`  ${name}: ${tbp.kernels.length} kernels (training benchmark${ab ? `, with ${JSON.stringify(ab)}` : ""})`);
  }

  writeFileSync(path.join(OUT, "bundle.json"), JSON.stringify({ seed, created: new Date().toISOString(), projects }, null, 1) + "\n");
  const mib = dirBytes(OUT) / 2 ** 20;
  console.error(`wrote ${path.relative(process.cwd(), OUT)} (${mib.toFixed(1)} MiB; the carry limit is 64 MiB)`);
  if (mib > 60) throw new Error(`bundle is ${mib.toFixed(1)} MiB, too close to the 64 MiB carry limit`);
}

await main();
