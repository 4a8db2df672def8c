/**
 * The interpreter's tensor: a concrete shape and a flat row-major buffer. Precision "f64" keeps
 * Float64Array buffers; "f32" keeps Float32Array buffers (every op's output rounded to float32).
 * Integer tensors (token ids, positions) are stored as exact floats.
 */
import type { Attrs } from "../ir/node.js";

export type Precision = "f32" | "f64";

export interface Tensor {
  readonly shape: readonly number[];
  readonly data: Float64Array | Float32Array;
}

export interface RefCtx {
  precision: Precision;
  /** Concrete output shape, already evaluated from the node's symbolic shape. */
  outShape: readonly number[];
  /** SSD algorithm used by ssd_scan/ssd_state: the chunked (dual) form or the plain recurrence. */
  ssdMode: "chunked" | "recurrent";
}

export type RefFn = (inputs: readonly Tensor[], attrs: Attrs, ctx: RefCtx) => Tensor;

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function alloc(shape: readonly number[], precision: Precision): Tensor {
  const n = numel(shape);
  return { shape: [...shape], data: precision === "f64" ? new Float64Array(n) : new Float32Array(n) };
}

export function fromArray(shape: readonly number[], values: ArrayLike<number>, precision: Precision = "f64"): Tensor {
  const t = alloc(shape, precision);
  if (values.length !== t.data.length) throw new Error(`fromArray: ${values.length} values for shape [${shape}]`);
  t.data.set(values as ArrayLike<number>);
  return t;
}
