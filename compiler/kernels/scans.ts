/**
 * The scan families: Mamba-2's SSD (include/ssd.cuh) and Mamba-1's selective scan
 * (include/selective_scan.cuh). Both kernels apply dt's bias and softplus while loading dt, read
 * A precomputed from parameters, add the D skip (and for Mamba-1 the silu(z) gate) themselves, and
 * take an incoming state h0 and write the outgoing state hT (which may alias h0) — so a scan and
 * its state companion (ssdState / selectiveState on the same inputs) are one kernel launch.
 */
import { StrataError } from "../ir/errors.js";
import { getOp, viewBase } from "../ir/registry.js";
import type { Node } from "../ir/node.js";
import { BufferTable } from "../codegen/buffers.js";
import { renderTemplate } from "../codegen/templates.js";
import { featureCount } from "../codegen/tensors.js";
import { enforce, need, operand, stride8, tokenRef } from "./common.js";
import type { FuseContext, FusionGroup, KernelFamilyModule, RenderContext, Unsupported } from "./family.js";

const sameInputs = (a: readonly Node[], b: readonly Node[]) => a.length === b.length && a.every((n, i) => n.key === b[i]!.key);

/** dt must reach the kernel as softplus(dt_raw [+ dt_bias]); A must be parameter-only. */
function scanCheck(s: Node, paramOnly?: (n: Node) => boolean): Unsupported | undefined {
  const dt = s.inputs[1]!;
  if (dt.op !== "softplus")
    return {
      message: `${s.op}: the CUDA scan kernels apply softplus to dt while loading it, so dt must be softplus(dt_raw) or softplus(dt_raw + dt_bias); got ${dt.op}`,
      hint: "write dt as ops.softplus(ops.add(dtRaw, dtBias)) (or ops.softplus(dtRaw))",
    };
  if (paramOnly && !paramOnly(s.inputs[2]!)) return { message: `${s.op}: A must be computed from parameters only (e.g. −exp(A_log))` };
  return undefined;
}

