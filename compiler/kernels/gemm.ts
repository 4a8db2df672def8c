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
import { elementIndex } from "../codegen/tensors.js";
import { enforce, need, stride8, tokenRef } from "./common.js";
import type { FusionGroup, KernelFamilyModule, RenderContext } from "./family.js";
import { absorbLinearEpilogue, matmul } from "./matmul.js";
import { renderRowPrologue, rowPrologueVeto } from "./row.js";
import { convStepVeto, renderConvStep } from "./conv1d.js";
import { cacheStepVeto, renderCacheStep } from "./cache-append.js";
import { tunedSmallerBuckets, tunedTiles } from "../tune/db.js";
import { epilogueReads } from "../tune/epilogue.js";

export { DEFAULT_FORWARD_GEMM_TILES, DEFAULT_GEMM_TILES, gemmConfigType, type GemmTiles } from "./tiles.js";
import { DEFAULT_FORWARD_GEMM_TILES, defaultSmallerBuckets, defaultTiles, gemmConfigType } from "./tiles.js";

/** Threads of a GEMV block (include/gemv.cuh: 32 · kWarpsPerBlock; the template asserts it). */
export const GEMV_THREADS = 256;

/**
 * Largest weight (N·K elements) whose GEMV takes a decode step in its store: 4M bf16 = 8 MB,
 * about 2 µs of HBM streaming, where a launch and its gap cost as much as the GEMV itself. A larger
 * GEMV runs in several waves of blocks, where each block's serial step would hold its SM slot
 * while the next wave waits — not measured, so not taken.
 */
export const DECODE_STEP_MAX_WEIGHTS = 1 << 22;

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
    const body = renderTemplate("gemm.cu.hbs", {
      fields,
      epilogue: lines.join("\n"),
      prologue,
      post: step?.code,
      postCheck: step?.check,
      callArgs: [bufs.callArgs(), ...(step?.args ?? [])].join(", "),
      gemvThreads: GEMV_THREADS,
      decls: bufs.declarations(),
      config: gemmConfigType(tiles),
      dispatch: smaller.map((d) => ({ maxM: d.maxM, config: gemmConfigType(d.tiles) })),
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
    return { group: g, template: "gemm.cu.hbs", body, buffers: bufs.args, tiles: { ...tiles, n, k, ...provenance, ...dispatch, ...pro } };
  },
};

export { KERNEL_NAME };
