import { describe, expect, it } from "vitest";
import { evaluate, randomParams, randomTensor } from "../../compiler/interp/interp.js";
import type { Tensor } from "../../compiler/interp/tensor.js";
import type { Graph } from "../../compiler/ir/graph.js";
import { mkNode } from "../../compiler/ir/node.js";
import { expectClose, get, msg, nextSeed, rnd, rndInt, set, zeros } from "./helpers.js";

/** tokens → embedding → rmsnorm → linear(up) → silu → linear(down) → + residual → logits, loss. */
function tinyGraph(): Graph {
  const D = 8, F = 12, V = 11;
  const ids = mkNode("input", [], { name: "ids" }, { dtype: "i32", shape: ["B", "T"] });
  const tgt = mkNode("input", [], { name: "targets" }, { dtype: "i32", shape: ["B", "T"] });
  const emb = mkNode("param", [], { name: "emb", init: { kind: "normal", std: 0.02 } }, { dtype: "f32", shape: [V, D] });
  const nw = mkNode("param", [], { name: "norm.w", init: { kind: "const", value: 1 } }, { dtype: "f32", shape: [D] });
  const up = mkNode("param", [], { name: "up", init: { kind: "kaiming_uniform", fanIn: D } }, { dtype: "f32", shape: [F, D] });
  const down = mkNode("param", [], { name: "down", init: { kind: "uniform", low: -0.1, high: 0.1 } }, { dtype: "f32", shape: [D, F] });
  const x = mkNode("embedding", [ids, emb]);
  const h = mkNode("rmsnorm", [x, nw], { eps: 1e-5 });
  const y = mkNode("linear", [mkNode("silu", [mkNode("linear", [h, up])]), down]);
  const r = mkNode("add", [x, y]);
  const logits = mkNode("linear", [r, emb]);
  const loss = mkNode("crossEntropy", [logits, tgt]);
  return { name: "tiny", outputs: { logits, loss, mean: mkNode("reduceMean", [loss]) }, meta: {} };
}

function naiveTiny(ids: Tensor, tgt: Tensor, p: Record<string, Tensor>): { logits: Tensor; loss: Tensor } {
  const [B, T] = ids.shape as [number, number];
  const D = 8, F = 12, V = 11;
  const logits = zeros([B, T, V]);
  const loss = zeros([B, T]);
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++) {
      const x: number[] = [];
      for (let d = 0; d < D; d++) x.push(get(p.emb!, get(ids, b, t), d));
      const ms = x.reduce((s, v) => s + v * v, 0) / D;
      const h = x.map((v, d) => (v / Math.sqrt(ms + 1e-5)) * p["norm.w"]!.data[d]!);
      const u: number[] = [];
      for (let f = 0; f < F; f++) {
        let s = 0;
        for (let d = 0; d < D; d++) s += h[d]! * get(p.up!, f, d);
        u.push(s / (1 + Math.exp(-s)));
      }
      const r = x.map((v, d) => {
        let s = 0;
        for (let f = 0; f < F; f++) s += u[f]! * get(p.down!, d, f);
        return v + s;
      });
      let m = -Infinity;
      const l: number[] = [];
      for (let v = 0; v < V; v++) {
        let s = 0;
        for (let d = 0; d < D; d++) s += r[d]! * get(p.emb!, v, d);
        l.push(s);
        set(logits, s, b, t, v);
        m = Math.max(m, s);
      }
      const z = l.reduce((s, v) => s + Math.exp(v - m), 0);
      set(loss, m + Math.log(z) - l[get(tgt, b, t)]!, b, t);
    }
  return { logits, loss };
}

