/**
 * Autodiff, op by op: for every differentiable op, d loss/d input from the backward graph against
 * finite differences in float64 (every entry), where loss = mean(op(inputs) ⊙ probe) with a fresh
 * random probe, so every output element matters. Plus the rule table's coverage and the errors.
 */
import { describe, expect, it } from "vitest";
import { autodiff } from "../../compiler/passes/autodiff.js";
import { FORWARD_OPS, VJP } from "../../compiler/passes/vjp.js";
import { evaluate, Rng } from "../../compiler/interp/interp.js";
import type { Tensor } from "../../compiler/interp/tensor.js";
import { mkNode, type DType, type Node } from "../../compiler/ir/node.js";
import { allOps } from "../../compiler/ir/registry.js";
import { StrataError } from "../../compiler/ir/errors.js";
import * as op from "../../compiler/dsl/ops.js";
import { nextSeed, rnd, rndInt, rndU, SEED } from "../interp/helpers.js";
import { checkGrad } from "./autodiff-helpers.js";

type Init = { shape: number[]; kind?: "normal" | "pos" | "neg" | "unit" | "nonzero"; int?: number };
interface Case {
  name: string;
  inputs: Record<string, Init>;
  build(x: Record<string, Node>): Node;
}

function value(s: Init): Tensor {
  if (s.int !== undefined) return rndInt(s.shape, s.int);
  switch (s.kind ?? "normal") {
    case "pos":
      return rndU(s.shape, 0.3, 2);
    case "neg":
      return rndU(s.shape, -2, -0.3);
    case "unit":
      return rndU(s.shape, 0.05, 0.6);
    case "nonzero": {
      const t = rndU(s.shape, 0.3, 2);
      const sign = rndU(s.shape, 0, 1);
      for (let i = 0; i < t.data.length; i++) if (sign.data[i]! < 0.5) t.data[i] = -t.data[i]!;
      return t;
    }
    default:
      return rnd(s.shape);
  }
}

const X = { x: { shape: [2, 3, 4] } };
const unaryCases: [string, (x: Node) => Node, Init["kind"]][] = [
  ["neg", op.neg, "normal"],
  ["exp", op.exp, "normal"],
  ["log", op.log, "pos"],
  ["sqrt", op.sqrt, "pos"],
  ["rsqrt", op.rsqrt, "pos"],
  ["square", op.square, "normal"],
  ["tanh", op.tanh, "normal"],
  ["sigmoid", op.sigmoid, "normal"],
  ["silu", op.silu, "normal"],
  ["softplus", op.softplus, "normal"],
  ["relu", (x) => mkNode("relu", [x]), "nonzero"],
  ["mish", (x) => mkNode("mish", [x]), "normal"],
  ["relu2", op.relu2, "nonzero"],
  ["gelu", (x) => op.gelu(x), "normal"],
  ["gelu tanh", (x) => op.gelu(x, "tanh"), "normal"],
  ["scale", (x) => op.scale(x, -1.7), "normal"],
  ["addScalar", (x) => op.addScalar(x, 0.3), "normal"],
  ["cast", (x) => op.cast(x, "f32"), "normal"],
];

