/**
 * The VJP rule of every op: one record per op, keyed by op name. A rule maps the op's node and the
 * gradient of its output (gy) to the gradients of its inputs, built as IR nodes — forward ops where
 * they can express it (linear's dgrad/wgrad are linear/matmul, norm backward is elementwise work
 * plus row sums), backward ops of vjp-ops.ts where they cannot. Ops without a gradient say why.
 *
 *   leaf           a source (param, input, constants): gradients stop here
 *   vjp            grads(n, gy, need) → one gradient per input (undefined where not needed /
 *                  not differentiable, e.g. integer ids and targets)
 *   none           not differentiable, with the reason autodiff reports if a gradient must pass
 */
import { dimAdd, type Dim } from "../ir/dims.js";
import type { AttrValue, Attrs, DType, Node } from "../ir/node.js";
import { gradDtype } from "../ir/ops-backward.js";
import type { OpName } from "../ir/op-names.js";
import { mkBackwardNode } from "./vjp-ops.js";

export type VjpRecord =
  | { kind: "leaf" }
  | { kind: "none"; reason: string }
  | { kind: "vjp"; grads(n: Node, gy: Node, need: readonly boolean[]): readonly (Node | undefined)[] };

/** Re-exported for tests: the table below must have exactly these keys. */
export { OP_NAMES as FORWARD_OPS } from "../ir/op-names.js";

// ---- graph-building helpers (every node attributed to the forward node `n`) ---------------------

function ops(n: Node) {
  const mk = (op: string, inputs: readonly Node[], attrs: Attrs = {}) => mkBackwardNode(n, op, inputs, attrs);
  const h = {
    mk,
    neg: (x: Node) => mk("neg", [x]),
    add: (a: Node, b: Node) => mk("add", [a, b]),
    sub: (a: Node, b: Node) => mk("sub", [a, b]),
    mul: (a: Node, b: Node) => mk("mul", [a, b]),
    div: (a: Node, b: Node) => mk("div", [a, b]),
    scale: (x: Node, value: number) => mk("scale", [x], { value }),
    addScalar: (x: Node, value: number) => mk("addScalar", [x], { value }),
    square: (x: Node) => mk("square", [x]),
    sigmoid: (x: Node) => mk("sigmoid", [x]),
    rsqrt: (x: Node) => mk("rsqrt", [x]),
    reshape: (x: Node, shape: readonly Dim[]) => (sameShape(x.shape, shape) ? x : mk("reshape", [x], { shape: [...shape] })),
    transpose: (x: Node, perm: number[]) => mk("transpose", [x], { perm }),
    full: (value: number, shape: readonly Dim[], dtype: DType) => mkBackwardNode(n, "full", [], { value }, { dtype, shape: [...shape] }),
    /** Sum over broadcast axes down to `shape` (no-op when equal). */
    sumTo: (x: Node, shape: readonly Dim[]) => (sameShape(x.shape, shape) ? x : mk("sumTo", [x], { shape: [...shape] })),
    /** Sum over the last axis, kept as size 1. */
    rowSum: (x: Node) => h.sumTo(x, [...x.shape.slice(0, -1), 1]),
    /** The gradient of an operand that was broadcast into the output, in the operand's dtype. */
    fit: (g: Node, like: Node) => h.cast(h.sumTo(g, like.shape), gradDtype(like)),
    cast: (x: Node, to: DType) => (x.dtype === to ? x : mk("cast", [x], { to })),
    /** s·(1 + x·(1 − s)) with s = sigmoid(x): silu′(x). */
    siluGrad: (x: Node) => {
      const s = h.sigmoid(x);
      return h.mul(s, h.addScalar(h.mul(x, h.addScalar(h.neg(s), 1)), 1));
    },
  };
  return h;
}

