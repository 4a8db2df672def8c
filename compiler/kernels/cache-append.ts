/**
 * Cache-append family: writes a call's new rows [B, T, ...] into a persistent cache
 * [B, capacity, ...] at rows P … P+T−1, in place (the KV cache of attention). Nothing is copied
 * for the P rows already there, so a decode step costs O(T), not O(P). The caches one attention
 * reads (its K and V) are one group (fuse.ts): one launch appends both, blockIdx.y picking the cache.
 */
import type { Node } from "../ir/node.js";
import { viewBase } from "../ir/registry.js";
import { BufferTable } from "../codegen/buffers.js";
import { CTYPE, featureCount } from "../codegen/tensors.js";
import { renderTemplate } from "../codegen/templates.js";
import { batchStride, need, tokenRef } from "./common.js";
import type { DecodeStepCode, FusionGroup, KernelFamilyModule, RenderContext } from "./family.js";

export const cacheAppend: KernelFamilyModule = {
  family: "cache_append",
  render(g, ctx) {
    const bufs = new BufferTable();
    const caches = g.nodes.map((a, i) => {
      need(a.op === "cacheAppend", a, `a cache-append group holds only cacheAppend nodes (got ${a.op})`);
      const [, x] = a.inputs as [Node, Node];
      const src = tokenRef(ctx, x, a, "new cache rows");
      const dst = ctx.outRef(a);
      const cols = featureCount(src);
      need(dst.capacityStride === cols, a, "cacheAppend must write into a persistent cache (a state input of the graph) of the new rows' width");
      const vec = cols % 8 === 0 && src.offset % 8 === 0 && src.rowStride % 8 === 0 && src.dtype === "bf16";
      return {
        i,
        ctype: CTYPE[src.dtype],
        cols,
        vec,
        src: bufs.slot(src),
        srcOffset: src.offset,
        srcStride: src.rowStride,
        // batch strides inside the kernel: the launcher's d->C is its argument C
        srcBatch: batchStride(src).replace("d->C", "C"),
        dst: bufs.slot(dst, true),
        dstBatch: batchStride(dst).replace("d->C", "C"),
      };
    });
    const view = { caches, count: caches.length, params: bufs.params(), callArgs: bufs.callArgs(), decls: bufs.declarations(), skipAtDecode: g.skipAtDecode === true };
    const cols = caches.map((c) => c.cols).join("+");
    const tiles = { cols, vec: caches.every((c) => c.vec), ...(g.skipAtDecode ? { skipAtDecode: true } : {}) };
    return { group: g, template: "cache_append.cu.hbs", body: renderTemplate("cache_append.cu.hbs", view), buffers: bufs.args, tiles };
  },
};

/** The column slice [start, start + cols) of `out` that `x` views (through feature reshapes), or undefined. */
function columnSlice(x: Node, out: Node): { start: number; cols: number } | undefined {
  const cols = x.shape.slice(2).reduce<number>((a, d) => a * (d as number), 1);
  while (x.op === "reshape" && x.shape[0] === "B" && x.shape[1] === "T") x = x.inputs[0]!;
  if (x === out) return { start: 0, cols };
  if (x.op === "slice" && x.inputs[0] === out && x.attrs.axis === out.shape.length - 1) return { start: x.attrs.start as number, cols };
  return undefined;
}

/**
 * Can the cache appends of group `g` run as a decode step in the store of the GEMM whose value
 * `out` they read (column slices of it, e.g. K and V of a QKV projection)? Each new row's column
 * pair is copied into the cache by the thread that stored it. Undefined for yes.
 */
export function cacheStepVeto(g: FusionGroup, out: Node): string | undefined {
  if (out.dtype !== "bf16" || out.shape.length !== 3) return "the appends must read the GEMM's bf16 [B, T, N] value";
  for (const a of g.nodes) {
    const x = a.inputs[1]!;
    if (a.op !== "cacheAppend" || viewBase(x) !== out) return "every append must read the GEMM's value";
    const s = columnSlice(x, out);
    if (!s) return "an append must read a column slice of the GEMM's value";
    if (s.start % 2 !== 0 || s.cols % 2 !== 0) return "an append's columns must start and end on a column pair of the GEMV";
  }
  return undefined;
}

/**
 * The appends as the GEMV's `Post` (gemm.cu.hbs): after the warp's rows of columns col, col+1 are
 * stored, Post::cols2 copies the pair into each cache whose slice holds it, at rows P … P+T−1 of
 * each sequence (P from the device in a graph replay, as the cache kernel reads it).
 */
export function renderCacheStep(g: FusionGroup, ctx: RenderContext, bufs: BufferTable): DecodeStepCode {
  const lines: string[] = [];
  for (const a of g.nodes) {
    const x = a.inputs[1]!;
    const xr = ctx.ref(x);
    const dst = ctx.outRef(a);
    const cols = featureCount(xr);
    need(dst.capacityStride === cols, a, "cacheAppend must write into a persistent cache (a state input of the graph) of the new rows' width");
    const xi = bufs.slot(xr, true);  // the GEMM's own output, read back by the thread that stored it
    const di = bufs.slot(dst, true);
    lines.push(
      `    // ${a.scope ?? ""} cache ${dst.buffer}: columns [${xr.offset}, ${xr.offset + cols}) of this GEMM's output`,
      `    if (col >= ${xr.offset} && col < ${xr.offset + cols}) {`,
      `      const int c = col - ${xr.offset};`,
      "      for (int b = 0; b < B; ++b)",
      "        for (int t = 0; t < T; ++t) {",
      `          const __nv_bfloat162 v = *reinterpret_cast<const __nv_bfloat162*>(p.p${xi} + ((long long)b * T + t) * ${xr.rowStride} + col);`,
      `          *reinterpret_cast<__nv_bfloat162*>(p.p${di} + (long long)b * p.C * ${cols} + (long long)(P + t) * ${cols} + c) = v;`,
      "        }",
      "    }",
    );
  }
  const code = `struct Post {
  static constexpr bool kOn = true;
  __device__ static void cols2(const Epi::Params& p, int M, int col) {
    const int T = p.T, B = M / T;
    const int P = p.P_dev ? p.P_dev[0] : p.P_host;  // a graph replay reads the position from the device
${lines.join("\n")}
  }
};`;
  return {
    code,
    fields: ["int T;  // tokens per sequence", "const int* P_dev;  // the caches' position: d->dev (a graph replay) or P_host", "int P_host;", "int C;  // rows a cache holds per sequence"],
    args: ["T", "d->dev", "d->P", "d->C"],
    // the cache kernel's own check: the cache holds C rows per sequence
    check: "d->dev || d->P + T <= d->C",
  };
}