const CASES: Case[] = [
  ...unaryCases.map(([name, f, kind]): Case => ({ name, inputs: { x: { shape: [2, 3, 4], kind } }, build: ({ x }) => f(x!) })),
  { name: "add (broadcast [3,1])", inputs: { a: { shape: [2, 3, 4] }, b: { shape: [3, 1] } }, build: ({ a, b }) => op.add(a!, b!) },
  { name: "sub (broadcast [4])", inputs: { a: { shape: [2, 3, 4] }, b: { shape: [4] } }, build: ({ a, b }) => op.sub(a!, b!) },
  { name: "sub (broadcast left)", inputs: { a: { shape: [1, 4] }, b: { shape: [2, 3, 4] } }, build: ({ a, b }) => op.sub(a!, b!) },
  { name: "mul (broadcast [2,1,4])", inputs: { a: { shape: [2, 3, 4] }, b: { shape: [2, 1, 4] } }, build: ({ a, b }) => op.mul(a!, b!) },
  { name: "div (broadcast)", inputs: { a: { shape: [2, 3, 4] }, b: { shape: [3, 4], kind: "nonzero" } }, build: ({ a, b }) => op.div(a!, b!) },
  { name: "rope (full)", inputs: { x: { shape: [2, 3, 2, 8] } }, build: ({ x }) => op.rope(x!, op.arange(3), { theta: 10000 }) },
  { name: "rope (fraction 0.5)", inputs: { x: { shape: [1, 4, 2, 8] } }, build: ({ x }) => op.rope(x!, op.arange(4), { fraction: 0.5, theta: 100 }) },
  { name: "rmsnorm", inputs: { x: { shape: [2, 3, 6] }, w: { shape: [6] } }, build: ({ x, w }) => op.rmsnorm(x!, w!, { eps: 1e-3 }) },
  { name: "rmsnorm oneP", inputs: { x: { shape: [3, 5] }, w: { shape: [5] } }, build: ({ x, w }) => op.rmsnorm(x!, w!, { eps: 1e-5, oneP: true }) },
  { name: "layernorm", inputs: { x: { shape: [2, 3, 6] }, w: { shape: [6] }, b: { shape: [6] } }, build: ({ x, w, b }) => op.layernorm(x!, w!, b!, { eps: 1e-3 }) },
  { name: "layernorm-1p", inputs: { x: { shape: [2, 3, 6] }, w: { shape: [6] }, b: { shape: [6] } }, build: ({ x, w, b }) => op.layernorm(x!, w!, b!, { oneP: true }) },
  { name: "layernorm, no bias", inputs: { x: { shape: [4, 5] }, w: { shape: [5] } }, build: ({ x, w }) => op.layernorm(x!, w!) },
  {
    name: "gatedRmsnorm (2 groups)",
    inputs: { x: { shape: [2, 3, 8] }, z: { shape: [2, 3, 8] }, w: { shape: [8] } },
    build: ({ x, z, w }) => op.gatedRmsnorm(x!, z!, w!, { eps: 1e-4, groupSize: 4 }),
  },
  { name: "softmax", inputs: { x: { shape: [2, 3, 5] } }, build: ({ x }) => op.softmax(x!) },
  { name: "reduceMean", inputs: { x: { shape: [2, 3, 4] } }, build: ({ x }) => op.mul(op.reduceMean(op.square(x!)), op.reduceMean(x!)) },
  { name: "linear", inputs: { x: { shape: [2, 3, 5] }, w: { shape: [4, 5] } }, build: ({ x, w }) => op.linear(x!, w!) },
  { name: "linear rank 2", inputs: { x: { shape: [3, 5] }, w: { shape: [4, 5] } }, build: ({ x, w }) => op.linear(x!, w!) },
  { name: "linear rank 1", inputs: { x: { shape: [5] }, w: { shape: [4, 5] } }, build: ({ x, w }) => op.linear(x!, w!) },
  { name: "matmul", inputs: { a: { shape: [2, 3, 4] }, b: { shape: [2, 4, 5] } }, build: ({ a, b }) => op.matmul(a!, b!) },
  { name: "embedding", inputs: { ids: { shape: [2, 5], int: 6 }, t: { shape: [6, 4] } }, build: ({ ids, t }) => op.embedding(ids!, t!) },
  { name: "conv1d", inputs: { x: { shape: [2, 5, 3] }, w: { shape: [3, 4] }, b: { shape: [3] } }, build: ({ x, w, b }) => op.conv1d(x!, w!, b!) },
  {
    name: "conv1d with prefix state",
    inputs: { x: { shape: [2, 4, 3] }, w: { shape: [3, 4] }, b: { shape: [3] }, p: { shape: [2, 3, 3] } },
    build: ({ x, w, b, p }) => op.conv1d(x!, w!, b!, p!),
  },
  {
    name: "attention (causal, GQA 4:2)",
    inputs: { q: { shape: [2, 4, 4, 3] }, k: { shape: [2, 4, 2, 3] }, v: { shape: [2, 4, 2, 3] } },
    build: ({ q, k, v }) => op.attention(q!, k!, v!, { scale: 0.6 }),
  },
  {
    name: "attention (S > T, default scale)",
    inputs: { q: { shape: [1, 3, 2, 4] }, k: { shape: [1, 5, 1, 4] }, v: { shape: [1, 5, 1, 4] } },
    build: ({ q, k, v }) => op.attention(q!, k!, v!),
  },
  {
    name: "ssdScan (G 2, chunk 2)",
    inputs: { x: { shape: [2, 5, 4, 2] }, dt: { shape: [2, 5, 4], kind: "unit" }, A: { shape: [4], kind: "neg" }, B: { shape: [2, 5, 2, 3] }, C: { shape: [2, 5, 2, 3] } },
    build: ({ x, dt, A, B, C }) => op.ssdScan(x!, dt!, A!, B!, C!, { chunk: 2 }),
  },
  {
    name: "ssdScan with h0",
    inputs: { x: { shape: [1, 4, 2, 2] }, dt: { shape: [1, 4, 2], kind: "unit" }, A: { shape: [2], kind: "neg" }, B: { shape: [1, 4, 1, 3] }, C: { shape: [1, 4, 1, 3] }, h0: { shape: [1, 2, 2, 3] } },
    build: ({ x, dt, A, B, C, h0 }) => op.ssdScan(x!, dt!, A!, B!, C!, { chunk: 3, h0: h0! }),
  },
  {
    name: "selectiveScan",
    inputs: { u: { shape: [2, 5, 3] }, d: { shape: [2, 5, 3], kind: "unit" }, A: { shape: [3, 2], kind: "neg" }, B: { shape: [2, 5, 2] }, C: { shape: [2, 5, 2] } },
    build: ({ u, d, A, B, C }) => op.selectiveScan(u!, d!, A!, B!, C!),
  },
  {
    name: "selectiveScan with h0",
    inputs: { u: { shape: [1, 4, 3] }, d: { shape: [1, 4, 3], kind: "unit" }, A: { shape: [3, 2], kind: "neg" }, B: { shape: [1, 4, 2] }, C: { shape: [1, 4, 2] }, h0: { shape: [1, 3, 2] } },
    build: ({ u, d, A, B, C, h0 }) => op.selectiveScan(u!, d!, A!, B!, C!, { h0: h0! }),
  },
  { name: "crossEntropy", inputs: { l: { shape: [2, 3, 6] }, t: { shape: [2, 3], int: 6 } }, build: ({ l, t }) => op.crossEntropy(l!, t!) },
  { name: "reshape", inputs: { x: { shape: [2, 3, 4] } }, build: ({ x }) => op.square(op.reshape(x!, [6, 4])) },
  { name: "slice (middle)", inputs: { x: { shape: [2, 7] } }, build: ({ x }) => op.square(op.slice(x!, 1, 2, 5)) },
  { name: "slice (prefix)", inputs: { x: { shape: [5, 3] } }, build: ({ x }) => op.exp(op.slice(x!, 0, 0, 2)) },
  { name: "concat", inputs: { a: { shape: [2, 2, 3] }, b: { shape: [2, 4, 3] } }, build: ({ a, b }) => op.square(op.concat([a!, b!], 1)) },
  { name: "transpose", inputs: { x: { shape: [2, 3, 4] } }, build: ({ x }) => op.mul(op.transpose(x!, [2, 0, 1]), op.transpose(x!, [2, 0, 1])) },
  {
    // the slices' zero-padded gradients are merged into one concat (autodiff.ts mergePadded)
    name: "disjoint slices of one value (a fused projection's pieces)",
    inputs: { x: { shape: [2, 3, 11] } },
    build: ({ x }) => op.add(op.mul(op.exp(op.slice(x!, 2, 0, 3)), op.slice(x!, 2, 5, 8)), op.concat([op.square(op.slice(x!, 2, 9, 11)), op.tanh(op.slice(x!, 2, 9, 10))], 2)),
  },
  { name: "overlapping slices (added)", inputs: { x: { shape: [2, 9] } }, build: ({ x }) => op.mul(op.slice(x!, 1, 0, 5), op.tanh(op.slice(x!, 1, 3, 8))) },
  {
    name: "shared input (gradient accumulation)",
    inputs: { x: { shape: [3, 4] }, w: { shape: [4, 4] } },
    build: ({ x, w }) => op.mul(op.silu(op.linear(x!, w!)), op.add(x!, op.linear(op.tanh(x!), w!))),
  },
];

