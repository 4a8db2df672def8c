/**
 * Conv1d family: depthwise causal convolution over time with bias (include/conv1d.cuh), with a
 * following SiLU fused, an optional incoming prefix (the previous K−1 inputs) and, as a second
 * output of the same launch, the outgoing conv state (convState on the same inputs).
 */
import type { Node } from "../ir/node.js";
import { BufferTable } from "../codegen/buffers.js";
import { renderTemplate } from "../codegen/templates.js";
import { featureCount } from "../codegen/tensors.js";
import { batchStride, enforce, tokenRef } from "./common.js";
import type { KernelFamilyModule } from "./family.js";

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
      decls: "",
    };
    view.decls = bufs.declarations();
    return { group: g, template: "conv1d.cu.hbs", body: renderTemplate("conv1d.cu.hbs", view), buffers: bufs.args, tiles: { k } };
  },
};
