/**
 * Tile configurations of the tensor-core GEMMs (include/gemm.cuh's WgmmaConfig / WsConfig /
 * MmaConfig; matmul.cuh runs WgmmaConfig and MmaConfig) as plain data: which ones are valid for a GPU target, and the
 * candidates `strata tune` times. The rules mirror the headers' static_asserts plus two limits
 * the compiler cannot check for us: the shared memory a CTA may opt into, and registers (the
 * wgmma accumulator holds BN/2 fp32 per thread; one CTA per SM, so 64K registers / threads).
 *
 * Imports nothing from compiler/kernels: the families import this (the lookup hook), not the
 * other way round.
 */
import { z } from "zod";

export type Arch = "sm_90a" | "sm_90" | "sm_80";

/**
 * One tile configuration (the shape of gemm.ts's and matmul.ts's tiles). `ws`: the
 * warp-specialized persistent TMA kernel (gemm.cuh's WsConfig: a producer warpgroup and two
 * consumer warpgroups) instead of the cp.async one (WgmmaConfig); the forward GEMM and the backward
 * GEMMs (matmul.cuh matmul_ws_kernel, bf16 operands; an f32 operand takes the cp.async kernel).
 * `pp`: its ping-pong variant (gemm.cuh's PpConfig: each consumer warpgroup owns a whole BM × BN
 * tile and the two take the CTA's tiles in turn, one's epilogue under the other's mainloop; the
 * backward GEMMs' matmul_pp_kernel likewise, bf16 operands).
 */
export type TileConfig =
  | { backend: "wgmma"; bm: number; bn: number; stages: number; ws?: true; pp?: true }
  | { backend: "mma"; bm: number; bn: number; stages: number; warpsM: number; warpsN: number };

export const TileConfigSchema = z.discriminatedUnion("backend", [
  z
    .object({ backend: z.literal("wgmma"), bm: z.number().int(), bn: z.number().int(), stages: z.number().int(), ws: z.literal(true).optional(), pp: z.literal(true).optional() })
    .strict(),
  z
    .object({ backend: z.literal("mma"), bm: z.number().int(), bn: z.number().int(), stages: z.number().int(), warpsM: z.number().int(), warpsN: z.number().int() })
    .strict(),
]);

/** The families whose tiles are tuned. */
export type TunedFamily = "gemm" | "matmul";

/** Largest dynamic shared memory one CTA may opt into (H100/H200: 227 KB; A100: 163 KB). */
export const SMEM_LIMIT: Record<Arch, number> = { sm_90a: 232448, sm_90: 232448, sm_80: 166912 };
const ROW_BYTES = 128; // one 64-element bf16 k-row of a tile (gemm.cuh's kRowBytes)
/**
 * Registers a thread needs besides its accumulators (addresses, loop state, epilogue; mma.sync
 * also holds its A/B fragments: 192×256 with 3×4 warps, 128 accumulators of 170, spills).
 */
const REG_OVERHEAD = { wgmma: 40, mma: 64 } as const;

export const backendFor = (arch: Arch): TileConfig["backend"] => (arch === "sm_90a" ? "wgmma" : "mma");

export function smemBytes(t: TileConfig): number {
  // WsConfig also keeps a full and an empty mbarrier (8 bytes each) per stage; PpConfig two more
  const barriers = t.backend === "wgmma" && t.pp ? 16 * t.stages + 16 : t.backend === "wgmma" && t.ws ? 16 * t.stages : 0;
  return t.stages * (t.bm + t.bn) * ROW_BYTES + barriers + 1024;
}

export function threadsOf(t: TileConfig): number {
  if (t.backend === "wgmma") return t.ws || t.pp ? 3 * 128 : (t.bm / 64) * 128;
  return 32 * t.warpsM * t.warpsN;
}

/**
 * Why a tile configuration cannot run for this family on this target, or undefined when it can.
 * (matmul.cuh's operand loader also needs BM and BN in multiples of 64 for the mma path.)
 */