describe("evaluate", () => {
  it("runs a small graph in f64 and f32 against a hand-written forward pass", () => {
    const g = tinyGraph();
    const params = randomParams(g, nextSeed());
    // make the norm weight non-trivial
    for (let i = 0; i < 8; i++) params["norm.w"]!.data[i] = 1 + 0.1 * i;
    const [B, T] = [2, 7];
    const ids = rndInt([B, T], 11);
    const targets = rndInt([B, T], 11);
    const want = naiveTiny(ids, targets, params);
    const out = evaluate(g, { bindings: { B, T }, inputs: { ids, targets }, params });
    expect(Object.keys(out).sort()).toEqual(["logits", "loss", "mean"]);
    expectClose(out.logits!, want.logits, 1e-12, "evaluate logits");
    expectClose(out.loss!, want.loss, 1e-12, "evaluate loss");
    const mean = Array.from(want.loss.data).reduce((s, v) => s + v, 0) / (B * T);
    expect(Math.abs(out.mean!.data[0]! - mean), msg("mean loss")).toBeLessThan(1e-13);
    const o32 = evaluate(g, { bindings: { B, T }, inputs: { ids, targets }, params, precision: "f32" });
    expect(o32.logits!.data).toBeInstanceOf(Float32Array);
    expectClose(o32.logits!, want.logits, 1e-5, "evaluate f32 logits");
    // a node array works too
    const arr = evaluate([g.outputs.loss!], { bindings: { B, T }, inputs: { ids, targets }, params });
    expect([...arr["0"]!.data]).toEqual([...out.loss!.data]);
  });

  it("evaluates symbolic shapes with other bindings (same graph, new B/T)", () => {
    const g = tinyGraph();
    const params = randomParams(g, 7);
    const ids = rndInt([1, 3], 11);
    const out = evaluate(g, { bindings: { B: 1, T: 3 }, inputs: { ids, targets: ids }, params });
    expect(out.logits!.shape).toEqual([1, 3, 11]);
  });

  it("clear errors: missing binding, input shape vs bindings, param shape, missing param", () => {
    const g = tinyGraph();
    const params = randomParams(g, 1);
    const ids = rndInt([2, 7], 11);
    expect(() => evaluate(g, { bindings: { B: 2 }, inputs: { ids, targets: ids }, params })).toThrow(/no value bound for symbolic dim 'T'/);
    expect(() => evaluate(g, { bindings: { B: 2, T: 5 }, inputs: { ids, targets: ids }, params })).toThrow(
      /input 'ids' has shape \[2, 7\] but the graph expects \[2, 5\] \(declared \[B, T\] with B=2, T=5\)/,
    );
    const bad = { ...params, up: randomTensor([12, 9], 1) };
    expect(() => evaluate(g, { bindings: { B: 2, T: 7 }, inputs: { ids, targets: ids }, params: bad })).toThrow(
      /param 'up' has shape \[12, 9\] but the graph expects \[12, 8\]/,
    );
    const { down: _d, ...missing } = params;
    expect(() => evaluate(g, { bindings: { B: 2, T: 7 }, inputs: { ids, targets: ids }, params: missing })).toThrow(/no value bound for param 'down'/);
    const badIds = rndInt([2, 7], 11);
    badIds.data[3] = 11;
    expect(() => evaluate(g, { bindings: { B: 2, T: 7 }, inputs: { ids: badIds, targets: ids }, params })).toThrow(/embedding.*token id 11.*vocab size 11/);
  });

  it("sequence ops in a graph: ssd chunked vs recurrent", () => {
    const x = mkNode("input", [], { name: "x" }, { dtype: "f32", shape: ["B", "T", 4, 2] });
    const dt = mkNode("input", [], { name: "dt" }, { dtype: "f32", shape: ["B", "T", 4] });
    const A = mkNode("param", [], { name: "A", init: { kind: "uniform", low: -1, high: -0.1 } }, { dtype: "f32", shape: [4] });
    const Bm = mkNode("input", [], { name: "Bm" }, { dtype: "f32", shape: ["B", "T", 2, 3] });
    const y = mkNode("ssdScan", [x, mkNode("softplus", [dt]), A, Bm, Bm], { chunk: 4 });
    const st = mkNode("ssdState", [x, mkNode("softplus", [dt]), A, Bm], { chunk: 4 });
    const g: Graph = { name: "ssd", outputs: { y, st }, meta: {} };
    const [B, T] = [2, 10];
    const inputs = { x: rnd([B, T, 4, 2]), dt: rnd([B, T, 4]), Bm: rnd([B, T, 2, 3]) };
    const params = randomParams(g, nextSeed());
    const a = evaluate(g, { bindings: { B, T }, inputs, params });
    const b = evaluate(g, { bindings: { B, T }, inputs, params, ssdMode: "recurrent" });
    expectClose(a.y!, b.y!, 1e-12, "graph ssd chunked vs recurrent");
    expectClose(a.st!, b.st!, 1e-12, "graph ssd state");
    expect(a.st!.shape).toEqual([B, 4, 2, 3]);
  });
});

