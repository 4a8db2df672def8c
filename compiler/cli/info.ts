/**
 * `strata info`: what a model definition amounts to — its layer pattern, parameters by component,
 * FLOPs per token, weight bytes, KV-cache bytes per token, SSM/conv state bytes per sequence, and
 * the memory that weights plus caches need at a given context and batch. All of it is read off
 * the IR (params, op FLOP rules, derive-step's state inputs), not from a separate formula.
 */
import { evalShape } from "../ir/dims.js";
import { graphNodes, graphParams, type Graph } from "../ir/graph.js";
import { DTYPE_BYTES } from "../ir/node.js";
import { getOp } from "../ir/registry.js";
import type { ModelDef } from "../dsl/model.js";
import { deriveStep } from "../passes/derive-step.js";
import { graphFlops } from "../ir/flops.js";
import { compileProgram } from "../pipeline.js";

/** The largest single GPU the generated code targets (an H200: 141 GiB of HBM3e). */
export const LARGEST_GPU_BYTES = 141 * 2 ** 30;

export interface ModelInfo {
  name: string;
  pattern: string;
  layers: number;
  counts: Record<string, { symbol: string; kind: string; count: number; actual: number; target?: number }>;
  params: { total: number; byComponent: Record<string, number> };
  weightBytes: number;
  flopsPerToken: { forward: number; training: number; context: number };
  kvBytesPerToken: number;
  stateBytesPerSequence: number;
  memory: { context: number; batch: number; weights: number; kvCache: number; state: number; total: number };
  /**
   * One decode step of `batch` sequences at `context`: the bytes it must move (every weight read
   * once; each sequence's SSM/conv state read and written, its KV cache read and one KV row
   * written — the formula of tests/gpu/decode_bench.py) and the tokens/s that allows at an HBM
   * bandwidth (the H200's 4.8 TB/s spec; decode_bench measures the copy bandwidth, ~4.3 TB/s).
   */
  decode: { context: number; batch: number; bytesPerStep: number; bandwidth: number; rooflineTokPerS: number };
  /** With --train: one train step at batch × context (the compiled plan's train arena). */
  training?: TrainingMemory;
}

export interface TrainingMemory {
  batch: number;
  seq: number;
  /** Compute copies (the weights as stored). */
  weights: number;
  /** fp32 master weights and the two AdamW moments: 12 bytes per parameter. */
  optimizer: number;
  /** The train arena: activations kept for the backward, gradients (f32), scratch — per recompute setting. */
  arena: { none: number; mlp?: number; all: number };
  total: { none: number; all: number };
}

/** Memory of one train step (compiles the train entry's plan; no kernels are built). */
export function trainingMemory(def: ModelDef, batch: number, seq: number): TrainingMemory {
  const g = def.toGraph();
  let weights = 0, params = 0;
  for (const p of graphParams(g)) {
    const n = numel(p.shape as number[]);
    params += n;
    weights += n * DTYPE_BYTES[p.dtype];
  }
  const arenaOf = (recompute: readonly string[] | "all") =>
    compileProgram(def, { maxBatch: batch, maxSeq: seq, maxContext: seq, train: true, recompute }).schedules.find((s) => s.name === "train")!.memory.peakBytes;
  const kinds = new Set(def.layers.map((l) => l.kind));
  const none = arenaOf([]);
  const all = arenaOf("all");
  const arena = { none, ...(kinds.has("mlp") ? { mlp: arenaOf(["mlp"]) } : {}), all };
  const optimizer = 12 * params;
  return { batch, seq, weights, optimizer, arena, total: { none: weights + optimizer + none, all: weights + optimizer + all } };
}

const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

function component(name: string, layerKinds: readonly string[]): string {
  if (name.startsWith("embedding.")) return "embedding";
  if (name.startsWith("lm_head.")) return "lm_head";
  if (name.startsWith("final_norm.")) return "norms";
  const m = /^layers\.(\d+)\.(norm|mixer)\./.exec(name);
  if (!m) return "other";
  return m[2] === "norm" ? "norms" : layerKinds[Number(m[1])]!;
}

