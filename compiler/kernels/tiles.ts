/**
 * Tile configurations of the tensor-core GEMM pipeline (include/gemm.cuh's WsConfig /
 * WgmmaConfig / MmaConfig), shared by the forward GEMM family (gemm.ts) and the backward GEMMs
 * (matmul.ts, whose include/matmul.cuh runs the WgmmaConfig and MmaConfig tiles with transposed
 * operands). The type, its checks and its C++ rendering live in tune/configs.ts.
 */
import { tileConfigType, type TileConfig } from "../tune/configs.js";

/** The tile configurations of include/gemm.cuh. */
export type GemmTiles = TileConfig;

/**
 * Defaults of the backward GEMMs (matmul.ts), measured on the H200 (tests/gpu/gemm_test.cu):
 * 4 warpgroups × m64n128, 192 KB smem; mma.sync elsewhere.
 */
export const DEFAULT_GEMM_TILES: Record<"wgmma" | "mma", GemmTiles> = {
  wgmma: { backend: "wgmma", bm: 256, bn: 128, stages: 4 },
  // 3 stages: 145 KB of shared memory, within an A100 block's 163 KB (4 stages need 193 KB)
  mma: { backend: "mma", bm: 128, bn: 256, stages: 3, warpsM: 2, warpsN: 4 },
};

/**
 * Defaults of the forward GEMM (gemm.ts): on sm_90a the warp-specialized persistent TMA kernel,
 * 128×256 tiles, 4 stages — 1.21–1.42× the cp.async WgmmaConfig<256,128,4> on the 8B hybrid's six
 * M = 16384 shapes, 0.78–0.97× cuBLAS (H200, tests/gpu/gemm_test.cu, docs/PERF-NOTES.md).
 */
export const DEFAULT_FORWARD_GEMM_TILES: Record<"wgmma" | "mma", GemmTiles> = {
  wgmma: { backend: "wgmma", bm: 128, bn: 256, stages: 4, ws: true },
  mma: DEFAULT_GEMM_TILES.mma,
};

export const gemmConfigType = (t: GemmTiles): string => tileConfigType(t);
