/**
 * The conv1d_grad family (training): the backward of the depthwise causal conv1d,
 * `conv1dGrad(gy, x, w, prefix?)` with attrs.wrt ∈ x | w | prefix. The nodes of one conv (same
 * inputs) are one launch (include/train_ops.cuh conv1d_bwd): each thread owns 4 channels (one
 * when the layout is not aligned for vector accesses) and walks a chunk of 128 token rows with a sliding
 * window of gy rows, writing dx (the anti-causal correlation of gy with the taps), dprefix and its
 * chunk's share of dw into scratch; a second pass adds the chunks in a fixed order
 * (deterministic, no float atomics).
 */
import type { Node } from "../ir/node.js";
import { BufferTable } from "../codegen/buffers.js";
import { renderTemplate } from "../codegen/templates.js";
import { CTYPE } from "../codegen/tensors.js";
import { enforce, need } from "./common.js";
import type { KernelFamilyModule, Unsupported } from "./family.js";

/** Token rows per chunk of the dw partials (kConvRows in train_ops.cuh). */
const CHUNK_ROWS = 128;
const FLOAT = ["bf16", "f32"];

const sameInputs = (a: readonly Node[], b: readonly Node[]) => a.length === b.length && a.every((n, i) => n.key === b[i]!.key);

function check(n: Node): Unsupported | undefined {
  const [gy, x, w, prefix] = n.inputs as [Node, Node, Node, Node | undefined];
  if (x.shape.length !== 3 || x.shape[0] !== "B" || x.shape[1] !== "T" || typeof x.shape[2] !== "number")
    return { message: `conv1dGrad: the kernel takes x [B, T, C] with a concrete C, got [${x.shape}]` };
  const k = w.shape[1];
  if (typeof k !== "number" || k < 2 || k > 8) return { message: `conv1dGrad: kernel sizes 2..8 are supported (got ${k})`, hint: "dConv: 4" };
  for (const t of [gy, x, w, ...(prefix ? [prefix] : []), n])
    if (!FLOAT.includes(t.dtype)) return { message: `conv1dGrad: operands must be bf16 or f32 (got ${t.dtype})` };
  return undefined;
}

export const conv1dGrad: KernelFamilyModule = {
  family: "conv1d_grad",
  check,

  absorb(grp, f) {
    const a = grp.anchor!;
    grp.roles[a.attrs.wrt as string] = a;
    for (const u of f.uses(a.inputs[0]!)) {
      if (u === a || u.op !== "conv1dGrad" || !f.free(u) || !sameInputs(u.inputs, a.inputs) || grp.roles[u.attrs.wrt as string]) continue;
      if (f.wouldCycle(grp, u)) {
        f.log(grp, u, false, `gradient wrt ${u.attrs.wrt}`, "fusing would make the kernels' order cyclic");
        continue;
      }
      f.add(grp, u);
      grp.roles[u.attrs.wrt as string] = u;
      f.log(grp, u, true, `gradient wrt ${u.attrs.wrt}`, "same conv: one launch computes every gradient");
    }
  },

  render(g, ctx) {
    const a = g.anchor!;
    enforce(a, check(a));
    const [gy, x, w, prefix] = a.inputs as [Node, Node, Node, Node | undefined];
    const C = x.shape[2] as number;
    const K = w.shape[1] as number;
    const bufs = new BufferTable();
    const tok = (n: Node, what: string) => {
      const r = ctx.ref(n);
      need(r.tokenDims === 2 && r.capacityStride === undefined, a, `conv1dGrad: ${what} must be a per-token tensor [B, T, C]`);
      return r;
    };
    const contiguous = (n: Node, what: string, out = false) => {
      const r = out ? ctx.outRef(n) : ctx.ref(n);
      need(r.offset === 0 && r.tokenDims === 0, a, `conv1dGrad: ${what} must be a contiguous tensor`);
      return r;
    };
    const gr = tok(gy, "gy"), xr = tok(x, "x");
    const view: Record<string, unknown> = {
      K,
      C,
      wrt: ["x", "w", "prefix"].filter((k) => g.roles[k]).join(", "),
      gy: bufs.slot(gr), gyOffset: gr.offset, gyStride: gr.rowStride,
      x: bufs.slot(xr), xOffset: xr.offset, xStride: xr.rowStride,
      w: bufs.slot(contiguous(w, "the weight")),
      prefix: "nullptr",
      dx: "nullptr", dxStride: 0,
      dw: "nullptr",
      dprefix: "nullptr",
      scratch: "nullptr",
      TG: CTYPE[gy.dtype], TX: CTYPE[x.dtype], TW: CTYPE[w.dtype], TP: "float", TDX: "float", TDW: "float", TDP: "float",
    };
    if (prefix) {
      view.prefix = `p${bufs.slot(contiguous(prefix, "the prefix state"))}`;
      view.TP = CTYPE[prefix.dtype];
    }
    const dx = g.roles.x, dw = g.roles.w, dp = g.roles.prefix;
    if (dx) {
      const r = ctx.outRef(dx);
      need(r.tokenDims === 2 && r.capacityStride === undefined, a, "conv1dGrad: dx must be a per-token tensor");
      view.dx = `p${bufs.slot(r, true)}${r.offset ? ` + ${r.offset}` : ""}`;
      view.dxStride = r.rowStride;
      view.TDX = CTYPE[dx.dtype];
    }
    if (dw) {
      view.dw = `p${bufs.slot(contiguous(dw, "dw", true), true)}`;
      view.TDW = CTYPE[dw.dtype];
      // dw partials: one [C, K] block per chunk of CHUNK_ROWS token rows
      view.scratch = `p${bufs.scratch(Math.ceil((C * K * 4) / CHUNK_ROWS), C * K * 4)}`;
    }
    if (dp) {
      view.dprefix = `p${bufs.slot(contiguous(dp, "dprefix", true), true)}`;
      view.TDP = CTYPE[dp.dtype];
    }
    view.decls = bufs.declarations();
    const body = renderTemplate("conv1d_grad.cu.hbs", view);
    return { group: g, template: "conv1d_grad.cu.hbs", body, buffers: bufs.args, tiles: { k: K, chunkRows: CHUNK_ROWS, threads: 128 }, scratch: bufs.scratchRequests };
  },
};
