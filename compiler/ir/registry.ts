/**
 * The op registry: one record per op. A record says what kind of op it is (for fusion), how many
 * inputs it takes, its shape/dtype rule, its reference implementation (the semantics, run by the
 * interpreter), its FLOP count (for `strata info`), and the state it carries across decode steps.
 * Adding an op means adding one record in ops.ts.
 */
import type { Dim } from "./dims.js";
import type { Attrs, Node, TensorType } from "./node.js";
import type { RefFn } from "../interp/tensor.js";

export type OpKind = "source" | "elementwise" | "reduction" | "anchor" | "view" | "stateful";

/** How a stateful sequence op continues across calls; used by derive-step. */
export interface StateSpec {
  /** "ssm" (scan state), "conv" (last k-1 inputs), "kv" (key/value cache). */
  kind: "ssm" | "conv" | "kv";
  /** Index of the optional input that carries the incoming state (ssm, conv). */
  stateInput?: number;
  /** Op that computes the outgoing state from the same inputs (minus the readout ones). */
  stateOp?: string;
}

export interface OpDef {
  name: string;
  kind: OpKind;
  arity: readonly [number, number];
  doc: string;
  /** Shape/dtype rule: throws ShapeError with a message saying what would be valid. */
  infer(inputs: readonly Node[], attrs: Attrs, explicit?: TensorType): TensorType;
  ref: RefFn;
  /** Floating-point operations for concrete shapes (multiply-add = 2). */
  flops?(inputs: readonly number[][], out: readonly number[], attrs: Attrs): number;
  state?: StateSpec;
}

const registry = new Map<string, OpDef>();

export function defineOp(def: OpDef): OpDef {
  if (registry.has(def.name)) throw new Error(`op '${def.name}' defined twice`);
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

export type { Dim };
