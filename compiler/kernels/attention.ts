/**
 * Attention family: causal softmax attention with GQA (include/attention.cuh), q/k/v read in
 * place through row strides. In a cached graph k and v are the KV caches after this call's rows
 * were appended (cacheAppend): the kernel reads S = P + T keys with the caches' batch stride.
 */
import type { Node } from "../ir/node.js";
import { BufferTable } from "../codegen/buffers.js";
import { floatLiteral } from "../codegen/expr.js";
import { renderTemplate } from "../codegen/templates.js";
import type { TensorRef } from "../codegen/tensors.js";
import { batchStride, enforce, need, stride8, tokenRef } from "./common.js";
import type { KernelFamilyModule } from "./family.js";

export interface AttentionTiles {
  headDim: number;
  /** attention.cuh's tuned defaults per head dim (DefaultTiles<D>). */
  tiles: "DefaultTiles";
}

export const attention: KernelFamilyModule = {
  family: "attention",

  check(at) {
    const D = at.inputs[0]!.shape[3] as number;
    if (![32, 64, 128].includes(D)) return { message: `attention head dim ${D} is not supported by the kernel`, hint: "use headDim 32, 64 or 128" };
    return undefined;
  },

  render(g, ctx) {
    const at = g.anchor!;
    enforce(at, attention.check!(at));
    const [q, k, v] = at.inputs as [Node, Node, Node];
    const bufs = new BufferTable();
    const refs = [q, k, v].map((m, i) => tokenRef(ctx, m, at, ["q", "k", "v"][i]!));
    const [qr, kr, vr] = refs as [TensorRef, TensorRef, TensorRef];
    for (const r of refs) need(stride8(r), at, `attention operands need row strides and offsets that are multiples of 8 (got stride ${r.rowStride}, offset ${r.offset})`);
    const D = q.shape[3] as number;
    const o = ctx.outRef(g.outputs[0]!);
    const cached = k.shape[1] !== q.shape[1];
    need(!cached || k.shape[1] === "P+T", at, `attention keys must span the queries' T or the cache's P + T (got ${String(k.shape[1])})`);
    const tiles: AttentionTiles = { headDim: D, tiles: "DefaultTiles" };
    const view = {
      q: bufs.slot(qr),
      qOffset: qr.offset,
      qStride: qr.rowStride,
      qBatch: batchStride(qr),
      k: bufs.slot(kr),
      kOffset: kr.offset,
      kStride: kr.rowStride,
      kBatch: batchStride(kr),
      v: bufs.slot(vr),
      vOffset: vr.offset,
      vStride: vr.rowStride,
      vBatch: batchStride(vr),
      o: bufs.slot(o, true),
      oStride: o.rowStride,
      oBatch: batchStride(o),
      keys: cached ? "d->S" : "T",
      cached,
      heads: q.shape[2],
      kvHeads: k.shape[2],
      headDim: D,
      // sm_90a prefill: the FlashAttention-3-style TMA + wgmma kernel (head dims 64 and 128;
      // H200: 1.07x cuDNN at D128 GQA, 2.0x the mma.sync kernel — docs/PERF-NOTES.md)
      wgmma: ctx.arch === "sm_90a" && (D === 64 || D === 128),
      scale: floatLiteral((at.attrs.scale as number | undefined) ?? 1 / Math.sqrt(D)),
      decls: "",
    };
    view.decls = bufs.declarations();
    const body = renderTemplate("attention.cu.hbs", view);
    return { group: g, template: "attention.cu.hbs", body, buffers: bufs.args, tiles: { ...tiles } };
  },
};