function absorbScan(grp: FusionGroup, f: FuseContext): void {
  const scan = grp.anchor!;
  const [x, dt, A, Bm, Cm, h0] = scan.inputs as Node[];
  Object.assign(grp.roles, { x: x!, A: A!, B: Bm!, C: Cm! }, h0 ? { h0 } : {});
  // the state companion on the same inputs: the kernel writes hT in the same launch
  const stateOp = getOp(scan.op).state!.stateOp!;
  const companion = f.uses(x!).find((u) => u.op === stateOp && sameInputs(u.inputs, [x!, dt!, A!, Bm!, ...(h0 ? [h0] : [])]) && f.free(u));
  if (companion) {
    f.add(grp, companion);
    grp.roles.hT = companion;
    f.log(grp, companion, true, `second output ${companion.op}`, "the scan kernel writes the final state in the same launch");
  }
  // dt = softplus(dtRaw [+ dtBias]), applied by the kernel while loading; when softplus(dt) is read
  // by other kernels too (the backward), the kernel reads the stored value instead
  const inGroup = (u: Node) => u === scan || u === companion;
  const sp = dt!;
  if (sp.op === "softplus") {
    const exclusive = f.free(sp) && f.uses(sp).every(inGroup);
    if (!exclusive) {
      // read the stored softplus(dt) as it is (another kernel computes it for its other readers)
      grp.roles.dtRaw = sp;
      grp.roles.dtFinal = sp;
      f.log(grp, sp, false, "prologue softplus(dt)", "softplus(dt) is also read by other kernels (the backward): the scan reads the stored value");
    } else {
      const addN = sp.inputs[0]!;
      const bias = addN.op === "add" ? addN.inputs.find((i) => i.op === "param" && i.dtype === "f32" && i.shape.length === 1 && i.shape[0] === x!.shape[2]) : undefined;
      if (bias && f.free(addN) && f.uses(addN).length === 1) {
        grp.roles.dtRaw = addN.inputs.find((i) => i !== bias)!;
        grp.roles.dtBias = bias;
        f.add(grp, addN);
        f.log(grp, sp, true, "prologue softplus(dt + dt_bias)", "the scan kernel applies the bias and softplus while loading dt");
      } else {
        grp.roles.dtRaw = addN;
        f.log(grp, sp, true, "prologue softplus(dt)", bias ? "dt + bias is read by other kernels too: the kernel applies softplus only" : "no [heads] bias parameter: the kernel applies softplus only");
      }
      f.add(grp, sp);
    }
  } else {
    f.log(grp, sp, false, "prologue softplus(dt)", `dt is ${sp.op}, not softplus(…)`);
  }
  // D skip: y + x·D (D reshaped for broadcasting), optionally cast
  let cur = scan;
  const us = f.uses(scan);
  if (us.length === 1 && us[0]!.op === "add" && f.free(us[0]!)) {
    const addY = us[0]!;
    const other = addY.inputs.find((i) => i !== scan)!;
    const dParam = other.op === "mul" ? other.inputs.find((i) => f.paramOnly(i) && i.dtype === "f32") : undefined;
    const xIn = other.op === "mul" ? other.inputs.find((i) => i !== dParam) : undefined;
    const xMatches = xIn && viewBase(xIn).key === viewBase(x!).key;
    if (dParam && xMatches && f.uses(other).length === 1 && f.free(other)) {
      grp.roles.D = dParam;
      f.add(grp, other);
      f.add(grp, addY);
      f.log(grp, addY, true, "epilogue D skip (y + D·x)", "the scan kernel adds D·x per head/channel");
      cur = addY;
    } else f.log(grp, addY, false, "epilogue D skip", "operand is not x·D with D a parameter");
  }
  const next = f.uses(cur);
  if (!f.isOutput(cur) && next.length === 1 && next[0]!.op === "cast" && f.free(next[0]!)) {
    f.add(grp, next[0]!);
    f.log(grp, next[0]!, true, "epilogue cast", "the kernel stores in the output dtype");
    cur = next[0]!;
  }
  if (grp.kind === "selective_scan") {
    const g2 = f.uses(cur);
    const m = !f.isOutput(cur) && g2.length === 1 && g2[0]!.op === "mul" && f.free(g2[0]!) ? g2[0]! : undefined;
    const gate = m?.inputs.find((i) => i !== cur);
    if (m && gate?.op === "silu" && f.uses(gate).length === 1 && f.free(gate)) {
      grp.roles.z = gate.inputs[0]!;
      f.add(grp, gate);
      f.add(grp, m);
      f.log(grp, m, true, "epilogue gate y·silu(z)", "the scan kernel gates while storing y");
    } else if (m) f.log(grp, m, false, "epilogue gate", "operand is not silu(z) with a single consumer");
  }
}


function unsupportedDt(s: Node, dtype: string): never {
  throw new StrataError(`codegen: ${s.op} reads dt as ${dtype}; the scan kernels take bf16 or f32`, s.src);
}

