/**
 * How a kernel reaches a tensor: a base buffer (an arena slot, a weight, or a model input) plus
 * a feature offset and a row stride. Activations are token-major [B, T, features...]: one "row"
 * per token; views (slices of the feature axis, reshapes of the feature axes) only change the
 * offset and the logical shape, never the data, so kernels read projections' outputs in place.
 */
import { shapeStr, type Dim } from "../ir/dims.js";
import { StrataError } from "../ir/errors.js";
import type { DType, Node } from "../ir/node.js";
import { getOp, isView } from "../ir/registry.js";

/**
 * Arena slot (per call), weight, graph input (tokens, positions), persistent state (caches) or a
 * prepared value (computed once from the weights, e.g. A = −exp(A_log), shared by the schedules).
 */
export type BufferKind = "slot" | "weight" | "input" | "state" | "prep";

/** Where a stored node lives; `capacityStride`: elements per token of a buffer that holds a
 * run-time number of tokens per sequence (a KV cache: d->C tokens, the state handle's context). */
export interface BufferOwner {
  kind: BufferKind;
  buffer: string;
  capacityStride?: number;
  /** A piece of an in-place concat (passes/concat-alias.ts): its columns of `into`'s buffer. */
  alias?: { into: Node; offset: number };
}

export interface TensorRef {
  kind: BufferKind;
  /** Slot name, weight name or input name. */
  buffer: string;
  /** Key of the node that owns the buffer. */
  baseKey: string;
  dtype: DType;
  /** Logical shape of the (viewed) tensor. */
  shape: readonly Dim[];
  /** Leading token dims (2 for [B, T, ...] activations, 0 for weights). */
  tokenDims: 0 | 2;
  /** Elements from the start of a row (or of the weight) to element 0 of the view. */
  offset: number;
  /** Elements between consecutive tokens (0 for weights). */
  rowStride: number;
  /** Set for a cache of d->C tokens per sequence: elements per token (the batch stride is d->C times this). */
  capacityStride?: number;
}

export const prod = (s: readonly Dim[]) => s.reduce<number>((a, d) => a * (d as number), 1);

export function featureCount(ref: TensorRef): number {
  return prod(ref.shape.slice(ref.tokenDims));
}

/** [B, time, ...]: time is T, or a cache's P (before this call) or P + T (after). */
function isTokenShape(s: readonly Dim[]): boolean {
  return s.length >= 2 && s[0] === "B" && (s[1] === "T" || s[1] === "P" || s[1] === "P+T");
}

/** Resolve a node to its buffer reference; `owner(n)` names the buffer a stored node lives in. */
export function resolveRef(n: Node, owner: (n: Node) => BufferOwner | undefined): TensorRef {
  const inPlace = getOp(n.op).inPlace;
  if (inPlace !== undefined && !owner(n)) {
    // written in place into its input's buffer (a cache append): same buffer, the longer shape
    const base = resolveRef(n.inputs[inPlace]!, owner);
    return { ...base, baseKey: n.key, shape: n.shape };
  }
  if (isView(n)) {
    const base = resolveRef(n.inputs[0]!, owner);
    const inShape = n.inputs[0]!.shape;
    if (n.op === "reshape") {
      if (base.tokenDims === 2 && !isTokenShape(n.shape))
        throw new StrataError(`codegen: reshape ${shapeStr(inShape)} → ${shapeStr(n.shape)} moves the token axes [B, T]; only feature axes may be reshaped`, n.src);
      return { ...base, shape: n.shape };
    }
    if (n.op === "slice") {
      const axis = n.attrs.axis as number;
      const start = n.attrs.start as number;
      if (axis < base.tokenDims) throw new StrataError(`codegen: slicing token axis ${axis} is not supported`, n.src);
      // features stay contiguous only if every feature axis before `axis` has size 1
      for (let a = base.tokenDims; a < axis; a++)
        if (inShape[a] !== 1) throw new StrataError(`codegen: slice on axis ${axis} of ${shapeStr(inShape)} is not contiguous per token; slice the first feature axis instead`, n.src);
      return { ...base, shape: n.shape, offset: base.offset + start * prod(inShape.slice(axis + 1)) };
    }
    throw new StrataError(`codegen: view op '${n.op}' is not supported by the kernels (only slice and reshape of feature axes)`, n.src);
  }
  const o = owner(n);
  if (!o) throw new Error(`codegen: no buffer holds node ${n.op} ${n.key}`);
  if (o.alias) {
    // a piece of an in-place concat: the concat's rows, from the piece's first column
    const base = resolveRef(o.alias.into, owner);
    return { ...base, baseKey: n.key, dtype: n.dtype, shape: n.shape, offset: base.offset + o.alias.offset };
  }
  const tokenDims = isTokenShape(n.shape) ? 2 : 0;
  return {
    kind: o.kind,
    buffer: o.buffer,
    baseKey: n.key,
    dtype: n.dtype,
    shape: n.shape,
    tokenDims,
    offset: 0,
    rowStride: tokenDims ? prod(n.shape.slice(2)) : 0,
    ...(o.capacityStride !== undefined ? { capacityStride: o.capacityStride } : {}),
  };
}

export const CTYPE: Record<DType, string> = {
  bf16: "__nv_bfloat16",
  f16: "__half",
  f32: "float",
  f64: "double",
  i32: "int",
  i64: "long long",
};

/** Column-to-element index of `ref` for a row whose features have shape F (c = column). */
export function elementIndex(ref: TensorRef, F: readonly Dim[], rowTokens: boolean, col: string): string {
  const L = ref.shape.slice(ref.tokenDims);
  let rowTerm = "";
  if (ref.tokenDims === 2) {
    if (!rowTokens) throw new Error("codegen: a per-token tensor read by a parameter-only kernel");
    rowTerm = `(long long)row * ${ref.rowStride} + `;
  }
  const offset = ref.offset ? `${ref.offset} + ` : "";
  if (L.join() === F.join()) return `${rowTerm}${offset}${col}`;
  if (L.length > F.length) throw new Error(`codegen: operand [${ref.shape}] has more feature axes than the row [${F}]`);
  // right-aligned broadcast: coordinate i of F, stride from L (0 where L has size 1 or is absent)
  const terms: string[] = [];
  let lStride = 1;
  for (let i = F.length - 1, j = L.length - 1; i >= 0; i--, j--) {
    const fi = F[i] as number;
    const li = j >= 0 ? (L[j] as number) : 1;
    const fStride = prod(F.slice(i + 1));
    if (li !== 1) {
      if (li !== fi) throw new Error(`codegen: operand axis ${li} does not broadcast to ${fi}`);
      terms.push(`((${col} / ${fStride}) % ${fi}) * ${lStride}`);
    }
    lStride *= li;
  }
  return `${rowTerm}${offset}${terms.length ? terms.join(" + ") : "0"}`;
}

