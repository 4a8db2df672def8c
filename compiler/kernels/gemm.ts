/**
 * GEMM family: y = epilogue(x·Wᵀ) for `linear` anchors. Fusion: the single-consumer chain of
 * epilogue-able elementwise ops after the product (activation, gate, bias, residual add, cast),
 * applied to each pair of output columns in the kernel's store. Tiles: wgmma on sm_90a, mma.sync
 * elsewhere, as a typed config rendered into the template and written to the manifest. A `linear`
 * whose weight is not a plain param (the training graph's dgrad, linear(gy, transpose(W))) is
 * checked, fused and rendered by matmul.ts.
 */
import { getOp } from "../ir/registry.js";
import type { Node } from "../ir/node.js";
import { BufferTable } from "../codegen/buffers.js";
import { elementwiseExpr } from "../codegen/expr.js";
import { KERNEL_NAME, renderTemplate } from "../codegen/templates.js";
import { elementIndex, type TensorRef } from "../codegen/tensors.js";
import { enforce, need, stride8, tokenRef } from "./common.js";
import type { FusionGroup, KernelFamilyModule, RenderContext } from "./family.js";
import { absorbLinearEpilogue, matmul } from "./matmul.js";
import { renderRowPrologue, rowPrologueVeto } from "./row.js";
import { convStepVeto, renderConvStep } from "./conv1d.js";
import { cacheStepVeto, renderCacheStep } from "./cache-append.js";
import { tunedSmallerBuckets, tunedTiles } from "../tune/db.js";
import { SMEM_LIMIT } from "../tune/configs.js";
import { epilogueReads } from "../tune/epilogue.js";

export { DEFAULT_FORWARD_GEMM_TILES, DEFAULT_GEMM_TILES, gemmConfigType, type GemmTiles } from "./tiles.js";
import { DEFAULT_FORWARD_GEMM_TILES, defaultSmallerBuckets, defaultTiles, gemmConfigType, type GemmTiles } from "./tiles.js";

/** Threads of a GEMV block (include/gemv.cuh: 32 · kWarpsPerBlock; the template asserts it). */
export const GEMV_THREADS = 256;

/**
 * Largest weight (N·K elements) whose GEMV takes a decode step in its store: 4M bf16 = 8 MB,
 * about 2 µs of HBM streaming, where a launch and its gap cost as much as the GEMV itself. A larger
 * GEMV runs in several waves of blocks, where each block's serial step would hold its SM slot
 * while the next wave waits — not measured, so not taken.
 */
export const DECODE_STEP_MAX_WEIGHTS = 1 << 22;

/**
 * The staged epilogue (gemm.cuh `PpConfig<…, 8, true>`): accumulators through shared memory, the
 * group's per-token operands loaded for 16 rows a thread before the first store. Measured on the
 * H200 (tests/gpu/gemm_test.cu, M = 16384, bias + residual; three runs): 1.07–1.38× faster than
 * the fragment store on the 8B hybrid's K = 4096 shapes, within ±4% (noise) at K = 8192 and 16384;
 * with no per-token operand (a plain store) 1–4% slower. So it is taken only for a ping-pong tile
 * of BN ≤ 128 whose epilogue reads exactly one per-token tensor and whose every operand is bf16
 * with 4 contiguous columns (8-byte loads), output bf16 or f32 likewise.
 */
export function stagedEpilogueFits(t: GemmTiles): boolean {
  if (t.backend !== "wgmma" || !t.pp || t.bn > 128) return false;
  const barriers = Math.ceil(((2 * t.stages + 4) * 8) / 128) * 128;
  return t.stages * (t.bm + t.bn) * 128 + barriers + 64 * t.bn * 4 + 1024 <= SMEM_LIMIT.sm_90a;
}
const stagedConfigType = (t: GemmTiles): string => gemmConfigType(t).replace(/>$/, ", 8, true>");

/** Four columns of an operand are contiguous and 4-aligned in its row (8-byte bf16 / 16-byte f32 accesses). */
const vec4Ref = (r: TensorRef, F: readonly number[]): boolean =>
  r.capacityStride === undefined &&
  r.shape.slice(r.tokenDims).join() === F.join() &&
  r.offset % 4 === 0 &&
  (r.tokenDims === 0 || r.rowStride % 4 === 0);

/**
 * The 4-wide interface (Pre / Col / vec4_ok / col4 / pre4 / store4) of a GEMM group's epilogue, or
 * undefined where it does not apply (see above). The values are the store2 chain's, element by
 * element, so both paths give the same bits.
 */