export { graphFlops } from "../ir/flops.js";

export function modelInfo(def: ModelDef, opts: { context?: number; batch?: number } = {}): ModelInfo {
  const g = def.toGraph();
  const context = opts.context ?? def.config.seqLen;
  const batch = opts.batch ?? 1;
  const kinds = def.layers.map((l) => l.kind);

  const byComponent: Record<string, number> = {};
  let total = 0;
  let weightBytes = 0;
  for (const p of graphParams(g)) {
    const n = numel(p.shape as number[]);
    total += n;
    weightBytes += n * DTYPE_BYTES[p.dtype];
    const c = component(p.attrs.name as string, kinds);
    byComponent[c] = (byComponent[c] ?? 0) + n;
  }

  const counts: ModelInfo["counts"] = {};
  const ratios = def.stack?.ratios;
  [...def.pattern].forEach((sym, i) => {
    const kind = def.layers[i]!.kind;
    counts[sym] ??= { symbol: sym, kind, count: 0, actual: 0 };
    counts[sym].count++;
  });
  for (const c of Object.values(counts)) {
    c.actual = c.count / def.pattern.length;
    if (ratios) c.target = c.symbol === "*" ? ratios.attention : c.symbol === "-" ? ratios.mlp : 1 - ratios.attention - ratios.mlp;
  }

  // FLOPs per token: one sequence of `context` tokens, divided by its length.
  const fwd = graphFlops(g, { B: 1, T: context }) / context;

  // State sizes from the decode graph's explicit state inputs: KV caches grow with P.
  const { states } = deriveStep(g);
  let kvPerToken = 0;
  let statePerSeq = 0;
  for (const s of states) {
    const bytes = numel(evalShape(s.shape, { B: 1, P: 1 })) * DTYPE_BYTES[s.dtype];
    if (s.kind === "k" || s.kind === "v") kvPerToken += bytes;
    else statePerSeq += bytes;
  }
  const kvCache = kvPerToken * context * batch;
  const state = statePerSeq * batch;
  return {
    name: def.config.name,
    pattern: def.pattern,
    layers: def.pattern.length,
    counts,
    params: { total, byComponent },
    weightBytes,
    flopsPerToken: { forward: fwd, training: 3 * fwd, context },
    kvBytesPerToken: kvPerToken,
    stateBytesPerSequence: statePerSeq,
    memory: { context, batch, weights: weightBytes, kvCache, state, total: weightBytes + kvCache + state },
    decode: decodeRoofline(weightBytes, kvPerToken, statePerSeq, context, batch, H200_HBM_BYTES_PER_S),
  };
}

/** NVIDIA H200 SXM HBM3e bandwidth (spec), the default of the decode roofline. */
export const H200_HBM_BYTES_PER_S = 4.8e12;

/** Bytes one decode step moves and the tokens/s (over the batch) that allows at `bandwidth`. */
export function decodeRoofline(weightBytes: number, kvPerToken: number, statePerSeq: number, context: number, batch: number, bandwidth: number): ModelInfo["decode"] {
  const bytesPerStep = weightBytes + batch * (2 * statePerSeq + kvPerToken * context + kvPerToken);
  return { context, batch, bytesPerStep, bandwidth, rooflineTokPerS: (batch * bandwidth) / bytesPerStep };
}

// ---- formatting ---------------------------------------------------------------------------

export function fmtCount(n: number): string {
  if (n >= 1e12) return `${(n / 1e12).toFixed(3)}T`;
  if (n >= 1e9) return `${(n / 1e9).toFixed(3)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(2)}K`;
  return String(n);
}

export function fmtBytes(b: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let i = 0;
  while (b >= 1024 && i < units.length - 1) {
    b /= 1024;
    i++;
  }
  return `${b.toFixed(i === 0 ? 0 : 2)} ${units[i]}`;
}

