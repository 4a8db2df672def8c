/**
 * Renders anchor groups (GEMM, attention, SSD, selective scan, conv1d, embedding) into their
 * templates: operands become (buffer, feature offset, row stride) triples, checked here against
 * what each kernel in templates/include accepts, so a shape it can't take fails at compile time
 * with the layer's source line instead of at launch.
 */
import { StrataError } from "../ir/errors.js";
import type { Node } from "../ir/node.js";
import type { FusionGroup } from "../passes/fuse.js";
import { BufferTable } from "./buffers.js";
import { elementwiseExpr } from "./expr.js";
import type { KernelBody } from "./kernel.js";
import type { RowContext } from "./row.js";
import { KERNEL_NAME, renderTemplate } from "./templates.js";
import { elementIndex, featureCount, type TensorRef } from "./tensors.js";

type Ctx = RowContext;

function need(cond: boolean, n: Node, what: string, hint?: string): void {
  if (!cond) throw new StrataError(`codegen: ${what}`, n.src, hint);
}

const stride8 = (r: TensorRef) => r.rowStride % 8 === 0 && r.offset % 8 === 0;

function tokenRef(ctx: Ctx, n: Node, anchor: Node, what: string): TensorRef {
  const r = ctx.ref(n);
  need(r.tokenDims === 2, anchor, `${what} must be a per-token tensor [B, T, ...], got [${r.shape}]`);
  return r;
}

export function renderGemm(g: FusionGroup, ctx: Ctx): KernelBody {
  const lin = g.anchor!;
  const [x, w] = lin.inputs as [Node, Node];
  const bufs = new BufferTable();
  const a = tokenRef(ctx, x, lin, "GEMM input");
  const wr = ctx.ref(w);
  need(w.op === "param", lin, "GEMM weight must be a parameter");
  const [n, k] = w.shape as [number, number];
  need(
    n % 8 === 0 && k % 8 === 0 && k >= 8,
    lin,
    `the GEMM kernel needs weight rows N and columns K that are multiples of 8 (K ≥ 8); ${w.attrs.name as string} is [${n}, ${k}]`,
    "choose layer sizes that make this projection's width a multiple of 8 (for Mamba-2's in_proj, 2·d_inner + 2·groups·dState + heads)",
  );
  need(stride8(a), lin, `GEMM input row stride ${a.rowStride} and offset ${a.offset} must be multiples of 8 elements (16-byte aligned rows)`);
  const ai = bufs.slot(a);
  const wi = bufs.slot(wr);
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
  const fields = bufs.params().split(", ").map((f) => `    ${f.replace(" __restrict__", "")};`).join("\n");
  // wgmma needs sm_90a; elsewhere the mma.sync tiles (both measured in tests/gpu/gemm_test.cu)
  const wgmma = ctx.arch === "sm_90a";
  const config = wgmma ? "strata::gemm::DefaultWgmmaConfig" : "strata::gemm::DefaultMmaConfig";
  const body = renderTemplate("gemm.cu.hbs", {
    fields,
    epilogue: lines.join("\n"),
    decls: bufs.declarations(),
    callArgs: bufs.callArgs(),
    config,
    a: ai,
    aOffset: a.offset,
    lda: a.rowStride,
    w: wi,
    n,
    k,
  });
  return { group: g, template: "gemm.cu.hbs", body, buffers: bufs.args, tiles: { config: wgmma ? "WgmmaConfig<256,128,4>" : "MmaConfig<128,256,4,2,4>", n, k } };
}

export function renderAttention(g: FusionGroup, ctx: Ctx): KernelBody {
  const at = g.anchor!;
  const [q, k, v] = at.inputs as [Node, Node, Node];
  const bufs = new BufferTable();
  const refs = [q, k, v].map((m, i) => tokenRef(ctx, m, at, ["q", "k", "v"][i]!));
  const [qr, kr, vr] = refs as [TensorRef, TensorRef, TensorRef];
  for (const r of refs) need(stride8(r), at, `attention operands need row strides and offsets that are multiples of 8 (got stride ${r.rowStride}, offset ${r.offset})`);
  const D = q.shape[3] as number;
  need([32, 64, 128].includes(D), at, `attention head dim ${D} is not supported by the kernel`, "use headDim 32, 64 or 128");
  const o = ctx.outRef(g.outputs[0]!);
  const view = {
    decls: "",
    q: bufs.slot(qr),
    qOffset: qr.offset,
    qStride: qr.rowStride,
    k: bufs.slot(kr),
    kOffset: kr.offset,
    kStride: kr.rowStride,
    v: bufs.slot(vr),
    vOffset: vr.offset,
    vStride: vr.rowStride,
    o: bufs.slot(o, true),
    oStride: o.rowStride,
    heads: q.shape[2],
    kvHeads: k.shape[2],
    headDim: D,
    scale: `${(at.attrs.scale as number | undefined) ?? 1 / Math.sqrt(D)}f`,
  };
  view.decls = bufs.declarations();
  const body = renderTemplate("attention.cu.hbs", view);
  return { group: g, template: "attention.cu.hbs", body, buffers: bufs.args, tiles: { headDim: D, tiles: "DefaultTiles" } };
}

/** A strided operand as the templates use it: launcher buffer index, feature offset, row stride. */
function operand(bufs: BufferTable, r: TensorRef, output = false) {
  return { buf: bufs.slot(r, output), offset: r.offset, stride: r.rowStride };
}

