/**
 * Conv1d family: depthwise causal convolution over time with bias (include/conv1d.cuh), with a
 * following SiLU fused, an optional incoming prefix (the previous K−1 inputs) and, as a second
 * output of the same launch, the outgoing conv state (convState on the same inputs).
 */
import type { Node } from "../ir/node.js";
import { viewBase } from "../ir/registry.js";
import { BufferTable } from "../codegen/buffers.js";
import { renderTemplate } from "../codegen/templates.js";
import { featureCount } from "../codegen/tensors.js";
import { batchStride, enforce, tokenRef } from "./common.js";
import type { DecodeStepCode, FusionGroup, KernelFamilyModule, RenderContext } from "./family.js";

export const conv1d: KernelFamilyModule = {
  family: "conv1d",

  check(c) {
    const [, w, b] = c.inputs as Node[];
    const k = w!.shape[1] as number;
    if (k < 2 || k > 4) return { message: `the conv1d kernel takes kernel sizes 2..4 (got ${k})`, hint: "dConv: 4" };
    if (w!.dtype !== "bf16" || b!.dtype !== "bf16") return { message: "conv1d weight and bias must be bf16" };
    return undefined;
  },

  absorb(grp, f) {
    const c = grp.anchor!;
    const [x, , , prefix] = c.inputs as Node[];
    const companion = f.uses(x!).find((u) => u.op === "convState" && u.inputs[0] === x && u.inputs[1] === prefix && f.free(u));
    if (companion) {
      f.add(grp, companion);
      grp.roles.stateOut = companion;
      f.log(grp, companion, true, "second output convState", "the conv kernel writes the last K−1 inputs in the same launch");
    }
    f.absorbEpilogue(grp, (e) => (e.op === "silu" ? undefined : `${e.op} is not the SiLU the conv kernel applies`));
  },

  render(g, ctx) {
    const c = g.anchor!;
    enforce(c, conv1d.check!(c));
    const [x, w, b, prefix] = c.inputs as Node[];
    const bufs = new BufferTable();
    const xr = tokenRef(ctx, x!, c, "conv input");
    const k = w!.shape[1] as number;
    const yNode = g.outputs.find((o) => o !== g.roles.stateOut)!;
    const y = ctx.outRef(yNode);
    const view = {
      k,
      channels: featureCount(xr),
      x: bufs.slot(xr),
      xOffset: xr.offset,
      xStride: xr.rowStride,
      xBatch: batchStride(xr),
      w: bufs.slot(ctx.ref(w!)),
      bias: bufs.slot(ctx.ref(b!)),
      y: bufs.slot(y, true),
      yStride: y.rowStride,
      yBatch: batchStride(y),
      stateIn: prefix ? `p${bufs.slot(ctx.ref(prefix))}` : "nullptr",
      stateOut: g.roles.stateOut ? `p${bufs.slot(ctx.outRef(g.roles.stateOut), true)}` : "nullptr",
      silu: g.nodes.some((m) => m.op === "silu") ? "true" : "false",
      skipAtDecode: g.skipAtDecode === true,
      decls: "",
    };
    view.decls = bufs.declarations();
    return { group: g, template: "conv1d.cu.hbs", body: renderTemplate("conv1d.cu.hbs", view), buffers: bufs.args, tiles: { k, ...(g.skipAtDecode ? { skipAtDecode: true } : {}) } };
  },
};

/**
 * Can conv group `g` run as a decode step in the store of the GEMM whose one value `out` it reads
 * (a column slice [start, start + C) of it)? Each GEMV warp stores a pair of adjacent columns for
 * all its rows, so it can run the conv over time for those two channels alone: no other thread
 * reads their conv state, so it is updated in place as conv1d.cuh does. Undefined for yes.
 */
