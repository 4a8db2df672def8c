/**
 * `npx tsx tests/gpu/probe_bundle.ts [OUT_DIR]`: writes the git-ignored bundle of the probe
 * experiment (issue 9 item 7; tests/gpu/probe_experiment.md) to .probe-bundle/:
 *
 *   probes.json        the budget (the same for every model), the models and the probe files
 *   data/*.tok         MQAR and phonebook, training and held-out evaluation sets (`strata data probe`,
 *                      fixed seeds; evaluation rows are independent draws, never training rows)
 *   models/NAME/       each examples/probe-*.ts compiled with the train entry (the same checks and
 *                      pipeline as `strata compile --train`), sources only: the GPU machine builds
 *                      them with nvcc (make), with no Node
 *
 * The runner is tests/gpu/probes.py; it trains every model on every probe with bin/model train and
 * writes the accuracy table.
 */
import { mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { ModelDef } from "../../compiler/dsl/model.js";
import { writeProject } from "../../compiler/codegen/project.js";
import { emitChecked } from "../../compiler/cli/emit.js";
import { main as strata } from "../../compiler/cli/main.js";

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const OUT = path.resolve(process.argv[2] ?? path.join(REPO, ".probe-bundle"));

/**
 * The budget: every model gets exactly this (steps × batch × seq tokens per probe). MQAR rows are
 * 4·pairs = 128 tokens (T = 127), phonebook rows are padded to 257 (T = 256): per model
 * 1500 × 32 × (127 + 256) ≈ 18.4M training tokens; 4 models ≈ 74M tokens of a ~3.4M-parameter
 * model, about 1.5 PFLOP (a few GPU-seconds of math; in practice kernel-launch bound).
 */
export const BUDGET = {
  steps: 1500,
  batch: 32,
  lr: 1e-3,
  minLr: 1e-4,
  warmup: 100,
  weightDecay: 0.1,
  clip: 1.0,
  seed: 0,
  evalEvery: 500,
  logEvery: 50,
} as const;

/** The probes: `strata data probe` arguments, fixed seeds (train and eval drawn from one seed, independently). */
export const PROBES = {
  mqar: ["mqar", "--vocab", "256", "--pairs", "32", "--train", "20000", "--eval", "1000", "--seed", "1"],
  phonebook: ["phonebook", "--entries", "8", "--tokenizer", "byte", "--seq-len", "257", "--train", "20000", "--eval", "1000", "--seed", "2"],
} as const;

/** The largest T any probe needs (phonebook rows of 257 → 256 predictions). */
const MAX_SEQ = 256;

async function main() {
  rmSync(OUT, { recursive: true, force: true });
  mkdirSync(path.join(OUT, "data"), { recursive: true });

  const probes: Record<string, { train: string; eval: string }> = {};
  for (const [name, args] of Object.entries(PROBES)) {
    const code = await strata(["data", "probe", ...args, "-o", path.join(OUT, "data")]);
    if (code !== 0) throw new Error(`strata data probe ${args.join(" ")} failed (exit ${code})`);
    probes[name] = { train: `data/${name}.train.tok`, eval: `data/${name}.eval.tok` };
  }

  const models: { name: string; arch: string; dir: string; pattern: string; params: number }[] = [];
  const files = readdirSync(path.join(REPO, "examples")).filter((f) => /^probe-.*\.ts$/.test(f)).sort();
  for (const file of files) {
    const def = ((await import(path.join(REPO, "examples", file))) as { default: ModelDef }).default;
    const t0 = Date.now();
    const { p, warning } = emitChecked(def, { maxBatch: BUDGET.batch, maxSeq: MAX_SEQ, arch: "sm_90a", train: true });
    if (warning) console.error(warning);
    const dir = path.join(OUT, "models", def.config.name);
    writeProject(p, dir);
    const params = (p.manifest.weights as { shape: number[] }[]).reduce((a, w) => a + w.shape.reduce((x, y) => x * y, 1), 0);
    models.push({ name: def.config.name, arch: `examples/${file}`, dir: `models/${def.config.name}`, pattern: def.pattern, params });
    console.error(`${def.config.name}: ${def.pattern}, ${(params / 1e6).toFixed(2)}M parameters, ${p.kernels.length} kernels, train entry for ${BUDGET.batch} × ${MAX_SEQ} (${((Date.now() - t0) / 1000).toFixed(1)}s)`);
  }
  if (models.length === 0) throw new Error("no examples/probe-*.ts found");

  writeFileSync(path.join(OUT, "probes.json"), JSON.stringify({ budget: BUDGET, probes, models, probeArgs: PROBES }, null, 1) + "\n");
  console.error(`wrote ${path.relative(process.cwd(), OUT) || OUT}: ${models.length} models × ${Object.keys(probes).length} probes; run: python3 tests/gpu/probes.py ${path.relative(REPO, OUT)}`);
}

main().catch((e: Error) => {
  console.error(`error: ${e.message}`);
  process.exitCode = 1;
});
