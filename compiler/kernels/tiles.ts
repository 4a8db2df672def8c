/**
 * Tile configurations of the tensor-core GEMM pipeline (include/gemm.cuh's WsConfig /
 * WgmmaConfig / MmaConfig), shared by the forward GEMM family (gemm.ts) and the backward GEMMs
 * (matmul.ts, whose include/matmul.cuh runs all three with transposed operands). The type, its
 * checks and its C++ rendering live in tune/configs.ts.
 */
import { tileConfigType, type TileConfig } from "../tune/configs.js";
import { smallerBuckets } from "../tune/db.js";

/** The tile configurations of include/gemm.cuh. */
export type GemmTiles = TileConfig;

/**
 * Defaults of the backward GEMMs (matmul.ts): on sm_90a the warp-specialized persistent TMA kernel
 * (include/matmul.cuh matmul_ws_kernel), 128×256 tiles, 4 stages — 709–761 TFLOP/s on the dgrad and
 * 685–786 on the wgrad of M = 16384 × [4096 | 18560] × 4096, 1.35–1.56× the cp.async
 * WgmmaConfig<256,128,4> and 0.93–1.03× cuBLAS (H200, tests/gpu/matmul_test.cu,
 * docs/matmul-harness-2026-11-30-session4.log); mma.sync elsewhere.
 */
export const DEFAULT_GEMM_TILES: Record<"wgmma" | "mma", GemmTiles> = {
  wgmma: { backend: "wgmma", bm: 128, bn: 256, stages: 4, ws: true },
  // 3 stages: 145 KB of shared memory, within an A100 block's 163 KB (4 stages need 193 KB)
  mma: { backend: "mma", bm: 128, bn: 256, stages: 3, warpsM: 2, warpsN: 4 },
};

/**
 * Defaults of the forward GEMM (gemm.ts) when the rows are unknown: on sm_90a the ping-pong
 * warp-specialized persistent TMA kernel (gemm.cuh's PpConfig), 128×128 tiles, 6 stages — 1.01–1.17×
 * the warp-specialized WsConfig<128,256,4> on five of the 8B hybrid's six M = 16384 shapes and
 * 0.95× on the sixth (K = 16384), 0.89–1.17× cuBLAS (H200, tests/gpu/gemm_test.cu --pingpong,
 * docs/PERF-NOTES.md). With the rows known, `defaultTiles` chooses.
 */
export const DEFAULT_FORWARD_GEMM_TILES: Record<"wgmma" | "mma", GemmTiles> = {
  wgmma: { backend: "wgmma", bm: 128, bn: 128, stages: 6, pp: true },
  mma: DEFAULT_GEMM_TILES.mma,
};

export const gemmConfigType = (t: GemmTiles): string => tileConfigType(t);

/** Streaming multiprocessors the wave model assumes on sm_90a (H100 SXM and H200: 132). */
export const WAVE_SMS = 132;

type WaveKind = "forward" | "dgrad" | "wgrad";
// the ping-pong 128×128 tile is the forward default above
const PP_128 = DEFAULT_FORWARD_GEMM_TILES.wgmma;
const PP_64x256: GemmTiles = { backend: "wgmma", bm: 64, bn: 256, stages: 5, pp: true };

/**
 * The wave model of the untuned default, per GEMM kind on sm_90a: its candidates, each with its
 * throughput per busy SM relative to the 128×256 warp-specialized tile; the epilogue of one output
 * tile of the non-ping-pong kernels, in k-steps of its mainloop (`epilogueK`); and the ping-pong
 * tiles' mainloop cost relative to theirs (`ppMainloop`: a consumer warpgroup that holds the whole
 * tile streams more operand bytes per FLOP, but its epilogue runs under the other consumer's
 * mainloop, and only a CTA's last one shows). Fit to the H200 tuning runs of 2026-11-30
 * (tuning/results-*-session5.json: `strata tune` of the 0.85B hybrid's training GEMMs and the 8B
 * hybrid's forward, 7 candidates, 119 problems; docs/PERF-NOTES.md, "Untuned defaults").
 * Exported for tests/tune's fit check; not to be changed at run time.
 */