function bindCase(c: Case) {
  const nodes: Record<string, Node> = {};
  const values: Record<string, Tensor> = {};
  for (const [name, s] of Object.entries(c.inputs)) {
    const dtype: DType = s.int !== undefined ? "i32" : "f64";
    nodes[name] = op.input(name, dtype, s.shape);
    values[name] = value(s);
  }
  const y = c.build(nodes);
  const probe = op.input("probe", "f64", [...y.shape] as number[]);
  values.probe = rnd(y.shape as number[]);
  const loss = op.reduceMean(op.mul(y, probe));
  const wrt = Object.entries(c.inputs).filter(([, s]) => s.int === undefined).map(([n]) => n);
  return { graph: { name: c.name, outputs: { loss }, meta: {} }, values, wrt };
}

describe(`autodiff per op vs finite differences (seed ${SEED})`, () => {
  for (const c of CASES)
    it(c.name, () => {
      const { graph, values, wrt } = bindCase(c);
      const g = autodiff(graph, { loss: "loss", wrt });
      const grads = evaluate(g, { inputs: values });
      const loss = () => evaluate(graph, { inputs: values }).loss!.data[0]!;
      const rng = new Rng(nextSeed());
      for (const name of wrt) checkGrad(`${c.name}: d/d${name}`, loss, values[name]!, grads[`grad.${name}`]!, rng);
    });
});

