/**
 * The backward ops of autodiff (compiler/passes/autodiff.ts, vjp.ts): what the forward IR cannot
 * express. One record each, like ops.ts; their references are in interp/refs-backward.ts.
 *
 * - sumTo / expandTo: reductions over broadcast axes (and their transpose);
 * - activationGrad: f′(x) of relu (a step) and gelu (needs erf);
 * - embeddingGrad: scatter-add of rows;
 * - crossEntropyGrad: softmax − onehot(target);
 * - conv1dGrad: the anti-causal correlation (dx) and the reductions over tokens (dw, dprefix);
 * - attentionGrad, ssdScanGrad, selectiveScanGrad: the sequence ops' backward (recompute).
 *
 * Ops with several gradients take `wrt` and are one node per gradient; their kernel family
 * computes all of a group's gradients in one launch. A gradient with respect to a `param` is f32
 * (fp32 master weights), whatever the parameter's own dtype.
 */
import { shapeStr, type Dim } from "./dims.js";
import { ShapeError } from "./errors.js";
import { defineOp, type OpDef } from "./registry.js";
import type { Attrs, DType, Node } from "./types.js";

/** The dtype of a gradient with respect to `t`: f32 for parameters (f64 stays f64), else t's own. */
export function gradDtype(t: Node): DType {
  if (t.op !== "param") return t.dtype;
  return t.dtype === "f64" ? "f64" : "f32";
}

// ---- helpers ----------------------------------------------------------------------------------

const sameShape = (a: readonly Dim[], b: readonly Dim[]) => a.length === b.length && a.every((d, i) => d === b[i]);

/** NumPy broadcasting of `small` to `big`: true when every trailing axis is equal or 1. */
function broadcastsTo(small: readonly Dim[], big: readonly Dim[]): boolean {
  if (small.length > big.length) return false;
  const off = big.length - small.length;
  return small.every((d, i) => d === 1 || d === big[off + i]);
}

function str(a: Attrs, k: string, allowed: readonly string[]): string {
  const v = a[k];
  if (typeof v !== "string" || !allowed.includes(v)) throw new ShapeError(`attribute '${k}' must be one of ${allowed.join(", ")}, got ${JSON.stringify(v)}`);
  return v;
}

function num(a: Attrs, k: string, dflt?: number): number {
  const v = a[k] ?? dflt;
  if (typeof v !== "number" || !Number.isFinite(v)) throw new ShapeError(`attribute '${k}' must be a finite number, got ${JSON.stringify(a[k])}`);
  return v;
}

// ---- the records ----------------------------------------------------------------------------

defineOp({
  name: "sumTo",
  kind: "reduction",
  family: "reduce",
  arity: [1, 1],
  doc: "Sum x over its broadcast axes down to attrs.shape (the shape that NumPy-broadcast to x's): the transpose of broadcasting.",
  infer([x], a) {
    const shape = a.shape as Dim[];
    if (!Array.isArray(shape) || !broadcastsTo(shape, x!.shape))
      throw new ShapeError(`target shape ${JSON.stringify(shape)} must broadcast to the input's ${shapeStr(x!.shape)}`);
    return { dtype: x!.dtype, shape };
  },
});

defineOp({
  name: "expandTo",
  kind: "reduction",
  family: "reduce",
  arity: [1, 1],
  doc: "Broadcast x to attrs.shape (NumPy rules); attrs.mean divides by the number of copies (the backward of a mean).",
  infer([x], a) {
    const shape = a.shape as Dim[];
    if (!Array.isArray(shape) || !broadcastsTo(x!.shape, shape))
      throw new ShapeError(`input ${shapeStr(x!.shape)} does not broadcast to ${JSON.stringify(shape)}`);
    return { dtype: x!.dtype, shape };
  },
});

const ACTIVATION_GRADS = ["relu", "gelu", "gelu_tanh"] as const;

defineOp({
  name: "activationGrad",
  kind: "elementwise",
  arity: [1, 1],
  doc: "f′(x) elementwise for attrs.fn ∈ relu (0 at 0), gelu (exact erf form), gelu_tanh.",
  infer([x], a) {
    str(a, "fn", ACTIVATION_GRADS);
    return { dtype: x!.dtype, shape: x!.shape };
  },
});

defineOp({
  name: "embeddingGrad",
  kind: "anchor",
  family: "embedding_grad",
  arity: [2, 2],
  doc: "Scatter-add: out[ids[i]] += gy[i]; ids [...], gy [..., d] → [attrs.vocab, d].",
  infer([ids, gy], a) {
    const v = num(a, "vocab");
    if (!sameShape(gy!.shape.slice(0, -1), ids!.shape)) throw new ShapeError(`gradient ${shapeStr(gy!.shape)} must be the ids' shape ${shapeStr(ids!.shape)} plus a feature axis`);
    // the table is a parameter: its gradient is f32
    return { dtype: gy!.dtype === "f64" ? "f64" : "f32", shape: [v, gy!.shape[gy!.shape.length - 1]!] };
  },
});