function renderVec4(
  g: FusionGroup,
  lin: Node,
  out: Node,
  o: TensorRef,
  oi: number,
  bufs: BufferTable,
  ctx: RenderContext,
  F: number[],
  inside: Map<string, number>,
): string | undefined {
  if (!((o.dtype === "bf16" || o.dtype === "f32") && o.tokenDims === 2 && vec4Ref(o, F))) return undefined;
  const ext = new Map<string, { ref: TensorRef; slot: number; field: string; perToken: boolean }>();
  for (const m of g.nodes) {
    if (m === lin) continue;
    for (const x of m.inputs) {
      if (x === lin || inside.has(x.key) || ext.has(x.key)) continue;
      const r = ctx.ref(x);
      if (r.dtype !== "bf16" || !vec4Ref(r, F)) return undefined;
      const perToken = r.tokenDims === 2;
      const field = `${perToken ? "a" : "c"}${[...ext.values()].filter((e) => e.perToken === perToken).length}`;
      ext.set(x.key, { ref: r, slot: bufs.slot(r), field, perToken });
    }
  }
  const all = [...ext.values()];
  if (!all.some((e) => e.perToken)) return undefined; // a plain store: the fragment store is faster
  // one per-token operand at most: the staged store keeps 16 of each operand's Pre in registers
  // next to the accumulators, and with two or more ptxas spills under the ping-pong consumers'
  // 168-register cap (a 3-operand epilogue: 432 bytes of spill stores; 2: 196) — those keep the
  // fragment store
  if (all.filter((e) => e.perToken).length > 1) return undefined;
  const at = (e: { ref: TensorRef; slot: number }) => `p.p${e.slot} + ${elementIndex(e.ref, F, true, "col")}`;
  const ptr = (e: { ref: TensorRef; slot: number }) => `reinterpret_cast<uintptr_t>(p.p${e.slot} + ${e.ref.offset})`;
  const L: string[] = [];
  L.push(`  struct Pre { ${all.filter((e) => e.perToken).map((e) => `uint2 ${e.field};`).join(" ")} };`);
  const cols = all.filter((e) => !e.perToken);
  L.push(cols.length ? `  struct Col { ${cols.map((e) => `uint2 ${e.field};`).join(" ")} };` : `  struct Col {};`);
  const align = o.dtype === "f32" ? 15 : 7;
  L.push(`  static bool vec4_ok(const Params& p) {`);
  L.push(`    return (${all.map((e) => `${ptr(e)}`).join(" | ")}) % 8 == 0 && reinterpret_cast<uintptr_t>(p.p${oi} + ${o.offset}) % ${align + 1} == 0;`);
  L.push(`  }`);
  L.push(`  __device__ static Col col4(const Params& p, int col) {`);
  L.push(`    Col c;`);
  for (const e of cols) L.push(`    c.${e.field} = __ldg(reinterpret_cast<const uint2*>(${at(e)}));`);
  L.push(`    return c;`);
  L.push(`  }`);
  L.push(`  __device__ static Pre pre4(const Params& p, int row, int col) {`);
  L.push(`    Pre q;`);
  for (const e of all.filter((e) => e.perToken)) L.push(`    q.${e.field} = *reinterpret_cast<const uint2*>(${at(e)});`);
  L.push(`    return q;`);
  L.push(`  }`);
  L.push(`  __device__ static void store4(const Params& p, int row, int col, float4 acc, const Col& c, const Pre& q) {`);
  L.push(`    const float acc0 = acc.x, acc1 = acc.y, acc2 = acc.z, acc3 = acc.w;`);
  for (const j of [0, 1, 2, 3]) {
    const val = (m: Node): string => {
      if (m === lin) return `acc${j}`;
      if (inside.has(m.key)) return `e${j}_${inside.get(m.key)}`;
      const e = ext.get(m.key)!;
      return `strata::gemm::bf16x4_at(${e.perToken ? "q" : "c"}.${e.field}, ${j})`;
    };
    for (const m of g.nodes) if (m !== lin) L.push(`    const float e${j}_${inside.get(m.key)} = ${elementwiseExpr(m, m.inputs.map(val))};`);
    L.push(`    const float r${j} = ${val(out)};`);
  }
  const oIdx = elementIndex(o, F, true, "col");
  L.push(
    o.dtype === "bf16"
      ? `    *reinterpret_cast<uint2*>(p.p${oi} + ${oIdx}) = make_uint2(strata::pack_bf16x2(r0, r1), strata::pack_bf16x2(r2, r3));`
      : `    *reinterpret_cast<float4*>(p.p${oi} + ${oIdx}) = make_float4(r0, r1, r2, r3);`,
  );
  L.push(`  }`);
  return L.join("\n");
}

