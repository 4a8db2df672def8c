/**
 * Benchmark report from the GPU suite's logs: docs/BENCHMARKS.md and docs/roofline.svg.
 *
 *   npx tsx tests/gpu/report.ts [--out docs] [--suite F] [--train-suite F] [--decode F] [--train-bench F] [--probes F]
 *   npm run gpu:report
 *
 * Reads what the H200 printed (no GPU here): the kernel benchmark table of tests/gpu/run_suite.py
 * (`bench_rows`: Strata ms, the peer's ms, ratio = peer time / Strata time), the 8B forward line,
 * the decode benchmark's JSON (tokens/s against bytes per step / the copy bandwidth of that run),
 * the 0.85B training benchmark's JSON lines and the probe experiment's lines. For every kernel it
 * recomputes FLOPs and the fewest bytes from the shape (formulas below, the same FLOP counts as
 * the harnesses print), the achieved rate and the floor max(bytes / bandwidth, FLOPs / peak).
 * A log or a row that is missing is reported as "not measured"; nothing is filled in.
 *
 * Data over code: the kernels the suite measures are the table EXPECTED_KERNELS; the peaks are
 * PEAKS with their sources.
 */
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { defaultTiles } from "../../compiler/kernels/tiles.js";
import { stagedEpilogueFits } from "../../compiler/kernels/gemm.js";

// ---------------------------------------------------------------------------------------------
// Peaks (H200 SXM). Floors are computed against the measured pair and, for reference, the spec.

export interface Peak { value: number; unit: string; source: string }

export const PEAKS = {
  /** dense bf16 tensor-core rate, NVIDIA's H100/H200 SXM spec (train_bench.py's MFU peak) */
  bf16Spec: { value: 989e12, unit: "FLOP/s", source: "NVIDIA H200 SXM spec, dense bf16 (the MFU peak of tests/gpu/train_bench.py)" },
  /** cuBLAS bf16 8192³ on this workplace's H200s: run_suite.py's BF16_PEAK_TFLOPS */
  bf16Measured: { value: 790e12, unit: "FLOP/s", source: "cuBLAS 8192³ bf16 measured on these H200s (BF16_PEAK_TFLOPS in tests/gpu/run_suite.py)" },
  /** fp32 on CUDA cores (no tensor cores): the ceiling of the scan and conv kernels */
  fp32Spec: { value: 67e12, unit: "FLOP/s", source: "NVIDIA H200 SXM spec, fp32 (CUDA cores); not measured in the suite" },
  /** HBM3e spec */
  hbmSpec: { value: 4.8e12, unit: "B/s", source: "NVIDIA H200 SXM spec, HBM3e 4.8 TB/s" },
} satisfies Record<string, Peak>;

/** The copy bandwidth used when no log gives one: none. (A floor needs a measured bandwidth.) */
export type Ceiling = "tensor" | "fp32";

// ---------------------------------------------------------------------------------------------
// FLOPs and fewest bytes per kernel shape (bf16 = 2 bytes, f32 = 4)

export interface Cost {
  flops: number;
  bytes: number;
  /** which compute ceiling applies: tensor cores (bf16) or fp32 CUDA cores */
  ceiling: Ceiling;
  /** the formulas, for the report */
  formula: string;
}

/** C[M,N] = A[M,K]·B[K,N]: 2MNK FLOPs; read A and B once, write C once, bf16. */
export function gemmCost(M: number, N: number, K: number): Cost {
  return { flops: 2 * M * N * K, bytes: 2 * (M * K + K * N + M * N), ceiling: "tensor", formula: "FLOPs 2·M·N·K; bytes 2·(M·K + K·N + M·N)" };
}

/**
 * Visible (query, key) pairs, bottom-right aligned causal mask as the harness counts them
 * (tests/gpu/attention_test.cu, attention_bench.py): T = S → T·S/2; T < S → T·(S−T) + T·(T+1)/2;
 * not causal → T·S.
 */
export function attentionPairs(T: number, S: number, causal: boolean): number {
  if (!causal) return T * S;
  if (T === S) return (T * S) / 2;
  return T * (S - T) + (T * (T + 1)) / 2;
}

/**
 * Attention forward: 4·B·H·pairs·D FLOPs (Q·Kᵀ and P·V, 2 each per pair and dim); bytes: read Q,
 * K, V once (K/V at their own Hk heads: GQA without copies), write O, bf16.
 */
export function attentionCost(B: number, T: number, S: number, H: number, Hk: number, D: number, causal: boolean): Cost {
  const flops = 4 * B * H * attentionPairs(T, S, causal) * D;
  const bytes = 2 * (2 * B * T * H * D + 2 * B * S * Hk * D);
  return { flops, bytes, ceiling: "tensor", formula: "FLOPs 4·B·H·pairs·D; bytes 2·(2·B·T·H·D + 2·B·S·Hk·D) (Q, O; K, V)" };
}

/**
 * Mamba-2 SSD forward, chunk L: the harness's "useful" FLOPs (tests/gpu/ssm_test.cu): per chunk
 * and head, L²·N (C·Bᵀ, causal half) + L²·P (scores·X, causal half) + 4·L·P·N (chunk state and
 * its read-out); bytes: read x (B·T·H·P), B and C (2·B·T·G·N), dt (B·T·H) in bf16, write y
 * (B·T·H·P bf16) and the final state (B·H·P·N f32).
 */
export function ssdCost(B: number, T: number, H: number, P: number, G: number, N: number, L: number): Cost {
  const chunks = B * H * Math.ceil(T / L);
  const flops = chunks * (L * L * N + L * L * P + 4 * L * P * N);
  const bytes = 2 * (2 * B * T * H * P + 2 * B * T * G * N + B * T * H) + 4 * B * H * P * N;
  return {
    flops,
    bytes,
    ceiling: "tensor",
    formula: "FLOPs B·H·⌈T/L⌉·(L²·N + L²·P + 4·L·P·N); bytes 2·(2·B·T·H·P + 2·B·T·G·N + B·T·H) + 4·B·H·P·N",
  };
}

/**
 * Mamba-1 selective scan: 6 FLOPs per (token, channel, state) update — exp(Δ·A), the multiply-add
 * into h, C·h — the count of tests/gpu/train_flops.py; bytes: read u, Δ, z and write y
 * (4·B·T·D bf16), read B and C (2·B·T·N bf16), A (D·N f32), write the final state (B·D·N f32).
 * Not a tensor-core kernel: its compute ceiling is fp32.
 */
export function scanCost(B: number, T: number, D: number, N: number): Cost {
  return {
    flops: 6 * B * T * D * N,
    bytes: 2 * (4 * B * T * D + 2 * B * T * N) + 4 * (D * N + B * D * N),
    ceiling: "fp32",
    formula: "FLOPs 6·B·T·D·N (train_flops.py); bytes 2·(4·B·T·D + 2·B·T·N) + 4·(D·N + B·D·N)",
  };
}

/**
 * Depthwise causal conv1d, K taps, + bias + SiLU: 2·K + 5 FLOPs per output (K multiply-adds, the
 * bias, SiLU counted as 4); bytes: read x and write y (2·2·B·T·C, as ssm_test.cu counts its GB/s),
 * weights and bias (2·C·(K+1)), the K−1 state rows out (4·B·(K−1)·C f32). fp32 ceiling.
 */
