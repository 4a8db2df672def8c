/** The IR's plain types (no behaviour): dtypes, attributes, tensor types and the node. */
import type { Dim } from "./dims.js";
import type { SourceLoc } from "./errors.js";
import type { OpName } from "./op-names.js";

export type DType = "f32" | "f64" | "bf16" | "f16" | "i32" | "i64";
export const FLOAT_DTYPES: readonly DType[] = ["f32", "f64", "bf16", "f16"];
export const DTYPE_BYTES: Record<DType, number> = { f32: 4, f64: 8, bf16: 2, f16: 2, i32: 4, i64: 8 };

export type AttrValue = number | string | boolean | null | AttrValue[] | { [k: string]: AttrValue };
export type Attrs = Readonly<Record<string, AttrValue>>;

export interface TensorType {
  readonly dtype: DType;
  readonly shape: readonly Dim[];
}

export interface Node extends TensorType {
  readonly key: string;
  readonly op: OpName;
  readonly inputs: readonly Node[];
  readonly attrs: Attrs;
  /** DSL source line that created the node (user file when known). */
  readonly src?: SourceLoc;
  /** Dotted scope of the layer that created it, e.g. "layers.3.mixer". */
  readonly scope?: string;
}