export function tileProblem(t: TileConfig, arch: Arch, family: TunedFamily): string | undefined {
  const ints = [t.bm, t.bn, t.stages, ...(t.backend === "mma" ? [t.warpsM, t.warpsN] : [])];
  if (!ints.every((v) => Number.isInteger(v) && v > 0)) return "tile sizes must be positive integers";
  if (t.backend !== backendFor(arch)) return `${arch} uses the ${backendFor(arch)} back-end, not ${t.backend}`;
  if (t.backend === "wgmma" && (t.pp || t.ws)) {
    // the TMA kernels with a producer warpgroup and two consumers: ping-pong (each consumer holds a
    // whole BM-row tile) or warp-specialized (the two split its rows)
    if (t.pp && t.ws) return "a tile configuration is either warp-specialized (ws) or ping-pong (pp), not both";
    if (t.pp && t.bm !== 64 && t.bm !== 128) return `PpConfig BM must be 64 or 128: one consumer warpgroup holds the whole tile (got ${t.bm})`;
    if (t.ws && t.bm !== 128 && t.bm !== 256) return `WsConfig BM must be 128 or 256: two consumer warpgroups of 64 or 128 rows (got ${t.bm})`;
    if (![64, 128, 256].includes(t.bn)) return `${t.pp ? "PpConfig" : "WsConfig"} BN must be 64, 128 or 256 (got ${t.bn})`;
    if (t.stages < 2) return `the TMA ring needs at least 2 stages (got ${t.stages})`;
    // a consumer holds its rows' m64 tiles × BN/2 fp32 accumulators within its 232 registers
    const acc = (t.bm / (t.pp ? 64 : 128)) * (t.bn / 2);
    if (acc > 128) return `${acc} accumulators per consumer thread: at most 128 fit its 232 registers`;
    const smem = smemBytes(t);
    if (smem > SMEM_LIMIT[arch]) return `needs ${smem} bytes of shared memory, more than the ${SMEM_LIMIT[arch]} a CTA can have on ${arch}`;
    return undefined;
  }
  if (t.backend === "wgmma") {
    if (t.bm % 64 !== 0 || t.bm > 256) return `wgmma BM must be 64, 128, 192 or 256 (got ${t.bm})`;
    if (![64, 128, 256].includes(t.bn)) return `wgmma BN must be 64, 128 or 256 (got ${t.bn})`;
    if (t.stages < 3) return `the wgmma pipeline needs at least 3 stages (got ${t.stages})`;
  } else {
    if (t.stages < 2) return `the mma pipeline needs at least 2 stages (got ${t.stages})`;
    if (t.bm % (16 * t.warpsM) !== 0 || t.bn % (16 * t.warpsN) !== 0) return `warp tiles must be multiples of 16 (${t.bm}/${t.warpsM} × ${t.bn}/${t.warpsN})`;
    if (threadsOf(t) % 64 !== 0 || threadsOf(t) > 1024) return `mma needs a multiple of 64 threads, at most 1024 (got ${threadsOf(t)})`;
    if (family === "matmul" && (t.bm % 64 !== 0 || t.bn % 64 !== 0)) return `matmul tiles need BM and BN in multiples of 64 (got ${t.bm}×${t.bn})`;
  }
  const smem = smemBytes(t);
  if (smem > SMEM_LIMIT[arch]) return `needs ${smem} bytes of shared memory, more than the ${SMEM_LIMIT[arch]} a CTA can have on ${arch}`;
  const threads = threadsOf(t);
  const acc = t.backend === "wgmma" ? t.bn / 2 : (t.bm / t.warpsM) * (t.bn / t.warpsN) / 32;
  const regs = Math.min(255, Math.floor(65536 / threads / 8) * 8);
  if (acc + REG_OVERHEAD[t.backend] > regs) return `${acc} accumulator registers per thread leave too few of the ${regs} a thread of ${threads} can have (it would spill)`;
  return undefined;
}

/** A short stable name: `pp_128x128x6`, `ws_128x256x4`, `wgmma_128x256x4`, `mma_128x256x4_w2x4`. */
export function tileName(t: TileConfig): string {
  if (t.backend === "wgmma") return `${t.pp ? "pp" : t.ws ? "ws" : "wgmma"}_${t.bm}x${t.bn}x${t.stages}`;
  return `mma_${t.bm}x${t.bn}x${t.stages}_w${t.warpsM}x${t.warpsN}`;
}

/** The C++ config type (gemm.cuh). */
export function tileConfigType(t: TileConfig): string {
  if (t.backend === "wgmma") return `strata::gemm::${t.pp ? "PpConfig" : t.ws ? "WsConfig" : "WgmmaConfig"}<${t.bm}, ${t.bn}, ${t.stages}>`;
  return `strata::gemm::MmaConfig<${t.bm}, ${t.bn}, ${t.stages}, ${t.warpsM}, ${t.warpsN}>`;
}

export const sameTiles = (a: TileConfig, b: TileConfig): boolean => tileName(a) === tileName(b);

/** Warps of an mma tile: 64×64 warp tiles where they fit, at least 4 warps. */
function mmaWarps(bm: number, bn: number): { warpsM: number; warpsN: number } {
  let warpsM = Math.max(1, bm / 64);
  let warpsN = Math.max(1, bn / 64);
  while (warpsM * warpsN < 4) {
    if (bn / warpsN >= 64) warpsN *= 2;
    else warpsM *= 2;
  }
  return { warpsM, warpsN };
}

/**
 * The candidates `strata tune` times for a family on a target, default first: every valid
 * (BM, BN, stages) of the back-end with 3–6 stages (mma: 2–5), in a fixed order; on sm_90a also
 * every valid warp-specialized (WsConfig) and ping-pong (PpConfig) one.
 */
export function tileCandidates(arch: Arch, family: TunedFamily, defaults: TileConfig): TileConfig[] {
  const out: TileConfig[] = [defaults];
  const b = backendFor(arch);
  const bms = [64, 128, 192, 256];
  const bns = [64, 128, 256];
  const stages = b === "wgmma" ? [3, 4, 5, 6] : [2, 3, 4, 5];
  // the plain kernels, then on sm_90a the warp-specialized and the ping-pong ones
  const kinds: { bms: number[]; tiles: (bm: number, bn: number, stages: number) => TileConfig }[] = [
    { bms, tiles: (bm, bn, s) => (b === "wgmma" ? { backend: "wgmma", bm, bn, stages: s } : { backend: "mma", bm, bn, stages: s, ...mmaWarps(bm, bn) }) },
    ...(b === "wgmma"
      ? [
          { bms: [128, 256], tiles: (bm: number, bn: number, s: number): TileConfig => ({ backend: "wgmma", bm, bn, stages: s, ws: true }) },
          { bms: [64, 128], tiles: (bm: number, bn: number, s: number): TileConfig => ({ backend: "wgmma", bm, bn, stages: s, pp: true }) },
        ]
      : []),
  ];
  for (const k of kinds)
    for (const bm of k.bms)
      for (const bn of bns)
        for (const s of stages) {
          const t = k.tiles(bm, bn, s);
          if (!tileProblem(t, arch, family) && !out.some((o) => sameTiles(o, t))) out.push(t);
        }
  return out;
}