export const WAVE_MODEL: Record<WaveKind, { epilogueK: number; ppMainloop: number; candidates: { tiles: GemmTiles; eff: number }[] }> = {
  forward: {
    epilogueK: 768,
    ppMainloop: 1.05,
    candidates: [
      { tiles: PP_128, eff: 1 },
      { tiles: DEFAULT_GEMM_TILES.wgmma, eff: 1 },
      { tiles: { backend: "wgmma", bm: 128, bn: 128, stages: 5, ws: true }, eff: 0.97 },
      { tiles: { backend: "wgmma", bm: 128, bn: 64, stages: 4, ws: true }, eff: 0.5 },
      { tiles: PP_64x256, eff: 0.75 },
    ],
  },
  // the cp.async 64-row tile (0.57 of the cp.async 256×128 in the first tuning run, which ran at
  // ~0.68 of ws_128x256x4) for outputs of very few tiles
  dgrad: {
    epilogueK: 512,
    ppMainloop: 1.1,
    candidates: [
      { tiles: DEFAULT_GEMM_TILES.wgmma, eff: 1 },
      { tiles: { backend: "wgmma", bm: 128, bn: 128, stages: 5, ws: true }, eff: 0.95 },
      { tiles: { backend: "wgmma", bm: 64, bn: 128, stages: 4 }, eff: 0.39 },
      { tiles: PP_128, eff: 1 },
    ],
  },
  wgrad: {
    epilogueK: 400,
    ppMainloop: 1.1,
    candidates: [
      { tiles: DEFAULT_GEMM_TILES.wgmma, eff: 1 },
      { tiles: { backend: "wgmma", bm: 128, bn: 128, stages: 5, ws: true }, eff: 0.95 },
      { tiles: PP_128, eff: 1 },
    ],
  },
};

/** The tiles `defaultTiles` chooses among for a family (tune keeps them all in its bundles). */
export function waveCandidates(family: "gemm" | "matmul", backend: "wgmma" | "mma"): GemmTiles[] {
  if (backend === "mma") return [family === "gemm" ? DEFAULT_FORWARD_GEMM_TILES.mma : DEFAULT_GEMM_TILES.mma];
  const all = family === "gemm" ? WAVE_MODEL.forward.candidates : [...WAVE_MODEL.dgrad.candidates, ...WAVE_MODEL.wgrad.candidates];
  return all.map((c) => c.tiles).filter((t, i, a) => a.findIndex((u) => tileConfigType(u) === tileConfigType(t)) === i);
}

/**
 * The untuned tiles of one GEMM of M × N × K (M: the rows the project is compiled for, its
 * --max-tokens; a weight gradient's M is the weight's rows, its K the tokens): on sm_90a the
 * candidate with the least estimated time under the wave model (WAVE_MODEL) — ⌈output tiles /
 * SMs⌉ waves of BM·BN·(K + epilogueK) work each, or for a ping-pong tile BM·BN·K·ppMainloop a wave
 * and one exposed epilogue, divided by the candidate's relative throughput — so that few output
 * tiles (a small M or N) take smaller tiles that fill more SMs, a tile count just past a wave
 * boundary takes a shape that fits, and a short K (whose epilogue matters most) takes the
 * ping-pong tiles. Ties keep the earlier candidate. Elsewhere the mma.sync default. K defaults to
 * 4096 where the caller does not know it.
 */
export function defaultTiles(kind: WaveKind, backend: "wgmma" | "mma", m: number, n: number, k = 4096): GemmTiles {
  if (backend === "mma") return kind === "forward" ? DEFAULT_FORWARD_GEMM_TILES.mma : DEFAULT_GEMM_TILES.mma;
  const { epilogueK, ppMainloop, candidates } = WAVE_MODEL[kind];
  let best: GemmTiles | undefined;
  let bestCost = Infinity;
  const K = Math.max(1, k);
  for (const { tiles, eff } of candidates) {
    const out = Math.ceil(Math.max(1, m) / tiles.bm) * Math.ceil(Math.max(1, n) / tiles.bn);
    const waves = Math.ceil(out / WAVE_SMS);
    const area = tiles.bm * tiles.bn;
    const pp = tiles.backend === "wgmma" && tiles.pp;
    const cost = (pp ? waves * area * K * ppMainloop + area * epilogueK : waves * area * (K + epilogueK)) / eff;
    if (cost < bestCost * (1 - 1e-9)) [best, bestCost] = [tiles, cost];
  }
  return best!;
}

/**
 * Untuned counterpart of tune/db.ts `tunedSmallerBuckets` for the forward GEMM: the default tiles
 * of each token bucket below the project's own (a decode batch of 9–64 rows, a short prompt), so
 * that the launcher dispatches on the run-time M to tiles that fill the SMs at that size. Buckets
 * whose tiles equal the next larger one's are dropped; rows ≤ skipBelow take the GEMV.
 */
export function defaultSmallerBuckets(backend: "wgmma" | "mma", maxTokens: number, n: number, own: GemmTiles, skipBelow = 0, k = 4096): { maxM: number; tiles: GemmTiles }[] {
  if (backend === "mma") return [];
  return smallerBuckets(maxTokens, own, skipBelow, (b) => defaultTiles("forward", backend, b.max, n, k));
}
