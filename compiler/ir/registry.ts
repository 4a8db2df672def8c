/**
 * The op registry: one record per op. A record says what kind of op it is and which traits the
 * passes and codegen query (elementwise, epilogue-able, row reduction, needs a neighbouring
 * element, view, anchor family, state), how many inputs it takes, its shape/dtype rule, its FLOP
 * count (for `strata info`) and the state it carries across decode steps. Semantics live with
 * their implementations: the interpreter (`interp/refs.ts`) and the CUDA expression renderer
 * (`codegen/expr.ts`) each register theirs in a table typed over `OpName`, so a missing one is a
 * compile error. Adding an op: its name in OP_NAMES, its record in ops.ts, its reference, and (for
 * elementwise ops) its CUDA expression.
 */
import type { Dim } from "./dims.js";
import type { OpName } from "./op-names.js";
import type { Attrs, Node, TensorType } from "./types.js";

export { ELEMENTWISE_OPS, OP_NAMES, type ElementwiseOp, type OpName } from "./op-names.js";
import { OP_NAMES as OP_NAMES_LIST } from "./op-names.js";

/**
 * - source: no inputs (weights, graph inputs, constants);
 * - elementwise: see ELEMENTWISE_OPS;
 * - rowwise: reads other elements of the same token's row (rope's partner element, norms'
 *   statistics, softmax); `rowReduction` says which;
 * - reduction: reduces across tokens;
 * - anchor: a kernel family of its own (`family`);
 * - state: computes a sequence op's outgoing state (`companionOf` names the op whose kernel can
 *   produce it as a second output) or writes a cache in place (`inPlace`);
 * - view: same data, new indexing (reshape, slice, transpose) — costs nothing in a kernel.
 */
export type OpKind = "source" | "elementwise" | "rowwise" | "reduction" | "anchor" | "state" | "view";

/** The kernel families of codegen (one module each under compiler/kernels/). */
export type KernelFamily =
  | "gemm" | "attention" | "ssd" | "selective_scan" | "conv1d" | "embedding" | "cache_append" | "row"
  // training: the backward's anchors (reduce also takes the loss's reduceMean, cross_entropy the loss itself)
  | "matmul" | "reduce" | "cross_entropy" | "embedding_grad" | "conv1d_grad" | "attention_grad" | "ssd_grad" | "selective_scan_grad";

/** How a stateful sequence op continues across calls; used by derive-step. */
export interface StateSpec {
  /** "ssm" (scan state), "conv" (last k-1 inputs), "kv" (key/value cache). */
  kind: "ssm" | "conv" | "kv";
  /** Index of the optional input that carries the incoming state (ssm, conv). */
  stateInput?: number;
  /** Op that computes the outgoing state from the same inputs (minus the readout ones). */
  stateOp?: OpName;
}

export interface OpDef {
  name: OpName;
  kind: OpKind;
  arity: readonly [number, number];
  doc: string;
  /** Shape/dtype rule: throws ShapeError with a message saying what would be valid. */
  infer(inputs: readonly Node[], attrs: Attrs, explicit?: TensorType): TensorType;
  /** Attribute defaults, filled in once when a node is made (so every pass sees the same attrs). */
  defaults?: Readonly<Attrs>;
  /** Floating-point operations for concrete shapes (multiply-add = 2). */
  flops?(inputs: readonly number[][], out: readonly number[], attrs: Attrs): number;
  state?: StateSpec;
  /** Anchors: the kernel family that computes it. */
  family?: KernelFamily;
  /** Elementwise ops a GEMM/row epilogue can apply per output element (default: every elementwise op). */
  epilogue?: boolean;
  /** Row-wise ops: "norm" (statistics over the row, then scale), "softmax"; absent for rope-like ops. */
  rowReduction?: "norm" | "softmax";
  /** Needs another element of its input row (rope's rotation partner): must read it from memory. */
  needsNeighbour?: boolean;
  /** State ops: the sequence op whose kernel can produce this value as a second output. */
  companionOf?: OpName;
  /** The output is input `inPlace`'s buffer, written in place (a cache append). */
  inPlace?: number;
}

const registry = new Map<string, OpDef>();

export function defineOp(def: OpDef): OpDef {
  if (registry.has(def.name)) throw new Error(`op '${def.name}' defined twice`);
  if (def.kind === "elementwise" && def.epilogue === undefined) def = { ...def, epilogue: true };
  registry.set(def.name, def);
  return def;
}

export function getOp(name: string): OpDef {
  const d = registry.get(name);
  if (!d) throw new Error(`unknown op '${name}' (known: ${[...registry.keys()].sort().join(", ")})`);
  return d;
}

export function allOps(): OpDef[] {
  return [...registry.values()];
}

export function isOpName(name: string): name is OpName {
  return (OP_NAMES_LIST as readonly string[]).includes(name);
}

// ---- predicates the passes share ------------------------------------------------------------

export const isView = (n: Node): boolean => getOp(n.op).kind === "view";
export const isSource = (n: Node): boolean => getOp(n.op).kind === "source";
export const isElementwise = (n: Node): boolean => getOp(n.op).kind === "elementwise";
export const isNorm = (n: Node): boolean => getOp(n.op).rowReduction === "norm";

/** Look through views to the node that holds the data. */
export function viewBase(n: Node): Node {
  while (isView(n)) n = n.inputs[0]!;
  return n;
}

/** The node whose buffer holds n's data: through views and in-place writes. */
export function storageBase(n: Node): Node {
  for (;;) {
    if (isView(n)) n = n.inputs[0]!;
    else {
      const ip = getOp(n.op).inPlace;
      if (ip === undefined) return n;
      n = n.inputs[ip]!;
    }
  }
}

export type { Dim };