defineOp({
  name: "crossEntropyGrad",
  kind: "anchor",
  family: "cross_entropy",
  arity: [3, 3],
  doc: "d logits of crossEntropy: gy[...]·(softmax(logits) − onehot(target)); gy [...], logits [..., V], targets [...].",
  infer([gy, logits, targets]) {
    if (!sameShape(gy!.shape, targets!.shape) || !sameShape(logits!.shape.slice(0, -1), targets!.shape))
      throw new ShapeError(`gy ${shapeStr(gy!.shape)} and targets ${shapeStr(targets!.shape)} must equal logits ${shapeStr(logits!.shape)} without the vocab axis`);
    return { dtype: logits!.dtype, shape: logits!.shape };
  },
});

defineOp({
  name: "conv1dGrad",
  kind: "anchor",
  family: "conv1d_grad",
  arity: [3, 4],
  doc: "Backward of the causal depthwise conv1d: inputs (gy, x, w, prefix?), attrs.wrt ∈ x (anti-causal correlation), w (sum over tokens), prefix.",
  infer([gy, x, w, prefix], a) {
    const wrt = str(a, "wrt", ["x", "w", "prefix"]);
    if (!sameShape(gy!.shape, x!.shape)) throw new ShapeError(`gradient ${shapeStr(gy!.shape)} must have the input's shape ${shapeStr(x!.shape)}`);
    if (wrt === "prefix" && !prefix) throw new ShapeError("wrt 'prefix' needs the prefix input");
    const t = wrt === "x" ? x! : wrt === "w" ? w! : prefix!;
    return { dtype: gradDtype(t), shape: t.shape };
  },
});

const ATTN_WRT = ["q", "k", "v"] as const;

defineOp({
  name: "attentionGrad",
  kind: "anchor",
  family: "attention_grad",
  arity: [4, 4],
  doc: "Backward of causal GQA attention by recomputation: inputs (gy, q, k, v), attrs {wrt ∈ q|k|v, scale}; key heads accumulate over their query group.",
  infer([gy, q, k, v], a) {
    const wrt = str(a, "wrt", ATTN_WRT);
    num(a, "scale");
    if (!sameShape(gy!.shape, q!.shape)) throw new ShapeError(`gradient ${shapeStr(gy!.shape)} must have q's shape ${shapeStr(q!.shape)}`);
    const t = wrt === "q" ? q! : wrt === "k" ? k! : v!;
    return { dtype: gradDtype(t), shape: t.shape };
  },
});

/**
 * The scans' gradients (inputs gy, then the forward's inputs in `wrt` order, h0 optional): gy has
 * the scanned input's shape; the result has the shape of the input named by attrs.wrt.
 */
function scanGradInfer(wrtNames: readonly string[]): OpDef["infer"] {
  return (ins, a) => {
    const wrt = str(a, "wrt", wrtNames);
    const [gy, first] = ins;
    if (!sameShape(gy!.shape, first!.shape)) throw new ShapeError(`gradient ${shapeStr(gy!.shape)} must have ${wrtNames[0]}'s shape ${shapeStr(first!.shape)}`);
    const t = ins[wrtNames.indexOf(wrt) + 1];
    if (!t) throw new ShapeError("wrt 'h0' needs the h0 input");
    return { dtype: gradDtype(t), shape: t.shape };
  };
}

const SSD_WRT = ["x", "dt", "A", "B", "C", "h0"] as const;

defineOp({
  name: "ssdScanGrad",
  kind: "anchor",
  family: "ssd_grad",
  arity: [6, 7],
  doc: "Backward of ssdScan (reverse recurrence over stored states): inputs (gy, x, dt, A, B, C, h0?), attrs {wrt ∈ x|dt|A|B|C|h0}.",
  infer: scanGradInfer(SSD_WRT),
});

const SEL_WRT = ["u", "delta", "A", "B", "C", "h0"] as const;

defineOp({
  name: "selectiveScanGrad",
  kind: "anchor",
  family: "selective_scan_grad",
  arity: [6, 7],
  doc: "Backward of selectiveScan (reverse recurrence over stored states): inputs (gy, u, delta, A, B, C, h0?), attrs {wrt ∈ u|delta|A|B|C|h0}.",
  infer: scanGradInfer(SEL_WRT),
});
