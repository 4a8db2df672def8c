/**
 * Tile configurations of the tensor-core GEMM pipeline (include/gemm.cuh's WgmmaConfig /
 * MmaConfig), shared by the forward GEMM family (gemm.ts) and the backward GEMMs (matmul.ts,
 * whose include/matmul.cuh runs the same configs with transposed operands).
 */
/** The tile configurations of include/gemm.cuh (its WgmmaConfig / MmaConfig templates). */
export type GemmTiles =
  | { backend: "wgmma"; bm: number; bn: number; stages: number }
  | { backend: "mma"; bm: number; bn: number; stages: number; warpsM: number; warpsN: number };

/** Defaults measured on the H200 (tests/gpu/gemm_test.cu): 4 warpgroups × m64n128, 192 KB smem. */
export const DEFAULT_GEMM_TILES: Record<"wgmma" | "mma", GemmTiles> = {
  wgmma: { backend: "wgmma", bm: 256, bn: 128, stages: 4 },
  // 3 stages: 145 KB of shared memory, within an A100 block's 163 KB (4 stages need 193 KB)
  mma: { backend: "mma", bm: 128, bn: 256, stages: 3, warpsM: 2, warpsN: 4 },
};

export function gemmConfigType(t: GemmTiles): string {
  return t.backend === "wgmma" ? `strata::gemm::WgmmaConfig<${t.bm}, ${t.bn}, ${t.stages}>` : `strata::gemm::MmaConfig<${t.bm}, ${t.bn}, ${t.stages}, ${t.warpsM}, ${t.warpsN}>`;
}
