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
import { tunedSmallerBuckets, tunedTiles } from "../tune/db.js";
import { epilogueReads } from "../tune/epilogue.js";

export { DEFAULT_FORWARD_GEMM_TILES, DEFAULT_GEMM_TILES, gemmConfigType, type GemmTiles } from "./tiles.js";
import { DEFAULT_FORWARD_GEMM_TILES, gemmConfigType } from "./tiles.js";

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
    const fields = bufs.params().split(", ").map((fl) => `    ${fl.replace(" __restrict__", "")};`).join("\n");
    // sm_90a: the warp-specialized TMA kernel; elsewhere the mma.sync tiles (both measured in tests/gpu/gemm_test.cu)
    const sig = { family: "gemm", path: "forward", n, k, ta: a.dtype, tb: w.dtype, mnA: false, mnB: false, out: o.dtype, ...epilogueReads(g, new Set([lin]), ctx) } as const;
    const defaults = DEFAULT_FORWARD_GEMM_TILES[ctx.arch === "sm_90a" ? "wgmma" : "mma"];
    const { tiles, provenance } = tunedTiles(ctx.tuning, ctx.arch, sig, defaults);
    // smaller run-time M (decode batches) dispatch to the tiles tuned for their bucket; ≤ 8 rows run the GEMV
    const smaller = tunedSmallerBuckets(ctx.tuning, ctx.arch, sig, defaults, tiles, 8);
    const body = renderTemplate("gemm.cu.hbs", {
      fields,
      epilogue: lines.join("\n"),
      decls: bufs.declarations(),
      callArgs: bufs.callArgs(),
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
    return { group: g, template: "gemm.cu.hbs", body, buffers: bufs.args, tiles: { ...tiles, n, k, ...provenance, ...dispatch } };
  },
};

export { KERNEL_NAME };