describe("gradients of disjoint slices", () => {
  it("are one concat of the pieces (zeros in the gaps), not an add of zero-padded tensors; overlapping ones are added", () => {
    const x = mkNode("param", [], { name: "x" }, { dtype: "f32", shape: [4, 10] });
    const loss = op.add(op.add(op.reduceMean(op.square(op.slice(x, 1, 0, 3))), op.reduceMean(op.exp(op.slice(x, 1, 3, 7)))), op.reduceMean(op.slice(x, 1, 8, 10)));
    const gx = autodiff({ name: "g", outputs: { loss }, meta: {} }, { loss: "loss" }).outputs["grad.x"]!;
    const root = gx.op === "cast" ? gx.inputs[0]! : gx;
    expect(root.op).toBe("concat");
    expect(root.inputs.map((p) => p.shape[1])).toEqual([3, 4, 1, 2]);
    expect(root.inputs[2]!.op).toBe("full");
    const seen = new Map<string, Node>();
    const walk = (n: Node) => {
      if (seen.has(n.key)) return;
      seen.set(n.key, n);
      n.inputs.forEach(walk);
    };
    walk(gx);
    expect([...seen.values()].filter((n) => n.op === "add" && n.shape.join() === "4,10"), "no add of zero-padded gradients").toEqual([]);
    const lossO = op.reduceMean(op.mul(op.slice(x, 1, 0, 5), op.slice(x, 1, 3, 8)));
    const go = autodiff({ name: "o", outputs: { loss: lossO }, meta: {} }, { loss: "loss" }).outputs["grad.x"]!;
    expect((go.op === "cast" ? go.inputs[0]! : go).op).toBe("add");
  });
});

