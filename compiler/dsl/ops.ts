/**
 * The low-level DSL: one function per IR op. Tensors are IR nodes; every call records the user's
 * source line, so a shape error points at the line that made it. Layers (layers.ts) and user
 * code build models from these.
 */
import { mkNode, type DType, type Node, type OpName } from "../ir/index.js";
import type { Dim } from "../ir/dims.js";
import { StrataError } from "../ir/errors.js";

export type Tensor = Node;

/** Any registered op by name (e.g. an elementwise op added to the registry): `ops.apply("mish", [x])`. */
export const apply = (op: OpName, inputs: Tensor[], attrs: Record<string, number | string | boolean> = {}) => mkNode(op, inputs, attrs);

export const add = (a: Tensor, b: Tensor) => mkNode("add", [a, b]);
export const sub = (a: Tensor, b: Tensor) => mkNode("sub", [a, b]);
export const mul = (a: Tensor, b: Tensor) => mkNode("mul", [a, b]);
export const div = (a: Tensor, b: Tensor) => mkNode("div", [a, b]);
export const neg = (x: Tensor) => mkNode("neg", [x]);
export const exp = (x: Tensor) => mkNode("exp", [x]);
export const log = (x: Tensor) => mkNode("log", [x]);
export const sqrt = (x: Tensor) => mkNode("sqrt", [x]);
export const rsqrt = (x: Tensor) => mkNode("rsqrt", [x]);
export const square = (x: Tensor) => mkNode("square", [x]);
export const tanh = (x: Tensor) => mkNode("tanh", [x]);
export const sigmoid = (x: Tensor) => mkNode("sigmoid", [x]);
export const silu = (x: Tensor) => mkNode("silu", [x]);
export const softplus = (x: Tensor) => mkNode("softplus", [x]);
export const relu = (x: Tensor) => mkNode("relu", [x]);
export const relu2 = (x: Tensor) => mkNode("relu2", [x]);
export const gelu = (x: Tensor, approximate: "none" | "tanh" = "none") =>
  mkNode("gelu", [x], approximate === "none" ? {} : { approximate });
export const scale = (x: Tensor, value: number) => mkNode("scale", [x], { value });
export const addScalar = (x: Tensor, value: number) => mkNode("addScalar", [x], { value });
export const cast = (x: Tensor, to: DType) => mkNode("cast", [x], { to });

export const rmsnorm = (x: Tensor, w: Tensor, o: { eps?: number; oneP?: boolean } = {}) =>
  mkNode("rmsnorm", [x, w], { eps: o.eps ?? 1e-5, oneP: o.oneP ?? false });
export const layernorm = (x: Tensor, w: Tensor, b?: Tensor, o: { eps?: number; oneP?: boolean } = {}) =>
  mkNode("layernorm", b ? [x, w, b] : [x, w], { eps: o.eps ?? 1e-5, oneP: o.oneP ?? false });
export const gatedRmsnorm = (x: Tensor, z: Tensor, w: Tensor, o: { eps?: number; groupSize: number }) =>
  mkNode("gatedRmsnorm", [x, z, w], { eps: o.eps ?? 1e-5, groupSize: o.groupSize });
export const softmax = (x: Tensor) => mkNode("softmax", [x]);
export const reduceMean = (x: Tensor) => mkNode("reduceMean", [x]);

export const linear = (x: Tensor, w: Tensor) => mkNode("linear", [x, w]);
export const matmul = (a: Tensor, b: Tensor) => mkNode("matmul", [a, b]);
export const embedding = (ids: Tensor, table: Tensor) => mkNode("embedding", [ids, table]);
export const conv1d = (x: Tensor, w: Tensor, bias: Tensor, prefix?: Tensor) =>
  mkNode("conv1d", prefix ? [x, w, bias, prefix] : [x, w, bias]);
export const rope = (x: Tensor, positions: Tensor, o: { fraction?: number; theta?: number } = {}) =>
  mkNode("rope", [x, positions], { fraction: o.fraction ?? 1, theta: o.theta ?? 10000 });
export const attention = (q: Tensor, k: Tensor, v: Tensor, o: { scale?: number } = {}) =>
  mkNode("attention", [q, k, v], o.scale === undefined ? {} : { scale: o.scale });
export const ssdScan = (x: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor, o: { chunk?: number; h0?: Tensor } = {}) =>
  mkNode("ssdScan", o.h0 ? [x, dt, A, B, C, o.h0] : [x, dt, A, B, C], { chunk: o.chunk ?? 64 });
export const selectiveScan = (u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, o: { h0?: Tensor } = {}) =>
  mkNode("selectiveScan", o.h0 ? [u, delta, A, B, C, o.h0] : [u, delta, A, B, C]);
export const crossEntropy = (logits: Tensor, targets: Tensor) => mkNode("crossEntropy", [logits, targets]);

export const reshape = (x: Tensor, shape: Dim[]) => mkNode("reshape", [x], { shape });
export const slice = (x: Tensor, axis: number, start: number, end: number) => mkNode("slice", [x], { axis, start, end });
export const concat = (xs: Tensor[], axis: number) => mkNode("concat", xs, { axis });
export const transpose = (x: Tensor, perm: number[]) => mkNode("transpose", [x], { perm });

/** Split along `axis` into consecutive pieces of the given sizes (which must add up). */
export function split(x: Tensor, axis: number, sizes: number[]): Tensor[] {
  const total = sizes.reduce((a, b) => a + b, 0);
  if (x.shape[axis] !== total)
    throw new StrataError(`split: sizes [${sizes}] add up to ${total} but axis ${axis} has size ${x.shape[axis]}`);
  const out: Tensor[] = [];
  let at = 0;
  for (const s of sizes) {
    out.push(slice(x, axis, at, at + s));
    at += s;
  }
  return out;
}

export function input(name: string, dtype: DType, shape: Dim[]): Tensor {
  return mkNode("input", [], { name }, { dtype, shape });
}

export function arange(n: Dim): Tensor {
  return mkNode("arange", [], {}, { dtype: "i32", shape: [n] });
}
