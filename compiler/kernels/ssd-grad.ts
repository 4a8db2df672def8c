/**
 * The ssd_grad family (training): every gradient of one Mamba-2 SSD scan — the ssdScanGrad nodes
 * on the same inputs, one per `wrt` (x, dt, A, B, C, h0) — in one fixed sequence of launches
 * (include/ssd_bwd.cuh: chunk states, state passing, chunk gradients, the sums over the heads of
 * a group and over batch and chunks; deterministic, no float atomics). dt arrives materialised
 * (after softplus) and A is read from memory: the forward kernel's softplus / bias absorption does
 * not apply. The kernel needs per-launch scratch for the chunk states and per-head partial sums.
 */
import type { Node } from "../ir/node.js";
import { BufferTable } from "../codegen/buffers.js";
import { renderTemplate } from "../codegen/templates.js";
import { CTYPE, type TensorRef } from "../codegen/tensors.js";
import { enforce, need, operand, tokenRef } from "./common.js";
import type { FuseContext, FusionGroup, KernelFamilyModule, RenderContext, Unsupported } from "./family.js";

const sameInputs = (a: readonly Node[], b: readonly Node[]) => a.length === b.length && a.every((n, i) => n.key === b[i]!.key);
const FLOATS = new Set(["bf16", "f32"]);

/** The gradient nodes of one scan (same op, same inputs), by `wrt`, grouped into one launch. */
export function absorbScanGrads(grp: FusionGroup, f: FuseContext): void {
  const s = grp.anchor!;
  grp.roles[s.attrs.wrt as string] = s;
  for (const u of f.uses(s.inputs[0]!)) {
    if (u === s || u.op !== s.op || !sameInputs(u.inputs, s.inputs) || !f.free(u)) continue;
    const wrt = u.attrs.wrt as string;
    if (grp.roles[wrt]) continue;
    f.add(grp, u);
    grp.roles[wrt] = u;
    f.log(grp, u, true, `gradient wrt ${wrt}`, "the scan's backward computes every gradient in the same launches");
  }
}

/** Shared dtype rules: per-token operands bf16 or f32, A and h0 f32, each gradient in its operand's dtype. */
export function scanGradDtypes(s: Node, names: readonly string[]): Unsupported | undefined {
  const [, , , A, , , h0] = s.inputs;
  for (const [i, n] of s.inputs.entries()) {
    if (i === 3 || i === 6) continue;
    if (!FLOATS.has(n.dtype)) return { message: `${s.op}: ${["gy", ...names][i]} must be bf16 or f32 (got ${n.dtype})` };
  }
  if (A!.dtype !== "f32") return { message: `${s.op}: A must be f32 (got ${A!.dtype})`, hint: "compute A in f32, e.g. −exp(A_log) with an f32 A_log" };
  if (h0 && h0.dtype !== "f32") return { message: `${s.op}: h0 must be f32 (got ${h0.dtype})` };
  const wrt = s.attrs.wrt as string;
  const k = ["x", "u", "dt", "delta", "B", "C"].includes(wrt) ? s.inputs[["gy", ...names].indexOf(wrt)] : undefined;
  if (k && s.dtype !== k.dtype)
    return { message: `${s.op}: the gradient wrt ${wrt} must have its operand's dtype ${k.dtype} (got ${s.dtype}: a parameter?)`, hint: "the scan kernels take x/u, dt, B and C as activations" };
  return undefined;
}

/** `{ptr + offset, rowStride, batchStride}` for a Tok<> of the headers, or `{}` when absent. */
export function tokInit(bufs: BufferTable, r: TensorRef | undefined, output = false): string {
  if (!r) return "{}";
  const o = operand(bufs, r, output);
  return `{p${o.buf} + ${o.offset}, ${o.stride}, ${o.batchStride}}`;
}

/** The operands and outputs both scan-gradient templates take. */
export function scanGradView(g: FusionGroup, ctx: RenderContext, bufs: BufferTable, names: readonly string[]) {
  const s = g.anchor!;
  const ins = s.inputs;
  const tokIn = (i: number) => tokenRef(ctx, ins[i]!, s, i === 0 ? "the output gradient" : names[i - 1]!);
  const refs = [0, 1, 2, 4, 5].map(tokIn);
  const outNode = (wrt: string) => {
    const n = g.roles[wrt];
    return n && g.outputs.includes(n) ? n : undefined;
  };
  const tokOut = (wrt: string) => {
    const n = outNode(wrt);
    return n ? tokInit(bufs, tokenRef({ ...ctx, ref: ctx.outRef }, n, s, `the gradient wrt ${wrt}`), true) : "{}";
  };
  const ptrOut = (wrt: string) => {
    const n = outNode(wrt);
    return n ? `p${bufs.slot(ctx.outRef(n), true)}` : "nullptr";
  };
  const [x, dt, Bm, Cm] = [names[0]!, names[1]!, names[3]!, names[4]!];
  return {
    types: [ins[0]!, ins[1]!, ins[2]!, ins[4]!, ins[5]!].map((n) => CTYPE[n.dtype]).join(", "),
    gy: tokInit(bufs, refs[0]),
    x: tokInit(bufs, refs[1]),
    dt: tokInit(bufs, refs[2]),
    A: `p${bufs.slot(ctx.ref(ins[3]!))}`,
    B: tokInit(bufs, refs[3]),
    C: tokInit(bufs, refs[4]),
    h0: ins[6] ? `p${bufs.slot(ctx.ref(ins[6]))}` : "nullptr",
    dx: tokOut(x),
    ddt: tokOut(dt),
    dA: ptrOut("A"),
    dB: tokOut(Bm),
    dC: tokOut(Cm),
    dh0: ptrOut("h0"),
    wrt: [x, dt, "A", Bm, Cm, "h0"].filter((w) => outNode(w)).join(", "),
  };
}

