/** Graphs of the matmul family's tests (tests/kernels/matmul.test.ts, tests/gpu/matmul_emit.ts). */
import type { Graph } from "../../compiler/ir/graph.js";
import { mkNode, type Node } from "../../compiler/ir/node.js";
import { autodiff } from "../../compiler/passes/autodiff.js";

/**
 * A three-layer MLP's training graph (loss = mean(y²)): three weight gradients, two dgrads. (The
 * examples' full training graphs are exercised by the pipeline's tests once every family renders.)
 */
export function mlpTraining(): Graph {
  const x = mkNode("input", [], { name: "x" }, { dtype: "bf16", shape: ["B", "T", 64] });
  const w = (name: string, n: number, k: number) => mkNode("param", [], { name }, { dtype: "bf16", shape: [n, k] });
  const h1 = mkNode("relu", [mkNode("linear", [x, w("w1", 128, 64)])]);
  const h2 = mkNode("relu", [mkNode("linear", [h1, w("w2", 96, 128)])]);
  const y = mkNode("linear", [h2, w("w3", 64, 96)]);
  const loss = mkNode("reduceMean", [mkNode("square", [mkNode("cast", [y], { to: "f32" })])]);
  return autodiff({ name: "mlp", outputs: { loss }, meta: {} } as Graph, { loss: "loss" });
}

/** Hand-built graphs for the paths the examples do not take. */
export function extraGraphs(): Graph[] {
  const inp = (name: string, dtype: Node["dtype"], shape: Node["shape"]) => mkNode("input", [], { name }, { dtype, shape: [...shape] });
  // attention-like scores through the general kernel: [B,4,T,16] · [B,4,16,T] → [B,4,T,T], cast to f32
  const q = mkNode("reshape", [inp("q", "bf16", ["B", "T", 64])], { shape: ["B", "T", 4, 16] });
  const k = mkNode("reshape", [inp("k", "bf16", ["B", "T", 64])], { shape: ["B", "T", 4, 16] });
  const scores = mkNode("matmul", [mkNode("transpose", [q], { perm: [0, 2, 1, 3] }), mkNode("transpose", [k], { perm: [0, 2, 3, 1] })]);
  const general = { name: "general", outputs: { s: mkNode("cast", [scores], { to: "f32" }) }, meta: {} } as Graph;
  // a weight gradient from an f32 gradient and a bf16 activation (the kernel rounds gy to bf16)
  const gy = inp("gy", "f32", ["B", "T", 72]);
  const x = inp("x", "bf16", ["B", "T", 40]);
  const mm = mkNode("matmul", [mkNode("transpose", [gy], { perm: [0, 2, 1] }), x]);
  const f32wgrad = { name: "wgrad32", outputs: { dw: mkNode("sumTo", [mm], { shape: [72, 40] }) }, meta: {} } as Graph;
  return [general, f32wgrad];
}

