/**
 * Reverse-mode autodiff on the Graph IR: given a graph and the name of a scalar output (the loss),
 * returns the graph with one more output per differentiated leaf, `grad.<name>`, built from the
 * per-op VJP rules of vjp.ts. The backward graph is ordinary IR (plus the backward ops of
 * vjp-ops.ts): nodes are content-hashed, so recomputed forward values (norm statistics, the
 * gated input of a gated norm) are shared with the forward graph wherever they coincide.
 *
 * Algorithm: topological order of the loss's ancestors; mark the nodes that depend on a target
 * leaf; walk them in reverse, seeding d loss = 1, and let each node's rule turn its accumulated
 * output gradient into input gradients (summed with `add` where a value has several readers; the
 * zero-padded gradients of disjoint slices of one value are merged into one concat instead).
 */
import { shapeStr } from "../ir/dims.js";
import { StrataError } from "../ir/errors.js";
import { topo, type Graph } from "../ir/graph.js";
import type { Node } from "../ir/node.js";
import { mkBackwardNode } from "./vjp-ops.js";
import { vjpRule } from "./vjp.js";

export interface AutodiffOptions {
  /** The graph output to differentiate: a floating scalar (shape []). */
  loss: string;
  /** "params" (every `param` node, the default) or names of params and/or inputs. */
  wrt?: "params" | readonly string[];
  /** Keep the graph's own outputs next to the gradients (default true). */
  keepOutputs?: boolean;
}

const FLOAT = new Set(["f32", "f64", "bf16", "f16"]);

function label(n: Node): string {
  const name = typeof n.attrs.name === "string" ? ` '${n.attrs.name}'` : "";
  return `${n.op}${name}${n.scope ? ` in ${n.scope}` : ""}`;
}

/** The leaves to differentiate, by name (param/input attrs.name), in graph order. */
function targetLeaves(g: Graph, wrt: AutodiffOptions["wrt"]): Map<string, Node> {
  const byName = new Map<string, Node>();
  const all = topo(Object.values(g.outputs)).filter((n) => (n.op === "param" || n.op === "input") && typeof n.attrs.name === "string");
  for (const n of all) byName.set(n.attrs.name as string, n);
  const out = new Map<string, Node>();
  if (wrt === undefined || wrt === "params") {
    for (const n of all) if (n.op === "param") out.set(n.attrs.name as string, n);
    if (out.size === 0) throw new StrataError(`autodiff: graph '${g.name}' has no param to differentiate`, undefined, "pass wrt: [names of inputs] to differentiate inputs");
    return out;
  }
  if (!Array.isArray(wrt) || wrt.length === 0) throw new StrataError(`autodiff: wrt must be "params" or a non-empty list of param/input names, got ${JSON.stringify(wrt)}`);
  for (const name of wrt) {
    const n = byName.get(name);
    if (!n) {
      const known = [...byName.keys()];
      throw new StrataError(`autodiff: no param or input named '${name}' in graph '${g.name}'`, undefined, `valid names: ${known.slice(0, 20).join(", ")}${known.length > 20 ? `, … (${known.length})` : ""}`);
    }
    if (!FLOAT.has(n.dtype)) throw new StrataError(`autodiff: '${name}' is ${n.dtype}; only floating tensors have gradients`, n.src);
    out.set(name, n);
  }
  return out;
}

/** A gradient that is a concat of pieces along `axis` (fixed sizes), the zero pieces marked null. */
function paddedPieces(g: Node): { axis: number; pieces: { from: number; to: number; node: Node | null }[] } | undefined {
  if (g.op !== "concat") return undefined;
  const axis = g.attrs.axis as number;
  const pieces: { from: number; to: number; node: Node | null }[] = [];
  let at = 0;
  for (const p of g.inputs) {
    const d = p.shape[axis];
    if (typeof d !== "number") return undefined;
    pieces.push({ from: at, to: at + d, node: p.op === "full" && p.attrs.value === 0 ? null : p });
    at += d;
  }
  return { axis, pieces };
}

/**
 * The sum of two gradients of x that are each zero outside disjoint pieces along one axis — the
 * VJPs of several slices of one value (a fused projection's z / xBC / dt, xBC's x / B / C) — as
 * ONE concat of their pieces (zeros in the gaps), instead of an `add` of full-width zero-padded
 * tensors; undefined when they overlap or are not of that form (the caller adds them).
 */
function mergePadded(x: Node, a: Node, b: Node): Node | undefined {
  const pa = paddedPieces(a), pb = paddedPieces(b);
  if (!pa || !pb || pa.axis !== pb.axis || a.dtype !== b.dtype) return undefined;
  const live = [...pa.pieces, ...pb.pieces].filter((p) => p.node).sort((p, q) => p.from - q.from);
  for (let i = 1; i < live.length; i++) if (live[i]!.from < live[i - 1]!.to) return undefined;
  const axis = pa.axis;
  const extent = x.shape[axis];
  if (typeof extent !== "number") return undefined;
  const zeros = (size: number) => {
    const shape = [...x.shape];
    shape[axis] = size;
    return mkBackwardNode(x, "full", [], { value: 0 }, { dtype: a.dtype, shape });
  };
  const parts: Node[] = [];
  let at = 0;
  for (const p of live) {
    if (p.from > at) parts.push(zeros(p.from - at));
    parts.push(p.node!);
    at = p.to;
  }
  if (at < extent) parts.push(zeros(extent - at));
  return parts.length === 1 ? parts[0]! : mkBackwardNode(x, "concat", parts, { axis });
}

