/** Floating-point operations of a graph, from each op's registry rule (multiply-add = 2). */
import { evalShape } from "./dims.js";
import { graphNodes, type Graph } from "./graph.js";
import { getOp } from "./registry.js";

/** Forward FLOPs of a graph at concrete bindings (B, T, …). */
export function graphFlops(g: Graph, bindings: Record<string, number>): number {
  let total = 0;
  for (const n of graphNodes(g)) {
    const f = getOp(n.op).flops;
    if (!f) continue;
    total += f(n.inputs.map((i) => evalShape(i.shape, bindings)), evalShape(n.shape, bindings), n.attrs);
  }
  return total;
}

/** Training FLOPs per token at sequence length T: 3 × forward (the backward costs two forwards). */
export function trainingFlopsPerToken(g: Graph, T: number): number {
  return (3 * graphFlops(g, { B: 1, T, P: 0 })) / T;
}