export function conv1dCost(K: number, B: number, T: number, C: number): Cost {
  return {
    flops: (2 * K + 5) * B * T * C,
    bytes: 2 * 2 * B * T * C + 2 * C * (K + 1) + 4 * B * (K - 1) * C,
    ceiling: "fp32",
    formula: "FLOPs (2·K + 5)·B·T·C; bytes 4·B·T·C + 2·C·(K+1) + 4·B·(K−1)·C",
  };
}

/** Cost of one benchmark row from its family and shape string as run_suite.py prints them. */
export function costOf(family: string, shape: string): Cost | undefined {
  const num = (re: RegExp) => {
    const m = shape.match(re);
    return m ? Number(m[1]) : undefined;
  };
  switch (family) {
    case "gemm":
    case "gemm+epi": {
      const m = shape.match(/^(\d+)x(\d+)x(\d+)/);
      return m ? gemmCost(Number(m[1]), Number(m[2]), Number(m[3])) : undefined;
    }
    case "attention": {
      const m = shape.match(/^B(\d+)_T(\d+)_S(\d+)_H(\d+)_Hk(\d+)_D(\d+)/);
      if (!m) return undefined;
      const [B, T, S, H, Hk, D] = m.slice(1).map(Number);
      // prefill is causal; a decode query (T = 1) sees every key either way
      return attentionCost(B, T, S, H, Hk, D, T > 1);
    }
    case "ssd": {
      const [B, T, H, P, G, N, L] = [/B(\d+)/, /T(\d+)/, /H(\d+)/, /P(\d+)/, /G(\d+)/, /N(\d+)/, /L(\d+)/].map(num);
      if ([B, T, H, P, G, N, L].some((v) => v === undefined)) return undefined;
      return ssdCost(B!, T!, H!, P!, G!, N!, L!);
    }
    case "mamba1 scan": {
      const [B, T, D, N] = [/B(\d+)/, /T(\d+)/, /D(\d+)/, /N(\d+)/].map(num);
      if ([B, T, D, N].some((v) => v === undefined)) return undefined;
      return scanCost(B!, T!, D!, N!);
    }
    case "conv1d": {
      const [K, B, T, C] = [/K(\d+)/, /B(\d+)/, /T(\d+)/, /C(\d+)/].map(num);
      if ([K, B, T, C].some((v) => v === undefined)) return undefined;
      return conv1dCost(K!, B!, T!, C!);
    }
    default:
      return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// What the suite measures (tests/gpu/run_suite.py, benches()): one entry per Strata measurement

export interface ExpectedKernel {
  family: string;
  /** the shape as run_suite.py prints it, without the "(config)" suffix */
  shape: string;
  /** what it is, for the reader */
  what: string;
  /** the peers run_suite.py pairs it with */
  peers: string[];
}

export const EXPECTED_KERNELS: ExpectedKernel[] = [
  { family: "gemm", shape: "16384x18560x4096", what: "GEMM, Mamba-2 in_proj 4096→18560", peers: ["cuBLAS"] },
  { family: "gemm", shape: "16384x4096x8192", what: "GEMM, Mamba-2 out_proj 8192→4096", peers: ["cuBLAS"] },
  { family: "gemm", shape: "16384x6144x4096", what: "GEMM, attention QKV 4096→6144", peers: ["cuBLAS"] },
  { family: "gemm", shape: "16384x4096x4096", what: "GEMM, attention out 4096→4096", peers: ["cuBLAS"] },
  { family: "gemm", shape: "16384x16384x4096", what: "GEMM, MLP up 4096→16384", peers: ["cuBLAS"] },
  { family: "gemm", shape: "16384x4096x16384", what: "GEMM, MLP down 16384→4096", peers: ["cuBLAS"] },
  { family: "attention", shape: "B2_T8192_S8192_H32_Hk8_D128", what: "attention, causal, GQA 32/8, D128", peers: ["torch-sdpa", "torch-sdpa-flash"] },
  { family: "attention", shape: "B2_T8192_S8192_H32_Hk32_D128", what: "attention, causal, MHA, D128", peers: ["torch-sdpa", "torch-sdpa-flash"] },
  { family: "attention", shape: "B2_T8192_S8192_H32_Hk8_D64", what: "attention, causal, GQA 32/8, D64", peers: ["torch-sdpa", "torch-sdpa-flash"] },
  { family: "attention", shape: "B8_T1_S8192_H32_Hk8_D128", what: "decode attention (split-KV), T1 S8192", peers: ["torch-sdpa", "torch-sdpa-flash"] },
  { family: "ssd", shape: "B2 T8192 H128 P64 G8 N128 L128", what: "Mamba-2 SSD forward (chunked)", peers: ["torch einsum"] },
  { family: "mamba1 scan", shape: "B1 T4096 D8192 N128", what: "Mamba-1 selective scan", peers: ["torch loop over T"] },
  { family: "conv1d", shape: "K4 B2 T8192 C18432 +silu", what: "causal conv1d + SiLU", peers: ["torch F.conv1d"] },
  { family: "gemm+epi", shape: "16384x18560x4096", what: "GEMM + bias + residual, in_proj shape", peers: ["cuBLAS + epilogue"] },
  { family: "gemm+epi", shape: "16384x4096x8192", what: "GEMM + bias + residual, out_proj shape", peers: ["cuBLAS + epilogue"] },
  { family: "gemm+epi", shape: "16384x6144x4096", what: "GEMM + bias + residual, QKV shape", peers: ["cuBLAS + epilogue"] },
  { family: "gemm+epi", shape: "16384x4096x4096", what: "GEMM + bias + residual, attention out shape", peers: ["cuBLAS + epilogue"] },
  { family: "gemm+epi", shape: "16384x16384x4096", what: "GEMM + bias + residual, MLP up shape", peers: ["cuBLAS + epilogue"] },
  { family: "gemm+epi", shape: "16384x4096x16384", what: "GEMM + bias + residual, MLP down shape", peers: ["cuBLAS + epilogue"] },
];

const PEER_NAMES: Record<string, string> = {
  cuBLAS: "cuBLAS (torch.matmul's GEMM)",
  "torch-sdpa": "SDPA default backend (cuDNN)",
  "torch-sdpa-flash": "SDPA FlashAttention-2 backend",
  "torch einsum": "PyTorch chunked SSD (einsum)",
  "torch loop over T": "PyTorch loop over T",
  "torch F.conv1d": "F.conv1d + SiLU",
  "cuBLAS + epilogue": "cuBLAS, then bias + residual in one vectorized pass",
};

// ---------------------------------------------------------------------------------------------
// Parsers (each takes the text, or undefined for a missing file, and never throws on junk)

export interface BenchRow {
  family: string;
  shape: string;
  /** the "(config)" suffix of a GEMM row, if any */
  config?: string;
  ms: number;
  peer: string;
  peerMs: number;
  rate: string;
  ratio: number;
}

/** Rows of every "== benchmarks" table in a run_suite.py log (`bench_rows`). */
export function parseBenchTable(text: string | undefined): BenchRow[] {
  if (!text) return [];
  const rows: BenchRow[] = [];
  let inTable = false;
  for (const line of text.split(/\r?\n/)) {
    if (line.startsWith("== benchmarks")) {
      inTable = true;
      continue;
    }
    if (!inTable) continue;
    if (!line.startsWith("|")) {
      if (line.trim() !== "") inTable = false;
      continue;
    }
    const cells = line.split("|").slice(1, -1).map((c) => c.trim());
    if (cells.length !== 7 || cells[0] === "kernel" || /^-+$/.test(cells[0])) continue;
    const [family, shapeCell, ms, peer, peerMs, rate, ratio] = cells;
    const nums = [Number(ms), Number(peerMs), Number(ratio)];
    if (nums.some((n) => !Number.isFinite(n)) || ms === "" || peerMs === "") continue;
    const cm = shapeCell.match(/^(.*?)\s*\(([^)]*)\)\s*$/);
    rows.push({
      family,
      shape: cm ? cm[1] : shapeCell,
      ...(cm ? { config: cm[2] } : {}),
      ms: nums[0],
      peer,
      peerMs: nums[1],
      rate,
      ratio: nums[2],
    });
  }
  return rows;
}

export interface ForwardRow {
  model: string;
  T: number;
  ms: number;
  medianMs?: number;
  tflops: number;
  fraction: number;
  peakTflops: number;
}

/** "PASS <model> forward at T=<T> … forward <ms> ms, <tf> TFLOP/s = <f> of the <peak> TFLOP/s bf16 roofline" */
export function parseForward(text: string | undefined): ForwardRow[] {
  if (!text) return [];
  const out: ForwardRow[] = [];
  const re = /PASS (\S+) forward at T=(\d+)[^\n]*?forward ([0-9.]+) ms, ([0-9.]+) TFLOP\/s = ([0-9.]+) of the ([0-9.]+) TFLOP\/s/g;
  const medians = [...text.matchAll(/forward time \(kernels only[^:]*: ([0-9.]+) ms \(fastest of \d+; median ([0-9.]+) ms\)/g)];
  for (const m of text.matchAll(re)) {
    const ms = Number(m[3]);
    const med = medians.find((x) => Number(x[1]) === ms);
    out.push({ model: m[1], T: Number(m[2]), ms, ...(med ? { medianMs: Number(med[2]) } : {}), tflops: Number(m[4]), fraction: Number(m[5]), peakTflops: Number(m[6]) });
  }
  return out;
}

/** "device-to-device copy bandwidth (this run): 4.29 TB/s" → bytes/s */
export function parseCopyBandwidthLine(text: string | undefined): number | undefined {
  const m = text?.match(/device-to-device copy bandwidth \(this run\): ([0-9.]+) TB\/s/);
  return m ? Number(m[1]) * 1e12 : undefined;
}

export interface DecodeRow {
  model: string;
  batch: number;
  context: number;
  tokPerS?: number;
  msPerStep?: number;
  rooflineTokPerS?: number;
  fraction?: number;
  fits?: boolean;
}

export interface DecodeBench {
  copyBandwidth?: number;
  decode: DecodeRow[];
  paper: DecodeRow[];
  ttft: { model: string; context: number; ttftMs: number }[];
  tiny: { model: string; strataTokPerS?: number; hfTokPerS?: number; ratio?: number; hfError?: string; hfNote?: string }[];
}

/** decode_bench.py's JSON ($OUT/decode_bench.json). */
export function parseDecodeJson(text: string | undefined): DecodeBench | undefined {
  if (!text) return undefined;
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof j !== "object" || j === null) return undefined;
  const o = j as Record<string, unknown>;
  const arr = <T>(v: unknown): T[] => (Array.isArray(v) ? (v.filter((x) => typeof x === "object" && x !== null) as T[]) : []);
  return {
    ...(typeof o.copyBandwidth === "number" ? { copyBandwidth: o.copyBandwidth } : {}),
    decode: arr<DecodeRow>(o.decode),
    paper: arr<DecodeRow>(o.paper),
    ttft: arr(o.ttft),
    tiny: arr(o.tiny),
  };
}

/**
 * The same figures from the suite log's decode_bench.py lines (rounded as printed), for a run
 * whose JSON was not kept: "decode B=1 ctx 4096: 174 tok/s (5.76 ms/step), roofline 244 tok/s, 0.71".
 */
export function parseDecodeLog(text: string | undefined): DecodeBench | undefined {
  if (!text) return undefined;
  const out: DecodeBench = { decode: [], paper: [], ttft: [], tiny: [] };
  const bw = parseCopyBandwidthLine(text);
  if (bw !== undefined) out.copyBandwidth = bw;
  let model = "";
  for (const line of text.split(/\r?\n/)) {
    let m: RegExpMatchArray | null;
    if ((m = line.match(/^(\S+): weights initialised/))) model = m[1];
    else if ((m = line.match(/^\s+decode B=(\d+) ctx (\d+): (\d+) tok\/s \(([0-9.]+) ms\/step\), roofline (\d+) tok\/s, ([0-9.]+)/)))
      out.decode.push({ model, batch: +m[1], context: +m[2], tokPerS: +m[3], msPerStep: +m[4], rooflineTokPerS: +m[5], fraction: +m[6] });
    else if ((m = line.match(/^\s+decode B=(\d+) ctx (\d+): the state does not fit/))) out.decode.push({ model, batch: +m[1], context: +m[2], fits: false });
    else if ((m = line.match(/^\s+ctx (\d+): largest batch (\d+): (\d+) tok\/s \(([0-9.]+) ms\/step\), roofline (\d+)/)))
      out.paper.push({ model, context: +m[1], batch: +m[2], tokPerS: +m[3], msPerStep: +m[4], rooflineTokPerS: +m[5], fraction: +m[3] / +m[5] });
    else if ((m = line.match(/^\s+time to first token, prompt (\d+): (\d+) ms/))) out.ttft.push({ model, context: +m[1] + 1, ttftMs: +m[2] });
    else if ((m = line.match(/^\s+(\S+): Strata (\d+) tok\/s, HF generate (\d+) tok\/s, ratio ([0-9.]+)/)))
      out.tiny.push({ model: m[1], strataTokPerS: +m[2], hfTokPerS: +m[3], ratio: +m[2] / +m[3] });
    else if ((m = line.match(/^\s+(\S+): Strata (\d+) tok\/s, HF: (.*)$/))) out.tiny.push({ model: m[1], strataTokPerS: +m[2], hfError: m[3] });
  }
  return out.decode.length || out.paper.length || out.tiny.length ? out : undefined;
}

export interface TrainRow {
  impl: string;
  mode?: string;
  tokensPerS: number;
  mfu: number;
  stepMs?: number;
  flopsPerToken?: number;
  batch?: number;
  seq?: number;
  peakMemGiB?: number;
}

/** train_bench.py: one JSON line per implementation ({"impl": …, "ok": true, "tokens_per_s": …, "mfu": …}). */
export function parseTrainBench(text: string | undefined): TrainRow[] {
  if (!text) return [];
  const out: TrainRow[] = [];
  for (const line of text.split(/\r?\n/)) {
    if (!line.startsWith("{")) continue;
    let o: Record<string, unknown>;
    try {
      o = JSON.parse(line);
    } catch {
      continue;
    }
    if (o.ok !== true || typeof o.tokens_per_s !== "number" || typeof o.mfu !== "number") continue;
    const n = (k: string) => (typeof o[k] === "number" ? (o[k] as number) : undefined);
    const r: TrainRow = { impl: String(o.impl), tokensPerS: o.tokens_per_s, mfu: o.mfu };
    if (typeof o.mode === "string") r.mode = o.mode;
    if (n("step_ms") !== undefined) r.stepMs = n("step_ms");
    if (n("flops_per_token") !== undefined) r.flopsPerToken = n("flops_per_token");
    if (n("batch") !== undefined) r.batch = n("batch");
    if (n("seq") !== undefined) r.seq = n("seq");
    if (n("peak_mem_gib") !== undefined) r.peakMemGiB = n("peak_mem_gib");
    out.push(r);
  }
  // the table header states FLOPs/token and shape for both sides
  const h = text.match(/batch (\d+) × (\d+), ([0-9.]+) GFLOP\/token/);
  if (h) for (const r of out) {
    r.batch ??= Number(h[1]);
    r.seq ??= Number(h[2]);
    r.flopsPerToken ??= Number(h[3]) * 1e9;
  }
  return out;
}

export interface ProbeRow { model: string; task: string; accuracy: number; loss: number; tokPerS: number; seconds: number }

/** probes.py: "probe-hybrid on mqar: accuracy 2.6%, final loss 4.8180, 1474408 tokens/s, 3.5s" */
export function parseProbes(text: string | undefined): ProbeRow[] {
  if (!text) return [];
  const re = /^(\S+) on (\S+): accuracy ([0-9.]+)%, final loss ([0-9.]+), (\d+) tokens\/s, ([0-9.]+)s$/gm;
  return [...text.matchAll(re)].map((m) => ({ model: m[1], task: m[2], accuracy: Number(m[3]), loss: Number(m[4]), tokPerS: Number(m[5]), seconds: Number(m[6]) }));
}

// ---------------------------------------------------------------------------------------------
// The report

export interface KernelResult {
  family: string;
  shape: string;
  what: string;
  config?: string;
  measured: boolean;
  ms?: number;
  cost?: Cost;
  /** TFLOP/s and TB/s achieved */
  tflops?: number;
  tbps?: number;
  intensity?: number;
  /** floor against the measured peaks (cuBLAS rate or fp32 spec; copy bandwidth) and against the spec */
  floorMs?: number;
  floorBound?: "compute" | "memory";
  floorSpecMs?: number;
  peers: { peer: string; measured: boolean; ms?: number; ratio?: number; label: string }[];
}

export interface Inputs {
  suite?: string;
  trainSuite?: string;
  decode?: string;
  trainBench?: string;
  probes?: string;
}

export interface InputNames {
  suite: string;
  trainSuite: string;
  decode: string;
  trainBench: string;
  probes: string;
}

export interface Report {
  names: InputNames;
  missing: string[];
  /** bytes/s measured in the run (decode bench JSON, else the suite log's line), or undefined */
  copyBandwidth?: number;
  copyBandwidthSource: string;
  kernels: KernelResult[];
  forward: (ForwardRow & { source: string })[];
  decode?: DecodeBench;
  decodeSource?: string;
  train: TrainRow[];
  probes: ProbeRow[];
}

function floorOf(cost: Cost, bw: number | undefined, tensorPeak: number): { ms: number; bound: "compute" | "memory" } | undefined {
  if (bw === undefined) return undefined;
  const peak = cost.ceiling === "tensor" ? tensorPeak : PEAKS.fp32Spec.value;
  const tMem = cost.bytes / bw;
  const tComp = cost.flops / peak;
  return tComp >= tMem ? { ms: tComp * 1e3, bound: "compute" } : { ms: tMem * 1e3, bound: "memory" };
}

export function buildReport(inputs: Inputs, names: InputNames): Report {
  const missing = (Object.keys(names) as (keyof InputNames)[]).filter((k) => inputs[k] === undefined).map((k) => names[k]);
  const decodeJson = parseDecodeJson(inputs.decode);
  const decode = decodeJson ?? parseDecodeLog(inputs.suite);
  const decodeSource = decodeJson ? names.decode : decode ? `${names.suite} (decode lines, rounded as printed; no JSON)` : undefined;
  const logBw = parseCopyBandwidthLine(inputs.suite);
  const copyBandwidth = decode?.copyBandwidth ?? logBw;
  const copyBandwidthSource =
    decode?.copyBandwidth !== undefined
      ? `4 GiB device-to-device copy, bytes read + written per second, measured by tests/gpu/decode_bench.py in the suite's generation benchmarks (${decodeSource}); the kernel table (${names.suite}) was measured on the same kind of machine`
      : logBw !== undefined
        ? `device-to-device copy bandwidth line of ${names.suite}`
        : "not measured (no decode benchmark in the inputs): memory floors against the measured bandwidth are not given";

  const rows = parseBenchTable(inputs.suite);
  const used = new Set<BenchRow>();
  const kernels: KernelResult[] = [];
  const result = (family: string, shape: string, what: string, expectedPeers: string[]): KernelResult => {
    const all = rows.filter((r) => r.family === family && r.shape === shape);
    all.forEach((r) => used.add(r));
    // a harness that times several tile configs (gemm_test.cu): the one the code generator emits
    const emitted = all.filter((r) => r.config !== undefined && r.config === generatedConfig(family, shape));
    const mine = emitted.length > 0 ? emitted : all;
    const cost = costOf(family, shape);
    const k: KernelResult = { family, shape, what, measured: mine.length > 0, peers: [], ...(cost ? { cost } : {}) };
    if (mine.length > 0) {
      const ms = mine[0].ms;
      k.ms = ms;
      if (mine[0].config) k.config = mine[0].config;
      if (cost) {
        k.tflops = cost.flops / (ms * 1e-3) / 1e12;
        k.tbps = cost.bytes / (ms * 1e-3) / 1e12;
        k.intensity = cost.flops / cost.bytes;
        const f = floorOf(cost, copyBandwidth, PEAKS.bf16Measured.value);
        if (f) {
          k.floorMs = f.ms;
          k.floorBound = f.bound;
        }
        k.floorSpecMs = floorOf(cost, PEAKS.hbmSpec.value, PEAKS.bf16Spec.value)!.ms;
      }
    }
    const peerNames = [...expectedPeers];
    for (const r of mine) if (!peerNames.some((p) => r.peer.startsWith(p))) peerNames.push(r.peer);
    for (const p of peerNames) {
      const r = mine.find((x) => x.peer === p || x.peer.startsWith(p + " "));
      const label = r && r.peer !== p ? `${PEER_NAMES[p] ?? p} (${r.peer.slice(p.length).trim()})` : (PEER_NAMES[p] ?? p);
      k.peers.push(r ? { peer: p, measured: true, ms: r.peerMs, ratio: r.peerMs / r.ms, label } : { peer: p, measured: false, label });
    }
    return k;
  };
  for (const e of EXPECTED_KERNELS) kernels.push(result(e.family, e.shape, e.what, e.peers));
  // rows the catalogue does not know (a newer suite): reported as they are
  for (const r of rows) {
    if (used.has(r)) continue;
    kernels.push(result(r.family, r.shape, `${r.family} (not in the report's catalogue)`, []));
  }

  const forward = [
    ...parseForward(inputs.suite).map((f) => ({ ...f, source: names.suite })),
    ...parseForward(inputs.trainSuite).map((f) => ({ ...f, source: names.trainSuite })),
  ];
  return {
    names,
    missing,
    ...(copyBandwidth !== undefined ? { copyBandwidth } : {}),
    copyBandwidthSource,
    kernels,
    forward,
    ...(decode ? { decode, decodeSource } : {}),
    train: parseTrainBench(inputs.trainBench),
    probes: parseProbes(inputs.probes),
  };
}

// ---------------------------------------------------------------------------------------------
// Markdown

const NM = "not measured";
const fx = (v: number | undefined, d = 2) => (v === undefined || !Number.isFinite(v) ? "—" : v.toFixed(d));
const big = (v: number) => {
  const units: [number, string][] = [[1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]];
  for (const [s, u] of units) if (Math.abs(v) >= s) return `${(v / s).toFixed(v / s >= 100 ? 0 : v / s >= 10 ? 1 : 2)} ${u}`;
  return v.toFixed(0);
};
const shapeLabel = (k: KernelResult) => k.shape.replace(/_/g, " ");

export function renderMarkdown(r: Report): string {
  const L: string[] = [];
  const bw = r.copyBandwidth;
  L.push("# Benchmarks (H200)");
  L.push("");
  L.push("Generated by `npm run gpu:report` (`tests/gpu/report.ts`) from the GPU suite's logs; do not edit by hand.");
  L.push(`Inputs: \`${r.names.suite}\` (kernel benchmarks, 8B forward), \`${r.names.trainSuite}\` (8B forward, second run), \`${r.names.decode}\` (decode), \`${r.names.trainBench}\` (training), \`${r.names.probes}\` (probes).`);
  if (r.missing.length) L.push(`Missing inputs (their rows say "${NM}"): ${r.missing.map((m) => `\`${m}\``).join(", ")}.`);
  L.push("The roofline chart: [roofline.svg](roofline.svg). What each optimisation was predicted to gain and gained: [PERF-NOTES.md](PERF-NOTES.md).");
  L.push("");
  L.push("## Ceilings");
  L.push("");
  L.push("| ceiling | value | source |");
  L.push("| --- | --- | --- |");
  L.push(`| bf16 tensor cores, measured | ${PEAKS.bf16Measured.value / 1e12} TFLOP/s | ${PEAKS.bf16Measured.source} |`);
  L.push(`| bf16 tensor cores, spec | ${PEAKS.bf16Spec.value / 1e12} TFLOP/s | ${PEAKS.bf16Spec.source} |`);
  L.push(`| fp32 CUDA cores, spec | ${PEAKS.fp32Spec.value / 1e12} TFLOP/s | ${PEAKS.fp32Spec.source} |`);
  L.push(`| HBM, measured | ${bw !== undefined ? (bw / 1e12).toFixed(2) + " TB/s" : NM} | ${r.copyBandwidthSource} |`);
  L.push(`| HBM, spec | ${PEAKS.hbmSpec.value / 1e12} TB/s | ${PEAKS.hbmSpec.source} |`);
  L.push("");
  L.push("**Floor** = max(fewest bytes / bandwidth, FLOPs / compute peak): with the measured pair (copy bandwidth; cuBLAS rate for tensor-core kernels, fp32 spec for the scan and conv1d, which run on CUDA cores), and with the spec pair (4.8 TB/s; 989 TFLOP/s or fp32 spec). **time / floor** ≥ 1; 1 would be a kernel at the roofline. The ratio column is run_suite.py's: peer time / Strata time, above 1 means Strata is faster.");
  L.push("");

  L.push("## Kernels (one suite run: the kernel harnesses and their peers in the same call)");
  L.push("");
  L.push("| kernel | shape | Strata ms | FLOPs | fewest bytes | FLOP/byte | achieved | floor ms (measured) | bound | time / floor | time / spec floor |");
  L.push("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
  for (const k of r.kernels) {
    const shape = shapeLabel(k) + (k.config ? ` (${k.config})` : "");
    if (!k.measured) {
      L.push(`| ${k.what} | ${shape} | ${NM} | ${k.cost ? big(k.cost.flops) + "FLOP" : "—"} | ${k.cost ? big(k.cost.bytes) + "B" : "—"} | ${k.cost ? fx(k.cost.flops / k.cost.bytes, 1) : "—"} | ${NM} | ${NM} | — | — | — |`);
      continue;
    }
    const achieved = k.cost
      ? k.floorBound === "memory" || (k.floorBound === undefined && k.cost.ceiling === "fp32")
        ? `${fx(k.tbps)} TB/s (${fx(k.tflops, 1)} TFLOP/s)`
        : `${fx(k.tflops, 0)} TFLOP/s (${fx(k.tbps)} TB/s)`
      : "—";
    const floor = k.floorMs !== undefined ? fx(k.floorMs, 3) : k.cost ? NM : "—";
    L.push(`| ${k.what} | ${shape} | ${fx(k.ms, 3)} | ${k.cost ? big(k.cost.flops) + "FLOP" : "—"} | ${k.cost ? big(k.cost.bytes) + "B" : "—"} | ${fx(k.intensity, 1)} | ${achieved} | ${floor} | ${k.floorBound ?? "—"} | ${k.floorMs ? fx(k.ms! / k.floorMs) : "—"} | ${k.floorSpecMs ? fx(k.ms! / k.floorSpecMs) : "—"} |`);
  }
  L.push("");
  L.push("### Peers (same run)");
  L.push("");
  L.push("| kernel | shape | peer | peer ms | peer / Strata (ratio) | peer time / floor |");
  L.push("| --- | --- | --- | --- | --- | --- |");
  for (const k of r.kernels) {
    for (const p of k.peers) {
      if (!p.measured) {
        L.push(`| ${k.what} | ${shapeLabel(k)} | ${p.label} | ${NM} | ${NM} | — |`);
        continue;
      }
      L.push(`| ${k.what} | ${shapeLabel(k)} | ${p.label} | ${fx(p.ms, 3)} | ${fx(p.ratio, 3)} | ${k.floorMs ? fx(p.ms! / k.floorMs) : "—"} |`);
    }
  }
  L.push("");
  L.push("The SSD, scan and conv1d peers are plain PyTorch (mamba_ssm and causal_conv1d are not installed on the GPU machine): their ratios are a sanity check, the floor is the yardstick.");
  L.push("");
  L.push("### Formulas");
  L.push("");
  const seen = new Set<string>();
  for (const k of r.kernels) {
    if (!k.cost || seen.has(k.family)) continue;
    seen.add(k.family);
    L.push(`- **${k.family}**: ${k.cost.formula} (${k.cost.ceiling === "tensor" ? "tensor-core ceiling" : "fp32 ceiling"}).`);
  }
  L.push("- Attention pairs: causal T = S → T·S/2; a decode query (T = 1) sees all S keys. bf16 = 2 bytes, f32 = 4.");
  L.push("");

  // whole-model rows
  L.push("## 8B Mamba-2-Hybrid forward (B1, T 4096)");
  L.push("");
  if (r.forward.length === 0) {
    L.push(`| run | forward | TFLOP/s | fraction of 790 | fraction of 989 |`);
    L.push("| --- | --- | --- | --- | --- |");
    L.push(`| — | ${NM} | ${NM} | ${NM} | ${NM} |`);
  } else {
    L.push("FLOPs per forward from the IR's op rules (`modelInfo`, written into the bundle); the log prints the rate, so FLOPs here = rate × time (the rate is rounded to 1 TFLOP/s: ±0.1 %).");
    L.push("");
    L.push("| run | model, T | forward ms (fastest of 5) | median ms | FLOPs | TFLOP/s | floor ms at 790 | fraction of 790 (measured) | floor ms at 989 | fraction of 989 (spec) |");
    L.push("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for (const f of r.forward) {
      const flops = f.tflops * 1e12 * f.ms * 1e-3;
      const f790 = (flops / PEAKS.bf16Measured.value) * 1e3;
      const f989 = (flops / PEAKS.bf16Spec.value) * 1e3;
      L.push(`| \`${f.source}\` | ${f.model}, ${f.T} | ${fx(f.ms, 1)} | ${f.medianMs !== undefined ? fx(f.medianMs, 1) : NM} | ${big(flops)}FLOP | ${fx(f.tflops, 0)} | ${fx(f790, 1)} | ${fx(f790 / f.ms)} | ${fx(f989, 1)} | ${fx(f989 / f.ms)} |`);
    }
  }
  L.push("");
  L.push("For scale (issue 10): the same model in PyTorch with Triton SSD kernels, SDPA and torch.compile takes about 117 ms at T 4096 on this GPU (not measured by this suite). Target: ≥ 0.8 of the roofline.");
  L.push("");

  L.push("## Decode vs the HBM roofline (context 4096)");
  L.push("");
  L.push(`Source: ${r.decodeSource ? `\`${r.decodeSource}\`` : NM}.`);
  L.push("");
  L.push("Roofline per step = (weight bytes + B · (state read + written + KV cache read + one KV row written)) / bandwidth (tests/gpu/decode_bench.py). The fraction against the 4.8 TB/s spec is the measured fraction × measured bandwidth / 4.8 TB/s.");
  L.push("");
  L.push("| model | batch | tok/s | ms/step | roofline tok/s (copy bw) | fraction | roofline tok/s (4.8 TB/s) | fraction of spec |");
  L.push("| --- | --- | --- | --- | --- | --- | --- | --- |");
  const decodeRow = (d: DecodeRow) => {
    if (d.fits === false) return `| ${d.model} | ${d.batch} | the state does not fit | | | | | |`;
    if (d.tokPerS === undefined || d.rooflineTokPerS === undefined || bw === undefined) return `| ${d.model} | ${d.batch} | ${d.tokPerS !== undefined ? fx(d.tokPerS, 0) : NM} | ${fx(d.msPerStep)} | ${NM} | ${NM} | ${NM} | ${NM} |`;
    const specRoof = (d.rooflineTokPerS * PEAKS.hbmSpec.value) / bw;
    return `| ${d.model} | ${d.batch} | ${fx(d.tokPerS, 0)} | ${fx(d.msPerStep)} | ${fx(d.rooflineTokPerS, 0)} | ${fx(d.tokPerS / d.rooflineTokPerS)} | ${fx(specRoof, 0)} | ${fx(d.tokPerS / specRoof)} |`;
  };
  if (!r.decode || r.decode.decode.length === 0) L.push(`| — | — | ${NM} | | | | | |`);
  else for (const d of r.decode.decode) L.push(decodeRow(d));
  L.push("");
  L.push("Largest batch that fits (the paper's comparison):");
  L.push("");
  L.push("| model | context | batch | tok/s | ms/step | roofline tok/s (copy bw) | fraction |");
  L.push("| --- | --- | --- | --- | --- | --- | --- |");
  if (!r.decode || r.decode.paper.length === 0) L.push(`| — | — | — | ${NM} | | | |`);
  else for (const d of r.decode.paper) L.push(`| ${d.model} | ${d.context} | ${d.batch} | ${fx(d.tokPerS, 0)} | ${fx(d.msPerStep)} | ${fx(d.rooflineTokPerS, 0)} | ${d.tokPerS !== undefined && d.rooflineTokPerS ? fx(d.tokPerS / d.rooflineTokPerS) : NM} |`);
  L.push("");
  if (r.decode && r.decode.ttft.length) {
    L.push("Time to first token (batch 1): " + r.decode.ttft.map((t) => `${t.model} ${t.context}: ${fx(t.ttftMs, 0)} ms`).join("; ") + ".");
    L.push("");
  }

  L.push("Tiny models, batch 1, 64 new tokens, against HF transformers' `generate` on the same weights:");
  L.push("");
  L.push("| model | Strata tok/s | HF tok/s | Strata / HF |");
  L.push("| --- | --- | --- | --- |");
  if (!r.decode || r.decode.tiny.length === 0) L.push(`| — | ${NM} | ${NM} | ${NM} |`);
  else
    for (const t of r.decode.tiny) {
      // a note (e.g. HF ran without its cache: a slower peer) goes with the ratio, which is then not comparable
      const ratio = t.ratio !== undefined ? `${fx(t.ratio, 1)}${t.hfNote ? ` (${t.hfNote.replace(/\|/g, "\\|")})` : ""}` : NM;
      L.push(`| ${t.model} | ${t.strataTokPerS !== undefined ? fx(t.strataTokPerS, 0) : NM} | ${t.hfTokPerS !== undefined ? fx(t.hfTokPerS, 0) : `${NM} (${(t.hfError ?? "no figure").replace(/\|/g, "\\|")})`} | ${ratio} |`);
    }
  L.push("");

  L.push("## Training: ~0.85B hybrid, Strata vs PyTorch");
  L.push("");
  L.push("MFU = tokens/s · FLOPs/token / peak (tests/gpu/train_flops.py; train_bench.py uses the 989 TFLOP/s spec). The last column restates it against the 790 TFLOP/s measured rate.");
  L.push("");
  L.push("| implementation | batch × seq | tokens/s | MFU (of 989) | of 790 measured | Strata / this |");
  L.push("| --- | --- | --- | --- | --- | --- |");
  const strata = r.train.find((t) => t.impl === "strata");
  const trainRows: { name: string; row?: TrainRow }[] = [
    { name: "strata", row: strata },
    { name: "pytorch eager", row: r.train.find((t) => t.impl === "pytorch" && (t.mode ?? "eager") === "eager") },
    { name: "pytorch torch.compile", row: r.train.find((t) => t.impl === "pytorch" && t.mode === "compile") },
  ];
  for (const { name, row } of trainRows) {
    if (!row) {
      L.push(`| ${name} | — | ${NM} | ${NM} | ${NM} | ${NM} |`);
      continue;
    }
    L.push(`| ${name} | ${row.batch ?? "—"} × ${row.seq ?? "—"} | ${fx(row.tokensPerS, 0)} | ${fx(row.mfu * 100, 1)} % | ${fx((row.mfu * PEAKS.bf16Spec.value * 100) / PEAKS.bf16Measured.value, 1)} % | ${strata ? fx(strata.tokensPerS / row.tokensPerS) : NM} |`);
  }
  if (!trainRows[2].row) L.push("", "torch.compile has no row in this log (docs/TRAINING.md records a separate peer-only run).");
  L.push("");

  L.push("## Probe experiment throughput (training, tiny models)");
  L.push("");
  L.push("| model | task | tokens/s | seconds | held-out accuracy |");
  L.push("| --- | --- | --- | --- | --- |");
  if (r.probes.length === 0) L.push(`| — | — | ${NM} | | |`);
  for (const p of r.probes) L.push(`| ${p.model} | ${p.task} | ${p.tokPerS} | ${p.seconds} | ${p.accuracy} % |`);
  L.push("");
  return L.join("\n");
}

// ---------------------------------------------------------------------------------------------
// Roofline SVG (log-log; written by hand, no dependencies)

export interface RooflinePoint { label: string; detail: string; intensity: number; tflops: number }

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

export function rooflinePoints(r: Report): RooflinePoint[] {
  return r.kernels
    .filter((k) => k.measured && k.intensity !== undefined && k.tflops !== undefined)
    .map((k) => ({ label: k.what, detail: `${shapeLabel(k)}, ${k.ms!.toFixed(3)} ms`, intensity: k.intensity!, tflops: k.tflops! }));
}

export function renderRoofline(points: RooflinePoint[], copyBandwidth: number | undefined): string {
  const W = 1180, H = 620;
  const pl = 80, pr = 470, pt = 50, pb = 70; // plot area margins; the legend sits on the right
  const pw = W - pl - pr, ph = H - pt - pb;
  const xs = points.map((p) => p.intensity);
  const lx0 = Math.min(0, Math.floor(Math.log10(Math.min(...xs, 1))));
  const lx1 = Math.max(4, Math.ceil(Math.log10(Math.max(...xs, 1))));
  const ys = points.map((p) => p.tflops);
  const ly0 = Math.min(0, Math.floor(Math.log10(Math.min(...ys, 1))));
  const ly1 = Math.log10(3000);
  const X = (v: number) => pl + ((Math.log10(v) - lx0) / (lx1 - lx0)) * pw;
  const Y = (v: number) => pt + ph - ((Math.log10(v) - ly0) / (ly1 - ly0)) * ph;
  const o: string[] = [];
  o.push(`<?xml version="1.0" encoding="UTF-8"?>`);
  o.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  o.push(`<title>Roofline, H200: Strata kernels (GPU suite)</title>`);
  o.push(`<rect x="0" y="0" width="${W}" height="${H}" fill="white"/>`);
  o.push(`<text x="${pl + pw / 2}" y="24" text-anchor="middle" font-size="16">Roofline, H200 (bf16): Strata kernels from the GPU suite</text>`);
  o.push(`<clipPath id="plot"><rect x="${pl}" y="${pt}" width="${pw}" height="${ph}"/></clipPath>`);
  // grid and ticks
  for (let e = lx0; e <= lx1; e++) {
    const x = X(10 ** e);
    o.push(`<line x1="${x.toFixed(1)}" y1="${pt}" x2="${x.toFixed(1)}" y2="${pt + ph}" stroke="#ddd"/>`);
    o.push(`<text x="${x.toFixed(1)}" y="${pt + ph + 18}" text-anchor="middle">${esc(fmtTick(10 ** e))}</text>`);
  }
  for (let e = Math.ceil(ly0); e <= Math.floor(ly1); e++) {
    const y = Y(10 ** e);
    o.push(`<line x1="${pl}" y1="${y.toFixed(1)}" x2="${pl + pw}" y2="${y.toFixed(1)}" stroke="#ddd"/>`);
    o.push(`<text x="${pl - 8}" y="${(y + 4).toFixed(1)}" text-anchor="end">${esc(fmtTick(10 ** e))}</text>`);
  }
  o.push(`<rect x="${pl}" y="${pt}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`);
  o.push(`<text x="${pl + pw / 2}" y="${H - 20}" text-anchor="middle" font-size="14">arithmetic intensity (FLOP / byte, fewest bytes)</text>`);
  o.push(`<text x="20" y="${pt + ph / 2}" text-anchor="middle" font-size="14" transform="rotate(-90 20 ${pt + ph / 2})">achieved TFLOP/s</text>`);
  // ceilings: min(AI · BW, peak), drawn as polylines
  const ceilings: { name: string; bw: number; peak: number; color: string; dash: string }[] = [];
  ceilings.push({ name: "spec: 4.8 TB/s, 989 TFLOP/s bf16", bw: PEAKS.hbmSpec.value, peak: PEAKS.bf16Spec.value, color: "#999", dash: "6 4" });
  if (copyBandwidth !== undefined)
    ceilings.push({ name: `measured: ${(copyBandwidth / 1e12).toFixed(2)} TB/s copy, 790 TFLOP/s cuBLAS`, bw: copyBandwidth, peak: PEAKS.bf16Measured.value, color: "#c0392b", dash: "" });
  ceilings.push({ name: "fp32 CUDA cores (spec 67 TFLOP/s; scan, conv1d)", bw: copyBandwidth ?? PEAKS.hbmSpec.value, peak: PEAKS.fp32Spec.value, color: "#2980b9", dash: "2 3" });
  o.push(`<g clip-path="url(#plot)">`);
  for (const c of ceilings) {
    const ridge = c.peak / c.bw;
    const a0 = 10 ** lx0, a1 = 10 ** lx1;
    const pts = [[a0, (a0 * c.bw) / 1e12], [ridge, c.peak / 1e12], [a1, c.peak / 1e12]]
      .map(([a, t]) => `${X(a).toFixed(1)},${Y(t).toFixed(1)}`)
      .join(" ");
    o.push(`<polyline points="${pts}" fill="none" stroke="${c.color}" stroke-width="2"${c.dash ? ` stroke-dasharray="${c.dash}"` : ""}/>`);
  }
  o.push(`</g>`);
  // points, numbered; each number goes to the nearest free spot around its point (growing rings of
  // 8 directions), with a leader line when it had to move away; the legend names them
  const taken: [number, number, number, number][] = points.map((p) => { const x = X(p.intensity), y = Y(p.tflops); return [x - 7, y - 7, x + 7, y + 7]; });
  const overlaps = (b: [number, number, number, number]) => taken.some((t) => b[0] < t[2] && t[0] < b[2] && b[1] < t[3] && t[1] < b[3]);
  const spots: [number, number, number][] = [];
  for (const r of [11, 24, 38, 52, 66])
    for (const a of [0, -45, 45, -90, 90, -135, 135, 180]) spots.push([r * Math.cos((a * Math.PI) / 180), r * Math.sin((a * Math.PI) / 180), r]);
  const centres = points.map((p) => [X(p.intensity), Y(p.tflops)] as const);
  // does the leader from point i to (sx, sy) pass within 6 px of another point?
  const crosses = (i: number, sx: number, sy: number) =>
    centres.some(([cx, cy], j) => {
      if (j === i) return false;
      const [x0, y0] = centres[i];
      const [dx, dy] = [sx - x0, sy - y0];
      const t = Math.max(0, Math.min(1, ((cx - x0) * dx + (cy - y0) * dy) / (dx * dx + dy * dy || 1)));
      return Math.hypot(x0 + t * dx - cx, y0 + t * dy - cy) < 6;
    });
  const placed = centres.map(([x, y], i) => {
    const w = String(i + 1).length * 7 + 2, h = 12;
    // the label box is centred on the spot
    const box = (s: [number, number, number]): [number, number, number, number] => [x + s[0] - w / 2, y + s[1] - h / 2, x + s[0] + w / 2, y + s[1] + h / 2];
    const at = spots.find((s) => !overlaps(box(s)) && !crosses(i, x + s[0], y + s[1])) ?? spots.find((s) => !overlaps(box(s))) ?? spots[0];
    taken.push(box(at));
    return at;
  });
  // leaders under the circles, numbers on top
  placed.forEach((at, i) => {
    if (at[2] <= 11) return;
    const [x, y] = centres[i];
    const d = Math.hypot(at[0], at[1]);
    const [ux, uy] = [at[0] / d, at[1] / d];
    o.push(`<line x1="${x.toFixed(1)}" y1="${y.toFixed(1)}" x2="${(x + (d - 7) * ux).toFixed(1)}" y2="${(y + (d - 7) * uy).toFixed(1)}" stroke="#555" stroke-width="0.8"/>`);
  });
  points.forEach((p, i) => {
    const [x, y] = centres[i];
    o.push(`<circle cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="5" fill="#27ae60" fill-opacity="0.85" stroke="#145a32"><title>${esc(`${i + 1}. ${p.label}, ${p.detail}: ${p.tflops.toFixed(1)} TFLOP/s at ${p.intensity.toFixed(1)} FLOP/B`)}</title></circle>`);
  });
  placed.forEach((at, i) => {
    const [x, y] = centres[i];
    o.push(`<text x="${(x + at[0]).toFixed(1)}" y="${(y + at[1] + 4).toFixed(1)}" font-size="11" text-anchor="middle">${i + 1}</text>`);
  });
  // legend
  const lx = pl + pw + 20;
  let ly = pt + 6;
  o.push(`<text x="${lx}" y="${ly}" font-size="13" font-weight="bold">Ceilings</text>`);
  for (const c of ceilings) {
    ly += 18;
    o.push(`<line x1="${lx}" y1="${ly - 4}" x2="${lx + 28}" y2="${ly - 4}" stroke="${c.color}" stroke-width="2"${c.dash ? ` stroke-dasharray="${c.dash}"` : ""}/>`);
    o.push(`<text x="${lx + 34}" y="${ly}" font-size="11">${esc(c.name)}</text>`);
  }
  ly += 28;
  o.push(`<text x="${lx}" y="${ly}" font-size="13" font-weight="bold">Kernels (Strata, achieved)</text>`);
  if (points.length === 0) {
    ly += 18;
    o.push(`<text x="${lx}" y="${ly}" font-size="11">not measured</text>`);
  }
  points.forEach((p, i) => {
    ly += 17;
    o.push(`<text x="${lx}" y="${ly}" font-size="11">${esc(`${i + 1}. ${p.label}: ${p.tflops.toFixed(p.tflops >= 100 ? 0 : 1)} TFLOP/s`)}</text>`);
  });
  o.push(`</svg>`);
  return o.join("\n") + "\n";
}

