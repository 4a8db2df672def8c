/**
 * The IR's one node type: an immutable tensor-valued operation {op, dtype, shape, inputs, attrs}
 * keyed by a content hash of those fields (inputs by their keys). Source location and scope are
 * provenance only and are not hashed, so identical computations share a key (CSE is a lookup).
 */
import { createHash } from "node:crypto";
import { canonDim, shapeStr, type Dim } from "./dims.js";
import { ShapeError, StrataError, type SourceLoc } from "./errors.js";
import { getOp, type OpName } from "./registry.js";
import "./ops.js";

export * from "./types.js";
import type { Attrs, AttrValue, DType, Node, TensorType } from "./types.js";

/** Stable JSON: object keys sorted, so attrs hash the same whatever order they were written in. */
export function stableJson(v: AttrValue | undefined): string {
  if (v === undefined) return "null";
  if (v === null || typeof v !== "object") {
    if (typeof v === "number" && !Number.isFinite(v)) throw new Error(`attribute value ${v} is not finite`);
    return JSON.stringify(v);
  }
  if (Array.isArray(v)) return `[${v.map(stableJson).join(",")}]`;
  const keys = Object.keys(v).filter((k) => v[k] !== undefined).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${stableJson(v[k])}`).join(",")}}`;
}

export function contentKey(op: OpName, dtype: DType, shape: readonly Dim[], attrs: Attrs, inputs: readonly Node[]): string {
  const h = createHash("sha256");
  h.update(op);
  h.update("|");
  h.update(dtype);
  h.update("|");
  h.update(shape.join(","));
  h.update("|");
  h.update(stableJson(attrs as AttrValue));
  h.update("|");
  for (const i of inputs) h.update(i.key + ",");
  return h.digest("hex").slice(0, 16);
}

// ---- provenance: which line of the user's DSL file made this node --------------------------

const provenance: { loc?: SourceLoc; scope?: string }[] = [];

/** Run `fn` with nodes attributed to `loc` / `scope` unless a closer user frame is found. */
export function withProvenance<T>(p: { loc?: SourceLoc; scope?: string }, fn: () => T): T {
  const outer = provenance[provenance.length - 1];
  provenance.push({ loc: p.loc ?? outer?.loc, scope: p.scope ?? outer?.scope });
  try {
    return fn();
  } finally {
    provenance.pop();
  }
}

export function currentScope(): string | undefined {
  return provenance[provenance.length - 1]?.scope;
}

/** A stack frame's file as a path: plain, file:// URL, or tsx's namespaced `?filePath=` form. */
function userFile(raw: string): string {
  const ns = /[?&]filePath=([^&]+)/.exec(raw);
  if (ns) return decodeURIComponent(ns[1]!).replace(/\?.*$/, "");
  return raw.replace(/^file:\/\//, "");
}

const INTERNAL_RE = /[\\/](compiler|node_modules)[\\/]|^node:|[\\/]tsx[\\/]/;

/**
 * First stack frame outside Strata's own compiler: the user's (or an example's) DSL line. Frames
 * beyond a model lowering (`lowerModel`) are not searched: a node built by a built-in layer
 * belongs to the line that created the layer (provenance), not to whoever called toGraph().
 */
export function captureUserLoc(): SourceLoc | undefined {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 24;
  const stack = new Error().stack?.split("\n").slice(1) ?? [];
  Error.stackTraceLimit = limit;
  for (const line of stack) {
    if (line.includes("lowerModel")) return undefined;
    const m = /\(?((?:file:\/\/)?[^()\s]+):(\d+):(\d+)\)?\s*$/.exec(line);
    if (!m) continue;
    const file = userFile(m[1]!);
    if (INTERNAL_RE.test(file) || file.includes("vitest")) continue;
    return { file, line: Number(m[2]), col: Number(m[3]) };
  }
  return undefined;
}

export function currentLoc(): SourceLoc | undefined {
  return captureUserLoc() ?? provenance[provenance.length - 1]?.loc;
}

/**
 * Make a node: the op's rule infers dtype and shape and validates inputs; a rule failure becomes
 * a StrataError naming the DSL line. `explicit` supplies dtype/shape for source ops (param, input).
 */
export function mkNode(op: OpName, inputs: readonly Node[], attrs: Attrs = {}, explicit?: TensorType): Node {
  const def = getOp(op);
  if (def.defaults) attrs = { ...def.defaults, ...attrs };
  const loc = currentLoc();
  let type: TensorType;
  try {
    const [lo, hi] = def.arity;
    if (inputs.length < lo || inputs.length > hi)
      throw new ShapeError(`takes ${lo === hi ? lo : `${lo}..${hi}`} inputs, got ${inputs.length}`);
    type = def.infer(inputs, attrs, explicit);
  } catch (e) {
    if (e instanceof ShapeError) {
      const got = inputs.map((i) => `${i.op}${shapeStr(i.shape)}:${i.dtype}`).join(", ");
      throw new StrataError(`${op}: ${e.message}${got ? ` (inputs: ${got})` : ""}`, loc);
    }
    throw e;
  }
  const shape = type.shape.map(canonDim);
  return Object.freeze({
    key: contentKey(op, type.dtype, shape, attrs, inputs),
    op,
    dtype: type.dtype,
    shape: Object.freeze(shape),
    inputs: Object.freeze([...inputs]),
    attrs: Object.freeze({ ...attrs }),
    src: loc,
    scope: currentScope(),
  });
}

/**
 * Rebuild a node with new inputs / attrs (passes use this); keeps its provenance. `explicit`
 * gives the new type of a source node (param, input) whose shape changes.
 */
export function withInputs(n: Node, inputs: readonly Node[], attrs: Attrs = n.attrs, explicit?: TensorType): Node {
  const def = getOp(n.op);
  let type: TensorType;
  try {
    type = def.infer(inputs, attrs, explicit ?? { dtype: n.dtype, shape: n.shape });
  } catch (e) {
    if (e instanceof ShapeError) throw new StrataError(`${n.op}: ${e.message}`, n.src);
    throw e;
  }
  const shape = type.shape.map(canonDim);
  return Object.freeze({
    ...n,
    key: contentKey(n.op, type.dtype, shape, attrs, inputs),
    dtype: type.dtype,
    shape: Object.freeze(shape),
    inputs: Object.freeze([...inputs]),
    attrs: Object.freeze({ ...attrs }),
  });
}

/** A new node attributed to `like`'s source line and scope (for nodes a pass introduces). */
export function mkNodeLike(like: Node, op: OpName, inputs: readonly Node[], attrs: Attrs = {}, explicit?: TensorType): Node {
  return withProvenance({ loc: like.src, scope: like.scope }, () => {
    const n = mkNode(op, inputs, attrs, explicit);
    return Object.freeze({ ...n, src: like.src, scope: like.scope });
  });
}