const FLOP_UNITS: [number, string][] = [[1e15, "PFLOP"], [1e12, "TFLOP"], [1e9, "GFLOP"], [1e6, "MFLOP"], [1e3, "kFLOP"], [1, "FLOP"]];

/** FLOPs with two decimals in one SI unit; `scaleBy` picks the unit (so figures printed together share it). */
export function fmtFlops(f: number, scaleBy = f): string {
  const [div, unit] = FLOP_UNITS.find(([d]) => scaleBy >= d) ?? FLOP_UNITS[FLOP_UNITS.length - 1]!;
  return `${(f / div).toFixed(2)} ${unit}`;
}

export function formatInfo(i: ModelInfo): string {
  const lines: string[] = [];
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  lines.push(`model      ${i.name}`);
  lines.push(`layers     ${i.layers}`);
  lines.push(`pattern    ${i.pattern}`);
  lines.push("");
  lines.push("layer mix  symbol  kind        count  actual  target");
  for (const c of Object.values(i.counts))
    lines.push(`           ${c.symbol.padEnd(6)}  ${c.kind.padEnd(10)}  ${String(c.count).padStart(5)}  ${pct(c.actual).padStart(6)}  ${c.target === undefined ? "     -" : pct(c.target).padStart(6)}`);
  lines.push("");
  lines.push(`parameters ${fmtCount(i.params.total)} (${i.params.total.toLocaleString("en-US")})`);
  for (const [k, v] of Object.entries(i.params.byComponent).sort((a, b) => b[1] - a[1]))
    lines.push(`           ${k.padEnd(12)} ${fmtCount(v).padStart(9)}  ${pct(v / i.params.total).padStart(6)}`);
  lines.push("");
  lines.push(`FLOPs/token (context ${i.flopsPerToken.context})  forward ${fmtFlops(i.flopsPerToken.forward)}   training ${fmtFlops(i.flopsPerToken.training, i.flopsPerToken.forward)} (3× forward)`);
  lines.push(`weights             ${fmtBytes(i.weightBytes)}`);
  lines.push(`KV cache            ${fmtBytes(i.kvBytesPerToken)} per token`);
  lines.push(`SSM + conv state    ${fmtBytes(i.stateBytesPerSequence)} per sequence`);
  const m = i.memory;
  lines.push(`memory at context ${m.context}, batch ${m.batch}: ${fmtBytes(m.total)} (weights ${fmtBytes(m.weights)} + KV ${fmtBytes(m.kvCache)} + state ${fmtBytes(m.state)}; activations not included)`);
  if (m.total > LARGEST_GPU_BYTES) lines.push(`           more than the largest single GPU holds (${fmtBytes(LARGEST_GPU_BYTES)}, an H200): bin/model runs on one GPU`);
  const d = i.decode;
  lines.push(`decode at context ${d.context}, batch ${d.batch}: ${fmtBytes(d.bytesPerStep)} per step (weights + state read and written + KV read) → at most ${d.rooflineTokPerS.toFixed(d.rooflineTokPerS < 100 ? 1 : 0)} tok/s at ${(d.bandwidth / 1e12).toFixed(1)} TB/s (H200 HBM)`);
  const t = i.training;
  if (t) {
    lines.push(`training at batch ${t.batch} × ${t.seq}: ${fmtBytes(t.total.none)} (weights ${fmtBytes(t.weights)} + fp32 master and AdamW moments ${fmtBytes(t.optimizer)} + train arena ${fmtBytes(t.arena.none)})`);
    lines.push(`           the train arena with --recompute${t.arena.mlp !== undefined ? ` mlp ${fmtBytes(t.arena.mlp)},` : ""} all ${fmtBytes(t.arena.all)} (total ${fmtBytes(t.total.all)})`);
    if (t.total.all > LARGEST_GPU_BYTES) lines.push(`           more than the largest single GPU holds (${fmtBytes(LARGEST_GPU_BYTES)}, an H200) even with --recompute all`);
  }
  return lines.join("\n");
}