function fmtTick(v: number): string {
  if (v >= 1) return String(Math.round(v));
  return String(Number(v.toPrecision(1)));
}

// ---------------------------------------------------------------------------------------------
// CLI

/**
 * The harness label (tests/gpu/gemm_test.cu) of the tile config the code generator emits for a
 * GEMM row on sm_90a (kernels/tiles.ts defaultTiles: the wave model's choice for the shape): its
 * row is the one reported.
 */
function generatedConfig(family: string, shape: string): string | undefined {
  if (family !== "gemm" && family !== "gemm+epi") return undefined;
  const m = shape.match(/^(\d+)x(\d+)x(\d+)/);
  if (!m) return undefined;
  const t = defaultTiles("forward", "wgmma", Number(m[1]), Number(m[2]), Number(m[3]));
  if (t.backend !== "wgmma") return undefined;
  // a bias + residual epilogue reads a per-token tensor: the staged epilogue where the tiles take it
  const staged = family === "gemm+epi" && stagedEpilogueFits(t) ? "e" : "";
  return `${t.pp ? "pp" : t.ws ? "ws" : "wgmma"}${t.bm}x${t.bn}s${t.stages}${staged}`;
}

export const DEFAULT_INPUTS: InputNames = {
  suite: "docs/gpu-suite-2026-11-30-session6.log",
  trainSuite: "docs/gpu-suite-2026-11-30-session3.log",
  decode: "docs/decode-bench-2026-11-30-session4.json",
  trainBench: "docs/train-bench-2026-11-30-session6.log",
  probes: "docs/probes-2026-11-30.log",
};