describe("evaluate memory", () => {
  it("frees intermediates after their last use (a 200-op chain keeps a handful live)", () => {
    let h = mkNode("input", [], { name: "x" }, { dtype: "f32", shape: ["T", 64] });
    const w = mkNode("param", [], { name: "w", init: { kind: "normal", std: 0.1 } }, { dtype: "f32", shape: [64, 64] });
    for (let i = 0; i < 100; i++) h = mkNode("addScalar", [mkNode("tanh", [mkNode("linear", [h, w])])], { value: i * 1e-3 });
    const g: Graph = { name: "chain", outputs: { h }, meta: {} };
    const stats = { peakLiveTensors: 0, peakLiveElements: 0 };
    const out = evaluate(g, { bindings: { T: 16 }, inputs: { x: rnd([16, 64]) }, params: randomParams(g, 3), stats });
    expect(out.h!.shape).toEqual([16, 64]);
    expect(stats.peakLiveTensors).toBeLessThanOrEqual(4);
    expect(stats.peakLiveElements).toBeLessThanOrEqual(64 * 64 + 3 * 16 * 64);
  });
});

describe("randomParams / randomTensor", () => {
  it("follows each init spec, deterministically per (seed, name)", () => {
    const mk = (name: string, init: Record<string, number | string>, shape: number[]) =>
      mkNode("param", [], { name, init }, { dtype: "f32", shape });
    const outs = {
      n: mk("n", { kind: "normal", std: 0.02 }, [4000]),
      c: mk("c", { kind: "const", value: 1 }, [5]),
      u: mk("u", { kind: "uniform", low: 2, high: 3 }, [1000]),
      a: mk("a", { kind: "alog_uniform", low: 1, high: 16 }, [1000]),
      d: mk("d", { kind: "dt_bias", dtMin: 0.001, dtMax: 0.1, floor: 1e-4 }, [1000]),
      k: mk("k", { kind: "kaiming_uniform", fanIn: 64 }, [1000]),
    };
    const g: Graph = { name: "p", outputs: outs, meta: {} };
    const p = randomParams(g, 42);
    const q = randomParams(g, 42);
    const r = randomParams(g, 43);
    expect([...p.n!.data]).toEqual([...q.n!.data]);
    expect([...p.n!.data]).not.toEqual([...r.n!.data]);
    const std = Math.sqrt(Array.from(p.n!.data).reduce((s, v) => s + v * v, 0) / 4000);
    expect(Math.abs(std - 0.02)).toBeLessThan(0.002);
    expect([...p.c!.data]).toEqual([1, 1, 1, 1, 1]);
    expect(p.u!.data.every((v) => v >= 2 && v < 3)).toBe(true);
    expect(p.a!.data.every((v) => v >= 0 && v < Math.log(16))).toBe(true);
    const sp = (v: number) => Math.log1p(Math.exp(v));
    expect(p.d!.data.every((v) => sp(v) >= 0.001 * (1 - 1e-9) && sp(v) <= 0.1 * (1 + 1e-9))).toBe(true);
    expect(p.k!.data.every((v) => Math.abs(v) <= 1 / 8)).toBe(true);
    expect(p.k!.data.some((v) => Math.abs(v) > 0.1)).toBe(true);
    const f32 = randomParams(g, 42, "f32");
    expect(f32.n!.data).toBeInstanceOf(Float32Array);
    const bad: Graph = { name: "b", outputs: { z: mk("z", { kind: "weird" }, [2]) }, meta: {} };
    expect(() => randomParams(bad, 1)).toThrow(/param 'z' has unknown init kind "weird"/);
  });

  it("randomTensor is deterministic and scaled", () => {
    const a = randomTensor([3, 100], 5, "f64", 2);
    const b = randomTensor([3, 100], 5, "f64", 2);
    expect([...a.data]).toEqual([...b.data]);
    const std = Math.sqrt(Array.from(a.data).reduce((s, v) => s + v * v, 0) / 300);
    expect(std > 1.6 && std < 2.4).toBe(true);
  });
});