/**
 * Add `grad.<name>` outputs (d loss / d leaf: the leaf's shape; f32, or f64 for f64 leaves) to the graph. Leaves the
 * loss does not depend on get a zero gradient, so every target has one.
 */
export function autodiff(g: Graph, o: AutodiffOptions): Graph {
  const loss = g.outputs[o.loss];
  if (!loss)
    throw new StrataError(`autodiff: graph '${g.name}' has no output '${o.loss}'`, undefined, `outputs: ${Object.keys(g.outputs).join(", ")}`);
  if (loss.shape.length !== 0)
    throw new StrataError(
      `autodiff: the loss '${o.loss}' must be a scalar (shape []), got ${shapeStr(loss.shape)}`,
      loss.src,
      "reduce it first, e.g. reduceMean(crossEntropy(logits, targets))",
    );
  if (!FLOAT.has(loss.dtype)) throw new StrataError(`autodiff: the loss '${o.loss}' must be floating, got ${loss.dtype}`, loss.src);

  const order = topo([loss]);
  const targets = targetLeaves(g, o.wrt);
  const targetKeys = new Set([...targets.values()].map((n) => n.key));

  // nodes on a path from a target to the loss
  const needs = new Set<string>();
  for (const n of order) if (targetKeys.has(n.key) || n.inputs.some((x) => needs.has(x.key))) needs.add(n.key);

  const grads = new Map<string, Node>();
  if (needs.has(loss.key)) grads.set(loss.key, mkBackwardNode(loss, "full", [], { value: 1 }, { dtype: loss.dtype, shape: [] }));
  for (let i = order.length - 1; i >= 0; i--) {
    const n = order[i]!;
    const gy = grads.get(n.key);
    if (!gy || targetKeys.has(n.key)) continue;
    const rule = vjpRule(n.op);
    if (!rule) throw new StrataError(`autodiff: op '${n.op}' (${label(n)}) has no VJP rule`, n.src, "add a record for it in compiler/passes/vjp.ts");
    const need = n.inputs.map((x) => needs.has(x.key) && FLOAT.has(x.dtype));
    if (!need.some(Boolean)) continue;
    if (rule.kind === "leaf") continue;
    if (rule.kind === "none") throw new StrataError(`autodiff: ${label(n)} is not differentiable: ${rule.reason}`, n.src);
    const gs = rule.grads(n, gy, need);
    n.inputs.forEach((x, k) => {
      const gx = gs[k];
      if (!need[k] || !gx) return;
      if (shapeStr(gx.shape) !== shapeStr(x.shape))
        throw new Error(`autodiff: internal error: the VJP of ${label(n)} gave input ${k} a gradient of shape ${shapeStr(gx.shape)}, not ${shapeStr(x.shape)}`);
      const prev = grads.get(x.key);
      grads.set(x.key, prev ? (mergePadded(x, prev, gx) ?? mkBackwardNode(x, "add", [prev, gx])) : gx);
    });
  }

  const outputs: Record<string, Node> = o.keepOutputs === false ? {} : { ...g.outputs };
  for (const [name, leaf] of targets) {
    // gradients accumulate in fp32 at least (fp32 master weights), f64 stays f64
    const dtype = leaf.dtype === "f64" ? "f64" : "f32";
    let gl = grads.get(leaf.key) ?? mkBackwardNode(leaf, "full", [], { value: 0 }, { dtype, shape: [...leaf.shape] });
    if (gl.dtype !== dtype) gl = mkBackwardNode(leaf, "cast", [gl], { to: dtype });
    const key = `grad.${name}`;
    if (key in outputs) throw new StrataError(`autodiff: graph '${g.name}' already has an output named '${key}'`);
    outputs[key] = gl;
  }
  return { name: g.name, outputs, meta: { ...g.meta, autodiff: { loss: o.loss, wrt: [...targets.keys()] } } };
}

/**
 * The training loss on a model graph: inputs `targets` (int, the logits' shape without the vocab
 * axis) and, when `weighted`, `weights` (f32, same shape: the loss mask of compiler/data/batches.ts);
 * output `loss` = mean crossEntropy(logits, targets), or Σ w·CE / Σ w (as mean(w·CE) / mean(w)).
 * The other outputs are dropped, so the result is ready for `autodiff(g, {loss: "loss"})`. A batch
 * whose weights are all 0 has no defined loss (0/0 = NaN): the trainer must skip it.
 */
export function withTrainingLoss(g: Graph, o: { logits?: string; weighted?: boolean } = {}): Graph {
  const name = o.logits ?? "logits";
  const logits = g.outputs[name];
  if (!logits) throw new StrataError(`withTrainingLoss: graph '${g.name}' has no output '${name}'`, undefined, `outputs: ${Object.keys(g.outputs).join(", ")}`);
  const rows = logits.shape.slice(0, -1);
  const mk = (op: string, inputs: readonly Node[], attrs = {}, explicit?: { dtype: Node["dtype"]; shape: Node["shape"] }) =>
    mkBackwardNode(logits, op, inputs, attrs, explicit && { dtype: explicit.dtype, shape: [...explicit.shape] });
  const targets = mk("input", [], { name: "targets" }, { dtype: "i32", shape: rows });
  const ce = mk("crossEntropy", [logits, targets]);
  let loss: Node;
  if (o.weighted) {
    const w = mk("input", [], { name: "weights" }, { dtype: "f32", shape: rows });
    loss = mk("div", [mk("reduceMean", [mk("mul", [ce, w])]), mk("reduceMean", [w])]);
  } else loss = mk("reduceMean", [ce]);
  return { name: g.name, outputs: { loss }, meta: g.meta };
}