function sameShape(a: readonly Dim[], b: readonly Dim[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function lastDim(x: Node): number {
  const d = x.shape[x.shape.length - 1];
  if (typeof d !== "number") throw new Error(`autodiff: the feature axis of ${x.op} must be concrete, got '${d}'`);
  return d;
}

function numAttr(a: Attrs, k: string, dflt: number): number {
  const v: AttrValue | undefined = a[k];
  return typeof v === "number" ? v : dflt;
}

/** Swap the last two axes. */
function swapLast(r: number): number[] {
  const p = [...Array(r).keys()];
  [p[r - 2], p[r - 1]] = [p[r - 1]!, p[r - 2]!];
  return p;
}

const vjp = (grads: (n: Node, gy: Node, need: readonly boolean[]) => readonly (Node | undefined)[]): VjpRecord => ({ kind: "vjp", grads });

/** Unary elementwise op with gradient gy·f′ (f′ built from x and the output y). */
const unary = (d: (h: ReturnType<typeof ops>, x: Node, y: Node, a: Attrs) => Node): VjpRecord =>
  vjp((n, gy) => {
    const h = ops(n);
    const x = n.inputs[0]!;
    return [h.cast(h.mul(gy, d(h, x, n, n.attrs)), gradDtype(x))];
  });

const SECOND_ORDER = "a backward op: second derivatives are not supported";
const STATE_REASON = "a decode-state companion: training differentiates the full-sequence graph, whose states are not outputs";

// ---- norms ----------------------------------------------------------------------------------

/** Given xhat = x·r (per row or group) and gw = gy·scale: dx = r·(gw − xhat·mean(gw·xhat)). */
function normDx(h: ReturnType<typeof ops>, r: Node, xhat: Node, gw: Node, d: number): Node {
  const m = h.scale(h.rowSum(h.mul(gw, xhat)), 1 / d);
  return h.mul(r, h.sub(gw, h.mul(xhat, m)));
}

function weightScale(h: ReturnType<typeof ops>, w: Node, oneP: boolean): Node {
  return oneP ? h.addScalar(w, 1) : w;
}

// ---- the table --------------------------------------------------------------------------------

export const VJP = {
  param: { kind: "leaf" },
  input: { kind: "leaf" },
  arange: { kind: "leaf" },
  full: { kind: "leaf" },

  neg: unary((h) => h.full(-1, [], "f32")),
  exp: unary((_h, _x, y) => y),
  log: unary((h, x) => h.div(h.full(1, [], "f32"), x)),
  sqrt: unary((h, _x, y) => h.div(h.full(0.5, [], "f32"), y)),
  rsqrt: unary((h, _x, y) => h.scale(h.mul(y, h.square(y)), -0.5)),
  square: unary((h, x) => h.scale(x, 2)),
  tanh: unary((h, _x, y) => h.addScalar(h.neg(h.square(y)), 1)),
  sigmoid: unary((h, _x, y) => h.mul(y, h.addScalar(h.neg(y), 1))),
  silu: unary((h, x) => h.siluGrad(x)),
  // sigmoid(x) is softplus′ exactly; the reference switches to x above 20, where they differ < 3e-9
  softplus: unary((h, x) => h.sigmoid(x)),
  // mish = x·tanh(softplus(x)): tanh(sp) + x·(1 − tanh²(sp))·sigmoid(x)
  mish: unary((h, x) => {
    const t = h.mk("tanh", [h.mk("softplus", [x])]);
    return h.add(t, h.mul(h.mul(x, h.addScalar(h.neg(h.square(t)), 1)), h.sigmoid(x)));
  }),
  relu: unary((h, x) => h.mk("activationGrad", [x], { fn: "relu" })),
  relu2: unary((h, x) => h.scale(h.mk("relu", [x]), 2)),
  gelu: unary((h, x, _y, a) => h.mk("activationGrad", [x], { fn: a.approximate === "tanh" ? "gelu_tanh" : "gelu" })),
  scale: vjp((n, gy) => [ops(n).scale(gy, n.attrs.value as number)]),
  addScalar: vjp((_n, gy) => [gy]),
  cast: vjp((n, gy) => [ops(n).cast(gy, gradDtype(n.inputs[0]!))]),
  add: vjp((n, gy, need) => {
    const h = ops(n);
    const [a, b] = n.inputs as [Node, Node];
    return [need[0] ? h.fit(gy, a) : undefined, need[1] ? h.fit(gy, b) : undefined];
  }),
  sub: vjp((n, gy, need) => {
    const h = ops(n);
    const [a, b] = n.inputs as [Node, Node];
    return [need[0] ? h.fit(gy, a) : undefined, need[1] ? h.fit(h.neg(gy), b) : undefined];
  }),
  mul: vjp((n, gy, need) => {
    const h = ops(n);
    const [a, b] = n.inputs as [Node, Node];
    return [need[0] ? h.fit(h.mul(gy, b), a) : undefined, need[1] ? h.fit(h.mul(gy, a), b) : undefined];
  }),
  div: vjp((n, gy, need) => {
    const h = ops(n);
    const [a, b] = n.inputs as [Node, Node];
    // y = a/b: da = gy/b, db = −gy·y/b
    return [need[0] ? h.fit(h.div(gy, b), a) : undefined, need[1] ? h.fit(h.neg(h.div(h.mul(gy, n), b)), b) : undefined];
  }),

  // rope is a rotation R(pos): dx = Rᵀ·gy = m ⊙ R(m ⊙ gy) with m = +1 on the first half of the
  // rotated dims, −1 on the second half, +1 on the pass-through dims.
  rope: vjp((n, gy) => {
    const h = ops(n);
    const [x, pos] = n.inputs as [Node, Node];
    const D = lastDim(x);
    const rot = Math.round(D * numAttr(n.attrs, "fraction", 1));
    const parts = [h.full(1, [rot / 2], x.dtype), h.full(-1, [rot / 2], x.dtype)];
    if (D > rot) parts.push(h.full(1, [D - rot], x.dtype));
    const m = h.mk("concat", parts, { axis: 0 });
    return [h.mul(h.mk("rope", [h.mul(gy, m), pos], n.attrs), m), undefined];
  }),
  rmsnorm: vjp((n, gy, need) => {
    const h = ops(n);
    const [x, w] = n.inputs as [Node, Node];
    const d = lastDim(x);
    const r = h.rsqrt(h.addScalar(h.scale(h.rowSum(h.square(x)), 1 / d), numAttr(n.attrs, "eps", 1e-5)));
    const xhat = h.mul(x, r);
    const gw = h.mul(gy, weightScale(h, w, n.attrs.oneP === true));
    return [need[0] ? h.cast(normDx(h, r, xhat, gw, d), gradDtype(x)) : undefined, need[1] ? h.fit(h.mul(gy, xhat), w) : undefined];
  }),
  layernorm: vjp((n, gy, need) => {
    const h = ops(n);
    const [x, w, b] = n.inputs as [Node, Node, Node | undefined];
    const d = lastDim(x);
    const xc = h.sub(x, h.scale(h.rowSum(x), 1 / d));
    const r = h.rsqrt(h.addScalar(h.scale(h.rowSum(h.square(xc)), 1 / d), numAttr(n.attrs, "eps", 1e-5)));
    const xhat = h.mul(xc, r);
    let dx: Node | undefined;
    if (need[0]) {
      const gw = h.mul(gy, weightScale(h, w, n.attrs.oneP === true));
      const gc = h.sub(gw, h.scale(h.rowSum(gw), 1 / d)); // the mean's share
      dx = h.cast(normDx(h, r, xhat, gc, d), gradDtype(x));
    }
    return [dx, need[1] ? h.fit(h.mul(gy, xhat), w) : undefined, b && need[2] ? h.fit(gy, b) : undefined];
  }),
  gatedRmsnorm: vjp((n, gy, need) => {
    const h = ops(n);
    const [x, z, w] = n.inputs as [Node, Node, Node];
    const d = lastDim(x);
    const gs = numAttr(n.attrs, "groupSize", d);
    const lead = x.shape.slice(0, -1);
    const grouped = [...lead, d / gs, gs];
    const u = h.mul(x, h.mk("silu", [z])); // the gated input, normalised per group
    const u4 = h.reshape(u, grouped);
    const r = h.rsqrt(h.addScalar(h.scale(h.rowSum(h.square(u4)), 1 / gs), numAttr(n.attrs, "eps", 1e-5)));
    const uhat4 = h.mul(u4, r);
    const uhat = h.reshape(uhat4, x.shape);
    const gw4 = h.reshape(h.mul(gy, weightScale(h, w, n.attrs.oneP === true)), grouped);
    const du = need[0] || need[1] ? h.reshape(normDx(h, r, uhat4, gw4, gs), x.shape) : undefined;
    return [
      need[0] ? h.cast(h.mul(du!, h.mk("silu", [z])), gradDtype(x)) : undefined,
      need[1] ? h.cast(h.mul(h.mul(du!, x), h.siluGrad(z)), gradDtype(z)) : undefined,
      need[2] ? h.fit(h.mul(gy, uhat), w) : undefined,
    ];
  }),
  softmax: vjp((n, gy) => {
    const h = ops(n);
    return [h.cast(h.mul(n, h.sub(gy, h.rowSum(h.mul(gy, n)))), gradDtype(n.inputs[0]!))];
  }),
  reduceMean: vjp((n, gy) => {
    const h = ops(n);
    const x = n.inputs[0]!;
    return [h.cast(h.mk("expandTo", [gy], { shape: [...x.shape], mean: true }), gradDtype(x))];
  }),

  // GEMMs: dgrad and wgrad as GEMMs; wgrad reduces over the token axes
  linear: vjp((n, gy, need) => {
    const h = ops(n);
    const [x, w] = n.inputs as [Node, Node];
    const dx = need[0] ? h.cast(h.mk("linear", [gy, h.transpose(w, [1, 0])]), gradDtype(x)) : undefined;
    let dw: Node | undefined;
    if (need[1]) {
      const r = x.shape.length;
      if (r === 1) dw = h.mk("matmul", [h.reshape(gy, [gy.shape[0]!, 1]), h.reshape(x, [1, x.shape[0]!])]);
      else dw = h.sumTo(h.mk("matmul", [h.transpose(gy, swapLast(r)), x]), w.shape);
      dw = h.cast(dw, gradDtype(w));
    }
    return [dx, dw];
  }),
  matmul: vjp((n, gy, need) => {
    const h = ops(n);
    const [a, b] = n.inputs as [Node, Node];
    const r = a.shape.length;
    return [
      need[0] ? h.cast(h.mk("matmul", [gy, h.transpose(b, swapLast(r))]), gradDtype(a)) : undefined,
      need[1] ? h.cast(h.mk("matmul", [h.transpose(a, swapLast(r)), gy]), gradDtype(b)) : undefined,
    ];
  }),
  embedding: vjp((n, gy, need) => {
    const h = ops(n);
    const [ids, table] = n.inputs as [Node, Node];
    return [undefined, need[1] ? h.cast(h.mk("embeddingGrad", [ids, gy], { vocab: table.shape[0]! as number }), gradDtype(table)) : undefined];
  }),
  conv1d: vjp((n, gy, need) => {
    const h = ops(n);
    const [x, w, bias, prefix] = n.inputs as [Node, Node, Node, Node | undefined];
    const args = prefix ? [gy, x, w, prefix] : [gy, x, w];
    const g = (wrt: string) => h.mk("conv1dGrad", args, { wrt });
    return [
      need[0] ? g("x") : undefined,
      need[1] ? g("w") : undefined,
      need[2] ? h.fit(gy, bias) : undefined,
      prefix && need[3] ? g("prefix") : undefined,
    ];
  }),
  attention: vjp((n, gy, need) => {
    const h = ops(n);
    const [q] = n.inputs as [Node];
    const scale = numAttr(n.attrs, "scale", 1 / Math.sqrt(lastDim(q)));
    return (["q", "k", "v"] as const).map((wrt, i) => (need[i] ? h.mk("attentionGrad", [gy, ...n.inputs], { wrt, scale }) : undefined));
  }),
  ssdScan: vjp((n, gy, need) => {
    const h = ops(n);
    return (["x", "dt", "A", "B", "C", "h0"] as const)
      .slice(0, n.inputs.length)
      .map((wrt, i) => (need[i] ? h.mk("ssdScanGrad", [gy, ...n.inputs], { wrt }) : undefined));
  }),
  selectiveScan: vjp((n, gy, need) => {
    const h = ops(n);
    return (["u", "delta", "A", "B", "C", "h0"] as const)
      .slice(0, n.inputs.length)
      .map((wrt, i) => (need[i] ? h.mk("selectiveScanGrad", [gy, ...n.inputs], { wrt }) : undefined));
  }),
  crossEntropy: vjp((n, gy, need) => {
    const h = ops(n);
    const [logits, targets] = n.inputs as [Node, Node];
    return [need[0] ? h.mk("crossEntropyGrad", [gy, logits, targets]) : undefined, undefined];
  }),

  convState: { kind: "none", reason: STATE_REASON },
  ssdState: { kind: "none", reason: STATE_REASON },
  selectiveState: { kind: "none", reason: STATE_REASON },
  cacheAppend: { kind: "none", reason: `${STATE_REASON} (a KV-cache write)` },

  reshape: vjp((n, gy) => [ops(n).reshape(gy, n.inputs[0]!.shape)]),
  transpose: vjp((n, gy) => {
    const perm = n.attrs.perm as number[];
    const inv = new Array<number>(perm.length);
    perm.forEach((p, i) => (inv[p] = i));
    return [ops(n).transpose(gy, inv)];
  }),
  // slice: the gradient padded with zeros back to the input's extent
  slice: vjp((n, gy) => {
    const h = ops(n);
    const x = n.inputs[0]!;
    const axis = n.attrs.axis as number, start = n.attrs.start as number, end = n.attrs.end as number;
    const d = x.shape[axis]!;
    const piece = (size: Dim) => {
      const s = [...x.shape];
      s[axis] = size;
      return h.full(0, s, gy.dtype);
    };
    const parts: Node[] = [];
    if (start > 0) parts.push(piece(start));
    parts.push(gy);
    if (typeof d !== "number" || end < d) parts.push(piece(dimAdd(d, -end)));
    return [parts.length === 1 ? gy : h.mk("concat", parts, { axis })];
  }),
  concat: vjp((n, gy, need) => {
    const h = ops(n);
    const axis = n.attrs.axis as number;
    let at: Dim = 0;
    return n.inputs.map((x, i) => {
      const from = at;
      at = dimAdd(at, x.shape[axis]!);
      if (!need[i]) return undefined;
      if (typeof from !== "number" || typeof at !== "number")
        throw new Error(`autodiff: concat along axis ${axis} with symbolic sizes (${x.shape[axis]}) has no slice gradient yet`);
      return h.cast(h.mk("slice", [gy], { axis, start: from, end: at }), gradDtype(x));
    });
  }),

  // backward ops: their own derivatives (second order) are not supported
  sumTo: { kind: "none", reason: SECOND_ORDER },
  expandTo: { kind: "none", reason: SECOND_ORDER },
  activationGrad: { kind: "none", reason: SECOND_ORDER },
  embeddingGrad: { kind: "none", reason: SECOND_ORDER },
  crossEntropyGrad: { kind: "none", reason: SECOND_ORDER },
  conv1dGrad: { kind: "none", reason: SECOND_ORDER },
  attentionGrad: { kind: "none", reason: SECOND_ORDER },
  ssdScanGrad: { kind: "none", reason: SECOND_ORDER },
  selectiveScanGrad: { kind: "none", reason: SECOND_ORDER },
} as const satisfies Record<OpName, VjpRecord>;

/** The record for an op, or undefined when the op has none (autodiff reports it). */
export function vjpRule(op: string): VjpRecord | undefined {
  return (VJP as Record<string, VjpRecord>)[op];
}