describe("the VJP table", () => {
  it("has a record for every op of the registry", () => {
    const missing = allOps().map((d) => d.name).filter((n) => !(n in VJP));
    expect(missing, "ops without a VJP record in compiler/passes/vjp.ts").toEqual([]);
    expect(Object.keys(VJP).sort()).toEqual([...FORWARD_OPS].sort());
  });

  it("names the reason for every non-differentiable op", () => {
    for (const [name, r] of Object.entries(VJP)) if (r.kind === "none") expect(r.reason.length, name).toBeGreaterThan(20);
  });
});

describe("autodiff errors", () => {
  const x = op.input("x", "f64", [2, 3]);
  const w = mkNode("param", [], { name: "w", init: { kind: "ones" } }, { dtype: "f32", shape: [3] });
  const y = op.mul(x, w);
  const g = { name: "g", outputs: { y, loss: op.reduceMean(y) }, meta: {} };

  it("rejects a non-scalar loss, naming the fix", () => {
    expect(() => autodiff(g, { loss: "y" })).toThrow(/must be a scalar.*\[2, 3\][\s\S]*reduceMean/);
  });
  it("rejects a missing output and lists the outputs", () => {
    expect(() => autodiff(g, { loss: "nope" })).toThrow(/no output 'nope'[\s\S]*outputs: y, loss/);
  });
  it("rejects unknown and integer wrt names", () => {
    expect(() => autodiff(g, { loss: "loss", wrt: ["v"] })).toThrow(/no param or input named 'v'[\s\S]*valid names: .*x/);
    const ids = op.input("ids", "i32", [2]);
    const e = op.embedding(ids, op.input("t", "f64", [4, 3]));
    const g2 = { name: "g2", outputs: { loss: op.reduceMean(e) }, meta: {} };
    expect(() => autodiff(g2, { loss: "loss", wrt: ["ids"] })).toThrow(/'ids' is i32; only floating tensors have gradients/);
  });
  it("reports a non-differentiable op on the gradient path with its reason", () => {
    const xs = op.input("xs", "f64", [1, 3, 2, 2]);
    const st = mkNode("ssdState", [xs, op.input("dt", "f64", [1, 3, 2]), op.input("A", "f64", [2]), op.input("B", "f64", [1, 3, 1, 2])]);
    const g3 = { name: "g3", outputs: { loss: op.reduceMean(st) }, meta: {} };
    const err = (() => {
      try {
        autodiff(g3, { loss: "loss", wrt: ["xs"] });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(StrataError);
    expect(String((err as Error).message)).toMatch(/ssdState is not differentiable: a decode-state companion/);
  });
  it("gives params the loss does not reach a zero fp32 gradient, and keeps the outputs", () => {
    const u = mkNode("param", [], { name: "unused", init: { kind: "ones" } }, { dtype: "bf16", shape: [2] });
    const g4 = { name: "g4", outputs: { loss: op.reduceMean(y), other: u }, meta: {} };
    const out = autodiff(g4, { loss: "loss" });
    expect(Object.keys(out.outputs).sort()).toEqual(["grad.unused", "grad.w", "loss", "other"]);
    const r = evaluate(out, { inputs: { x: rnd([2, 3]) }, params: { w: rnd([3]), unused: rnd([2]) } });
    expect([...r["grad.unused"]!.data]).toEqual([0, 0]);
    expect(out.outputs["grad.w"]!.dtype).toBe("f32");
    expect(out.outputs["grad.unused"]!.dtype, "bf16 weights get fp32 gradients").toBe("f32");
    expect(out.meta.autodiff).toEqual({ loss: "loss", wrt: ["w", "unused"] });
  });
});
