/**
 * Elementwise IR ops as C expressions over float operands. Both row kernels and GEMM epilogues
 * render their bodies from these, so an op's device semantics live in one table (mirroring the
 * interpreter's ref.ts) and nothing is hand-written per model.
 */
import { StrataError } from "../ir/errors.js";
import type { Node } from "../ir/node.js";
import type { ElementwiseOp } from "../ir/registry.js";

const f = (v: number) => {
  const s = Number.isInteger(v) ? `${v}.0` : String(v);
  return `${s}f`;
};

/** A C++ float literal for `v` (an integer gets ".0": `1f` is not a literal). */
export const floatLiteral = (v: number): string => f(v);

type ExprFn = (a: readonly string[], attrs: Node["attrs"]) => string;

/** Each elementwise op's device expression, over its operands' expressions (float). */
const EXPR = {
  add: ([x, y]) => `(${x} + ${y})`,
  sub: ([x, y]) => `(${x} - ${y})`,
  mul: ([x, y]) => `(${x} * ${y})`,
  div: ([x, y]) => `(${x} / ${y})`,
  neg: ([x]) => `(-${x})`,
  exp: ([x]) => `expf(${x})`,
  log: ([x]) => `logf(${x})`,
  sqrt: ([x]) => `sqrtf(${x})`,
  rsqrt: ([x]) => `rsqrtf(${x})`,
  square: ([x]) => `(${x} * ${x})`,
  tanh: ([x]) => `tanhf(${x})`,
  sigmoid: ([x]) => `st::sigmoid(${x})`,
  silu: ([x]) => `st::silu(${x})`,
  softplus: ([x]) => `st::softplus(${x})`,
  relu: ([x]) => `fmaxf(${x}, 0.f)`,
  relu2: ([x]) => `st::relu2(${x})`,
  mish: ([x]) => `(${x} * tanhf(st::softplus(${x})))`,
  gelu: ([x], at) => (at.approximate === "tanh" ? `st::gelu_tanh(${x})` : `st::gelu(${x})`),
  scale: ([x], at) => `(${x} * ${f(at.value as number)})`,
  addScalar: ([x], at) => `(${x} + ${f(at.value as number)})`,
  cast: ([x], at) => (at.to === "bf16" ? `st::to_bf16(${x})` : x!),
  activationGrad: ([x], at) => `st::${at.fn === "relu" ? "relu_grad" : at.fn === "gelu_tanh" ? "gelu_tanh_grad" : "gelu_grad"}(${x})`,
} satisfies Record<ElementwiseOp, ExprFn>;

/** C expression for elementwise node `n` given its operands' expressions. */
export function elementwiseExpr(n: Node, a: readonly string[]): string {
  const fn = (EXPR as Partial<Record<string, ExprFn>>)[n.op];
  if (!fn) throw new StrataError(`codegen: '${n.op}' is not an elementwise op the kernels can render`, n.src);
  return fn(a, n.attrs);
}