export const gemm: KernelFamilyModule = {
  family: "gemm",

  check(lin) {
    const w = lin.inputs[1]!;
    // a weight that is not a plain param (dgrad's transpose(W), a computed matrix): matmul.ts
    if (w.op !== "param") return matmul.check!(lin);
    const [n, k] = w.shape as [number, number];
    if (n % 8 !== 0 || k % 8 !== 0 || k < 8)
      return {
        message: `the GEMM kernel needs weight rows N and columns K that are multiples of 8 (K ≥ 8); ${w.attrs.name as string} is [${n}, ${k}]`,
        hint: "choose layer sizes that make this projection's width a multiple of 8 (for Mamba-2's in_proj, 2·d_inner + 2·groups·dState + heads)",
      };
    return undefined;
  },

  absorb(grp, f) {
    if (grp.anchor!.inputs[1]!.op !== "param") return absorbLinearEpilogue(grp, f); // dgrad: matmul.ts
    f.absorbEpilogue(grp, (e) => (getOp(e.op).epilogue ? undefined : `${e.op} is not an elementwise op a GEMM epilogue can apply`));
  },

  /**
   * At ≤ 8 rows the launcher takes the GEMV: each block then computes a norm's row itself (a few
   * KB read from L2, reduced as the row kernel does) instead of waiting for a row kernel's launch.
   */
  decodePrologue(grp, producer) {
    const lin = grp.anchor!;
    if (lin.op !== "linear" || lin.inputs[1]!.op !== "param") return "only the forward GEMM (a param weight) takes the GEMV path";
    if (lin.inputs[0] !== producer.outputs[0]) return "the GEMM must read the row group's value itself (not a view of it)";
    return rowPrologueVeto(producer, GEMV_THREADS);
  },

  /** At ≤ 8 rows: the conv1d step over a column slice of this GEMM's output, in the GEMV's store. */
  decodeStep(grp, consumer) {
    const lin = grp.anchor!;
    if (lin.op !== "linear" || lin.inputs[1]!.op !== "param") return "only the forward GEMM (a param weight) takes the GEMV path";
    if (consumer.kind !== "conv1d" && consumer.kind !== "cache_append") return false;
    if (grp.outputs.length !== 1) return "the GEMM stores more than one value";
    const [n, k] = lin.inputs[1]!.shape as [number, number];
    if (n * k > DECODE_STEP_MAX_WEIGHTS) return `the weight [${n}, ${k}] is over ${DECODE_STEP_MAX_WEIGHTS} elements: a GEMV of several waves (the step is measured only on one)`;
    return consumer.kind === "conv1d" ? convStepVeto(consumer, grp.outputs[0]!) : cacheStepVeto(consumer, grp.outputs[0]!);
  },

  render(g: FusionGroup, ctx: RenderContext) {
    const lin = g.anchor!;
    if (lin.inputs[1]!.op !== "param") return matmul.render(g, ctx);
    enforce(lin, gemm.check!(lin));
    const [x, w] = lin.inputs as [Node, Node];
    const bufs = new BufferTable();
    const a = tokenRef(ctx, x, lin, "GEMM input");
    need(stride8(a), lin, `GEMM input row stride ${a.rowStride} and offset ${a.offset} must be multiples of 8 elements (16-byte aligned rows)`);
    const [n, k] = w.shape as [number, number];
    const ai = bufs.slot(a);
    const wi = bufs.slot(ctx.ref(w));
    const out = g.outputs[0]!;
    need(g.outputs.length === 1 && out === g.nodes[g.nodes.length - 1], lin, "GEMM group must have a single output at the end of its epilogue chain");
    const o = ctx.outRef(out);
    const oi = bufs.slot(o, true);
    const F = [n];
    const inside = new Map(g.nodes.map((m, i) => [m.key, i]));
    const lines: string[] = [];
    for (const half of [0, 1]) {
      const col = half ? "(col + 1)" : "col";
      const val = (m: Node): string => {
        if (m === lin) return `acc${half}`;
        if (inside.has(m.key)) return `e${half}_${inside.get(m.key)}`;
        const r = ctx.ref(m);
        return `st::ld(p.p${bufs.slot(r)} + ${elementIndex(r, F, true, col)})`;
      };
      for (const m of g.nodes) if (m !== lin) lines.push(`    const float e${half}_${inside.get(m.key)} = ${elementwiseExpr(m, m.inputs.map(val))};`);
      lines.push(`    const float r${half} = ${val(out)};`);
    }
    const oIdx = elementIndex(o, F, true, "col");
    lines.push(o.dtype === "bf16" ? `    strata::store_bf16x2(p.p${oi} + ${oIdx}, r0, r1);` : `    strata::store_f32x2(p.p${oi} + ${oIdx}, r0, r1);`);
    // decode: the norm before this GEMM, computed by the GEMV's blocks (fuse.ts, decodePrologues)
    const prologue = g.prologue ? renderRowPrologue(g.prologue, ctx, bufs) : undefined;
    // decode: the conv1d or cache append after it, per column pair in the GEMV's store
    const step = g.decodeStep ? (g.decodeStep.kind === "conv1d" ? renderConvStep : renderCacheStep)(g.decodeStep, ctx, bufs) : undefined;
    let fields = bufs.params().split(", ").map((fl) => `    ${fl.replace(" __restrict__", "")};`).join("\n");
    if (step) fields += step.fields.map((f) => `\n    ${f}`).join("");
    // sm_90a: the warp-specialized TMA kernel; elsewhere the mma.sync tiles (both measured in tests/gpu/gemm_test.cu)
    const sig = { family: "gemm", path: "forward", n, k, ta: a.dtype, tb: w.dtype, mnA: false, mnB: false, out: o.dtype, ...epilogueReads(g, new Set([lin]), ctx) } as const;
    // untuned: the wave model's tiles for the project's max tokens (tiles.ts defaultTiles)
    const backend = ctx.arch === "sm_90a" ? "wgmma" : "mma";
    const defaults = ctx.maxTokens ? defaultTiles("forward", backend, ctx.maxTokens, n, k) : DEFAULT_FORWARD_GEMM_TILES[backend];
    const { tiles, provenance } = tunedTiles(ctx.tuning, ctx.arch, sig, defaults);
    // smaller run-time M (decode batches) dispatch to the tiles tuned for their bucket (or, untuned,
    // the wave model's for it); ≤ 8 rows run the GEMV
    const untunedAt = (m: number) => defaultTiles("forward", backend, m, n, k);
    const smaller = ctx.tuning
      ? tunedSmallerBuckets(ctx.tuning, ctx.arch, sig, defaults, tiles, 8, backend === "wgmma" ? untunedAt : undefined)
      : ctx.maxTokens
        ? defaultSmallerBuckets(backend, ctx.maxTokens, n, tiles, 8, k)
        : [];
    // the staged epilogue where its 4-wide interface applies and the tiles take it (see renderVec4)
    const vec4 = ctx.arch === "sm_90a" ? renderVec4(g, lin, out, o, oi, bufs, ctx, F, inside) : undefined;
    const configOf = (t: GemmTiles) => (vec4 && stagedEpilogueFits(t) ? stagedConfigType(t) : gemmConfigType(t));
    const staged = vec4 !== undefined && (stagedEpilogueFits(tiles) || smaller.some((d) => stagedEpilogueFits(d.tiles)));
    const body = renderTemplate("gemm.cu.hbs", {
      fields,
      epilogue: lines.join("\n"),
      vec4: staged ? vec4 : undefined,
      prologue,
      post: step?.code,
      postCheck: step?.check,
      callArgs: [bufs.callArgs(), ...(step?.args ?? [])].join(", "),
      gemvThreads: GEMV_THREADS,
      decls: bufs.declarations(),
      config: configOf(tiles),
      dispatch: smaller.map((d) => ({ maxM: d.maxM, config: configOf(d.tiles) })),
      a: ai,
      aOffset: a.offset,
      lda: a.rowStride,
      w: wi,
      n,
      k,
    });
    const dispatch: Record<string, string> = smaller.length ? { dispatch: smaller.map((d) => `M≤${d.maxM}: ${d.tiles.bm}×${d.tiles.bn}×${d.tiles.stages}`).join(", ") } : {};
    const pro: Record<string, string> = {
      ...(g.prologue ? { decodePrologue: g.prologue.nodes.map((m) => m.op).join("+") } : {}),
      ...(g.decodeStep ? { decodeStep: g.decodeStep.nodes.map((m) => m.op).join("+") } : {}),
    };
    const epi: Record<string, string> = vec4 && stagedEpilogueFits(tiles) ? { epilogue: "staged" } : {};
    return { group: g, template: "gemm.cu.hbs", body, buffers: bufs.args, tiles: { ...tiles, n, k, ...provenance, ...dispatch, ...pro, ...epi } };
  },
};

export { KERNEL_NAME };
