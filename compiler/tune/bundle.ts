/**
 * The tuning bundle: everything a GPU machine without Node needs to time a model's tile
 * candidates. `strata tune <arch.ts>` writes it; `python3 run_tune.py` runs it there and writes
 * results.json; `strata tune --import results.json` brings the choices into the database.
 *
 *   tune.json            the plan: GPU target, candidates per family, variants, programs, problems
 *   programs/*.cu        one timing program per (variant, candidate): a few defines + the harness
 *   harness/tune_harness.cuh   the shared timing / checking code (compiler/tune/tune_harness.cuh)
 *   include/             the device library (templates/include), as projects ship it
 *   run_tune.py          builds the programs with nvcc in parallel, runs them, picks the winners
 *
 * A variant is what the kernel compiles in besides its tiles (family, path, dtypes, MN-major
 * operands, epilogue reads); a problem is one signature at one token bucket (its M, N, K).
 */
import { cpSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { DEFAULT_FORWARD_GEMM_TILES } from "../kernels/gemm.js";
import { defaultTiles, waveCandidates } from "../kernels/tiles.js";
import { DEFAULT_MATMUL_TILES, wgradMaxSplits } from "../kernels/matmul.js";
import { TEMPLATE_DIR } from "../codegen/templates.js";
import { backendFor, tileCandidates, tileConfigType, tileName, type Arch, type TileConfig, type TunedFamily } from "./configs.js";
import { reachedBuckets, type BucketName, type KernelSignature } from "./db.js";
import type { TunedKernel } from "./signatures.js";

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const BUNDLE_SCHEMA = "strata-tune-bundle";
export const BUNDLE_VERSION = 1;

export interface BundleCandidate {
  name: string;
  tiles: TileConfig;
  configType: string;
  isDefault: boolean;
}

/** A kernel variant: a signature without its fixed sizes (one timing program per variant and candidate). */
export interface BundleVariant extends Pick<KernelSignature, "family" | "path" | "ta" | "tb" | "mnA" | "mnB" | "out" | "elemReads" | "colReads"> {
  id: string;
}

export interface BundleProblem {
  id: string;
  variant: string;
  family: TunedFamily;
  signature: string;
  bucket: BucketName;
  tokens: number;
  M: number;
  N: number;
  K: number;
  /** Largest token split per candidate name (weight gradients; 1 elsewhere). */
  splits: Record<string, number>;
  /** The untuned default of this shape (tiles.ts defaultTiles): what `--import` compares the tuned tiles with. */
  defaultName: string;
}

export interface BundlePlan {
  schema: typeof BUNDLE_SCHEMA;
  version: typeof BUNDLE_VERSION;
  model: string;
  arch: Arch;
  gencode: string[];
  maxTokens: number;
  createdAt: string;
  candidates: Record<TunedFamily, BundleCandidate[]>;
  variants: BundleVariant[];
  programs: { file: string; variant: string; candidate: string }[];
  problems: BundleProblem[];
}

const CTYPES: Record<string, string> = { bf16: "__nv_bfloat16", f32: "float" };

export function familyDefaults(family: TunedFamily, arch: Arch): TileConfig {
  return (family === "gemm" ? DEFAULT_FORWARD_GEMM_TILES : DEFAULT_MATMUL_TILES)[backendFor(arch)];
}

function variantOf(s: KernelSignature): BundleVariant {
  const id = `${s.family}_${s.path}_${s.ta}${s.mnA ? "T" : ""}_${s.tb}${s.mnB ? "T" : ""}_${s.out}_e${s.elemReads}c${s.colReads}`;
  return { id, family: s.family, path: s.path, ta: s.ta, tb: s.tb, mnA: s.mnA, mnB: s.mnB, out: s.out, elemReads: s.elemReads, colReads: s.colReads };
}

/**
 * The plan for these kernels: candidates (optionally only the named ones; the default always
 * stays), variants, one program per (variant, candidate), one problem per (signature, bucket).
 * The forward GEMM's ≤ 8-token bucket is left out: its launcher takes the GEMV there.
 */
export function planBundle(model: string, arch: Arch, kernels: TunedKernel[], maxTokens: number, only?: readonly string[]): BundlePlan {
  const candidates = {} as Record<TunedFamily, BundleCandidate[]>;
  for (const f of ["gemm", "matmul"] as const) {
    const def = familyDefaults(f, arch);
    // the shape-dependent untuned defaults always stay (each problem's default is one of them)
    const keep = new Set([tileName(def), ...waveCandidates(f, backendFor(arch)).map(tileName)]);
    candidates[f] = tileCandidates(arch, f, def)
      .filter((t) => !only || only.includes(tileName(t)) || keep.has(tileName(t)))
      .map((t) => ({ name: tileName(t), tiles: t, configType: tileConfigType(t), isDefault: tileName(t) === tileName(def) }));
  }
  const variants = new Map<string, BundleVariant>();
  const problems: BundleProblem[] = [];
  for (const k of kernels) {
    const v = variantOf(k.sig);
    if (!variants.has(v.id)) variants.set(v.id, v);
    for (const { bucket, tokens } of reachedBuckets(maxTokens)) {
      if (k.sig.path === "forward" && bucket === "m8") continue;
      const [M, N, K] = k.sig.path === "wgrad" ? [k.sig.m!, k.sig.n, tokens] : [tokens, k.sig.n, k.sig.k!];
      const splits = Object.fromEntries(candidates[k.sig.family].map((c) => [c.name, k.sig.path === "wgrad" ? wgradMaxSplits(M, N, c.tiles) : 1]));
      const defaultName = tileName(defaultTiles(k.sig.path, backendFor(arch), M, N, K));
      problems.push({ id: `${k.key}@${bucket}`, variant: v.id, family: k.sig.family, signature: k.key, bucket, tokens, M, N, K, splits, defaultName });
    }
  }
  const programs = [...variants.values()].flatMap((v) => candidates[v.family].map((c) => ({ file: `programs/${v.id}__${c.name}.cu`, variant: v.id, candidate: c.name })));
  const sm = arch.replace("sm_", "");
  return {
    schema: BUNDLE_SCHEMA,
    version: BUNDLE_VERSION,
    model,
    arch,
    gencode: ["-gencode", `arch=compute_${sm},code=sm_${sm}`],
    maxTokens,
    createdAt: new Date().toISOString(),
    candidates,
    variants: [...variants.values()],
    programs,
    problems,
  };
}

/** The source of one timing program. */
export function programSource(v: BundleVariant, cand: BundleCandidate, def: BundleCandidate): string {
  return [
    `// strata tune: variant ${v.id}, candidate ${cand.name} (default ${def.name}); see harness/tune_harness.cuh`,
    `#define TUNE_MATMUL ${v.family === "matmul" ? 1 : 0}`,
    `#define TUNE_TA ${CTYPES[v.ta] ?? v.ta}`,
    `#define TUNE_TB ${CTYPES[v.tb] ?? v.tb}`,
    `#define TUNE_OUT ${CTYPES[v.out] ?? v.out}`,
    `#define TUNE_MNA ${v.mnA}`,
    `#define TUNE_MNB ${v.mnB}`,
    `#define TUNE_ELEM_READS ${v.elemReads}`,
    `#define TUNE_COL_READS ${v.colReads}`,
    `#include <cuda_bf16.h>`,
    `#include "${v.family === "matmul" ? "matmul.cuh" : "gemm.cuh"}"`,
    `using CandCfg = ${cand.configType};`,
    `using DefaultCfg = ${def.configType};`,
    `#include "tune_harness.cuh"`,
    "",
  ].join("\n");
}

/** Write the bundle into `dir` (created; existing files of the same names are replaced). */
export function writeBundle(dir: string, plan: BundlePlan): void {
  mkdirSync(path.join(dir, "programs"), { recursive: true });
  mkdirSync(path.join(dir, "harness"), { recursive: true });
  cpSync(path.join(TEMPLATE_DIR, "include"), path.join(dir, "include"), { recursive: true });
  cpSync(path.join(HERE, "tune_harness.cuh"), path.join(dir, "harness", "tune_harness.cuh"));
  writeFileSync(path.join(dir, "run_tune.py"), readFileSync(path.join(HERE, "run_tune.py"), "utf8"));
  const variants = new Map(plan.variants.map((v) => [v.id, v]));
  for (const p of plan.programs) {
    const v = variants.get(p.variant)!;
    const cands = plan.candidates[v.family];
    writeFileSync(path.join(dir, p.file), programSource(v, cands.find((c) => c.name === p.candidate)!, cands.find((c) => c.isDefault)!));
  }
  writeFileSync(path.join(dir, "tune.json"), JSON.stringify(plan, null, 1) + "\n");
  writeFileSync(
    path.join(dir, "README.md"),
    [
      `# strata tune bundle: ${plan.model} (${plan.arch})`,
      "",
      `${plan.problems.length} problems (kernel signature × token bucket), ${plan.programs.length} timing programs.`,
      "On the GPU machine (nvcc + python3, no Node needed):",
      "",
      "    python3 run_tune.py            # builds with nvcc in parallel, times, writes results.json",
      "    python3 run_tune.py --help     # time limits, jobs, a subset of signatures",
      "",
      "Bring results.json back and run `strata tune --import results.json [--db strata-tuning.json]`.",
      "",
    ].join("\n"),
  );
}