const FLAGS: Record<string, keyof InputNames> = {
  "--suite": "suite",
  "--train-suite": "trainSuite",
  "--decode": "decode",
  "--train-bench": "trainBench",
  "--probes": "probes",
};

export function main(argv: string[], repo: string): { markdown: string; svg: string; out: string } {
  const names: InputNames = { ...DEFAULT_INPUTS };
  let out = "docs";
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[i + 1];
    if (a === "--out" && v) (out = v), i++;
    else if (a in FLAGS && v) (names[FLAGS[a]] = v), i++;
    else throw new Error(`report.ts: unknown argument ${a} (use --out DIR, ${Object.keys(FLAGS).map((f) => `${f} FILE`).join(", ")})`);
  }
  const read = (p: string) => {
    const abs = path.resolve(repo, p);
    return fs.existsSync(abs) ? fs.readFileSync(abs, "utf8") : undefined;
  };
  const inputs: Inputs = {};
  for (const k of Object.keys(names) as (keyof InputNames)[]) {
    const t = read(names[k]);
    if (t !== undefined) inputs[k] = t;
  }
  const report = buildReport(inputs, names);
  const markdown = renderMarkdown(report);
  const svg = renderRoofline(rooflinePoints(report), report.copyBandwidth);
  const dir = path.resolve(repo, out);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "BENCHMARKS.md"), markdown);
  fs.writeFileSync(path.join(dir, "roofline.svg"), svg);
  return { markdown, svg, out: dir };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
  const r = main(process.argv.slice(2), repo);
  console.error(`wrote ${path.join(r.out, "BENCHMARKS.md")} and ${path.join(r.out, "roofline.svg")}`);
}
