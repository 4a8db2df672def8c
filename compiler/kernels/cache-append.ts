/**
 * Cache-append family: writes a call's new rows [B, T, ...] into a persistent cache
 * [B, capacity, ...] at rows P … P+T−1, in place (the KV cache of attention). Nothing is copied
 * for the P rows already there, so a decode step costs O(T), not O(P).
 */
import type { Node } from "../ir/node.js";
import { BufferTable } from "../codegen/buffers.js";
import { CTYPE, featureCount } from "../codegen/tensors.js";
import { renderTemplate } from "../codegen/templates.js";
import { batchStride, need, tokenRef } from "./common.js";
import type { KernelFamilyModule } from "./family.js";

export const cacheAppend: KernelFamilyModule = {
  family: "cache_append",
  render(g, ctx) {
    const a = g.anchor!;
    const [, x] = a.inputs as [Node, Node];
    const bufs = new BufferTable();
    const src = tokenRef(ctx, x, a, "new cache rows");
    const dst = ctx.outRef(a);
    const cols = featureCount(src);
    need(dst.capacityStride === cols, a, "cacheAppend must write into a persistent cache (a state input of the graph) of the new rows' width");
    const vec = cols % 8 === 0 && src.offset % 8 === 0 && src.rowStride % 8 === 0 && src.dtype === "bf16";
    const view = {
      ctype: CTYPE[src.dtype],
      cols,
      vec,
      src: bufs.slot(src),
      srcOffset: src.offset,
      srcStride: src.rowStride,
      srcBatch: batchStride(src),
      dst: bufs.slot(dst, true),
      dstBatch: batchStride(dst),
      decls: bufs.declarations(),
    };
    return { group: g, template: "cache_append.cu.hbs", body: renderTemplate("cache_append.cu.hbs", view), buffers: bufs.args, tiles: { cols, vec } };
  },
};