/** What both scan kernels take: x (or u), raw dt with its optional bias, A, B, C, D, y, h0/hT. */
function scanOperands(g: FusionGroup, ctx: RenderContext, bufs: BufferTable) {
  const s = g.anchor!;
  const r = g.roles;
  need(r.dtRaw !== undefined, s, `${s.op}: dt must be softplus(dt_raw [+ dt_bias]) read only by the scan`, "write dt as ops.softplus(ops.add(dtRaw, dtBias))");
  const refs = { x: tokenRef(ctx, r.x!, s, "x"), dt: tokenRef(ctx, r.dtRaw!, s, "dt"), B: tokenRef(ctx, r.B!, s, "B"), C: tokenRef(ctx, r.C!, s, "C") };
  const yNode = g.outputs.find((o) => o !== r.hT)!;
  const y = ctx.outRef(yNode);
  need(y.dtype === "bf16", s, `${s.op} output must be bf16 (got ${y.dtype}); cast after the D skip`);
  const ptr = (n: Node | undefined, output = false) => (n ? `p${bufs.slot(ctx.ref(n), output)}` : "nullptr");
  const view = {
    x: operand(bufs, refs.x),
    dt: operand(bufs, refs.dt),
    dtBias: ptr(r.dtBias),
    dtSoftplus: r.dtFinal ? "false" : "true",
    // dt stored in f32 (softplus(dt_raw + an f32 bias), kept for the backward) is read as such
    dtSuffix: refs.dt.dtype === "f32" ? "_f32" : refs.dt.dtype === "bf16" ? "" : unsupportedDt(s, refs.dt.dtype),
    A: ptr(r.A),
    Bm: operand(bufs, refs.B),
    Cm: operand(bufs, refs.C),
    D: ptr(r.D),
    y: operand(bufs, y, true),
    h0: ptr(r.h0),
    hT: r.hT ? `p${bufs.slot(ctx.outRef(r.hT), true)}` : "nullptr",
  };
  return { refs, view };
}

export const ssd: KernelFamilyModule = {
  family: "ssd",
  check(s) {
    const [, , H, P] = s.inputs[0]!.shape as [string, string, number, number];
    const N = s.inputs[3]!.shape[3] as number;
    const chunk = s.attrs.chunk as number;
    if (P % 64 !== 0 || N % 64 !== 0) return { message: `the SSD kernel needs headDim and dState multiples of 64 (got ${P}, ${N}; ${H} heads)`, hint: "mamba2({ headDim: 64, dState: 64 | 128 })" };
    if (chunk !== 64 && chunk !== 128) return { message: `the SSD kernel takes chunk 64 or 128 (got ${chunk})`, hint: "mamba2({ chunk: 128 })" };
    return scanCheck(s);
  },
  absorb: absorbScan,
  render(g, ctx) {
    const s = g.anchor!;
    enforce(s, ssd.check!(s));
    const bufs = new BufferTable();
    const { refs, view } = scanOperands(g, ctx, bufs);
    const [, , H, P] = g.roles.x!.shape as [string, string, number, number];
    const [, , G, N] = g.roles.B!.shape as [string, string, number, number];
    const chunk = s.attrs.chunk as number;
    for (const t of [refs.x, refs.B, refs.C]) need(stride8(t), s, "SSD x/B/C need 16-byte aligned rows (strides and offsets multiples of 8)");
    const tiles = { chunk, headDim: P, dState: N };
    const body = renderTemplate("ssd.cu.hbs", { ...view, heads: H, groups: G, ...tiles, decls: bufs.declarations() });
    return { group: g, template: "ssd.cu.hbs", body, buffers: bufs.args, tiles };
  },
};

export const selectiveScan: KernelFamilyModule = {
  family: "selective_scan",
  check(s) {
    const N = s.inputs[2]!.shape[1] as number;
    if (![16, 64, 128].includes(N)) return { message: `the selective-scan kernel takes dState 16, 64 or 128 (got ${N})`, hint: "mamba({ dState: 16 })" };
    return scanCheck(s);
  },
  absorb: absorbScan,
  render(g, ctx) {
    const s = g.anchor!;
    enforce(s, selectiveScan.check!(s));
    const bufs = new BufferTable();
    const { refs, view } = scanOperands(g, ctx, bufs);
    const N = g.roles.A!.shape[1] as number;
    const z = g.roles.z ? operand(bufs, tokenRef(ctx, g.roles.z, s, "z")) : undefined;
    const tiles = { dState: N };
    const body = renderTemplate("selective_scan.cu.hbs", { ...view, z, dim: featureCount(refs.x), ...tiles, decls: bufs.declarations() });
    return { group: g, template: "selective_scan.cu.hbs", body, buffers: bufs.args, tiles };
  },
};
