/**
 * Elementwise IR ops as C expressions over float operands. Both row kernels and GEMM epilogues
 * render their bodies from these, so an op's device semantics live in one table (mirroring the
 * interpreter's ref.ts) and nothing is hand-written per model.
 */
import { StrataError } from "../ir/errors.js";
import type { Node } from "../ir/node.js";

const f = (v: number) => {
  const s = Number.isInteger(v) ? `${v}.0` : String(v);
  return `${s}f`;
};

/** C expression for elementwise node `n` given its operands' expressions. */
export function elementwiseExpr(n: Node, a: readonly string[]): string {
  const [x, y] = a;
  switch (n.op) {
    case "add": return `(${x} + ${y})`;
    case "sub": return `(${x} - ${y})`;
    case "mul": return `(${x} * ${y})`;
    case "div": return `(${x} / ${y})`;
    case "neg": return `(-${x})`;
    case "exp": return `expf(${x})`;
    case "log": return `logf(${x})`;
    case "sqrt": return `sqrtf(${x})`;
    case "rsqrt": return `rsqrtf(${x})`;
    case "square": return `(${x} * ${x})`;
    case "tanh": return `tanhf(${x})`;
    case "sigmoid": return `st::sigmoid(${x})`;
    case "silu": return `st::silu(${x})`;
    case "softplus": return `st::softplus(${x})`;
    case "relu": return `fmaxf(${x}, 0.f)`;
    case "relu2": return `st::relu2(${x})`;
    case "gelu": return n.attrs.approximate === "tanh" ? `st::gelu_tanh(${x})` : `st::gelu(${x})`;
    case "scale": return `(${x} * ${f(n.attrs.value as number)})`;
    case "addScalar": return `(${x} + ${f(n.attrs.value as number)})`;
    case "cast": return n.attrs.to === "bf16" ? `st::to_bf16(${x})` : x;
    default:
      throw new StrataError(`codegen: '${n.op}' is not an elementwise op the kernels can render`, n.src);
  }
}