export function convStepVeto(g: FusionGroup, out: Node): string | undefined {
  const c = g.anchor!;
  const [x, , , prefix] = c.inputs as Node[];
  if (enforceFree(c)) return enforceFree(c);
  if (!prefix || !g.roles.stateOut) return "the conv has no state (not a cached graph)";
  if (g.nodes.some((n) => n !== c && n !== g.roles.stateOut && n.op !== "silu")) return "the conv group holds more than the conv, its state and a SiLU";
  if (viewBase(x!) !== out || out.dtype !== "bf16") return "the conv must read the GEMM's bf16 value (or a slice of it)";
  const start = x === out ? 0 : x!.op === "slice" && x!.inputs[0] === out && x!.attrs.axis === out.shape.length - 1 ? (x!.attrs.start as number) : -1;
  if (start < 0) return "the conv must read a slice of the GEMM's columns";
  const C = x!.shape[x!.shape.length - 1] as number;
  if (start % 2 !== 0 || C % 2 !== 0) return "the conv's columns must start and end on a column pair of the GEMV";
  return undefined;
}

const enforceFree = (c: Node) => conv1d.check!(c)?.message;

/**
 * The conv step as the GEMV's `Post` (gemm.cu.hbs): after the warp's rows of columns col, col+1
 * are stored, Post::cols2 runs the conv over them in the conv kernel's arithmetic (same fmaf
 * order, fast_silu, bf16 output), reading the stored inputs back and the previous K−1 inputs from
 * the state, and writes the new state in place. Buffers are fields of the GEMM's Params.
 */
export function renderConvStep(g: FusionGroup, ctx: RenderContext, bufs: BufferTable): DecodeStepCode {
  const c = g.anchor!;
  const [x, w, b, prefix] = c.inputs as Node[];
  const xr = ctx.ref(x!);
  const k = w!.shape[1] as number;
  const C = featureCount(xr);
  const yNode = g.outputs.find((o) => o !== g.roles.stateOut)!;
  const y = ctx.outRef(yNode);
  const xi = bufs.slot(xr, true);  // the GEMM's own output: read back by the thread that stored it
  const wi = bufs.slot(ctx.ref(w!));
  const bi = bufs.slot(ctx.ref(b!));
  const si = bufs.slot(ctx.ref(prefix!));
  const so = bufs.slot(ctx.outRef(g.roles.stateOut!), true);
  const yi = bufs.slot(y, true);
  const silu = g.nodes.some((m) => m.op === "silu");
  const code = `struct Post {
  static constexpr bool kOn = true;
  static constexpr int kK = ${k}, kC = ${C};
  // conv channels [0, ${C}) are columns [${xr.offset}, ${xr.offset + C}) of this GEMM's output
  __device__ static void cols2(const Epi::Params& p, int M, int col) {
    const int c0 = col - ${xr.offset};
    if (c0 < 0 || c0 >= kC) return;
    const int T = p.T, B = M / T;
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      const int c = c0 + j;
      float w[kK];
#pragma unroll
      for (int k = 0; k < kK; ++k) w[k] = __bfloat162float(p.p${wi}[(size_t)c * kK + k]);
      const float bias = __bfloat162float(p.p${bi}[c]);
      for (int b = 0; b < B; ++b) {
        float win[kK - 1];
#pragma unroll
        for (int k = 0; k < kK - 1; ++k) win[k] = p.p${si}[((size_t)b * (kK - 1) + k) * kC + c];
        for (int t = 0; t < T; ++t) {
          const long long row = (long long)b * T + t;
          const float cur = __bfloat162float(p.p${xi}[row * ${xr.rowStride} + ${xr.offset} + c]);
          float a = bias;
#pragma unroll
          for (int k = 0; k < kK - 1; ++k) a = fmaf(w[k], win[k], a);
          a = fmaf(w[kK - 1], cur, a);
${silu ? "          a = strata::fast_silu(a);\n" : ""}          p.p${yi}[row * ${y.rowStride} + c] = __float2bfloat16(a);
#pragma unroll
          for (int k = 0; k < kK - 2; ++k) win[k] = win[k + 1];
          win[kK - 2] = cur;
        }
#pragma unroll
        for (int k = 0; k < kK - 1; ++k) p.p${so}[((size_t)b * (kK - 1) + k) * kC + c] = win[k];
      }
    }
  }
};`;
  return { code, fields: ["int T;  // tokens per sequence (the conv walks them)"], args: ["T"], check: "" };
}
