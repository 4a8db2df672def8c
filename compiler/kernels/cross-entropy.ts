/**
 * The cross_entropy family (training): `crossEntropy(logits [B,T,V], targets [B,T])` → the
 * per-token loss (f32) and `crossEntropyGrad(gy [B,T], logits, targets)` → d logits
 * gy·(softmax − onehot(target)). One block per token row, the vocabulary walked in a strided
 * loop with an online max / sum (include/train_ops.cuh cross_entropy_rows), so V can be large.
 *
 * The loss and its gradient read the same logits and targets: when the gradient's gy does not
 * depend on the loss value (the usual case: gy = w / Σw, the loss mask), both are one launch that
 * reads the logits twice instead of four times. A following cast of the gradient to bf16 is
 * applied in the store.
 */
import type { Node } from "../ir/node.js";
import { BufferTable } from "../codegen/buffers.js";
import { renderTemplate } from "../codegen/templates.js";
import { CTYPE } from "../codegen/tensors.js";
import { enforce, need } from "./common.js";
import type { KernelFamilyModule, Unsupported } from "./family.js";

const tokenShape = (n: Node, rank: number) => n.shape.length === rank && n.shape[0] === "B" && n.shape[1] === "T";

function check(n: Node): Unsupported | undefined {
  const [logits, targets] = n.op === "crossEntropy" ? (n.inputs as [Node, Node]) : [n.inputs[1]!, n.inputs[2]!];
  if (!tokenShape(logits, 3) || typeof logits.shape[2] !== "number")
    return { message: `${n.op}: the cross-entropy kernel takes logits [B, T, V] with a concrete vocabulary, got [${logits.shape}]`, hint: "compute the loss on the LM head's output [B, T, vocab]" };
  if (targets.dtype !== "i32") return { message: `${n.op}: targets must be i32, got ${targets.dtype}` };
  if (logits.dtype !== "bf16" && logits.dtype !== "f32") return { message: `${n.op}: logits must be bf16 or f32, got ${logits.dtype}` };
  if (n.op === "crossEntropyGrad" && n.inputs[0]!.dtype !== "f32" && n.inputs[0]!.dtype !== "bf16") return { message: `crossEntropyGrad: gy must be f32 or bf16, got ${n.inputs[0]!.dtype}` };
  return undefined;
}

/** Does `n` depend on `target` (through any path)? */
function dependsOn(n: Node, target: Node, memo = new Map<string, boolean>()): boolean {
  if (n.key === target.key) return true;
  const m = memo.get(n.key);
  if (m !== undefined) return m;
  const r = n.inputs.some((i) => dependsOn(i, target, memo));
  memo.set(n.key, r);
  return r;
}

export const crossEntropy: KernelFamilyModule = {
  family: "cross_entropy",
  check,

  absorb(grp, f) {
    const a = grp.anchor!;
    if (a.op === "crossEntropy") {
      const [logits, targets] = a.inputs as [Node, Node];
      const grad = f.uses(logits).find((u) => u.op === "crossEntropyGrad" && u.inputs[1] === logits && u.inputs[2] === targets && f.free(u));
      if (grad) {
        if (dependsOn(grad.inputs[0]!, a)) f.log(grp, grad, false, "second output crossEntropyGrad", "its gy depends on the loss value, so it must run after");
        else if (f.wouldCycle(grp, grad)) f.log(grp, grad, false, "second output crossEntropyGrad", "fusing would make the kernels' order cyclic");
        else {
          f.add(grp, grad);
          grp.roles.grad = grad;
          f.log(grp, grad, true, "second output crossEntropyGrad", "same logits and targets: the loss and the gradient in one pass");
        }
      }
    } else grp.roles.grad = a;
    const g = grp.roles.grad;
    if (!g) return;
    const us = f.uses(g);
    const c = us[0];
    if (us.length === 1 && !f.isOutput(g) && c!.op === "cast" && c!.attrs.to === "bf16" && f.free(c!) && !f.wouldCycle(grp, c!)) {
      f.add(grp, c!);
      grp.roles.dlogits = c!;
      f.log(grp, c!, true, "epilogue cast", "the gradient is rounded to bf16 in the store");
    }
  },

  render(g, ctx) {
    const a = g.anchor!;
    enforce(a, check(a));
    const ce = a.op === "crossEntropy" ? a : undefined;
    const grad = g.roles.grad;
    const logits = ce ? ce.inputs[0]! : grad!.inputs[1]!;
    const targets = ce ? ce.inputs[1]! : grad!.inputs[2]!;
    const bufs = new BufferTable();
    const lr = ctx.ref(logits);
    need(lr.tokenDims === 2 && lr.capacityStride === undefined, a, `logits must be a per-token tensor [B, T, V], got [${lr.shape}]`);
    const tr = ctx.ref(targets);
    need(tr.rowStride <= 1 && tr.offset === 0, a, "targets must be a contiguous [B, T] tensor");
    const view: Record<string, unknown> = {
      op: g.nodes.map((n) => n.op).join(", "),
      vocab: logits.shape[2] as number,
      logits: bufs.slot(lr),
      logitsOffset: lr.offset,
      logitsStride: lr.rowStride,
      targets: bufs.slot(tr),
      gy: "nullptr",
      loss: "nullptr",
      dlogits: "nullptr",
      dStride: 0,
      TL: CTYPE[logits.dtype],
      TG: "float",
      TD: "float",
    };
    if (ce && g.outputs.includes(ce)) {
      const o = ctx.outRef(ce);
      need(o.rowStride <= 1 && o.offset === 0, a, "the loss must be stored as a contiguous [B, T] tensor");
      view.loss = `p${bufs.slot(o, true)}`;
    }
    if (grad) {
      const gy = grad.inputs[0]!;
      const gr = ctx.ref(gy);
      need(gr.tokenDims === 2 && gr.rowStride <= 1 && gr.offset === 0, a, "crossEntropyGrad's gy must be a contiguous [B, T] tensor");
      view.gy = `p${bufs.slot(gr)}`;
      view.TG = CTYPE[gy.dtype];
      const dNode = (g.roles.dlogits as Node | undefined) ?? grad;
      const d = ctx.outRef(dNode);
      need(d.tokenDims === 2 && d.capacityStride === undefined, a, "the logits' gradient must be a per-token tensor");
      view.dlogits = `p${bufs.slot(d, true)}${d.offset ? ` + ${d.offset}` : ""}`;
      view.dStride = d.rowStride;
      view.TD = CTYPE[dNode.dtype];
    }
    view.decls = bufs.declarations();
    const body = renderTemplate("cross_entropy.cu.hbs", view);
    return { group: g, template: "cross_entropy.cu.hbs", body, buffers: bufs.args, tiles: { threads: 256, loss: view.loss !== "nullptr", grad: !!grad } };
  },
};