/** What both scan kernels take: x (or u), raw dt with its bias, A, B, C, the D skip and y. */
function scanOperands(g: FusionGroup, ctx: Ctx, bufs: BufferTable) {
  const s = g.anchor!;
  const r = g.roles;
  const refs = { x: tokenRef(ctx, r.x!, s, "x"), dt: tokenRef(ctx, r.dtRaw!, s, "dt"), B: tokenRef(ctx, r.B!, s, "B"), C: tokenRef(ctx, r.C!, s, "C") };
  const y = ctx.outRef(g.outputs[0]!);
  need(y.dtype === "bf16", s, `${s.op} output must be bf16 (got ${y.dtype}); cast after the D skip`);
  const view = {
    x: operand(bufs, refs.x),
    dt: operand(bufs, refs.dt),
    dtBias: bufs.slot(ctx.ref(r.dtBias!)),
    A: bufs.slot(ctx.ref(r.A!)),
    Bm: operand(bufs, refs.B),
    Cm: operand(bufs, refs.C),
    D: r.D ? `p${bufs.slot(ctx.ref(r.D))}` : "nullptr",
    y: operand(bufs, y, true),
  };
  return { refs, view };
}

export function renderSsd(g: FusionGroup, ctx: Ctx): KernelBody {
  const s = g.anchor!;
  const bufs = new BufferTable();
  const { refs, view } = scanOperands(g, ctx, bufs);
  const [, , H, P] = g.roles.x!.shape as [string, string, number, number];
  const [, , G, N] = g.roles.B!.shape as [string, string, number, number];
  const chunk = s.attrs.chunk as number;
  need(P % 64 === 0 && N % 64 === 0, s, `the SSD kernel needs headDim and dState multiples of 64 (got ${P}, ${N})`);
  need(chunk === 64 || chunk === 128, s, `the SSD kernel takes chunk 64 or 128 (got ${chunk})`);
  for (const t of [refs.x, refs.B, refs.C]) need(stride8(t), s, "SSD x/B/C need 16-byte aligned rows (strides and offsets multiples of 8)");
  const body = renderTemplate("ssd.cu.hbs", { ...view, heads: H, groups: G, chunk, headDim: P, dState: N, decls: bufs.declarations() });
  return { group: g, template: "ssd.cu.hbs", body, buffers: bufs.args, tiles: { chunk, headDim: P, dState: N } };
}

export function renderSelectiveScan(g: FusionGroup, ctx: Ctx): KernelBody {
  const s = g.anchor!;
  const bufs = new BufferTable();
  const { refs, view } = scanOperands(g, ctx, bufs);
  const N = g.roles.A!.shape[1] as number;
  need([16, 64, 128].includes(N), s, `the selective-scan kernel takes dState 16, 64 or 128 (got ${N})`);
  const z = g.roles.z ? operand(bufs, tokenRef(ctx, g.roles.z, s, "z")) : undefined;
  const body = renderTemplate("selective_scan.cu.hbs", { ...view, z, dim: featureCount(refs.x), dState: N, decls: bufs.declarations() });
  return { group: g, template: "selective_scan.cu.hbs", body, buffers: bufs.args, tiles: { dState: N } };
}

export function renderConv1d(g: FusionGroup, ctx: Ctx): KernelBody {
  const c = g.anchor!;
  const [x, w, b] = c.inputs as [Node, Node, Node];
  const bufs = new BufferTable();
  const xr = tokenRef(ctx, x, c, "conv input");
  const k = w.shape[1] as number;
  need(k >= 2 && k <= 4, c, `the conv1d kernel takes kernel sizes 2..4 (got ${k})`);
  need(w.dtype === "bf16" && b.dtype === "bf16", c, "conv1d weight and bias must be bf16");
  const y = ctx.outRef(g.outputs[0]!);
  const view = {
    k,
    channels: featureCount(xr),
    x: bufs.slot(xr),
    xOffset: xr.offset,
    xStride: xr.rowStride,
    w: bufs.slot(ctx.ref(w)),
    bias: bufs.slot(ctx.ref(b)),
    y: bufs.slot(y, true),
    yStride: y.rowStride,
    silu: g.nodes.some((m) => m.op === "silu") ? "true" : "false",
    decls: "",
  };
  view.decls = bufs.declarations();
  return { group: g, template: "conv1d.cu.hbs", body: renderTemplate("conv1d.cu.hbs", view), buffers: bufs.args, tiles: { k } };
}

export function renderEmbedding(g: FusionGroup, ctx: Ctx): KernelBody {
  const e = g.anchor!;
  const [ids, table] = e.inputs as [Node, Node];
  const bufs = new BufferTable();
  const cols = table.shape[1] as number;
  need(cols % 8 === 0 && table.dtype === "bf16", e, "embedding rows must be bf16 with d_model a multiple of 8");
  const view = { cols, ids: bufs.slot(ctx.ref(ids)), table: bufs.slot(ctx.ref(table)), out: bufs.slot(ctx.outRef(g.outputs[0]!), true) };
  return { group: g, template: "embedding.cu.hbs", body: renderTemplate("embedding.cu.hbs", view), buffers: bufs.args, tiles: { threads: 128 } };
}

export { KERNEL_NAME };