const CHUNK = 64; // include/ssd_bwd.cuh kGradChunk
const SMEM_LIMIT = 227 * 1024;
/** include/ssd_bwd.cuh GradSmem<64, P, N>::kBytes */
const smemBytes = (P: number, N: number) => 4 * (2 * CHUNK * (P + 1) + 2 * CHUNK * (N + 1) + P * (N + 1) + 3 * CHUNK * (CHUNK + 1) + 8 * CHUNK + CHUNK * 16 + 256);
/** include/ssd_bwd.cuh TcTile<M, Nn>::WN: warp columns of the 8 warps' tiling of an M × Nn product (0: none fits) */
const warpCols = (M: number, Nn: number) => (M % 32 === 0 && Nn % 32 === 0 ? 4 : M % 64 === 0 && Nn % 16 === 0 ? 2 : M % 16 === 0 && Nn % 64 === 0 ? 8 : 0);
/** include/ssd_bwd.cuh GradSmemTc<64, P, N>::kBytes and GroupSmem<64, P, N>::kBytes */
const tcSmemBytes = (P: number, N: number) => 4 * (2 * CHUNK * (P + 4) + 2 * CHUNK * (N + 4) + P * (N + 4) + 3 * CHUNK * (CHUNK + 4) + 8 * CHUNK + CHUNK * 16 + 256);
const groupSmemBytes = (P: number, N: number) =>
  4 * (2 * CHUNK * (P + 4) + 2 * CHUNK * (N + 4) + P * (N + 4) + 3 * CHUNK * (CHUNK + 4) + 7 * CHUNK + CHUNK * (warpCols(CHUNK, CHUNK) + 8 / warpCols(CHUNK, CHUNK)) + 2 * CHUNK * warpCols(CHUNK, N) + 8);
/** include/ssd_bwd.cuh group_fits<64, P, N>: the default path (one CTA per group), which keeps no per-head dB / dC partials */
export const ssdGradGroupPath = (P: number, N: number) =>
  [warpCols(P, N), warpCols(CHUNK, CHUNK), warpCols(CHUNK, P), warpCols(CHUNK, N)].every((w) => w > 0 && w <= 16) &&
  P % 8 === 0 &&
  N % 8 === 0 &&
  tcSmemBytes(P, N) <= SMEM_LIMIT &&
  groupSmemBytes(P, N) <= SMEM_LIMIT;
/** include/ssd_bwd.cuh ssd_grad_scratch_per_token / _fixed (the chunk states; per-head dB / dC partials only off the group path) */
export const ssdGradScratch = (H: number, P: number, N: number) => ({
  perToken: Math.ceil((H * (2 * P * N + 1) * 4) / CHUNK) + (ssdGradGroupPath(P, N) ? 0 : 2 * H * N * 4) + H * 4,
  fixed: H * (2 * P * N + 1) * 4 + 8 * 256,
});

const SSD_NAMES = ["x", "dt", "A", "B", "C", "h0"] as const;

export const ssdGrad: KernelFamilyModule = {
  family: "ssd_grad",
  check(s) {
    const [, x, , A, Bm] = s.inputs as Node[];
    const [, , H, P] = x!.shape as [string, string, number, number];
    const [, , G, N] = Bm!.shape as [string, string, number, number];
    if (P % 16 !== 0 || N % 16 !== 0)
      return { message: `the SSD backward kernel needs headDim and dState multiples of 16 (got ${P}, ${N})`, hint: "mamba2({ headDim: 64, dState: 64 | 128 })" };
    if (smemBytes(P, N) > SMEM_LIMIT)
      return { message: `the SSD backward kernel's chunk tile for headDim ${P} × dState ${N} needs ${smemBytes(P, N)} bytes of shared memory (at most ${SMEM_LIMIT})`, hint: "headDim 64 with dState ≤ 128, or headDim 128 with dState ≤ 64" };
    if (H % G !== 0 || A!.shape.length !== 1) return { message: `ssdScanGrad: groups (${G}) must divide heads (${H}) and A be [heads]` };
    return scanGradDtypes(s, SSD_NAMES);
  },
  absorb: absorbScanGrads,
  render(g, ctx) {
    const s = g.anchor!;
    enforce(s, ssdGrad.check!(s));
    const [, x, , , Bm] = s.inputs as Node[];
    const [, , H, P] = x!.shape as [string, string, number, number];
    const [, , G, N] = Bm!.shape as [string, string, number, number];
    const bufs = new BufferTable();
    const view = scanGradView(g, ctx, bufs, SSD_NAMES);
    need(view.wrt.length > 0, s, "ssdScanGrad: no gradient of the group is read");
    const sc = ssdGradScratch(H, P, N);
    const scratch = bufs.scratch(sc.perToken, sc.fixed);
    const tiles = { chunk: CHUNK, headDim: P, dState: N };
    const body = renderTemplate("ssd_grad.cu.hbs", { ...view, heads: H, groups: G, ...tiles, scratch, perToken: sc.perToken, fixed: sc.fixed, decls: bufs.declarations() });
    return { group: g, template: "ssd_grad.cu.hbs", body, buffers: bufs.args, tiles, scratch: bufs.scratchRequests };
  },
};
